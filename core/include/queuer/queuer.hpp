// queuer::Queuer: the worker engine (the seed's Queuer lifecycle). It registers a worker row,
// claims jobs with FOR UPDATE SKIP LOCKED, runs them on a bounded pool, records results, retries
// with backoff, enforces timeouts, schedules periodic runs, and hands cancellations to running
// tasks. One libuv loop thread drives it; tasks run on pool threads, never on the loop.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "queuer/client.hpp"
#include "queuer/observer.hpp"

namespace queuer {

class Queuer;

// What a running task sees. Valid only during the task call; methods are thread-safe.
class JobContext {
  public:
    struct Init {
        std::string rid;
        std::string task_name;
        int attempt = 1;
        std::string parameters = "[]";
        std::string parameters_keyed = "{}";
        std::optional<std::chrono::steady_clock::time_point> deadline;
        Client* client = nullptr;  // for sub-jobs; may be null in tests
    };
    explicit JobContext(Init init) : init_(std::move(init)) {}

    const std::string& rid() const { return init_.rid; }
    const std::string& task_name() const { return init_.task_name; }
    int attempt() const { return init_.attempt; }
    const std::string& parameters() const { return init_.parameters; }              // JSON array
    const std::string& parameters_keyed() const { return init_.parameters_keyed; }  // JSON object
    const std::optional<std::chrono::steady_clock::time_point>& deadline() const {
        return init_.deadline;
    }

    // True once the job was cancelled, timed out, or the worker is stopping. Tasks that run for
    // long should check it and return early.
    bool is_cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
    // Why: "cancelled", "timed out", "shutting down" (empty while not cancelled).
    std::string cancel_reason() const;
    void cancel(std::string reason);

    // Adds a sub-job; its options record this job as parent_rid.
    template <class... Args>
    Job add_job(const TaskRef& task, Args&&... args) {
        auto p = detail::pack(std::forward<Args>(args)...);
        return add_job_json(task.name(), p.positional, p.keyed, std::nullopt);
    }
    Job add_job_json(std::string_view task, std::string_view parameters,
                     std::string_view parameters_keyed, std::optional<Options> options);

  private:
    Init init_;
    std::atomic<bool> cancelled_{false};
    mutable std::mutex mu_;
    std::string reason_;
};

// A task returns its results as JSON text ("" means []); it fails by throwing (the exception's
// what() becomes the job's error).
using TaskFunc = std::function<std::string(JobContext&)>;

// What a task produced, as a value: results JSON text (ok) or an error text. Tasks registered
// as TaskFn (plugins do) report failure this way instead of throwing.
struct TaskResult {
    bool ok = false;
    std::string text;  // results JSON ("" means []) when ok, else the error
    static TaskResult success(std::string results) { return {true, std::move(results)}; }
    static TaskResult failure(std::string error) { return {false, std::move(error)}; }
};
using TaskFn = std::function<TaskResult(JobContext&)>;
// Next run time from this run's scheduled time and the number of runs so far.
using NextIntervalFunc = std::function<TimePoint(TimePoint scheduled_at, int count)>;

struct JobEvent {
    int64_t id = 0;
    std::string rid;
    std::string status;
};

struct EngineOptions {
    std::chrono::milliseconds poll_interval{std::chrono::seconds(30)};  // fallback to NOTIFY
    std::chrono::milliseconds heartbeat_interval{std::chrono::seconds(10)};
    // When set, this worker takes part in the master election and, while master, applies these
    // settings: stale workers and their jobs, worker deletion, archive retention.
    std::optional<MasterSettings> master;
    // Jobs claimed ahead of free slots and held locally until a slot frees (worker.prefetch):
    // the upper bound; the engine claims ahead only as many as its tasks are expected to start
    // within about 100 ms (from the run times it measures). 0 = claim only for free slots.
    int prefetch = 1000;
    // A result (or error text) larger than this ends its job FAILED with the reason instead of
    // being written (worker.max_result_bytes). 0 = no limit of our own.
    size_t max_result_bytes = 16u << 20;
    // Told about job outcomes, connection state and the master role (metrics). May be null.
    std::shared_ptr<EngineObserver> observer;
    // Where a stopping worker saves the outcomes it could not write (the database was away
    // past the grace) and where, at the next start, a worker writes them (worker.spool_dir).
    // Empty = not saved: those jobs are then recovered by the master as jobs of a dead worker.
    std::string spool_dir;
};

// Why a worker stopped (Queuer::stop_cause); queuerd picks its exit status from it.
enum class StopCause {
    None,       // still running
    Local,      // stop() was called in this process (SIGTERM, SIGINT, the destructor)
    Requested,  // STOPPING was set from elsewhere (queuerctl stop worker --graceful)
    Immediate,  // STOPPED was set from elsewhere (queuerctl stop worker / cancel worker)
    Stale,      // a master marked this worker STOPPED because its heartbeat was late (it was
                // frozen, or cut off from the database for longer than the stale threshold)
};
const char* to_string(StopCause c);

class Queuer : public Client {
  public:
    // Registers the worker row (status READY). Throws Error(Invalid) on a bad name, concurrency
    // (1..1000) or on_error.
    Queuer(std::string name, int max_concurrency, std::string_view encryption_key,
           DatabaseConfig cfg, std::optional<OnError> on_error = std::nullopt,
           EngineOptions engine = {});
    ~Queuer() override;

