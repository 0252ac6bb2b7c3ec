// Model types: validation and JSON in the reference's shapes.
#include "queuer/model.hpp"

#include <date/date.h>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <charconv>
#include <cmath>

#include "queuer/error.hpp"

namespace queuer {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

TimePoint now() {
    return std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now());
}

std::string format_time(TimePoint tp) {
    return date::format("%FT%TZ", tp);
}

std::string format_time_naive(TimePoint tp) {
    auto secs = std::chrono::floor<std::chrono::seconds>(tp);
    auto micros = (tp - secs).count();
    std::string s = date::format("%FT%T", secs);
    if (micros != 0) s += fmt::format(".{:06d}", micros);
    return s;
}

const char* to_string(CompatForm f) {
    return f == CompatForm::Go ? "go" : "python";
}

CompatForm parse_compat_form(std::string_view text, std::string_view what) {
    std::string t;
    for (char c : text) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (t == "python") return CompatForm::Python;
    if (t == "go") return CompatForm::Go;
    throw Error(ErrorKind::Invalid, fmt::format("{} must be python or go, not \"{}\"", what, text));
}

namespace {

[[noreturn]] void invalid(std::string msg) {
    throw Error(ErrorKind::Invalid, std::move(msg));
}

bool read_int(std::string_view s, size_t& pos, size_t digits, int& out) {
    if (pos + digits > s.size()) return false;
    int v = 0;
    for (size_t i = 0; i < digits; ++i) {
        char c = s[pos + i];
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
        v = v * 10 + (c - '0');
    }
    pos += digits;
    out = v;
    return true;
}

}  // namespace

TimePoint parse_time(std::string_view s, std::string_view what) {
    auto bad = [&]() -> TimePoint {
        invalid(
            fmt::format("{} is not a timestamp (expected RFC 3339, e.g. "
                        "2026-01-02T15:04:05Z): \"{}\"",
                        what, s));
    };
    size_t p = 0;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (!read_int(s, p, 4, y) || p >= s.size() || s[p++] != '-') return bad();
    if (!read_int(s, p, 2, mo) || p >= s.size() || s[p++] != '-') return bad();
    if (!read_int(s, p, 2, d)) return bad();
    if (p < s.size() && (s[p] == 'T' || s[p] == 't' || s[p] == ' ')) {
        ++p;
        if (!read_int(s, p, 2, h) || p >= s.size() || s[p++] != ':') return bad();
        if (!read_int(s, p, 2, mi) || p >= s.size() || s[p++] != ':') return bad();
        if (!read_int(s, p, 2, sec)) return bad();
    }
    int64_t micros = 0;
    if (p < s.size() && s[p] == '.') {
        ++p;
        int digits = 0;
        while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) {
            if (digits < 6) micros = micros * 10 + (s[p] - '0');
            ++digits;
            ++p;
        }
        if (digits == 0) return bad();
        for (int i = digits; i < 6; ++i) micros *= 10;
    }
    int offset_minutes = 0;
    if (p < s.size()) {
        if (s[p] == 'Z' || s[p] == 'z') {
            ++p;
        } else if (s[p] == '+' || s[p] == '-') {
            int sign = s[p] == '-' ? -1 : 1;
            ++p;
            int oh = 0, om = 0;
            if (!read_int(s, p, 2, oh)) return bad();
            if (p < s.size() && s[p] == ':') ++p;
            if (p < s.size() && !read_int(s, p, 2, om)) return bad();
            offset_minutes = sign * (oh * 60 + om);
        }
    }
    if (p != s.size()) return bad();
    date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(mo)},
                             date::day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return bad();
    auto tp = TimePoint(date::sys_days(ymd)) + std::chrono::hours(h) + std::chrono::minutes(mi) +
              std::chrono::seconds(sec) + std::chrono::microseconds(micros) -
              std::chrono::minutes(offset_minutes);
    return tp;
}

