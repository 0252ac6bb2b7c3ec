// Day-two queries for operators: the state of a queue at a glance (status), counts per task and
// status with the age of the oldest job (stats), and bulk retry / cancel / delete with filters.
// queuerctl prints them; queuerd's queue-depth gauge and the web console call the same code.
//
// Every bulk action is ONE statement (never one per job). Counts over the archive are always
// bounded by a time window (index on job_archive.updated_at) or by the filters given; nothing
// here counts the whole archive unless asked to with no filter at all.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "queuer/client.hpp"
#include "queuer/db.hpp"
#include "queuer/model.hpp"

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
    bool empty() const {
        return task.empty() && statuses.empty() && !since.set() && !until.set() && error.empty();
    }
};

struct MasterInfo {
    std::string worker_rid;   // empty: no master
    std::string worker_name;  // empty when the worker row is gone
    double renewed_seconds_ago = 0;
    bool expired = false;  // not renewed within master_lock_timeout
};

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
int64_t retry_jobs(db::Connection& c, const Filter& f, bool dry_run);
int64_t cancel_jobs(db::Connection& c, const Filter& f, bool dry_run);
int64_t delete_jobs(db::Connection& c, const Filter& f, bool dry_run, bool all = false);

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
