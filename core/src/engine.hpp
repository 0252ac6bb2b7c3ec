// Queuer::Engine: the worker engine. One libuv loop thread owns every handle, every database
// pipe and all state below; task threads (executor.hpp) only run tasks and hand events back
// through the executor's sink. Other threads reach the loop through post(). docs/internals.md
// tells the life of a job through this code.
#pragma once

#include <uv.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "executor.hpp"
#include "pg_pipe.hpp"
#include "queuer/queuer.hpp"

namespace queuer {

namespace detail {

// The engine's lifecycle, one state at a time (no set of flags).
enum class Phase {
    Created,   // constructed; start() not called
    Starting,  // loop running, first connections being made
    Running,   // claiming (or listening only, without a worker)
    Draining,  // stop requested: no claims; running tasks may finish (until the grace ends)
    Flushing,  // no task of ours runs any more; writing the last outcomes
    Closing,   // handles closing; the loop ends when they are closed
    Stopped,   // the loop has ended
};
const char* to_string(Phase p);

// What the finish statement does with one run.
enum class Action { Succeeded, Failed, Cancelled, Retry, Requeue };
const char* sql_name(Action a);  // the finish statement's action text
Outcome to_outcome(Action a);

// One outcome waiting to be written.
struct Completion {
    std::shared_ptr<Run> run;
    Action action = Action::Succeeded;
    std::string results = "[]";  // compact JSON (plain) when not sealed
    std::string sealed;          // hex of the sealed results ("" when not encrypted)
    std::string error;
    int64_t delay_ms = 0;              // Retry
    std::optional<TimePoint> next_at;  // the next run of a schedule, written with the outcome
    size_t bytes() const { return results.size() + sealed.size() + error.size() + 64; }
};

struct ClaimColumns;

// One outcome as the finish statements take it: plain data, from a Completion or read back
// from the spool (outcomes a stopping worker could not write, written at the next start).
struct FinishRow {
    int64_t id = 0;
    std::string rid, token;
    Action action = Action::Succeeded;
    std::string results = "[]", sealed, error;
    int64_t delay_ms = 0;
    std::string started, next_at;  // RFC 3339, "" = none
};
FinishRow finish_row(const Completion& c);
db::Params finish_params(const std::vector<FinishRow>& rows, const std::string& worker_rid);
inline bool ends_job(Action a) {
    return a == Action::Succeeded || a == Action::Failed || a == Action::Cancelled;
}

// Rate-limited logging of a subsystem's outage: the first failure, then at most once a minute,
// and the recovery with how long it took.
struct Outage {
    std::optional<std::chrono::steady_clock::time_point> since;
    std::chrono::steady_clock::time_point last_logged{};
    void failed(std::string_view what, std::string_view why);
    void recovered(std::string_view what, std::string_view how = "works again");
};

}  // namespace detail

class Queuer::Engine {
  public:
    Engine(Queuer& q, EngineOptions opts);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // ---- any thread ----
    void start(bool claim_jobs);
    void stop(std::chrono::milliseconds grace);
    void post(std::function<void()> fn);
    bool started() const { return phase_pub_.load() != detail::Phase::Created; }
    // Safe from any thread (the HTTP endpoint asks while the main thread may be joining).
    bool loop_running() const { return loop_running_.load(); }
    void add_task(std::string name, TaskFn fn);
    void add_next_interval(std::string name, NextIntervalFunc fn);
    void set_max_concurrency(int n);
    void set_worker_on_error(std::optional<OnError> e);
    void on_update(std::function<void(const JobEvent&)> cb) { on_update_ = std::move(cb); }
    void on_ended(std::function<void(const JobEvent&)> cb) { on_ended_ = std::move(cb); }
    void on_stopped(std::function<void()> cb) { on_stopped_ = std::move(cb); }