std::chrono::nanoseconds parse_duration(std::string_view text, std::string_view what) {
    auto bad = [&]() -> std::chrono::nanoseconds {
        invalid(
            fmt::format("{} is not a duration (expected e.g. 500ms, 3s, 5m, 2h, 30d or "
                        "seconds): \"{}\"",
                        what, text));
    };
    std::string_view s = text;
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    if (s.empty()) return bad();
    size_t num_end = 0;
    while (num_end < s.size() &&
           (std::isdigit(static_cast<unsigned char>(s[num_end])) || s[num_end] == '.'))
        ++num_end;
    if (num_end == 0) return bad();
    double value = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + num_end, value);
    if (ec != std::errc() || ptr != s.data() + num_end) return bad();
    std::string_view unit = s.substr(num_end);
    double ns_per = 1e9;
    if (unit.empty() || unit == "s")
        ns_per = 1e9;
    else if (unit == "ms")
        ns_per = 1e6;
    else if (unit == "us")
        ns_per = 1e3;
    else if (unit == "ns")
        ns_per = 1;
    else if (unit == "m" || unit == "min")
        ns_per = 60e9;
    else if (unit == "h")
        ns_per = 3600e9;
    else if (unit == "d")
        ns_per = 86400e9;
    else
        return bad();
    // Beyond ~292 years int64 nanoseconds would wrap; refuse rather than return garbage.
    double ns = value * ns_per;
    if (!std::isfinite(ns) || ns >= 9.2e18) return bad();
    return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(ns)));
}

const char* to_string(RetryBackoff b) {
    switch (b) {
        case RetryBackoff::None:
            return "none";
        case RetryBackoff::Linear:
            return "linear";
        case RetryBackoff::Exponential:
            return "exponential";
    }
    return "none";
}

// ---- OnError ----

void OnError::validate() const {
    if (timeout < 0 || !std::isfinite(timeout)) invalid("on_error.timeout cannot be negative");
    if (max_retries < 0) invalid("on_error.max_retries cannot be negative");
    if (retry_delay < 0 || !std::isfinite(retry_delay))
        invalid("on_error.retry_delay cannot be negative");
}

std::chrono::milliseconds OnError::delay_before_retry(int k) const {
    if (k < 1) k = 1;
    double d = retry_delay;
    switch (retry_backoff) {
        case RetryBackoff::None:
            break;
        case RetryBackoff::Linear:
            d = retry_delay * k;
            break;
        case RetryBackoff::Exponential:
            d = retry_delay * std::pow(2.0, std::min(k - 1, 40));
            break;
    }
    d = std::min(d, 365.0 * 86400.0);
    return std::chrono::milliseconds(static_cast<int64_t>(std::llround(d * 1000.0)));
}

