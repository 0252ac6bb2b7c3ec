// PgPipe: see pg_pipe.hpp.
#include "pg_pipe.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>

#include "uv_check.hpp"

namespace queuer::detail {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

PgPipe::PgPipe(uv_loop_t* loop, DatabaseConfig cfg, std::string name,
               std::vector<std::string> listen, Hooks hooks, std::vector<std::string> setup)
    : loop_(loop),
      cfg_(std::move(cfg)),
      name_(std::move(name)),
      listen_(std::move(listen)),
      hooks_(std::move(hooks)),
      setup_(std::move(setup)) {
    uv_check(uv_timer_init(loop_, &retry_timer_), "uv_timer_init");
    uv_check(uv_timer_init(loop_, &fail_timer_), "uv_timer_init");
    retry_timer_.data = this;
    fail_timer_.data = this;
}

PgPipe::~PgPipe() {
    // close() ran and the loop has closed our handles; a connection can only be left here when
    // close() was never called (a bug), so do not leak it.
    if (conn_) PQfinish(conn_);
}

void PgPipe::open() {
    if (opened_ || closed_) return;
    opened_ = true;
    connect_now();
}

void PgPipe::close() {
    if (closed_) return;
    closed_ = true;
    requests_.clear();
    detach();
    for (uv_timer_t* t : {&retry_timer_, &fail_timer_})
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(t)))
            uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
}

std::chrono::milliseconds PgPipe::oldest_wait() const {
    if (requests_.empty()) return 0ms;
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() -
                                                                 requests_.front().sent_at);
}

// ---- connecting ----

void PgPipe::connect_now() {
    if (closed_ || conn_ || connecting_) return;
    connecting_ = true;
    struct Work {
        uv_work_t req{};
        PgPipe* self = nullptr;
        DatabaseConfig cfg;
        std::vector<std::string> listen, setup;
        pg_conn* conn = nullptr;
        std::optional<Error> error;
    };
    auto* w = new Work;
    w->req.data = w;
    w->self = this;
    w->cfg = cfg_;
    w->listen = listen_;
    w->setup = setup_;
    int rc = uv_queue_work(
        loop_, &w->req,
        [](uv_work_t* req) {
            auto* w = static_cast<Work*>(req->data);
            try {
                auto c = db::Connection::open(w->cfg);
                for (const auto& sql : w->setup) c.exec(sql);
                for (const auto& ch : w->listen) c.listen(ch);
                w->conn = c.release();
            } catch (const Error& e) {
                w->error = e;
            }
        },
        [](uv_work_t* req, int) {
            std::unique_ptr<Work> w(static_cast<Work*>(req->data));
            PgPipe* self = w->self;
            self->connecting_ = false;
            if (self->closed_) {
                if (w->conn) PQfinish(w->conn);
                return;
            }
            if (w->error) {
                if (self->hooks_.down) self->hooks_.down(*self, *w->error);
                self->schedule_reconnect();
                return;
            }
            self->attach(w->conn);
        });
    if (rc != 0) {
        delete w;
        connecting_ = false;
        uv_log_failure(rc, "uv_queue_work (connect)");
        schedule_reconnect();
    }
}

void PgPipe::schedule_reconnect() {
    if (closed_) return;
    backoff_ =
        backoff_.count() == 0 ? 250ms : std::min<std::chrono::milliseconds>(backoff_ * 2, 5s);
    uv_check(uv_timer_start(
                 &retry_timer_, [](uv_timer_t* t) { static_cast<PgPipe*>(t->data)->connect_now(); },
                 static_cast<uint64_t>(backoff_.count()), 0),
             "uv_timer_start");
}

