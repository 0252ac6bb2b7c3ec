// The engine's lifecycle: construction, start, commands from other threads, the periodic tick,
// stop (drain, grace, flush, close). Who owns what: engine.hpp; the life of a job:
// docs/internals.md.
#include "engine.hpp"

#include <fmt/format.h>

#include "engine_sql.hpp"
#include "queuer/log.hpp"
#include "uv_check.hpp"

namespace queuer {

using namespace std::chrono_literals;
using detail::Action;
using detail::Completion;
using detail::PgPipe;
using detail::Phase;
using detail::uv_check;
using detail::uv_require;
using steady = std::chrono::steady_clock;

namespace detail {

const char* to_string(Phase p) {
    switch (p) {
        case Phase::Created:
            return "created";
        case Phase::Starting:
            return "starting";
        case Phase::Running:
            return "running";
        case Phase::Draining:
            return "draining";
        case Phase::Flushing:
            return "flushing";
        case Phase::Closing:
            return "closing";
        case Phase::Stopped:
            return "stopped";
    }
    return "?";
}

const char* sql_name(Action a) {
    switch (a) {
        case Action::Succeeded:
            return "SUCCEEDED";
        case Action::Failed:
            return "FAILED";
        case Action::Cancelled:
            return "CANCELLED";
        case Action::Retry:
            return "RETRY";
        case Action::Requeue:
            return "REQUEUE";
    }
    return "?";
}

Outcome to_outcome(Action a) {
    switch (a) {
        case Action::Succeeded:
            return Outcome::Succeeded;
        case Action::Failed:
            return Outcome::Failed;
        case Action::Cancelled:
            return Outcome::Cancelled;
        case Action::Retry:
            return Outcome::Retried;
        case Action::Requeue:
            return Outcome::Requeued;
    }
    return Outcome::Failed;
}

void Outage::failed(std::string_view what, std::string_view why) {
    auto now = steady::now();
    if (!since) {
        since = now;
        last_logged = now;
        log::write(log::Level::Warn, fmt::format("{} failed: {}", what, why));
    } else if (now - last_logged >= 60s) {
        last_logged = now;
        log::write(
            log::Level::Warn,
            fmt::format("{} still failing after {} s: {}", what,
                        std::chrono::duration_cast<std::chrono::seconds>(now - *since).count(),
                        why));
    }
}

void Outage::recovered(std::string_view what, std::string_view how) {
    if (!since) return;
    auto secs = std::chrono::duration<double>(steady::now() - *since).count();
    log::write(log::Level::Info, fmt::format("{} {} after {:.1f} s", what, how, secs));
    since.reset();
}

}  // namespace detail

// ---- construction ----

Queuer::Engine::Engine(Queuer& q, EngineOptions o) : q_(q), opts_(std::move(o)) {
    uv_require(uv_loop_init(&loop_), "uv_loop_init");
    loop_.data = this;
    uv_require(uv_async_init(&loop_, &async_,
                             [](uv_async_t* h) { static_cast<Engine*>(h->data)->on_async(); }),
               "uv_async_init");
    async_.data = this;
    for (uv_timer_t* t : timers()) {
        uv_require(uv_timer_init(&loop_, t), "uv_timer_init");
        t->data = this;
    }
    handles_open_ = true;
    exec_ = std::make_shared<detail::Executor>(&async_);
    worker_on_error_ = q.default_on_error_;
}

Queuer::Engine::~Engine() {
    if (thread_.joinable()) stop(0ms);
    if (handles_open_) {
        // Never started: close what the constructor opened and let the loop run the callbacks.
        exec_->detach_wake();
        close_everything();
        (void)uv_run(&loop_, UV_RUN_DEFAULT);  // runs the close callbacks
    }
    exec_->shutdown(5s);
    uv_check(uv_loop_close(&loop_), "uv_loop_close");
}

// Runs `fn` on the loop thread. Before start() the caller's thread owns the state and runs it
// at once; after the loop has ended there is nothing left to change.
void Queuer::Engine::post(std::function<void()> fn) {
    std::unique_lock lk(cmd_mu_);
    if (!loop_started_) {
        lk.unlock();
        fn();
        return;
    }
    if (!async_open_) return;
    commands_.push_back(std::move(fn));
    detail::uv_check(uv_async_send(&async_), "uv_async_send");
}

void Queuer::Engine::add_task(std::string name, TaskFn fn) {
    post([this, name = std::move(name), fn = std::move(fn)]() mutable {
        task_names_.push_back(name);
        tasks_[std::move(name)] = std::move(fn);
        wake();
    });
}

void Queuer::Engine::add_next_interval(std::string name, NextIntervalFunc fn) {
    post([this, name = std::move(name), fn = std::move(fn)]() mutable {
        nif_names_.push_back(name);
        nifs_[std::move(name)] = std::move(fn);
        wake();
    });
}

void Queuer::Engine::set_max_concurrency(int n) {
    max_concurrency_ = n;
    post([this, n] {
        concurrency_ = n;
        if (phase_ != Phase::Created && claim_jobs_) exec_->set_threads(n);
        wake();
    });
}

void Queuer::Engine::set_worker_on_error(std::optional<OnError> e) {
    post([this, e] { worker_on_error_ = e; });
}

// ---- start ----

void Queuer::Engine::start(bool claim) {
    claim_jobs_ = claim;
    set_phase(Phase::Starting);
    auto make = [&](std::unique_ptr<PgPipe>& p, const char* name, std::vector<std::string> listen,
                    std::vector<std::string> setup = {}) {
        PgPipe::Hooks h;
        h.up = [this](PgPipe& pipe) { pipe_up(pipe); };
        h.down = [this](PgPipe& pipe, const Error& e) { pipe_down(pipe, e); };
        if (!listen.empty())
            h.notified = [this](db::Notification&& n) { on_notification(std::move(n)); };
        // Every statement of the engine is short; JIT compilation (which cost estimates can
        // trigger, e.g. under the claim's settings below) only ever adds latency.
        setup.insert(setup.begin(), "SET jit = off");
        p = std::make_unique<PgPipe>(&loop_, q_.cfg_, name, std::move(listen), std::move(h),
                                     std::move(setup));
    };
    make(listen_, "listener", {"job", "job_archive", "worker"});
    make(control_pipe_, "control", {});
    if (claim_jobs_) {
        // The claim must walk the queue index in order. The planner cannot know how many rows
        // match the claim's filters (next_interval is an expression on options) and, guessing
        // few, picks a full scan and a sort of the whole table: 100 times slower on a long
        // queue. On this connection, which runs nothing else, it is told not to.
        make(claim_pipe_, "claim", {}, {"SET enable_seqscan = off", "SET enable_bitmapscan = off"});
        make(finish_pipe_, "finish", {});
        exec_->set_threads(concurrency_);
    }
    max_concurrency_ = concurrency_;
    loop_running_ = true;
    {
        std::lock_guard g(cmd_mu_);
        loop_started_ = true;
        async_open_ = true;
    }
    thread_ = std::thread([this] {
        loop_start();
        // Returns when every handle is closed (close_everything); its value says only whether
        // handles remain, which they do not then.
        (void)uv_run(&loop_, UV_RUN_DEFAULT);
        set_phase(Phase::Stopped);
        loop_running_ = false;
    });
    std::unique_lock lk(state_mu_);
    auto limit = std::chrono::seconds(q_.cfg_.connect_timeout_seconds + 5);
    bool settled = state_cv_.wait_for(lk, limit, [&] { return start_settled_; });
    if (!settled || start_error_) {
        Error e = start_error_.value_or(
            Error(ErrorKind::Connection, "the database did not answer while the worker started"));
        lk.unlock();
        post([this] { begin_stop(0ms, StopCause::Local); });
        stop(0ms);
        throw e;
    }
}

void Queuer::Engine::loop_start() {
    last_tick_ms_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch())
            .count();
    last_heartbeat_ok_ = steady::now();
    auto every = [](std::chrono::milliseconds d) {
        return static_cast<uint64_t>(std::max<int64_t>(d.count(), 1));
    };
    uv_check(
        uv_timer_start(
            &heartbeat_timer_, [](uv_timer_t* t) { static_cast<Engine*>(t->data)->heartbeat(); },
            every(opts_.heartbeat_interval), every(opts_.heartbeat_interval)),
        "uv_timer_start");
    uv_check(
        uv_timer_start(
            &tick_timer_, [](uv_timer_t* t) { static_cast<Engine*>(t->data)->tick(); }, 1000, 1000),
        "uv_timer_start");
    if (claim_jobs_) {
        uv_check(uv_timer_start(
                     &poll_timer_,
                     [](uv_timer_t* t) {
                         auto* e = static_cast<Engine*>(t->data);
                         e->wake();
                     },
                     every(opts_.poll_interval), every(opts_.poll_interval)),
                 "uv_timer_start");
        if (opts_.master) {
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                opts_.master->master_poll_interval);
            uv_check(uv_timer_start(
                         &master_timer_,
                         [](uv_timer_t* t) { static_cast<Engine*>(t->data)->master_pass(); }, 0,
                         every(std::max(ms, 100ms))),
                     "uv_timer_start");
        }
    }
    for (PgPipe* p : {listen_.get(), control_pipe_.get(), claim_pipe_.get(), finish_pipe_.get()})
        if (p) p->open();
    publish();
}

