#include "output.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace queuerctl {

namespace {

std::string wrap(bool on, const char* code, std::string_view s) {
    if (!on) return std::string(s);
    return fmt::format("\033[{}m{}\033[0m", code, s);
}

// Display width: code points (UTF-8 continuation bytes do not count).
size_t width(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++n;
    return n;
}

std::string pad(std::string_view s, size_t w) {
    std::string out(s);
    size_t have = width(s);
    if (have < w) out.append(w - have, ' ');
    return out;
}

}  // namespace

std::string Style::bold(std::string_view s) const {
    return wrap(color, "1", s);
}
std::string Style::dim(std::string_view s) const {
    return wrap(color, "2", s);
}

std::string Style::status(std::string_view s) const {
    if (!color) return std::string(s);
    std::string_view t = s;
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    const char* code = nullptr;
    if (t == "SUCCEEDED" || t == "READY")
        code = "32";
    else if (t == "FAILED")
        code = "31";
    else if (t == "CANCELLED" || t == "STOPPING")
        code = "33";
    else if (t == "RUNNING")
        code = "36";
    else if (t == "SCHEDULED")
        code = "35";
    else if (t == "STOPPED")
        code = "2";
    if (!code) return std::string(s);
    return wrap(true, code, t) + std::string(s.substr(t.size()));
}

void Table::print(std::FILE* out, const Style& st) const {
    std::vector<size_t> w(header_.size(), 0);
    for (size_t c = 0; c < header_.size(); ++c) w[c] = width(header_[c]);
    for (const auto& r : rows_)
        for (size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], width(r[c]));
    auto line = [&](const std::vector<std::string>& cells, bool head) {
        std::string s;
        for (size_t c = 0; c < w.size(); ++c) {
            std::string cell = c < cells.size() ? cells[c] : "";
            bool last = c + 1 == w.size();
            std::string padded = last ? cell : pad(cell, w[c]);
            if (head)
                padded = st.bold(padded);
            else if (static_cast<int>(c) == status_col_)
                padded = st.status(padded);
            s += padded;
            if (!last) s += "  ";
        }
        while (!s.empty() && s.back() == ' ') s.pop_back();
        s += '\n';
        std::fputs(s.c_str(), out);
    };
    line(header_, true);
    for (const auto& r : rows_) line(r, false);
}

void print_kv(std::FILE* out, const KeyValues& kv, const Style& st) {
    size_t w = 0;
    for (const auto& [k, v] : kv) w = std::max(w, width(k) + 1);
    for (const auto& [k, v] : kv) {
        std::string key = pad(k + ":", w);
        std::string value = (k == "Status") ? st.status(v) : v;
        std::fputs(fmt::format("{}  {}\n", st.bold(key), value).c_str(), out);
    }
}

std::string short_time(const queuer::TimePoint& tp) {
    if (tp == queuer::TimePoint{}) return "-";
    std::string s = queuer::format_time(tp);  // 2026-11-25T06:00:00.123456Z
    if (s.size() >= 19) {
        s.resize(19);
        s[10] = ' ';
    }
    return s;
}

std::string short_time(const std::optional<queuer::TimePoint>& tp) {
    return tp ? short_time(*tp) : "-";
}

std::string one_line(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == '\n' || c == '\r')
            out += ' ';
        else if (c == '\t')
            continue;
        else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            continue;
        else
            out += c;
    }
    return out;
}

std::string cut(std::string_view s, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
            if (count == n) return std::string(s.substr(0, i)) + "...";
            ++count;
        }
    }
    return std::string(s);
}

namespace {
std::string or_dash(std::string_view s) {
    return s.empty() ? "-" : one_line(s);
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? "-" : one_line(s);
}
}  // namespace

