// queuerctl's human output: aligned tables, key/value blocks, optional colour.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "queuer/model.hpp"

namespace queuerctl {

struct Style {
    bool color = false;  // stdout is a terminal and NO_COLOR is unset
    std::string bold(std::string_view s) const;
    std::string dim(std::string_view s) const;
    // Colours a status word by what it means (green done, red failed, ...).
    std::string status(std::string_view s) const;
};

// Cells must be plain text; `colored` cells are padded first, then coloured.
class Table {
  public:
    explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    // Column whose cells are status words (coloured), -1 for none.
    void set_status_column(int c) { status_col_ = c; }
    void print(std::FILE* out, const Style& st) const;
    bool empty() const { return rows_.empty(); }

  private:
    std::vector<std::string> header_;
    std::vector<std::vector<std::string>> rows_;
    int status_col_ = -1;
};

using KeyValues = std::vector<std::pair<std::string, std::string>>;
void print_kv(std::FILE* out, const KeyValues& kv, const Style& st);

// "YYYY-MM-DD HH:MM:SS" (UTC), "-" for none.
std::string short_time(const queuer::TimePoint& tp);
std::string short_time(const std::optional<queuer::TimePoint>& tp);
// Newlines and tabs to spaces, other control characters dropped.
std::string one_line(std::string_view s);
// At most `n` characters (code points), then "...".
std::string cut(std::string_view s, size_t n);

KeyValues job_kv(const queuer::Job& j);
KeyValues worker_kv(const queuer::Worker& w);
Table job_table(const std::vector<queuer::Job>& jobs);
// `master_rid` marks the master's row ("master" in the Role column).
Table worker_table(const std::vector<queuer::Worker>& workers, const std::string& master_rid = {});
Table connection_table(const std::vector<queuer::Connection>& conns);

}  // namespace queuerctl