// ---- the loop ----

void Queuer::Engine::on_async() {
    std::vector<std::function<void()>> cmds;
    {
        std::lock_guard g(cmd_mu_);
        cmds.swap(commands_);
    }
    for (auto& c : cmds) c();
    auto events = exec_->take_events();
    if (!events.empty()) handle_events(events);
    publish();
}

void Queuer::Engine::set_phase(Phase p) {
    phase_ = p;
    phase_pub_ = p;
    std::lock_guard g(state_mu_);
    state_cv_.notify_all();
}

void Queuer::Engine::publish() {
    running_pub_ = exec_->busy();
    listening_ = listen_ && listen_->up();
    connected_ = claim_pipe_ ? (claim_pipe_->up() && finish_pipe_->up())
                             : (control_pipe_ && control_pipe_->up());
}

bool Queuer::Engine::loop_healthy(std::chrono::milliseconds max_age) const {
    if (!loop_running_) return false;
    auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch())
            .count();
    return now_ms - last_tick_ms_.load() <= max_age.count();
}

std::string Queuer::Engine::not_ready_reason() const {
    switch (phase_pub_.load()) {
        case Phase::Created:
            return "the worker has not started";
        case Phase::Starting:
            return "the worker is starting";
        case Phase::Running:
            break;
        default:
            return "the worker is stopping";
    }
    if (!listening_) return "not listening for notifications: the database is unreachable";
    if (!connected_) return "not connected to the database";
    if (!loop_healthy(5s)) return "the engine loop is not turning";
    return {};
}

