// What the worker engine reports as it goes, for metrics (queuerd's /metrics) and tests. The
// engine calls these on its own threads (the loop thread, never a task thread) and never while
// holding a lock of its own; implementations must be thread-safe and cheap (no I/O, no waits).
#pragma once

#include <string_view>

namespace queuer {

// How one run (attempt) of a job ended, as counted by queuerd_jobs_finished_total{status}.
enum class Outcome {
    Succeeded,  // archived SUCCEEDED
    Failed,     // archived FAILED (no retries left, or a permanent error)
    Cancelled,  // archived CANCELLED (by a cancel, or by an immediate stop of the worker)
    Retried,    // failed, back in the queue as SCHEDULED for its next attempt
    Requeued,   // put back in the queue without counting the attempt (shutdown, prefetch return)
};
// "SUCCEEDED", "FAILED", "CANCELLED", "RETRIED", "REQUEUED"
const char* to_string(Outcome o);

class EngineObserver {
  public:
    virtual ~EngineObserver() = default;
    // A task was called. wait_seconds: from the job's due time (scheduled_at, else created_at)
    // to this start, on the database's clock base.
    virtual void job_started(std::string_view task, double wait_seconds) {
        (void)task;
        (void)wait_seconds;
    }
    // A run's outcome is written to the database. run_seconds: the task's own run time (0 when
    // it never started, e.g. cancelled while prefetched).
    virtual void job_finished(std::string_view task, Outcome outcome, double run_seconds) {
        (void)task;
        (void)outcome;
        (void)run_seconds;
    }
    // The engine's database connections went down (false) or are all back (true).
    virtual void db_up(bool up) { (void)up; }
    // A connection of the engine was re-established after it had been lost.
    virtual void db_reconnected() {}
    // This worker became master (true) or stopped being master (false).
    virtual void master_changed(bool is_master) { (void)is_master; }
};

}  // namespace queuer