void PgPipe::attach(pg_conn* c) {
    if (PQsetnonblocking(c, 1) != 0 || (listen_.empty() && PQenterPipelineMode(c) != 1)) {
        Error e(ErrorKind::Connection, fmt::format("cannot set up the {} connection: {}", name_,
                                                   db::connection_message(c)));
        PQfinish(c);
        if (hooks_.down) hooks_.down(*this, e);
        schedule_reconnect();
        return;
    }
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop_, poll_, PQsocket(c));
    if (rc != 0) {
        delete poll_;
        poll_ = nullptr;
        PQfinish(c);
        uv_log_failure(rc, "uv_poll_init");
        schedule_reconnect();
        return;
    }
    conn_ = c;
    poll_->data = this;
    prepared_.clear();
    want_write_ = false;
    backoff_ = 0ms;
    watch(false);
    if (hooks_.up) hooks_.up(*this);
    // Notifications may have arrived with the LISTEN replies already.
    if (conn_ && !listen_.empty()) drain_notifications();
}

// Closes the poll handle; the connection is finished in its close callback (never close a
// socket libuv still watches).
void PgPipe::detach() {
    if (!conn_) return;
    auto* p = poll_;
    p->data = conn_;
    conn_ = nullptr;
    poll_ = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) {
        PQfinish(static_cast<pg_conn*>(h->data));
        delete reinterpret_cast<uv_poll_t*>(h);
    });
}

void PgPipe::watch(bool writable) {
    if (!poll_) return;
    want_write_ = writable;
    int rc = uv_poll_start(poll_, UV_READABLE | (writable ? UV_WRITABLE : 0),
                           [](uv_poll_t* h, int status, int events) {
                               static_cast<PgPipe*>(h->data)->on_io(status, events);
                           });
    if (rc != 0)
        defer_fail(Error(ErrorKind::Connection, fmt::format("uv_poll_start: {}", uv_strerror(rc))));
}

// ---- failing ----

void PgPipe::fail(const Error& e) {
    if (closed_) return;
    uv_check(uv_timer_stop(&fail_timer_), "uv_timer_stop");
    deferred_.reset();
    auto reqs = std::move(requests_);
    requests_.clear();
    detach();
    for (auto& r : reqs) {
        Error err(
            ErrorKind::Connection,
            fmt::format("{} (the {} connection was lost; the outcome is unknown)", e.what(), name_),
            e.sqlstate());
        r.done(nullptr, &err);
        if (closed_) return;
    }
    if (hooks_.down) hooks_.down(*this, e);
    schedule_reconnect();
}

void PgPipe::defer_fail(Error e) {
    if (!deferred_) deferred_ = std::move(e);
    uv_check(uv_timer_start(
                 &fail_timer_,
                 [](uv_timer_t* t) {
                     auto* self = static_cast<PgPipe*>(t->data);
                     if (!self->deferred_) return;
                     Error err = *self->deferred_;
                     self->fail(err);
                 },
                 0, 0),
             "uv_timer_start");
}

void PgPipe::reset(const std::string& why) {
    if (!conn_) return;
    fail(Error(ErrorKind::Connection, why));
}

// ---- sending ----

bool PgPipe::queue_statement(const db::Statement& st, const db::Params& params, Done done) {
    bool prepare = !prepared_.count(st.name);
    if (prepare) {
        if (PQsendPrepare(conn_, st.name, st.sql, 0, nullptr) != 1) {
            defer_fail(Error(ErrorKind::Connection, db::connection_message(conn_)));
            requests_.push_back({std::move(done), st.name, false, false, 0, steady::now(), {}, {}});
            return true;
        }
        prepared_.insert(st.name);
    }
    auto ptrs = params.pointers();
    if (PQsendQueryPrepared(conn_, st.name, static_cast<int>(ptrs.size()), ptrs.data(), nullptr,
                            nullptr, 0) != 1 ||
        PQpipelineSync(conn_) != 1) {
        defer_fail(Error(ErrorKind::Connection, db::connection_message(conn_)));
    }
    requests_.push_back({std::move(done), st.name, prepare, false, 0, steady::now(), {}, {}});
    return true;
}

bool PgPipe::send(const db::Statement& st, const db::Params& params, Done done) {
    if (!conn_ || closed_ || !listen_.empty()) return false;
    queue_statement(st, params, std::move(done));
    flush();
    return true;
}