detail::Outage& Queuer::Engine::outage_of(const PgPipe& p) {
    if (&p == listen_.get()) return listen_outage_;
    if (&p == claim_pipe_.get()) return claim_outage_;
    if (&p == finish_pipe_.get()) return finish_outage_;
    return control_outage_;
}

void Queuer::Engine::pipe_up(PgPipe& p) {
    auto& o = outage_of(p);
    bool was_down = o.since.has_value();
    o.recovered(fmt::format("the database {} connection", p.name()), "reconnected");
    if (was_down) {
        if (--pipes_down_ == 0 && opts_.observer) opts_.observer->db_up(true);
        if (opts_.observer) opts_.observer->db_reconnected();
        // Replies may have been lost and notifications missed while it was away.
        need_reconcile("a connection came back");
        drained_ = false;
    }
    if (phase_ == Phase::Starting) {
        bool ready = listen_->up() && control_pipe_->up() &&
                     (!claim_jobs_ || (claim_pipe_->up() && finish_pipe_->up()));
        if (ready) {
            set_phase(Phase::Running);
            {
                std::lock_guard g(state_mu_);
                start_settled_ = true;
                state_cv_.notify_all();
            }
            replay_spool();
        }
    }
    publish();
    maybe_reconcile();
    maybe_claim();
    maybe_flush();
    check_stop();
}