namespace {

void write_on_error(Writer& w, const OnError& e) {
    w.StartObject();
    w.Key("timeout");
    w.Double(e.timeout);
    w.Key("max_retries");
    w.Int(e.max_retries);
    w.Key("retry_delay");
    w.Double(e.retry_delay);
    w.Key("retry_backoff");
    w.String(to_string(e.retry_backoff));
    w.EndObject();
}

void write_schedule(Writer& w, const Schedule& s, CompatForm form) {
    w.StartObject();
    if (form == CompatForm::Python) {
        // As queuerPy writes it: every key, null when unset; a naive start (it compares it with
        // a naive datetime.now()); the interval in float seconds (always with a fraction or an
        // exponent, so that no reader takes it for Go's integer nanoseconds).
        w.Key("start");
        if (s.start)
            w.String(format_time_naive(*s.start).c_str());
        else
            w.Null();
        w.Key("max_count");
        w.Int(s.max_count);
        w.Key("interval");
        if (s.interval.count() > 0)
            w.Double(std::chrono::duration<double>(s.interval).count());
        else
            w.Null();
        w.Key("next_interval");
        if (s.next_interval.empty())
            w.Null();
        else
            w.String(s.next_interval.c_str());
    } else {
        if (s.start) {
            w.Key("start");
            w.String(format_time(*s.start).c_str());
        }
        w.Key("max_count");
        w.Int(s.max_count);
        w.Key("interval");
        w.Int64(s.interval.count());
        if (!s.next_interval.empty()) {
            w.Key("next_interval");
            w.String(s.next_interval.c_str());
        }
    }
    w.EndObject();
}

void write_options(Writer& w, const Options& o, CompatForm form = CompatForm::Go) {
    w.StartObject();
    if (o.on_error) {
        w.Key("on_error");
        write_on_error(w, *o.on_error);
    }
    if (o.schedule) {
        w.Key("schedule");
        write_schedule(w, *o.schedule, form);
    }
    if (!o.parent_rid.empty()) {
        w.Key("parent_rid");
        w.String(o.parent_rid.c_str());
    }
    if (!o.metadata_json.empty()) {
        w.Key("metadata");
        w.RawValue(o.metadata_json.data(), o.metadata_json.size(), rapidjson::kObjectType);
    }
    w.EndObject();
}

rapidjson::Document parse(std::string_view text, std::string_view what) {
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    if (d.HasParseError()) invalid(fmt::format("{} is not valid JSON", what));
    return d;
}

double number_field(const rapidjson::Value& v, std::string_view field) {
    if (!v.IsNumber()) invalid(fmt::format("{} must be a number", field));
    return v.GetDouble();
}

int int_field(const rapidjson::Value& v, std::string_view field) {
    if (v.IsInt()) return v.GetInt();
    if (v.IsDouble() && std::floor(v.GetDouble()) == v.GetDouble() && std::abs(v.GetDouble()) < 2e9)
        return static_cast<int>(v.GetDouble());
    invalid(fmt::format("{} must be an integer", field));
}

OnError on_error_from(const rapidjson::Value& v) {
    if (!v.IsObject()) invalid("on_error must be a JSON object");
    OnError e;
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
        std::string_view key(it->name.GetString(), it->name.GetStringLength());
        if (key == "timeout") {
            e.timeout = number_field(it->value, "on_error.timeout");
        } else if (key == "max_retries") {
            e.max_retries = int_field(it->value, "on_error.max_retries");
        } else if (key == "retry_delay") {
            e.retry_delay = number_field(it->value, "on_error.retry_delay");
        } else if (key == "retry_backoff") {
            if (!it->value.IsString())
                invalid("on_error.retry_backoff must be one of: none, linear, exponential");
            std::string_view b(it->value.GetString(), it->value.GetStringLength());
            if (b == "none" || b.empty())
                e.retry_backoff = RetryBackoff::None;
            else if (b == "linear")
                e.retry_backoff = RetryBackoff::Linear;
            else if (b == "exponential")
                e.retry_backoff = RetryBackoff::Exponential;
            else
                invalid("on_error.retry_backoff must be one of: none, linear, exponential");
        } else {
            invalid(fmt::format("on_error has an unknown field \"{}\"", key));
        }
    }
    e.validate();
    return e;
}

Schedule schedule_from(const rapidjson::Value& v) {
    if (!v.IsObject()) invalid("schedule must be a JSON object");
    Schedule s;
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
        std::string_view key(it->name.GetString(), it->name.GetStringLength());
        const auto& val = it->value;
        if (key == "start") {
            if (val.IsNull()) continue;
            if (!val.IsString()) invalid("schedule.start must be an RFC 3339 timestamp string");
            s.start = parse_time(std::string_view(val.GetString(), val.GetStringLength()),
                                 "schedule.start");
        } else if (key == "max_count") {
            s.max_count = int_field(val, "schedule.max_count");
        } else if (key == "interval") {
            // Go writes integer nanoseconds, Python float seconds; strings like "5s" are ours.
            if (val.IsNull()) continue;
            if (val.IsString()) {
                s.interval = parse_duration(
                    std::string_view(val.GetString(), val.GetStringLength()), "schedule.interval");
            } else if (val.IsInt64()) {
                s.interval = std::chrono::nanoseconds(val.GetInt64());
            } else if (val.IsNumber()) {
                s.interval = std::chrono::nanoseconds(std::llround(val.GetDouble() * 1e9));
            } else {
                invalid(
                    "schedule.interval must be integer nanoseconds, seconds as a decimal "
                    "number, or a duration string like \"5s\"");
            }
        } else if (key == "next_interval") {
            if (val.IsNull()) continue;
            if (!val.IsString()) invalid("schedule.next_interval must be a string");
            s.next_interval.assign(val.GetString(), val.GetStringLength());
        } else {
            invalid(fmt::format("schedule has an unknown field \"{}\"", key));
        }
    }
    s.validate();
    return s;
}

