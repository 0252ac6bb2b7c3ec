// The worker engine's loop: start, commands from other threads, state for stop(), shutdown.
// See engine.hpp for who owns what.
#include "engine_util.hpp"
#include "master_sql.hpp"

namespace queuer {

Queuer::Engine::Engine(Queuer& q_, EngineOptions o) : q(q_), opts(o) {
    uv_loop_init(&loop);
    loop.data = this;
    uv_async_init(&loop, &async, [](uv_async_t* h) { self<Engine>((uv_handle_t*)h)->on_async(); });
    async.data = this;
    for (uv_timer_t* t : {&poll_timer, &due_timer, &deadline_timer, &heartbeat_timer, &retry_timer,
                          &listen_timer, &tick_timer, &master_timer, &flush_timer}) {
        uv_timer_init(&loop, t);
        t->data = this;
    }
    sink->async = &async;
}

Queuer::Engine::~Engine() {
    if (thread.joinable()) stop(0ms);
    if (!started) {
        // Never started: close the handles we initialised and release the loop.
        {
            std::lock_guard g(sink->mu);
            sink->async = nullptr;
        }
        close_handles();
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
}

void Queuer::Engine::post(std::function<void()> fn) {
    {
        std::lock_guard g(cmd_mu);
        commands.push_back(std::move(fn));
    }
    std::lock_guard g(sink->mu);
    if (sink->async) uv_async_send(sink->async);
}

void Queuer::Engine::start(bool claim) {
    claim_jobs = claim;
    accepting = claim;
    connect_listener();  // throws when the database cannot be reached: start() fails clearly
    uv_timer_start(
        &heartbeat_timer, [](uv_timer_t* t) { self<Engine>((uv_handle_t*)t)->heartbeat(); },
        static_cast<uint64_t>(opts.heartbeat_interval.count()),
        static_cast<uint64_t>(opts.heartbeat_interval.count()));
    if (claim_jobs) {
        uv_timer_start(
            &poll_timer, [](uv_timer_t* t) { self<Engine>((uv_handle_t*)t)->request_claim(); }, 0,
            static_cast<uint64_t>(opts.poll_interval.count()));
    }
    auto tick = [](uv_timer_t* t) {
        self<Engine>((uv_handle_t*)t)->last_tick_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch())
                .count();
    };
    tick(&tick_timer);
    uv_timer_start(&tick_timer, tick, 1000, 1000);
    if (opts.master && claim_jobs) {
        auto every =
            std::chrono::duration_cast<std::chrono::milliseconds>(opts.master->master_poll_interval)
                .count();
        uv_timer_start(
            &master_timer, [](uv_timer_t* t) { self<Engine>((uv_handle_t*)t)->master_tick(); }, 0,
            static_cast<uint64_t>(std::max<int64_t>(every, 100)));
    }
    started = true;
    thread = std::thread([this] { uv_run(&loop, UV_RUN_DEFAULT); });
}

void Queuer::Engine::on_async() {
    std::vector<std::function<void()>> cmds;
    {
        std::lock_guard g(cmd_mu);
        cmds.swap(commands);
    }
    for (auto& c : cmds) c();
    std::vector<TaskDone> done;
    {
        std::lock_guard g(sink->mu);
        done.swap(sink->done);
    }
    for (auto& d : done) handle_done(std::move(d));
}

void Queuer::Engine::publish_state() {
    busy_count = slots_busy;
    std::lock_guard g(state_mu);
    // A claim on its way back counts as busy: stop() must not decide before its jobs are in.
    published_busy = slots_busy + (claim_in_flight ? 1 : 0);
    published_flushed = pending.empty() && !finish_in_flight;
    state_cv.notify_all();
}

void Queuer::Engine::close_handles() {
    auto close = [](auto* h) {
        if (!uv_is_closing((uv_handle_t*)h)) uv_close((uv_handle_t*)h, nullptr);
    };
    close(&async);
    for (uv_timer_t* t : {&poll_timer, &due_timer, &deadline_timer, &heartbeat_timer, &retry_timer,
                          &listen_timer, &tick_timer, &master_timer, &flush_timer})
        close(t);
    if (listen_poll_open) {
        listen_poll_open = false;
        close(&listen_poll);
    }
}

void Queuer::Engine::stop(std::chrono::milliseconds grace) {
    if (!thread.joinable()) return;
    // 1. No new claims.
    // Each wait below first waits for the loop to have run the step's command: a state
    // published before it (e.g. "0 busy" just before a claim returned) says nothing.
    auto reached = [this](int phase) {
        std::lock_guard g(state_mu);
        stop_phase = phase;
    };
    post([this, reached] {
        accepting = false;
        uv_timer_stop(&poll_timer);
        uv_timer_stop(&due_timer);
        reached(1);
        publish_state();
    });
    // 2. Let running tasks finish within the grace period.
    {
        std::unique_lock lk(state_mu);
        state_cv.wait_for(lk, grace, [&] { return stop_phase >= 1 && published_busy == 0; });
    }
    // 3. Tell the rest to stop and put their jobs back in the queue for another worker.
    post([this, reached] {
        int n = abandon_running("shutting down", "REQUEUE",
                                "worker shut down before the task finished");
        if (n) spdlog::info("shutdown: {} running jobs put back in the queue", n);
        uv_timer_stop(&retry_timer);
        reached(3);
        request_flush();
        publish_state();
    });
    // 4. Wait (bounded) until every result is written.
    {
        std::unique_lock lk(state_mu);
        if (!state_cv.wait_for(lk, 15s, [&] { return stop_phase >= 3 && published_flushed; }))
            spdlog::error(
                "shutdown: some job results could not be written; those jobs stay "
                "RUNNING until the master recovers them");
    }
    // 5. Close the loop.
    post([this] {
        {
            std::lock_guard g(sink->mu);
            sink->async = nullptr;
        }
        close_handles();
    });
    thread.join();
    if (master) {
        try {
            db::Params p;
            p.add(q.worker_.rid);
            q.pool().acquire()->exec(detail::kReleaseMaster, p);
            spdlog::info("released the master lock");
        } catch (const Error& e) {
            spdlog::warn("could not release the master lock (it expires by itself): {}", e.what());
        }
        master = false;
    }
    size_t stuck = pool.shutdown(5s);
    stuck_threads = stuck;
    if (stuck)
        spdlog::warn("shutdown: {} task threads ignore cancellation and were left running", stuck);
}

}  // namespace queuer
