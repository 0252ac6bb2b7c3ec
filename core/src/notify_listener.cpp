// The LISTEN connection: notifications on job, job_archive and worker, watched with uv_poll;
// reconnects with backoff when the server goes away.
#include <rapidjson/document.h>

#include "engine_util.hpp"

namespace queuer {

void Queuer::Engine::on_notification(const db::Notification& n) {
    rapidjson::Document d;
    d.Parse(n.payload.c_str());
    if (!d.IsObject()) return;
    JobEvent ev;
    if (d.HasMember("id") && d["id"].IsInt64()) ev.id = d["id"].GetInt64();
    if (d.HasMember("rid") && d["rid"].IsString()) ev.rid = d["rid"].GetString();
    if (d.HasMember("status") && d["status"].IsString()) ev.status = d["status"].GetString();
    if (n.channel == "job") {
        if (ev.status == status::queued || ev.status == status::scheduled) request_claim();
        if (on_update) on_update(ev);
    } else if (n.channel == "job_archive") {
        if (ev.status == status::cancelled) {
            if (Running* r = find_job(ev.rid)) {
                r->ctx->cancel("cancelled");
                r->abandoned = true;
                r->persisted = true;  // the canceller wrote the outcome
                release_if_done(r->run);
                spdlog::info("job {}: cancelled while running; the task was told", ev.rid);
            } else if (claim_jobs) {
                remember_cancel(ev.rid);  // a claim of it may still be on its way back
            }
        }
        if (on_ended) on_ended(ev);
    } else if (n.channel == "worker") {
        if (ev.rid == q.worker_.rid) heartbeat();
    }
}

void Queuer::Engine::connect_listener() {
    listen_conn = open_listener(q.cfg_);
    attach_listener();
}

std::unique_ptr<db::Connection> Queuer::Engine::open_listener(const DatabaseConfig& cfg) {
    auto c = std::make_unique<db::Connection>(db::Connection::open(cfg));
    for (const char* ch : {"job", "job_archive", "worker"}) c->listen(ch);
    return c;
}

void Queuer::Engine::attach_listener() {
    uv_poll_init(&loop, &listen_poll, listen_conn->socket());
    listen_poll.data = this;
    listen_poll_open = true;
    uv_poll_start(&listen_poll, UV_READABLE, [](uv_poll_t* h, int status, int) {
        auto* e = self<Engine>((uv_handle_t*)h);
        std::vector<db::Notification> notes;
        bool broken = status < 0;
        if (!broken) {
            try {
                notes = e->listen_conn->drain_notifications();
            } catch (const Error& err) {
                spdlog::warn("lost the database listener: {}; reconnecting", err.what());
                if (e->opts.observer) e->opts.observer->db_up(false);
                broken = true;
            }
        }
        for (const auto& n : notes) e->on_notification(n);
        if (broken) e->schedule_listener_reconnect();
    });
}

// Reconnects off the loop thread (a connect may wait up to connect_timeout), with backoff;
// logs the outage once, then every tenth attempt.
void Queuer::Engine::schedule_listener_reconnect() {
    if (listen_poll_open) {
        listen_poll_open = false;
        uv_poll_stop(&listen_poll);
        uv_close((uv_handle_t*)&listen_poll, nullptr);
    }
    listen_backoff = backoff(listen_backoff);
    uv_timer_start(
        &listen_timer,
        [](uv_timer_t* t) {
            auto* e = self<Engine>((uv_handle_t*)t);
            struct Out {
                std::unique_ptr<db::Connection> conn;
                std::optional<Error> error;
            };
            auto out = std::make_shared<Out>();
            detail::queue_work(
                &e->loop,
                [out, cfg = e->q.cfg_] {
                    try {
                        out->conn = open_listener(cfg);
                    } catch (const Error& err) {
                        out->error = err;
                    }
                },
                [e, out] {
                    if (uv_is_closing((uv_handle_t*)&e->async)) return;  // shutting down
                    if (out->error) {
                        if (e->listen_failures++ % 10 == 0)
                            spdlog::warn("database still unreachable: {}", out->error->what());
                        e->schedule_listener_reconnect();
                        return;
                    }
                    e->listen_conn = std::move(out->conn);
                    e->attach_listener();
                    e->listen_backoff = 0ms;
                    e->listen_failures = 0;
                    spdlog::info("database listener reconnected");
                    if (e->opts.observer) {
                        e->opts.observer->db_reconnected();
                        e->opts.observer->db_up(true);
                    }
                    e->request_claim();  // catch up on what we may have missed
                    e->request_flush();
                });
        },
        static_cast<uint64_t>(listen_backoff.count()), 0);
}

}  // namespace queuer