Options options_from(const rapidjson::Value& v) {
    Options o;
    if (v.IsNull()) return o;
    if (!v.IsObject()) invalid("options must be a JSON object");
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
        std::string_view key(it->name.GetString(), it->name.GetStringLength());
        const auto& val = it->value;
        if (key == "on_error") {
            if (!val.IsNull()) o.on_error = on_error_from(val);
        } else if (key == "schedule") {
            if (!val.IsNull()) o.schedule = schedule_from(val);
        } else if (key == "parent_rid") {
            if (val.IsNull()) continue;
            if (!val.IsString()) invalid("options.parent_rid must be a UUID string");
            o.parent_rid.assign(val.GetString(), val.GetStringLength());
        } else if (key == "metadata") {
            if (val.IsNull()) continue;
            if (!val.IsObject()) invalid("options.metadata must be a JSON object");
            rapidjson::StringBuffer sb;
            Writer w(sb);
            val.Accept(w);
            o.metadata_json = sb.GetString();
        } else {
            invalid(fmt::format("options has an unknown field \"{}\"", key));
        }
    }
    return o;
}

void write_time_or_null(Writer& w, const std::optional<TimePoint>& tp) {
    if (tp)
        w.String(format_time(*tp).c_str());
    else
        w.Null();
}

void write_raw(Writer& w, const std::string& json, rapidjson::Type type) {
    if (json.empty())
        w.Null();
    else
        w.RawValue(json.data(), json.size(), type);
}

std::string finish(rapidjson::StringBuffer& sb) {
    return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

std::string OnError::to_json() const {
    rapidjson::StringBuffer sb;
    Writer w(sb);
    write_on_error(w, *this);
    return finish(sb);
}

OnError OnError::from_json(std::string_view text) {
    return on_error_from(parse(text, "on_error"));
}

// ---- Schedule ----

void Schedule::validate() const {
    if (max_count < 0) invalid("schedule.max_count cannot be negative");
    if (interval.count() < 0) invalid("schedule.interval cannot be negative");
    if (max_count != 1 && interval.count() <= 0 && next_interval.empty())
        invalid(
            "schedule needs a positive interval or a next_interval when max_count is 0 "
            "(forever) or greater than 1");
    if (next_interval.size() > 100) invalid("schedule.next_interval is longer than 100 characters");
}

std::string Schedule::to_json() const {
    return to_json(CompatForm::Go);
}

std::string Schedule::to_json(CompatForm form) const {
    rapidjson::StringBuffer sb;
    Writer w(sb);
    write_schedule(w, *this, form);
    return finish(sb);
}

Schedule Schedule::from_json(std::string_view text) {
    return schedule_from(parse(text, "schedule"));
}

// ---- Options ----

void Options::validate() const {
    if (on_error) on_error->validate();
    if (schedule) schedule->validate();
    if (!parent_rid.empty()) validate_rid(parent_rid, "options.parent_rid");
    // Written into the options JSON verbatim, so it must be an object.
    if (!metadata_json.empty()) json::require_object(metadata_json, "options.metadata");
}

std::string Options::to_json() const {
    return to_json(CompatForm::Go);
}

std::string Options::to_json(CompatForm form) const {
    rapidjson::StringBuffer sb;
    Writer w(sb);
    write_options(w, *this, form);
    return finish(sb);
}

Options Options::from_json(std::string_view text) {
    if (text.empty()) return {};
    return options_from(parse(text, "options"));
}

// ---- Job ----

std::string Job::to_json() const {
    auto sealed = [&](const char* col) {
        for (const auto& u : unreadable)
            if (u == col) return true;
        return false;
    };
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("id");
    w.Int64(id);
    w.Key("rid");
    w.String(rid.c_str());
    w.Key("worker_id");
    w.Int64(worker_id);
    w.Key("worker_rid");
    if (worker_rid.empty())
        w.Null();
    else
        w.String(worker_rid.c_str());
    w.Key("options");
    if (options.empty() && !options_json.empty() && options_json != "{}" &&
        options_json != "null" && json::is_valid(options_json))
        // Stored in a shape this build does not read: shown as stored rather than as {}.
        w.RawValue(options_json.data(), options_json.size(), rapidjson::kObjectType);
    else
        write_options(w, options);
    w.Key("task_name");
    w.String(task_name.c_str());
    w.Key("parameters");
    write_raw(w, sealed("parameters") ? std::string() : parameters, rapidjson::kArrayType);
    w.Key("parameters_keyed");
    write_raw(w, sealed("parameters_keyed") ? std::string() : parameters_keyed,
              rapidjson::kObjectType);
    w.Key("status");
    w.String(status.c_str());
    w.Key("scheduled_at");
    write_time_or_null(w, scheduled_at);
    w.Key("started_at");
    write_time_or_null(w, started_at);
    w.Key("schedule_count");
    w.Int(schedule_count);
    w.Key("attempts");
    w.Int(attempts);
    w.Key("results");
    write_raw(w, sealed("results") ? std::string() : results, rapidjson::kArrayType);
    w.Key("error");
    w.String(error.c_str());
    w.Key("created_at");
    w.String(format_time(created_at).c_str());
    w.Key("updated_at");
    w.String(format_time(updated_at).c_str());
    if (!unreadable.empty()) {
        // The per-row marker: the status and everything else are as stored; these columns
        // could not be decrypted here and are null above.
        w.Key("unreadable");
        w.StartObject();
        w.Key("columns");
        w.StartArray();
        for (const auto& u : unreadable) w.String(u.c_str());
        w.EndArray();
        w.Key("encrypted_by");
        w.String(sealed_by.c_str());
        w.Key("reason");
        w.String(unreadable_reason.c_str());
        w.EndObject();
    }
    w.EndObject();
    return finish(sb);
}

BatchJob BatchJob::from_json(std::string_view text) {
    auto d = parse(text, "batch job");
    if (!d.IsObject()) invalid("a batch job must be a JSON object");
    BatchJob b;
    for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
        std::string_view key(it->name.GetString(), it->name.GetStringLength());
        const auto& val = it->value;
        auto dump = [&] {
            rapidjson::StringBuffer sb;
            Writer w(sb);
            val.Accept(w);
            return finish(sb);
        };
        if (key == "task" || key == "task_name") {
            if (!val.IsString()) invalid("batch job field \"task\" must be a string");
            b.task.assign(val.GetString(), val.GetStringLength());
        } else if (key == "parameters") {
            if (val.IsNull()) continue;
            if (!val.IsArray()) invalid("batch job field \"parameters\" must be a JSON array");
            b.parameters = dump();
        } else if (key == "parameters_keyed") {
            if (val.IsNull()) continue;
            if (!val.IsObject())
                invalid("batch job field \"parameters_keyed\" must be a JSON object");
            b.parameters_keyed = dump();
        } else if (key == "options") {
            b.options = options_from(val);
        } else {
            invalid(fmt::format("batch job has an unknown field \"{}\"", key));
        }
    }
    if (b.task.empty()) invalid("batch job needs a \"task\"");
    return b;
}

