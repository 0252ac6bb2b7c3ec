// PgPipe: one PostgreSQL connection driven by a libuv loop, without ever blocking it. Statements
// go out in libpq's pipeline mode, each in a segment of its own (its own implicit transaction,
// so one failing statement never aborts another); replies come back in order and are handed to
// the callback given with the statement, on the loop thread. A connection can instead LISTEN
// and hand notifications over.
//
// Connecting is the one blocking libpq call (host name lookup, TLS, authentication): it runs on
// libuv's work pool, and the finished connection is handed to the loop. When the connection
// breaks, every statement in flight is failed with ErrorKind::Connection: its outcome is unknown
// (the server may have committed before the reply was lost); the owner decides what to do (the
// engine reconciles). The pipe then reconnects by itself with backoff (250 ms doubling to 5 s).
// Internal to queuer_core; loop thread only.
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "queuer/config.hpp"
#include "queuer/db.hpp"
#include "queuer/error.hpp"

namespace queuer::detail {

class PgPipe {
  public:
    // Exactly one of `result` and `error` is set.
    using Done = std::function<void(db::Result* result, const Error* error)>;
    struct Hooks {
        std::function<void(PgPipe&)> up;                   // connected (again)
        std::function<void(PgPipe&, const Error&)> down;   // lost (or a connect failed); the
                                                           // statements in flight were failed
        std::function<void(db::Notification&&)> notified;  // LISTEN mode only
    };

    // `name` appears in log lines ("claim", "finish", "listener", ...). With `listen` channels
    // the connection LISTENs on them after every connect and is not used for statements.
    // `setup` statements (e.g. SET ...) run on every new connection before it is used.
    PgPipe(uv_loop_t* loop, DatabaseConfig cfg, std::string name, std::vector<std::string> listen,
           Hooks hooks, std::vector<std::string> setup = {});
    // Only after close() and after the loop has run the close callbacks (uv_run returned).
    ~PgPipe();
    PgPipe(const PgPipe&) = delete;
    PgPipe& operator=(const PgPipe&) = delete;

    // Starts connecting (again, after close() it is not allowed).
    void open();
    // Closes the connection and stops reconnecting. Statements in flight are dropped without a
    // callback. Idempotent.
    void close();

    bool up() const { return conn_ != nullptr; }
    bool closed() const { return closed_; }
    size_t in_flight() const { return requests_.size(); }
    const std::string& name() const { return name_; }
    // How long the oldest statement in flight has been waiting (0 when none).
    std::chrono::milliseconds oldest_wait() const;

    // Sends a prepared statement (prepared on this connection on first use). Returns false,
    // without calling `done`, when the connection is not up. `done` is always called later,
    // never from inside send().
    bool send(const db::Statement& st, const db::Params& params, Done done);
    // Several statements, each in its own segment, in one write (one round trip).
    bool send_all(const std::vector<std::pair<const db::Statement*, const db::Params*>>& sts,
                  std::vector<Done> dones);

    // Fails everything in flight and reconnects (e.g. when a reply is overdue).
    void reset(const std::string& why);

  private:
    struct Request {
        Done done;
        std::string what;
        bool prepared_here = false;   // this segment also prepared the statement
        bool prepare_failed = false;  // ... and that preparation was refused
        int results = 0;              // results seen in this segment
        std::chrono::steady_clock::time_point sent_at;
        std::optional<db::Result> result;
        std::optional<Error> error;
    };

    bool queue_statement(const db::Statement& st, const db::Params& params, Done done);
    void flush();
    void on_io(int status, int events);
    void read_results();
    void drain_notifications();
    void fail(const Error& e);
    void defer_fail(Error e);
    void connect_now();
    void schedule_reconnect();
    void attach(pg_conn* c);
    void detach();
    void watch(bool writable);

    uv_loop_t* loop_;
    DatabaseConfig cfg_;
    std::string name_;
    std::vector<std::string> listen_;
    Hooks hooks_;
    std::vector<std::string> setup_;

    pg_conn* conn_ = nullptr;
    uv_poll_t* poll_ = nullptr;  // per connection; freed in its close callback
    bool want_write_ = false;
    std::unordered_set<std::string> prepared_;
    std::deque<Request> requests_;

    uv_timer_t retry_timer_{};  // reconnect backoff
    uv_timer_t fail_timer_{};   // defers a failure noticed inside send()
    std::optional<Error> deferred_;
    bool connecting_ = false;
    bool closed_ = false;
    bool opened_ = false;
    std::chrono::milliseconds backoff_{0};
};

}  // namespace queuer::detail
