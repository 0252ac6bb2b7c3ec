// The reference's data model: Job, Worker, Master, Options, OnError, Schedule, BatchJob, with
// JSON in the reference's shapes (see docs/compatibility.md) and the reference's validation.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "queuer/json.hpp"

namespace queuer {

using TimePoint = std::chrono::sys_time<std::chrono::microseconds>;
using Seconds = std::chrono::duration<double>;

TimePoint now();
// RFC 3339 in UTC with microseconds: 2026-11-25T06:00:00.123456Z
std::string format_time(TimePoint tp);
// ISO 8601 in UTC without an offset, as Python's datetime.isoformat() writes a naive time:
// 2026-11-25T06:00:00.123456, or 2026-11-25T06:00:00 when the microseconds are zero.
std::string format_time_naive(TimePoint tp);
// Accepts RFC 3339 (with Z or an offset, optional fraction) and PostgreSQL's
// "YYYY-MM-DD HH:MM:SS[.ffffff]" (taken as UTC). Throws Error(Invalid) naming `what`.
TimePoint parse_time(std::string_view text, std::string_view what);
// "500ms", "3s", "5m", "2h", "30d", or a plain number of seconds. Throws Error(Invalid).
std::chrono::nanoseconds parse_duration(std::string_view text, std::string_view what);

namespace status {
inline constexpr std::string_view queued = "QUEUED";
inline constexpr std::string_view scheduled = "SCHEDULED";
inline constexpr std::string_view running = "RUNNING";
inline constexpr std::string_view succeeded = "SUCCEEDED";
inline constexpr std::string_view failed = "FAILED";
inline constexpr std::string_view cancelled = "CANCELLED";
}  // namespace status

namespace worker_status {
inline constexpr std::string_view ready = "READY";
inline constexpr std::string_view running = "RUNNING";
inline constexpr std::string_view stopping = "STOPPING";
inline constexpr std::string_view stopped = "STOPPED";
inline constexpr std::string_view failed = "FAILED";
}  // namespace worker_status

// The form in which durations and times are written into a job's `options` for the clients that
// share the database (a per-database setting, see schema.hpp; docs/compatibility.md):
// - Python (queuerPy, the default): schedule.interval as float seconds (3600.0),
//   schedule.start as a naive ISO 8601 time in UTC (2026-11-25T06:00:00.5);
// - Go (queuer): schedule.interval as integer nanoseconds, schedule.start as RFC 3339 with an
//   offset (2026-11-25T06:00:00.500000Z).
// on_error is the same in both (timeout and retry_delay as seconds). Readers accept every form.
enum class CompatForm { Python, Go };
const char* to_string(CompatForm f);
// "python" or "go" (case-insensitive); throws Error(Invalid) naming `what` otherwise.
CompatForm parse_compat_form(std::string_view text, std::string_view what = "compat");

enum class RetryBackoff { None, Linear, Exponential };
const char* to_string(RetryBackoff b);

struct OnError {
    double timeout = 0;  // seconds per attempt; 0 = none
    int max_retries = 0;
    double retry_delay = 0;  // seconds
    RetryBackoff retry_backoff = RetryBackoff::None;

    void validate() const;  // throws Error(Invalid) naming the field
    // Delay before retry k (k = 1 for the first retry): none d, linear d*k, exponential d*2^(k-1).
    std::chrono::milliseconds delay_before_retry(int k) const;
    std::string to_json() const;
    static OnError from_json(std::string_view text);
    bool operator==(const OnError&) const = default;
};

struct Schedule {
    std::optional<TimePoint> start;  // absent: now at add time
    int max_count = 1;               // total runs; 0 = forever (a deliberate change, see docs)
    std::chrono::nanoseconds interval{0};
    std::string next_interval;  // name of a registered next-interval function

    void validate() const;
    std::string to_json() const;  // the Go form (API output)
    std::string to_json(CompatForm form) const;
    static Schedule from_json(std::string_view text);
};

struct Options {
    std::optional<OnError> on_error;
    std::optional<Schedule> schedule;
    std::string parent_rid;     // rid of the job that added this one; empty = none
    std::string metadata_json;  // free object, stored verbatim; empty = none