// ---- Worker ----

std::string Worker::to_json() const {
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("id");
    w.Int64(id);
    w.Key("rid");
    w.String(rid.c_str());
    w.Key("name");
    w.String(name.c_str());
    if (options) {
        w.Key("options");
        write_on_error(w, *options);
    }
    w.Key("max_concurrency");
    w.Int(max_concurrency);
    w.Key("current_concurrency");
    w.Int(current_concurrency);
    w.Key("available_tasks");
    w.StartArray();
    for (const auto& t : available_tasks) w.String(t.c_str());
    w.EndArray();
    w.Key("available_next_interval");
    w.StartArray();
    for (const auto& t : available_next_interval) w.String(t.c_str());
    w.EndArray();
    w.Key("status");
    w.String(status.c_str());
    w.Key("created_at");
    w.String(format_time(created_at).c_str());
    w.Key("updated_at");
    w.String(format_time(updated_at).c_str());
    if (!host.empty() || pid != 0) {
        w.Key("host");
        w.String(host.c_str());
        w.Key("pid");
        w.Int64(pid);
    }
    if (!queuerd_version.empty()) {
        w.Key("queuerd_version");
        w.String(queuerd_version.c_str());
    }
    if (!http.empty()) {
        w.Key("http");
        w.String(http.c_str());
    }
    w.EndObject();
    return finish(sb);
}

// ---- Master ----

