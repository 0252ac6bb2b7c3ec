// JSON helpers: build positional/keyed parameters from ordinary C++ values, validate JSON text.
// Job parameters, keyed parameters and results travel as JSON text (std::string) through the
// library; RapidJSON parses them where a value is needed.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace queuer {

// A JSON value already serialised as text. Construct it from ordinary values:
//   JsonValue(1), JsonValue("a"), JsonValue(true), JsonValue(nullptr), JsonValue::raw("[1,2]")
class JsonValue {
  public:
    JsonValue() : text_("null") {}
    JsonValue(std::nullptr_t) : text_("null") {}
    JsonValue(bool b) : text_(b ? "true" : "false") {}
    template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
    JsonValue(T v) : text_(std::to_string(v)) {}
    JsonValue(double v);
    JsonValue(float v) : JsonValue(static_cast<double>(v)) {}
    JsonValue(std::string_view s);
    JsonValue(const std::string& s) : JsonValue(std::string_view(s)) {}
    JsonValue(const char* s) : JsonValue(std::string_view(s)) {}
    template <class T>
    JsonValue(const std::vector<T>& items) {
        text_ = "[";
        for (size_t i = 0; i < items.size(); ++i) {
            if (i) text_ += ',';
            text_ += JsonValue(items[i]).text();
        }
        text_ += ']';
    }
    template <class T>
    JsonValue(const std::map<std::string, T>& items) {
        text_ = "{";
        bool first = true;
        for (const auto& [k, v] : items) {
            if (!first) text_ += ',';
            first = false;
            text_ += JsonValue(std::string_view(k)).text() + ":" + JsonValue(v).text();
        }
        text_ += '}';
    }

    // Takes text that is already JSON; throws Error(Invalid) when it does not parse.
    static JsonValue raw(std::string_view json);

    const std::string& text() const { return text_; }

  private:
    struct RawTag {};
    JsonValue(RawTag, std::string text) : text_(std::move(text)) {}
    std::string text_;
};

// Keyed parameters, passed as the last argument of add_job: Keyed{{"name", "x"}, {"n", 3}}.
class Keyed {
  public:
    Keyed() = default;
    Keyed(std::initializer_list<std::pair<const std::string, JsonValue>> items);
    std::string json() const;
    bool empty() const { return items_.empty(); }

  private:
    std::vector<std::pair<std::string, JsonValue>> items_;
};

namespace json {

// Serialises a string as a JSON string literal (with quotes).
std::string quote(std::string_view s);
// Throws Error(Invalid) naming `what` unless `text` is JSON whose top level is an array/object.
void require_array(std::string_view text, std::string_view what);
void require_object(std::string_view text, std::string_view what);
bool is_valid(std::string_view text);
// Canonical compact form of valid JSON text (throws Error(Invalid) naming `what` otherwise).
std::string compact(std::string_view text, std::string_view what);
// compact() of text whose top level must be an array / object (one parse; the hot path of
// add_job and add_jobs). Throws Error(Invalid) naming `what`.
std::string compact_array(std::string_view text, std::string_view what);
std::string compact_object(std::string_view text, std::string_view what);

}  // namespace json
}  // namespace queuer
