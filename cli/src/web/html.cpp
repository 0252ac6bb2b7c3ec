// HTML helpers of the web console: see html.hpp.
#include "html.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cmath>

namespace queuerctl::web {

std::string esc(std::string_view s) {
    std::string out;
    out.reserve(s.size() + s.size() / 8);
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string url_encode(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string query_string(const std::vector<std::pair<std::string, std::string>>& kv) {
    std::string out;
    for (const auto& [k, v] : kv) {
        if (v.empty()) continue;
        out += out.empty() ? '?' : '&';
        out += url_encode(k) + "=" + url_encode(v);
    }
    return out;
}

std::string json_str(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '<':
                out += "\\u003c";
                break;
            case '>':
                out += "\\u003e";
                break;
            case '&':
                out += "\\u0026";
                break;
            default:
                if (c < 0x20)
                    out += fmt::format("\\u{:04x}", c);
                else
                    out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string num(int64_t n) {
    std::string digits = std::to_string(n < 0 ? -n : n);
    std::string out;
    int k = 0;
    for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
        if (k && k % 3 == 0) out.insert(out.begin(), ',');
        out.insert(out.begin(), *it);
        ++k;
    }
    return n < 0 ? "-" + out : out;
}

std::string age_text(double s) {
    if (!std::isfinite(s) || s < 0) s = 0;
    if (s < 120) return fmt::format("{:.0f} s", std::floor(s));
    if (s < 7200) return fmt::format("{:.0f} min", std::floor(s / 60));
    if (s < 172800) return fmt::format("{:.1f} h", s / 3600);
    return fmt::format("{:.1f} d", s / 86400);
}

std::string utc(queuer::TimePoint tp) {
    std::string t = queuer::format_time(tp);  // 2026-01-31T12:00:05.123456Z
    if (t.size() >= 19) {
        t = t.substr(0, 19);
        t[10] = ' ';
    }
    return t;
}

std::string age_span(double seconds, queuer::TimePoint at) {
    if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
    return fmt::format("<span class=\"age\" data-age=\"{:.1f}\" title=\"{} UTC\">{}</span>",
                       seconds, esc(utc(at)), esc(age_text(seconds)));
}

std::string pretty_json(std::string_view json) {
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    if (d.HasParseError()) return std::string(json);
    rapidjson::StringBuffer sb;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
    w.SetIndent(' ', 2);
    w.SetFormatOptions(rapidjson::kFormatSingleLineArray);
    d.Accept(w);
    return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace queuerctl::web