    bool loop_healthy(std::chrono::milliseconds max_age) const;
    int running_jobs() const { return running_pub_.load(); }
    int max_concurrency() const { return max_concurrency_.load(); }
    bool is_master() const { return master_.load(); }
    size_t stuck_tasks() const { return stuck_.load(); }
    StopCause stop_cause() const { return stop_cause_.load(); }
    size_t unwritten_jobs() const { return unwritten_.load(); }
    std::string not_ready_reason() const;
    // After stop(): whether the worker row was marked STOPPED by the engine's last words.
    bool marked_stopped() const { return worker_marked_stopped_.load(); }

  private:
    using steady = std::chrono::steady_clock;
    using RunPtr = std::shared_ptr<detail::Run>;

    // ---- loop: lifecycle (engine.cpp) ----
    void loop_start();
    void on_async();
    void set_phase(detail::Phase p);
    void begin_stop(std::chrono::milliseconds grace, StopCause cause);
    void check_stop();
    // A run whose outcome is still to come: its task runs, or waits in the ready queue for a
    // free thread, or has returned and the loop has not read that yet.
    bool outcome_outstanding() const;
    void close_everything();
    void tick();
    void publish();
    void pipe_up(detail::PgPipe& p);
    void pipe_down(detail::PgPipe& p, const Error& e);
    detail::Outage& outage_of(const detail::PgPipe& p);

    // ---- loop: claiming (engine_claim.cpp) ----
    void maybe_claim();
    // Something may be claimable (a notification, the poll, a due time, jobs put back): claim
    // now, or right after the claim in flight even if that one comes back short.
    void wake() {
        drained_ = false;
        if (claims_in_flight_ > 0) woken_during_claim_ = true;
        maybe_claim();
    }
    int prefetch_target() const;
    void claimed(const db::Result& r, int limit);
    RunPtr read_claimed_row(const db::Result& r, int row, const detail::ClaimColumns& c);
    void query_next_due();
    void arm_due_timer(std::chrono::milliseconds in);
    void return_stale_prefetch();

    // ---- loop: running (engine_run.cpp) ----
    void handle_events(std::vector<detail::TaskEvent>& events);
    void task_started(detail::Run& run);
    void task_returned(RunPtr run, TaskResult result);
    void decide_success(RunPtr run, std::string results);
    void decide_failure(RunPtr run, std::string error, bool retryable = true);
    void decide(detail::Completion c);
    void request_flush();
    void cancel_run(const RunPtr& run, const char* reason);
    void forget(const RunPtr& run);
    void mark_written(detail::Run& run) {
        if (!run.written) --unwritten_runs_;
        run.written = true;
    }
    void arm_deadline_timer();
    void check_deadlines();
    std::optional<TimePoint> next_run(const detail::Run& run) const;

    // ---- loop: writing outcomes (engine_finish.cpp) ----
    void maybe_flush();
    void send_finish(std::vector<detail::Completion> batch);
    void finished(std::vector<detail::Completion> batch, db::Result* r, const Error* e);
    void write_one_by_one(std::vector<detail::Completion> batch);
    void refused(detail::Completion c, const Error& e);
    void written(detail::Completion& c);

    // ---- loop: control (engine_control.cpp) ----
    void heartbeat();
    void apply_worker_status(const std::string& status);
    void on_notification(db::Notification&& n);
    void need_reconcile(const char* why);
    void maybe_reconcile();
    void reconciled(const db::Result& r);
    void master_pass();
    void master_step(int step);
    void remember_cancel(const std::string& rid);
    void disown_all(const char* why);
    void spool_unwritten();
    void replay_spool();
    void finalize();

    Queuer& q_;
    EngineOptions opts_;
    std::thread thread_;
    uv_loop_t loop_{};
    uv_async_t async_{};
    uv_timer_t poll_timer_{}, due_timer_{}, deadline_timer_{}, heartbeat_timer_{}, tick_timer_{},
        master_timer_{}, stop_timer_{}, flush_timer_{}, retry_timer_{};
    std::array<uv_timer_t*, 9> timers() {
        return {&poll_timer_,   &due_timer_,  &deadline_timer_, &heartbeat_timer_, &tick_timer_,
                &master_timer_, &stop_timer_, &flush_timer_,    &retry_timer_};
    }
    bool handles_open_ = false;
    std::unique_ptr<detail::PgPipe> listen_, claim_pipe_, finish_pipe_, control_pipe_;
    detail::Outage listen_outage_, claim_outage_, finish_outage_, control_outage_, hb_outage_,
        master_outage_, claim_sql_outage_, finish_sql_outage_, reconcile_outage_;
    int pipes_down_ = 0;  // for EngineObserver::db_up
    std::shared_ptr<detail::Executor> exec_;