KeyValues job_kv(const queuer::Job& j) {
    auto sealed = [&](const char* col) {
        for (const auto& u : j.unreadable)
            if (u == col) return true;
        return false;
    };
    auto shown = [&](const char* col, const std::string& v) {
        if (sealed(col)) return "(encrypted by " + j.sealed_by + ", unreadable here)";
        return one_line(v);
    };
    KeyValues kv = {
        {"ID", std::to_string(j.id)},
        {"RID", j.rid},
        {"Task name", one_line(j.task_name)},
        {"Status", j.status},
        {"Parameters", shown("parameters", j.parameters)},
        {"Keyed parameters", shown("parameters_keyed", j.parameters_keyed)},
    };
    if (!j.options.empty()) kv.emplace_back("Options", one_line(j.options.to_json()));
    kv.emplace_back("Attempts", std::to_string(j.attempts));
    if (j.schedule_count) kv.emplace_back("Schedule count", std::to_string(j.schedule_count));
    if (j.scheduled_at) kv.emplace_back("Scheduled at", short_time(j.scheduled_at));
    if (j.started_at) kv.emplace_back("Started at", short_time(j.started_at));
    kv.emplace_back("Created", short_time(j.created_at));
    kv.emplace_back("Last update", short_time(j.updated_at));
    kv.emplace_back("Worker RID", or_dash(j.worker_rid));
    if (j.results != "[]" && !j.results.empty())
        kv.emplace_back("Results", one_line(j.results));
    else if (sealed("results"))
        kv.emplace_back("Results", shown("results", j.results));
    kv.emplace_back("Error", or_dash(j.error));
    if (!j.readable()) kv.emplace_back("Unreadable", one_line(j.unreadable_reason));
    return kv;
}

KeyValues worker_kv(const queuer::Worker& w) {
    KeyValues kv = {
        {"ID", std::to_string(w.id)},
        {"RID", w.rid},
        {"Name", one_line(w.name)},
        {"Status", w.status},
        {"Concurrency", fmt::format("{}/{}", w.current_concurrency, w.max_concurrency)},
        {"Tasks", join(w.available_tasks)},
        {"Next-interval functions", join(w.available_next_interval)},
    };
    if (w.options) kv.emplace_back("On error", w.options->to_json());
    if (!w.host.empty()) kv.emplace_back("Host", one_line(w.host));
    if (w.pid) kv.emplace_back("PID", std::to_string(w.pid));
    if (!w.queuerd_version.empty()) kv.emplace_back("queuerd version", one_line(w.queuerd_version));
    if (!w.http.empty()) kv.emplace_back("HTTP", one_line(w.http));
    kv.emplace_back("Created", short_time(w.created_at));
    kv.emplace_back("Last update", short_time(w.updated_at));
    return kv;
}

Table job_table(const std::vector<queuer::Job>& jobs) {
    Table t({"ID", "RID", "Task name", "Status", "Attempts", "Last update", "Worker RID"});
    t.set_status_column(3);
    for (const auto& j : jobs)
        t.add({std::to_string(j.id), j.rid, cut(one_line(j.task_name), 40), j.status,
               std::to_string(j.attempts), short_time(j.updated_at), or_dash(j.worker_rid)});
    return t;
}

Table worker_table(const std::vector<queuer::Worker>& workers, const std::string& master_rid) {
    Table t({"ID", "RID", "Name", "Status", "Role", "Concurrency", "Host", "PID", "Last update"});
    t.set_status_column(3);
    for (const auto& w : workers)
        t.add({std::to_string(w.id), w.rid, cut(one_line(w.name), 40), w.status,
               !master_rid.empty() && w.rid == master_rid ? "master" : "-",
               fmt::format("{}/{}", w.current_concurrency, w.max_concurrency),
               w.host.empty() ? "-" : cut(one_line(w.host), 30),
               w.pid ? std::to_string(w.pid) : "-", short_time(w.updated_at)});
    return t;
}

Table connection_table(const std::vector<queuer::Connection>& conns) {
    Table t({"PID", "Appname", "Username", "Database", "State", "Query"});
    for (const auto& c : conns)
        t.add({std::to_string(c.pid), or_dash(c.application_name), or_dash(c.username),
               or_dash(c.database), or_dash(c.state), cut(one_line(c.query), 50)});
    return t;
}

}  // namespace queuerctl
