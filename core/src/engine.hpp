// Queuer::Engine: the libuv loop that drives a worker. The loop thread owns every libuv handle
// and all state below marked "loop"; other threads reach it only through post() (a locked
// command queue plus uv_async_send) and the completion sink.
#pragma once

#include <uv.h>

#include <atomic>
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

#include "queuer/queuer.hpp"
#include "task_pool.hpp"

namespace queuer {

namespace detail {

// What a pool thread hands back when a task returns.
struct TaskDone {
    int64_t id = 0;
    uint64_t run = 0;  // which dispatch this is (a job id can be dispatched again later)
    bool ok = false;
    std::string results;
    std::string error;
};

// Shared by pool threads and the loop; outlives the loop when a task never returns.
struct Sink {
    std::mutex mu;
    std::vector<TaskDone> done;
    uv_async_t* async = nullptr;  // null once the loop is gone
    void push(TaskDone d) {
        std::lock_guard g(mu);
        done.push_back(std::move(d));
        if (async) uv_async_send(async);
    }
};

struct Completion {
    int64_t id = 0;
    uint64_t run = 0;
    std::string action;  // SUCCEEDED | FAILED | CANCELLED | RETRY | REQUEUE
    std::string results = "[]";
    std::string error;
    int64_t delay_ms = 0;
    std::string sealed;  // hex, encrypted results
    std::optional<TimePoint> next_at;
};

// Runs `work` on libuv's thread pool and `after` back on the loop thread.
template <class Work, class After>
void queue_work(uv_loop_t* loop, Work work, After after) {
    struct Req {
        uv_work_t req;
        Work work;
        After after;
    };
    auto* r = new Req{{}, std::move(work), std::move(after)};
    r->req.data = r;
    uv_queue_work(
        loop, &r->req, [](uv_work_t* req) { static_cast<Req*>(req->data)->work(); },
        [](uv_work_t* req, int) {
            auto* r = static_cast<Req*>(req->data);
            r->after();
            delete r;
        });
}

}  // namespace detail

struct Queuer::Engine {
    struct Running {
        Job job;
        uint64_t run = 0;
        std::shared_ptr<JobContext> ctx;
        std::optional<OnError> on_error;
        std::optional<std::chrono::steady_clock::time_point> deadline;
        bool abandoned = false;  // its outcome is decided already (timeout, cancel, shutdown)
        bool warned = false;
        // The slot stays taken until the task thread returned AND the outcome is in the
        // database, so that RUNNING rows in the table never exceed max_concurrency.
        bool thread_done = false;
        bool persisted = false;
        std::chrono::steady_clock::time_point started{};
    };

    Engine(Queuer& q, EngineOptions opts);
    ~Engine();

    void start(bool claim_jobs);
    void stop(std::chrono::milliseconds grace);
    void post(std::function<void()> fn);

    // ---- loop thread ----
    void on_async();
    void request_claim();
    void start_claim(int limit);
    void read_claimed(const db::Result& r, std::vector<Job>& out);
    void dispatch(Job job);
    void handle_done(detail::TaskDone d);
    void complete_failure(Running& r, const std::string& error);
    void release_if_done(uint64_t run);
    Running* find_job(const std::string& rid);
    void remember_cancel(const std::string& rid);
    void request_flush();
    void check_deadlines();
    void arm_deadline_timer();
    void arm_due_timer(std::chrono::milliseconds in);
    void heartbeat();
    void apply_worker_status(const std::string& status);
    int abandon_running(const char* reason, const char* action, const char* error);
    void on_notification(const db::Notification& n);
    void connect_listener();
    static std::unique_ptr<db::Connection> open_listener(const DatabaseConfig& cfg);
    void attach_listener();
    void schedule_listener_reconnect();
    void close_handles();
    std::optional<TimePoint> next_run(const Job& j);
    void publish_state();
    void master_tick();

    Queuer& q;
    EngineOptions opts;
    uv_loop_t loop{};
    uv_async_t async{};
    uv_timer_t poll_timer{}, due_timer{}, deadline_timer{}, heartbeat_timer{}, retry_timer{},
        listen_timer{}, tick_timer{}, master_timer{}, flush_timer{};
    uv_poll_t listen_poll{};
    bool listen_poll_open = false;
    std::thread thread;
    std::shared_ptr<detail::Sink> sink = std::make_shared<detail::Sink>();
    detail::TaskPool pool;

    std::mutex cmd_mu;
    std::vector<std::function<void()>> commands;

    // Task registry snapshot, loop thread (copied in by commands).
    std::unordered_map<std::string, TaskFunc> tasks;
    std::unordered_map<std::string, NextIntervalFunc> nifs;
    std::vector<std::string> task_names, nif_names;

    // Connections used by work items (one work item of each kind at a time).
    std::unique_ptr<db::Connection> listen_conn, claim_conn, finish_conn, control_conn, master_conn;

    // ---- loop state ----
    std::unordered_map<uint64_t, Running> running;  // by run (dispatch) number
    uint64_t next_run_id = 0;
    int slots_busy = 0;
    int threads_running = 0;  // tasks handed to the pool that have not returned
    bool flush_due = false;   // the batching delay has passed
    bool claim_jobs = false;
    bool accepting = true;
    bool graceful_stop_requested = false;
    bool stopped_notified = false;
    bool claim_in_flight = false, claim_again = false;
    bool finish_in_flight = false, heartbeat_in_flight = false, master_in_flight = false;
    bool retention_applied = false;
    std::chrono::milliseconds finish_backoff{0};
    std::chrono::milliseconds listen_backoff{0};
    // Failures in a row, so that an outage is logged once and then only now and then.
    int listen_failures = 0, claim_failures = 0, finish_failures = 0, heartbeat_failures = 0;
    std::vector<detail::Completion> pending;
    std::optional<std::chrono::steady_clock::time_point> due_at;
    // Cancellations heard for rids not running here (yet): a claim may be on its way back from
    // the database with that job. Kept for a minute, at most 10,000.
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> recent_cancels;
    std::deque<std::string> recent_cancel_order;

    // ---- visible to other threads ----
    std::atomic<int> max_concurrency{1};
    std::atomic<int> busy_count{0};
    std::atomic<bool> started{false};
    std::atomic<bool> master{false};
    std::atomic<size_t> stuck_threads{0};  // task threads left running by stop()
    std::atomic<int64_t> last_tick_ms{0};  // steady clock, refreshed every second by the loop
    std::mutex state_mu;
    std::condition_variable state_cv;
    int published_busy = 0;
    bool published_flushed = true;
    int stop_phase = 0;  // the last step of stop() the loop has carried out

    std::function<void(const JobEvent&)> on_update, on_ended;
    std::function<void()> on_stopped;
};

}  // namespace queuer
