// Day-two queries for operators: the state of a queue at a glance (status), counts per task and
// status with the age of the oldest job (stats), and bulk retry / cancel / delete with filters.
// queuerctl prints them; queuerd's queue-depth gauge and the web console call the same code.
//
// Every bulk action is ONE statement (never one per job). Counts over the archive are always
// bounded by a time window (index on job_archive.updated_at) or by the filters given; nothing
// here counts the whole archive unless asked to with no filter at all.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "queuer/client.hpp"
#include "queuer/db.hpp"
#include "queuer/model.hpp"

namespace queuer {
class Cipher;
}

namespace queuer::admin {

using queuer::TimeBound;
// "1h", "30m", "90s", "2d" (ago) or an RFC 3339 time. Throws Error(Invalid) naming `what`.
TimeBound parse_time_bound(std::string_view text, std::string_view what);

// Which jobs a bulk action or a listing applies to. Live jobs (table job) are matched on
// created_at; ended jobs (job_archive) on updated_at, the time they ended.
struct Filter {
    std::string task;                   // exact task name; empty = any
    std::vector<std::string> statuses;  // empty = the action's default
    TimeBound since;                    // inclusive
    TimeBound until;                    // exclusive
    std::string error;                  // case-insensitive substring of the error text
    std::string rid;                    // exactly this job (a UUID); empty = any
    // Case-insensitive substring of the parameters, the keyed parameters or the error text
    // (plaintext columns only: sealed values are not searched).
    std::string search;
    bool empty() const {
        return task.empty() && statuses.empty() && !since.set() && !until.set() && error.empty() &&
               rid.empty() && search.empty();
    }
};

struct MasterInfo {
    std::string worker_rid;   // empty: no master
    std::string worker_name;  // empty when the worker row is gone
    double renewed_seconds_ago = 0;
    bool expired = false;  // not renewed within master_lock_timeout
    MasterSettings settings;
};
// The master row with its worker's name (one statement); worker_rid empty when none holds it.
MasterInfo master_info(db::Connection& c);

struct Status {
    std::string schema;
    int schema_version = 0;    // installed
    int expected_version = 0;  // this build's
    MasterInfo master;
    std::map<std::string, int64_t> workers_by_status;
    std::vector<Worker> live_workers;         // not STOPPED, newest first, at most 100
    std::map<std::string, int64_t> jobs;      // live: QUEUED, SCHEDULED, RUNNING
    double oldest_waiting_seconds = 0;        // the oldest due QUEUED/SCHEDULED job
    std::map<std::string, int64_t> ended_1h;  // SUCCEEDED, FAILED, CANCELLED in the last hour
    std::string to_json() const;
};

struct LiveStat {
    std::string task_name, status;
    int64_t count = 0;
    // QUEUED/SCHEDULED: how long the oldest has been due (0 when none is due yet);
    // RUNNING: how long the longest-running one has run.
    double oldest_age_s = 0;
};
struct EndedStat {
    std::string task_name, status;
    int64_t count = 0;
};
struct Stats {
    std::vector<LiveStat> live;
    std::vector<EndedStat> ended;
    int64_t since_s = 0;
    // {"live":[{"task_name","status","count","oldest_age_s"}],"ended":[...],"since_s":N}
    std::string to_json() const;
};

// Whether the schema exists and has the queuer tables; empty when fine, else the reason (for
// "exit 2 naming it"). Reads pg_namespace / to_regclass only.
std::string check_schema(db::Connection& c);

Status status(db::Connection& c);
std::vector<LiveStat> live_stats(db::Connection& c);
Stats stats(db::Connection& c, std::chrono::seconds since);

// Live workers (heartbeat within the master's worker_stale_threshold, status READY or RUNNING)
// that offer `task`.
bool task_offered(db::Connection& c, std::string_view task);

// Bulk actions; `dry_run` counts what would change and changes nothing. Return the count.
// retry: archived jobs matching (default statuses FAILED) are queued again as new jobs (QUEUED,
//   now, same task, parameters and options). cancel: live jobs matching (default statuses
//   QUEUED, SCHEDULED, RUNNING) end CANCELLED; running tasks are told. delete: archived jobs
//   matching are deleted; an empty filter is refused (Error(Invalid)) unless `all`.
// retry: `new_rids`, when given, receives the new jobs' rids.
int64_t retry_jobs(db::Connection& c, const Filter& f, bool dry_run,
                   std::vector<std::string>* new_rids = nullptr);
int64_t cancel_jobs(db::Connection& c, const Filter& f, bool dry_run);
int64_t delete_jobs(db::Connection& c, const Filter& f, bool dry_run, bool all = false);

// ---- the web console's reads (queuerctl web) ----

// One line of a job list: no parameters or results, the error text cut to 300 characters.
struct JobRow {
    int64_t id = 0;
    std::string rid, task_name, status, worker_rid;
    TimePoint created_at{}, updated_at{};
    std::optional<TimePoint> scheduled_at, started_at;
    int attempts = 0;
    std::string error;
    bool sealed = false;  // the parameters are encrypted
};
struct JobPage {
    std::vector<JobRow> rows;
    bool more = false;  // older rows match too (ask again with before_id = rows.back().id)
};
// Live (archive = false: table job, matched on created_at) or ended jobs (job_archive, matched
// on updated_at), newest first by id, ids below `before_id` (0 = from the newest), at most
// `limit` (1..1000). One statement: it walks the primary key backwards and stops after
// limit + 1 matches (a time window lets the planner use job_archive's updated_at index).
// Statuses must belong to the table (Error(Invalid) otherwise); empty = any.
JobPage list_jobs(db::Connection& c, bool archive, const Filter& f, int64_t before_id, int limit);

// Everything about one job, live or archived, for the console's detail page.
struct JobDetail {
    // parameters, parameters_keyed and results are JSON text; a sealed value that could not be
    // opened is left empty (its flag says so).
    Job job;
    bool archived = false;
    std::string options_json;  // as stored
    bool parameters_sealed = false, keyed_sealed = false, results_sealed = false;
    // Sealed values were opened with the key given; when they could not be, why (no key, or a
    // key that does not open them). The sealed bytes never leave this function.
    bool opened = false;
    std::string seal_problem;
    std::string parent_rid;        // options.parent_rid; empty = none
    std::optional<JobRow> parent;  // that job, when it still exists (live or archived)
    std::vector<JobRow> children;  // jobs whose options.parent_rid is this job, oldest first
    bool more_children = false;    // more than 100
    // For a FAILED or CANCELLED job: children added after this time (its end + 10 minutes: a
    // task that ran on after a timeout or a cancel) were not looked for.
    std::optional<TimePoint> children_until;
    std::string queried_at;  // the database's clock when read
};
// nullopt when no job has that rid. `cipher` may be null (sealed values stay sealed). Children
// are looked up after the parent's id (a child is always added after its parent) and, in the
// archive, ended after the parent was created; for an archived parent, below the id of a job
// created after the parent ended (see children_until), so that the scan is bounded.
std::optional<JobDetail> job_detail(db::Connection& c, std::string_view rid, const Cipher* cipher);

// Ended jobs per minute (of updated_at), task and status, from the start of the minute that
// began `lookback` ago up to now: one statement through job_archive's updated_at index. A
// caller that keeps the minutes it has (the web console) asks again for the last few only.
struct MinuteCount {
    TimePoint minute{};  // start of the minute
    std::string task_name, status;
    int64_t count = 0;
};
struct EndedMinutes {
    TimePoint now{};   // the database's clock
    TimePoint from{};  // the first minute asked for: counts from here on are complete
    std::vector<MinuteCount> rows;
};
EndedMinutes ended_per_minute(db::Connection& c, std::chrono::seconds lookback);

// Ended jobs over the last `minutes` whole minutes (the current one included): per task and
// status, and per minute and status.
struct Activity {
    std::vector<EndedStat> ended;  // per task and status, over the whole window
    int minutes = 0;
    TimePoint first_minute{};  // start of the oldest minute (database clock)
    TimePoint now{};           // the database's clock
    // Per minute, oldest first: {SUCCEEDED, FAILED, CANCELLED}.
    std::vector<std::array<int64_t, 3>> per_minute;
};
// The window of `minutes` minutes ending with the one holding `now`, from per-minute counts
// (rows outside it are ignored).
Activity summarize_activity(const std::vector<MinuteCount>& rows, TimePoint now, int minutes);
// ended_per_minute over the window, summarized.
Activity activity(db::Connection& c, int minutes);

// The newest `limit` live jobs (primary key, backwards).
std::vector<JobRow> newest_jobs(db::Connection& c, int limit);

struct WorkerRow {
    Worker worker;
    int64_t running_jobs = 0;  // jobs RUNNING with this worker's id
    double heartbeat_age_s = 0;
    bool stale = false;  // READY/RUNNING/STOPPING without a heartbeat within the stale threshold
};
// Workers in one statement: every active one (READY, RUNNING, STOPPING; at most 1000), newest
// first, then the newest `ended_limit` STOPPED or FAILED ones.
std::vector<WorkerRow> list_workers(db::Connection& c, int ended_limit);

// What queuerd records about itself in its worker row, under options.queuerd (a key the Go and
// Python clients do not read): host, pid, version and the HTTP address (empty = off).
struct WorkerAnnotation {
    std::string host;
    int64_t pid = 0;
    std::string version;
    std::string http;
};
void annotate_worker(db::Connection& c, std::string_view worker_rid, const WorkerAnnotation& a);

}  // namespace queuer::admin