void Queuer::Engine::pipe_down(PgPipe& p, const Error& e) {
    if (phase_ == Phase::Starting) {
        std::lock_guard g(state_mu_);
        if (!start_settled_) {
            start_error_ = e;
            start_settled_ = true;
            state_cv_.notify_all();
        }
        return;
    }
    auto& o = outage_of(p);
    if (!o.since) {
        if (pipes_down_++ == 0 && opts_.observer) opts_.observer->db_up(false);
    }
    o.failed(fmt::format("the database {} connection", p.name()), e.what());
    publish();
    check_stop();
}

void Queuer::Engine::tick() {
    last_tick_ms_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch())
            .count();
    // A reply overdue by far more than the statement timeout: the connection is dead even if
    // TCP has not said so (e.g. a peer that swallows packets).
    auto limit = std::chrono::milliseconds(q_.cfg_.statement_timeout_ms) + 15s;
    for (PgPipe* p : {control_pipe_.get(), claim_pipe_.get(), finish_pipe_.get()}) {
        if (p && p->up() && p->oldest_wait() > limit)
            p->reset(fmt::format(
                "no reply from the server for {} s",
                std::chrono::duration_cast<std::chrono::seconds>(p->oldest_wait()).count()));
    }
    if (phase_ == Phase::Running && claim_jobs_) return_stale_prefetch();
    maybe_reconcile();
    check_stop();
    publish();
}

// ---- stopping ----

void Queuer::Engine::stop(std::chrono::milliseconds grace) {
    if (!thread_.joinable()) return;
    post([this, grace] { begin_stop(grace, StopCause::Local); });
    thread_.join();
    set_phase(Phase::Stopped);
    stuck_ = exec_->shutdown(5s);
    if (stuck_)
        log::write(log::Level::Warn,
                   fmt::format("shutdown: {} task threads ignore cancellation and were left "
                               "running",
                               stuck_.load()));
}

void Queuer::Engine::begin_stop(std::chrono::milliseconds grace, StopCause cause) {
    bool forever = grace == std::chrono::milliseconds::max();
    auto deadline = forever ? steady::time_point::max() : steady::now() + grace;
    if (phase_ >= Phase::Draining) {
        // Already stopping (e.g. STOPPING from elsewhere, then SIGTERM): the shorter grace wins.
        if (phase_ == Phase::Draining && !forever &&
            (!stop_deadline_ || deadline < *stop_deadline_)) {
            stop_deadline_ = deadline;
            uv_check(uv_timer_start(
                         &stop_timer_,
                         [](uv_timer_t* t) { static_cast<Engine*>(t->data)->check_stop(); },
                         static_cast<uint64_t>(std::max<int64_t>(grace.count(), 0)) + 1, 0),
                     "uv_timer_start");
        }
        check_stop();
        return;
    }
    if (stop_cause_ == StopCause::None) stop_cause_ = cause;
    if (phase_ < Phase::Running) {
        // Never got going (start failed or stop during start): nothing is held.
        set_phase(Phase::Flushing);
        check_stop();
        return;
    }
    set_phase(Phase::Draining);
    uv_check(uv_timer_stop(&poll_timer_), "uv_timer_stop");
    uv_check(uv_timer_stop(&due_timer_), "uv_timer_stop");
    // Jobs claimed ahead never started: back to the queue at once for another worker. Those the
    // free task threads are taking this moment stay and run (within the grace).
    int free_threads = std::max(0, concurrency_ - exec_->busy());
    auto queued = exec_->withdraw_beyond(static_cast<size_t>(free_threads));
    for (auto& run : queued) {
        run->state = detail::Run::State::Returned;
        Completion c;
        c.run = run;
        c.action = Action::Requeue;
        decide(std::move(c));
    }
    if (!queued.empty())
        log::write(log::Level::Info, fmt::format("stopping: {} jobs claimed ahead go back to the "
                                                 "queue",
                                                 queued.size()));
    if (!forever) {
        stop_deadline_ = deadline;
        uv_check(
            uv_timer_start(
                &stop_timer_, [](uv_timer_t* t) { static_cast<Engine*>(t->data)->check_stop(); },
                static_cast<uint64_t>(std::max<int64_t>(grace.count(), 0)) + 1, 0),
            "uv_timer_start");
    }
    check_stop();
}