std::string MasterSettings::to_json() const {
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    auto put = [&](const char* k, std::chrono::nanoseconds v) {
        w.Key(k);
        w.Int64(v.count());
    };
    put("master_lock_timeout", master_lock_timeout);
    put("master_poll_interval", master_poll_interval);
    put("retention_archive", retention_archive);
    put("worker_stale_threshold", worker_stale_threshold);
    put("worker_delete_threshold", worker_delete_threshold);
    put("job_stale_threshold", job_stale_threshold);
    w.EndObject();
    return finish(sb);
}

MasterSettings MasterSettings::from_json(std::string_view text) {
    MasterSettings s;
    if (text.empty()) return s;
    auto d = parse(text, "master.settings");
    if (!d.IsObject()) return s;
    if (d.HasMember("lock_timeout_minutes")) {
        // A Python master's shape: retention_archive in days, master_poll_interval in seconds,
        // lock_timeout_minutes; its other thresholds are fixed (2 minutes stale) or absent.
        auto get_in = [&](const char* k, double unit_ns, std::chrono::nanoseconds& out) {
            auto it = d.FindMember(k);
            if (it != d.MemberEnd() && it->value.IsNumber() && it->value.GetDouble() > 0 &&
                it->value.GetDouble() * unit_ns < 9.2e18)
                out = std::chrono::nanoseconds(
                    static_cast<int64_t>(std::llround(it->value.GetDouble() * unit_ns)));
        };
        get_in("lock_timeout_minutes", 60e9, s.master_lock_timeout);
        get_in("master_poll_interval", 1e9, s.master_poll_interval);
        get_in("retention_archive", 86400e9, s.retention_archive);
        s.worker_stale_threshold = std::chrono::minutes(2);
        return s;
    }
    auto get = [&](const char* k, std::chrono::nanoseconds& out) {
        auto it = d.FindMember(k);
        if (it != d.MemberEnd() && it->value.IsNumber() && it->value.GetDouble() > 0)
            out = std::chrono::nanoseconds(static_cast<int64_t>(it->value.GetDouble()));
    };
    get("master_lock_timeout", s.master_lock_timeout);
    get("master_poll_interval", s.master_poll_interval);
    get("retention_archive", s.retention_archive);
    get("worker_stale_threshold", s.worker_stale_threshold);
    get("worker_delete_threshold", s.worker_delete_threshold);
    get("job_stale_threshold", s.job_stale_threshold);
    return s;
}

std::string Master::to_json() const {
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("id");
    w.Int(id);
    w.Key("settings");
    std::string st = settings.to_json();
    w.RawValue(st.data(), st.size(), rapidjson::kObjectType);
    w.Key("worker_id");
    w.Int64(worker_id);
    w.Key("worker_rid");
    if (worker_rid.empty())
        w.Null();
    else
        w.String(worker_rid.c_str());
    w.Key("created_at");
    w.String(format_time(created_at).c_str());
    w.Key("updated_at");
    w.String(format_time(updated_at).c_str());
    w.EndObject();
    return finish(sb);
}

std::string Connection::to_json() const {
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("pid");
    w.Int(pid);
    w.Key("database");
    w.String(database.c_str());
    w.Key("username");
    w.String(username.c_str());
    w.Key("application_name");
    w.String(application_name.c_str());
    w.Key("query");
    w.String(query.c_str());
    w.Key("state");
    w.String(state.c_str());
    w.Key("since");
    write_time_or_null(w, since);
    w.EndObject();
    return finish(sb);
}

void validate_task_name(std::string_view name, std::string_view what) {
    if (name.empty()) invalid(fmt::format("{} must not be empty", what));
    if (name.size() > 100)
        invalid(fmt::format("{} is longer than 100 characters ({})", what, name.size()));
}

void validate_rid(std::string_view rid, std::string_view what) {
    static constexpr int groups[] = {8, 4, 4, 4, 12};
    size_t p = 0;
    bool ok = rid.size() == 36;
    for (int g = 0; ok && g < 5; ++g) {
        for (int i = 0; i < groups[g]; ++i, ++p)
            if (!std::isxdigit(static_cast<unsigned char>(rid[p]))) ok = false;
        if (g < 4 && ok) ok = rid[p++] == '-';
    }
    if (!ok) invalid(fmt::format("{} is not a UUID: \"{}\"", what, rid));
}

}  // namespace queuer
