// HTML output for the web console (queuerctl web): every value that comes from the database or
// the request goes through esc() (text and double-quoted attribute values alike) or url_encode()
// (query values), so that a task name, parameter or error text holding markup shows as text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "queuer/model.hpp"

namespace queuerctl::web {

// & < > " ' as character references: safe in text and in double- or single-quoted attributes.
std::string esc(std::string_view s);
// Percent-encodes everything but RFC 3986's unreserved characters.
std::string url_encode(std::string_view s);
// "?a=1&b=x%20y" from the pairs whose value is not empty ("" when none).
std::string query_string(const std::vector<std::pair<std::string, std::string>>& kv);
// A JSON string literal that is also safe inside HTML (<, >, & and the line separators escaped).
std::string json_str(std::string_view s);

// 1234567 -> "1,234,567"
std::string num(int64_t n);
// 12.3 -> "12 s", 300 -> "5 min", 7200 -> "2.0 h", 200000 -> "2.3 d"
std::string age_text(double seconds);
// "2026-01-31 12:00:05" (UTC)
std::string utc(queuer::TimePoint tp);
// A span whose text is the age, kept current by the page's script (data-age: seconds at render).
std::string age_span(double seconds, queuer::TimePoint at);
// Indented JSON (two spaces), or the text unchanged when it does not parse. Not escaped.
std::string pretty_json(std::string_view json);

}  // namespace queuerctl::web