    // Commands from other threads.
    std::mutex cmd_mu_;
    std::vector<std::function<void()>> commands_;
    bool loop_started_ = false, async_open_ = false;  // under cmd_mu_

    // ---- loop state ----
    detail::Phase phase_ = detail::Phase::Created;
    bool claim_jobs_ = false;
    std::unordered_map<std::string, TaskFn> tasks_;
    std::unordered_map<std::string, NextIntervalFunc> nifs_;
    std::vector<std::string> task_names_, nif_names_{""};
    std::optional<OnError> worker_on_error_;
    int concurrency_ = 1;
    // Every run this worker holds (claimed, not yet written or forgotten), by job id.
    std::unordered_map<int64_t, RunPtr> runs_;
    std::unordered_map<std::string, RunPtr> by_rid_;
    std::deque<detail::Completion> pending_;  // outcomes waiting to be written
    int claims_in_flight_ = 0;
    bool finish_in_flight_ = false;
    int finish_parts_ = 0;  // statements of the write in flight
    // The outcomes in the write(s) in flight (for the spool when a stop gives up on them).
    std::vector<std::shared_ptr<std::vector<detail::Completion>>> writing_;
    int unwritten_runs_ = 0;  // runs_ whose rows we hold in the database (RUNNING for us)
    bool drained_ = false;    // the last claim came back short: wait for a wake-up
    bool woken_during_claim_ = false;
    bool reconcile_needed_ = false, reconcile_in_flight_ = false;
    bool heartbeat_in_flight_ = false, master_in_flight_ = false, status_in_flight_ = false;
    bool stopped_notified_ = false, graceful_requested_ = false;
    std::optional<steady::time_point> due_at_;
    double ewma_run_s_ = -1;  // task run time, exponentially weighted; -1 = none measured yet
    std::optional<steady::time_point> prefetch_paused_until_;
    // When the last heartbeat that reached the database was *sent*: a lower bound of the
    // worker row's updated_at, so a reply read after a freeze does not hide the freeze.
    steady::time_point last_heartbeat_ok_{};
    std::optional<std::chrono::milliseconds> master_stale_threshold_;  // from the heartbeat
    std::optional<steady::time_point> stop_deadline_;                  // end of the grace period
    std::optional<steady::time_point> flush_deadline_;                 // give up writing after this
    StopCause pending_cause_ = StopCause::None;
    bool retention_applied_ = false;
    std::unordered_map<std::string, steady::time_point> recent_cancels_;
    std::deque<std::string> recent_cancel_order_;
    int one_by_one_left_ = 0;  // single-row writes of a refused batch in flight
    std::chrono::milliseconds finish_backoff_{0};
    bool finalizing_ = false;
    std::optional<bool> archive_is_hypertable_;

    // ---- published for other threads ----
    std::atomic<detail::Phase> phase_pub_{detail::Phase::Created};
    std::atomic<int> running_pub_{0};
    std::atomic<int> max_concurrency_{1};
    std::atomic<bool> master_{false}, worker_marked_stopped_{false};
    std::atomic<size_t> stuck_{0}, unwritten_{0};
    std::atomic<StopCause> stop_cause_{StopCause::None};
    std::atomic<int64_t> last_tick_ms_{0};
    std::atomic<bool> loop_running_{false};
    std::atomic<bool> listening_{false}, connected_{false};
    mutable std::mutex state_mu_;
    std::condition_variable state_cv_;
    std::optional<Error> start_error_;
    bool start_settled_ = false;

    std::function<void(const JobEvent&)> on_update_, on_ended_;
    std::function<void()> on_stopped_;
};

}  // namespace queuer