    Task add_task(std::string name, TaskFunc func);
    Task add_task(std::string name, TaskFn func);
    Task add_task_with_name(TaskFunc func, std::string name) {
        return add_task(std::move(name), std::move(func));
    }
    void add_next_interval_func(std::string name, NextIntervalFunc func);
    void add_next_interval_func_with_name(NextIntervalFunc func, std::string name) {
        add_next_interval_func(std::move(name), std::move(func));
    }

    // Starts claiming and running jobs; returns once the worker is RUNNING, connected and
    // listening. Throws Error(Connection) when the first connection attempts fail.
    void start();
    // Listeners only (wait/listen helpers work), no claiming.
    void start_without_worker();
    // Stops claiming and puts jobs claimed ahead (not started) back in the queue at once; lets
    // running tasks finish for up to `grace`, then signals the rest (their contexts are
    // cancelled with reason "shutting down") and puts their jobs back in the queue for another
    // worker, so nothing is lost; writes every outcome (waiting for the database up to `grace`
    // plus 10 s when it is away; what cannot be written is logged with the rids and counted in
    // unwritten_jobs()); marks the worker STOPPED. Idempotent.
    void stop(std::chrono::milliseconds grace = std::chrono::seconds(0));
    bool running() const;

    // Live changes (SIGHUP in queuerd).
    void set_max_concurrency(int n);
    void set_worker_on_error(std::optional<OnError> e);

    // Called on the loop thread for every job notification / ended job; keep them short.
    void on_job_update(std::function<void(const JobEvent&)> cb);
    void on_job_ended(std::function<void(const JobEvent&)> cb);
    // Called on the loop thread once the worker has been told to stop (STOPPED or STOPPING set
    // from elsewhere, or stop()); queuerd uses it to exit.
    void on_stopped(std::function<void()> cb);

    const Worker& worker() const { return worker_; }
    // True while the engine loop is running and has turned within `max_age` (for watchdogs).
    bool loop_healthy(std::chrono::milliseconds max_age = std::chrono::seconds(5)) const;
    int running_jobs() const;
    // Task threads that ignored cancellation and were still running when stop() returned; they
    // may still execute task (plugin) code.
    size_t stuck_tasks() const;
    // True while this worker holds the master lock (as of its last master pass).
    bool is_master() const;
    int max_concurrency() const;
    // Why the worker stopped or is stopping (None while it runs).
    StopCause stop_cause() const;
    // After stop(): how many jobs ran (or were held) here whose outcome could not be written to
    // the database before stop() gave up; their rids were logged. 0 after a clean stop.
    size_t unwritten_jobs() const;
    // Empty while the worker is registered, started, connected and listening; otherwise a
    // one-line reason (for /readyz).
    std::string not_ready_reason() const;

  private:
    class Engine;
    void update_worker_row();
    Worker worker_;
    std::unique_ptr<Engine> engine_;
};

// The seed's constructors: configuration from QUEUER_DB_*, key from QUEUER_ENCRYPTION_KEY.
std::unique_ptr<Queuer> new_queuer(std::string name, int max_concurrency,
                                   std::optional<OnError> on_error = std::nullopt);
std::unique_ptr<Queuer> new_queuer_with_db(std::string name, int max_concurrency,
                                           std::string_view encryption_key, DatabaseConfig cfg,
                                           std::optional<OnError> on_error = std::nullopt);

}  // namespace queuer