bool Queuer::Engine::outcome_outstanding() const {
    for (const auto& [id, run] : runs_)
        if (!run->decided && !run->abandoned) return true;
    return false;
}

void Queuer::Engine::check_stop() {
    auto now = steady::now();
    if (phase_ == Phase::Draining) {
        // busy() alone is not enough: the runs begin_stop left for free threads may not have
        // been taken yet, and a task that returned counts as neither busy nor decided until the
        // loop reads its event. Stopping then would drop their outcomes.
        bool idle = exec_->busy() == 0 && claims_in_flight_ == 0 && !outcome_outstanding();
        if (idle && graceful_requested_ && !stop_deadline_) {
            // STOPPING from elsewhere and nothing runs any more: tell the owner (queuerd then
            // calls stop() with its grace), once.
            if (!stopped_notified_) {
                stopped_notified_ = true;
                if (on_stopped_) on_stopped_();
            }
            return;
        }
        if (!idle && stop_deadline_ && now >= *stop_deadline_) {
            // The grace is over: tell the tasks to stop and put their jobs back in the queue.
            int n = 0;
            for (auto& [id, run] : runs_) {
                // The loop may not have heard of a start yet: ask the executor, not run->state.
                if (run->state == detail::Run::State::Returned || run->abandoned || run->decided)
                    continue;
                if (exec_->cancel(*run, "shutting down") == detail::Executor::Stop::Gone)
                    continue;  // it returned; its event decides it
                run->abandoned = true;
                Completion c;
                c.run = run;
                c.action = Action::Requeue;
                c.error = "the worker shut down before the task finished";
                decide(std::move(c));
                ++n;
            }
            if (n)
                log::write(log::Level::Info,
                           fmt::format("shutdown: {} running jobs told to stop; they go back to "
                                       "the queue once that is written",
                                       n));
            // Runs whose task returned (Gone) are decided when the loop reads their events.
            idle = claims_in_flight_ == 0 && !outcome_outstanding();
        }
        if (!idle) return;
        set_phase(Phase::Flushing);
        flush_deadline_ = std::max(now, stop_deadline_.value_or(now)) + 10s;
    }
    if (phase_ != Phase::Flushing) return;
    maybe_flush();
    bool done =
        pending_.empty() && !finish_in_flight_ && claims_in_flight_ == 0 && !reconcile_in_flight_;
    if (!done && flush_deadline_ && now < *flush_deadline_) {
        uv_check(
            uv_timer_start(
                &stop_timer_, [](uv_timer_t* t) { static_cast<Engine*>(t->data)->check_stop(); },
                static_cast<uint64_t>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(*flush_deadline_ - now)
                        .count()) +
                    1,
                0),
            "uv_timer_start");
        return;
    }
    if (!done) {
        // The database did not take the last outcomes in time. Save them (worker.spool_dir) for
        // the next start, and say which jobs, so an operator can check them; without a spool
        // the master recovers them as jobs of a stopped worker.
        spool_unwritten();
        std::vector<std::string> rids;
        for (auto& [id, run] : runs_) rids.push_back(run->rid);
        unwritten_ = rids.size();
        log::write(log::Level::Error,
                   fmt::format("shutdown: the outcomes of {} jobs could not be written (the "
                               "database did not answer): {}",
                               rids.size(), fmt::join(rids, ", ")));
    }
    finalize();
}

void Queuer::Engine::close_everything() {
    exec_->detach_wake();
    {
        std::lock_guard g(cmd_mu_);
        async_open_ = false;
    }
    for (auto* p : {listen_.get(), control_pipe_.get(), claim_pipe_.get(), finish_pipe_.get()})
        if (p) p->close();
    if (!handles_open_) return;
    handles_open_ = false;
    auto close = [](auto* h) {
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(h)))
            uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
    };
    close(&async_);
    for (uv_timer_t* t : timers()) close(t);
}

}  // namespace queuer
