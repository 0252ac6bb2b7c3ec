// JSON text helpers on RapidJSON: quoting, validation, compaction, building parameters.
#include "queuer/json.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

#include "queuer/error.hpp"

namespace queuer {

JsonValue::JsonValue(double v) {
    if (!std::isfinite(v)) throw Error(ErrorKind::Invalid, "JSON cannot hold NaN or infinity");
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.Double(v);
    text_ = sb.GetString();
}

JsonValue::JsonValue(std::string_view s) : text_(json::quote(s)) {}

JsonValue JsonValue::raw(std::string_view text) {
    return JsonValue(RawTag{}, json::compact(text, "JSON value"));
}

Keyed::Keyed(std::initializer_list<std::pair<const std::string, JsonValue>> items) {
    for (const auto& [k, v] : items) items_.emplace_back(k, v);
}

std::string Keyed::json() const {
    std::string out = "{";
    for (size_t i = 0; i < items_.size(); ++i) {
        if (i) out += ',';
        out += json::quote(items_[i].first);
        out += ':';
        out += items_[i].second.text();
    }
    out += '}';
    return out;
}

namespace json {

std::string quote(std::string_view s) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return sb.GetString();
}

namespace {
rapidjson::Document parse_or_throw(std::string_view text, std::string_view what) {
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    if (d.HasParseError()) {
        throw Error(ErrorKind::Invalid, fmt::format("{} is not valid JSON: {} at offset {}", what,
                                                    rapidjson::GetParseError_En(d.GetParseError()),
                                                    d.GetErrorOffset()));
    }
    return d;
}
}  // namespace

void require_array(std::string_view text, std::string_view what) {
    auto d = parse_or_throw(text, what);
    if (!d.IsArray()) throw Error(ErrorKind::Invalid, fmt::format("{} must be a JSON array", what));
}

void require_object(std::string_view text, std::string_view what) {
    auto d = parse_or_throw(text, what);
    if (!d.IsObject())
        throw Error(ErrorKind::Invalid, fmt::format("{} must be a JSON object", what));
}

bool is_valid(std::string_view text) {
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    return !d.HasParseError();
}

namespace {
// Writes numbers with exactly the digits they were given: a big integer or a long decimal in a
// job's parameters must not be rounded through a double.
struct RawNumberWriter : rapidjson::Writer<rapidjson::StringBuffer> {
    using rapidjson::Writer<rapidjson::StringBuffer>::Writer;
    bool RawNumber(const Ch* str, rapidjson::SizeType length, bool) {
        return RawValue(str, length, rapidjson::kNumberType);
    }
};
}  // namespace

std::string compact(std::string_view text, std::string_view what) {
    rapidjson::StringBuffer sb;
    RawNumberWriter w(sb);
    rapidjson::Reader reader;
    rapidjson::MemoryStream ms(text.data(), text.size());
    if (!reader.Parse<rapidjson::kParseNumbersAsStringsFlag>(ms, w)) {
        throw Error(ErrorKind::Invalid,
                    fmt::format("{} is not valid JSON: {} at offset {}", what,
                                rapidjson::GetParseError_En(reader.GetParseErrorCode()),
                                reader.GetErrorOffset()));
    }
    return std::string(sb.GetString(), sb.GetSize());
}

std::string compact_array(std::string_view text, std::string_view what) {
    std::string out = compact(text, what);
    if (out.empty() || out.front() != '[')
        throw Error(ErrorKind::Invalid, fmt::format("{} must be a JSON array", what));
    return out;
}

std::string compact_object(std::string_view text, std::string_view what) {
    std::string out = compact(text, what);
    if (out.empty() || out.front() != '{')
        throw Error(ErrorKind::Invalid, fmt::format("{} must be a JSON object", what));
    return out;
}

}  // namespace json
}  // namespace queuer
