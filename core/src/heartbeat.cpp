// Heartbeat and worker status: refresh the worker row, obey STOPPED / STOPPING set from
// elsewhere.
#include "engine_util.hpp"

namespace queuer {

void Queuer::Engine::heartbeat() {
    if (heartbeat_in_flight) return;
    heartbeat_in_flight = true;
    struct Out {
        std::optional<std::string> status;
        std::optional<Error> error;
    };
    auto out = std::make_shared<Out>();
    db::Params p;
    p.add(q.worker_.rid).add(slots_busy);
    queue_work(
        &loop,
        [this, out, p = std::move(p)] {
            try {
                auto& c = ensure(control_conn, q.cfg_);
                auto r = c.exec(detail::kHeartbeat, p);
                if (r.rows() > 0) out->status = r.str(0, 0);
            } catch (const Error& e) {
                drop_if_broken(control_conn, e);
                out->error = e;
            }
        },
        [this, out] {
            heartbeat_in_flight = false;
            if (out->error) {
                if (heartbeat_failures++ % 20 == 0)
                    spdlog::warn("heartbeat failed: {}", out->error->what());
                return;
            }
            heartbeat_failures = 0;
            if (!out->status) {
                spdlog::error("worker row {} is gone (deleted by the master?); stopping",
                              q.worker_.rid);
                apply_worker_status(std::string(worker_status::stopped));
                return;
            }
            apply_worker_status(*out->status);
        });
}

// Tells every running task to stop and decides its job's outcome now (`action`); returns how
// many. Their slots free up once the tasks return and the outcome is written.
int Queuer::Engine::abandon_running(const char* reason, const char* action, const char* error) {
    int n = 0;
    for (auto& [id, r] : running) {
        if (r.abandoned) continue;
        r.ctx->cancel(reason);
        r.abandoned = true;
        Completion c;
        c.id = r.job.id;
        c.run = r.run;
        c.action = action;
        c.error = error;
        pending.push_back(std::move(c));
        ++n;
    }
    return n;
}

void Queuer::Engine::apply_worker_status(const std::string& status) {
    if (status == worker_status::stopped) {
        if (stopped_notified) return;
        // Immediate stop from elsewhere: cancel what runs, end those jobs CANCELLED.
        accepting = false;
        abandon_running("cancelled", "CANCELLED", "worker stopped");
        request_flush();
        stopped_notified = true;
        spdlog::info("worker {} was stopped", q.worker_.rid);
        if (on_stopped) on_stopped();
    } else if (status == worker_status::stopping) {
        if (!graceful_stop_requested) {
            graceful_stop_requested = true;
            accepting = false;
            spdlog::info("worker {} is stopping gracefully: no new jobs, {} running", q.worker_.rid,
                         slots_busy);
        }
        if (slots_busy == 0 && !stopped_notified) {
            stopped_notified = true;
            if (on_stopped) on_stopped();
        }
    }
}

}  // namespace queuer