    bool empty() const {
        return !on_error && !schedule && parent_rid.empty() && metadata_json.empty();
    }
    void validate() const;
    std::string to_json() const;  // the Go form: API output (Job::to_json, queuerctl)
    // What is written into the database, in its form (Client::compat_form()).
    std::string to_json(CompatForm form) const;
    static Options from_json(std::string_view text);  // accepts "null" / "" as empty
};

struct Job {
    int64_t id = 0;
    std::string rid;
    int64_t worker_id = 0;
    std::string worker_rid;  // empty = never claimed
    Options options;
    std::string task_name;
    std::string parameters = "[]";        // JSON array text
    std::string parameters_keyed = "{}";  // JSON object text
    std::string status;
    std::optional<TimePoint> scheduled_at;
    std::optional<TimePoint> started_at;
    int schedule_count = 0;
    int attempts = 0;
    std::string results = "[]";  // JSON text
    std::string error;
    TimePoint created_at{};
    TimePoint updated_at{};

    // The options column exactly as stored (JSON text; empty for SQL NULL): a retry copies it
    // verbatim, in the form its writer chose.
    std::string options_json;
    // Columns that could not be decrypted ("parameters", "parameters_keyed", "results"): sealed
    // by another client (the Go/Python clients' pgcrypto) or by queuerd with another key or
    // without a key here. Their values are left empty and shown as null; empty when every
    // column was readable. See Job::to_json ("unreadable").
    std::vector<std::string> unreadable;
    std::string sealed_by;          // "pgcrypto" or "queuerd" when `unreadable` is not empty
    std::string unreadable_reason;  // one line for people: why, and what would help
    bool readable() const { return unreadable.empty(); }

    std::string to_json() const;
};

struct BatchJob {
    std::string task;
    std::string parameters = "[]";
    std::string parameters_keyed = "{}";
    std::optional<Options> options;

    // One line of `queuerctl add jobs --file`: {"task", "parameters", "parameters_keyed",
    // "options"}
    static BatchJob from_json(std::string_view text);
};

struct Worker {
    int64_t id = 0;
    std::string rid;
    std::string name;
    std::optional<OnError> options;
    std::vector<std::string> available_tasks;
    std::vector<std::string> available_next_interval;
    int current_concurrency = 0;
    int max_concurrency = 1;
    std::string status;
    TimePoint created_at{};
    TimePoint updated_at{};
    // What queuerd records about itself under options.queuerd (empty/0 for other clients'
    // workers): the host it runs on, its pid, its version, its HTTP address ("" = off).
    std::string host;
    int64_t pid = 0;
    std::string queuerd_version;
    std::string http;

    std::string to_json() const;
};

// master.settings, the Go reference's shape: every duration an integer of nanoseconds.
struct MasterSettings {
    std::chrono::nanoseconds master_lock_timeout = std::chrono::minutes(5);
    std::chrono::nanoseconds master_poll_interval = std::chrono::minutes(1);
    std::chrono::nanoseconds retention_archive = std::chrono::hours(24 * 7);
    std::chrono::nanoseconds worker_stale_threshold = std::chrono::minutes(5);
    std::chrono::nanoseconds worker_delete_threshold = std::chrono::hours(24);
    std::chrono::nanoseconds job_stale_threshold = std::chrono::hours(1);

    std::string to_json() const;
    // Zero or missing fields -> defaults. Also reads a Python master's shape
    // ({"retention_archive": days, "master_poll_interval": seconds, "lock_timeout_minutes"}).
    static MasterSettings from_json(std::string_view text);
};

struct Master {
    int id = 1;
    int64_t worker_id = 0;
    std::string worker_rid;
    MasterSettings settings;
    TimePoint created_at{};
    TimePoint updated_at{};
    std::string to_json() const;
};

struct Connection {
    int pid = 0;
    std::string database, username, application_name, query, state;
    std::optional<TimePoint> since;
    std::string to_json() const;
};

// Task names are 1..100 characters (the reference's VARCHAR(100)).
void validate_task_name(std::string_view name, std::string_view what = "task name");
// Throws Error(Invalid) unless `rid` is a UUID in canonical text form.
void validate_rid(std::string_view rid, std::string_view what = "rid");

}  // namespace queuer