bool PgPipe::send_all(const std::vector<std::pair<const db::Statement*, const db::Params*>>& sts,
                      std::vector<Done> dones) {
    if (!conn_ || closed_ || !listen_.empty()) return false;
    for (size_t i = 0; i < sts.size(); ++i)
        queue_statement(*sts[i].first, *sts[i].second, std::move(dones[i]));
    flush();
    return true;
}

void PgPipe::flush() {
    if (!conn_) return;
    int rc = PQflush(conn_);
    if (rc < 0) {
        defer_fail(Error(ErrorKind::Connection, db::connection_message(conn_)));
    } else if ((rc == 1) != want_write_) {
        watch(rc == 1);
    }
}

// ---- receiving ----

void PgPipe::on_io(int status, int events) {
    if (!conn_) return;
    if (status < 0) {
        fail(Error(ErrorKind::Connection, fmt::format("socket error: {}", uv_strerror(status))));
        return;
    }
    if (events & UV_WRITABLE) {
        flush();
        if (!conn_) return;
    }
    if (events & UV_READABLE) {
        if (PQconsumeInput(conn_) != 1) {
            fail(Error(ErrorKind::Connection, db::connection_message(conn_)));
            return;
        }
        if (listen_.empty())
            read_results();
        else
            drain_notifications();
    }
}

void PgPipe::drain_notifications() {
    while (conn_) {
        PGnotify* n = PQnotifies(conn_);
        if (!n) break;
        db::Notification note{n->relname, n->extra ? n->extra : ""};
        PQfreemem(n);
        if (hooks_.notified) hooks_.notified(std::move(note));
    }
    if (conn_ && PQstatus(conn_) != CONNECTION_OK)
        fail(Error(ErrorKind::Connection, db::connection_message(conn_)));
}

// Each request is one pipeline segment: [prepare result, NULL,] query results, NULL, SYNC.
// The request completes at its SYNC with its last result or its first error.
void PgPipe::read_results() {
    int nulls = 0;
    while (conn_ && !requests_.empty()) {
        if (PQisBusy(conn_)) break;
        PGresult* r = PQgetResult(conn_);
        if (!r) {
            if (++nulls > 1) break;  // nothing more until more input arrives
            continue;
        }
        nulls = 0;
        Request& req = requests_.front();
        switch (PQresultStatus(r)) {
            case PGRES_PIPELINE_SYNC: {
                PQclear(r);
                Request done = std::move(req);
                requests_.pop_front();
                // A statement whose preparation failed (e.g. its table did not exist yet) is
                // prepared again next time.
                if (done.prepare_failed) prepared_.erase(done.what);
                if (done.error) {
                    done.done(nullptr, &*done.error);
                } else if (done.result) {
                    done.done(&*done.result, nullptr);
                } else {
                    db::Result empty;
                    done.done(&empty, nullptr);
                }
                if (closed_) return;
                break;
            }
            case PGRES_TUPLES_OK:
            case PGRES_COMMAND_OK:
                ++req.results;
                req.result.emplace(r);
                break;
            case PGRES_PIPELINE_ABORTED:
                if (!req.error)
                    req.error = Error(ErrorKind::Database,
                                      fmt::format("statement {} was not run", req.what));
                PQclear(r);
                break;
            default: {
                if (req.prepared_here && req.results++ == 0) req.prepare_failed = true;
                if (!req.error) {
                    req.error =
                        db::result_error(conn_, r, fmt::format("statement {} failed", req.what));
                    if (req.error->kind() == ErrorKind::Connection) {
                        PQclear(r);
                        fail(*req.error);
                        return;
                    }
                }
                PQclear(r);
                break;
            }
        }
    }
    if (conn_ && PQstatus(conn_) != CONNECTION_OK)
        fail(Error(ErrorKind::Connection, db::connection_message(conn_)));
}

}  // namespace queuer::detail
