// queuer::Client: enqueue and query jobs, workers and connections (the seed's API, in C++).
// A Client registers no worker; queuer::Queuer (queuer.hpp) adds the worker engine on top.
// All methods are thread-safe; database work uses a small connection pool.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "queuer/config.hpp"
#include "queuer/db.hpp"
#include "queuer/json.hpp"
#include "queuer/model.hpp"

namespace queuer {

class Cipher;

// A registered task, as returned by Queuer::add_task; jobs can name their task by it.
struct Task {
    std::string name;
};

// Names a task by string or by a registered Task.
class TaskRef {
  public:
    TaskRef(const char* name) : name_(name) {}
    TaskRef(std::string_view name) : name_(name) {}
    TaskRef(const std::string& name) : name_(name) {}
    TaskRef(const Task& task) : name_(task.name) {}
    const std::string& name() const { return name_; }

  private:
    std::string name_;
};

// A time bound: "DURATION ago" (on the database's clock) or an absolute time.
struct TimeBound {
    std::optional<double> ago_seconds;
    std::optional<TimePoint> at;
    bool set() const { return ago_seconds || at; }
};

struct JobQuery {
    std::string status;      // empty = any
    std::string search;      // case-insensitive substring of rid, task name, status, worker id
    std::string worker_rid;  // empty = any
    int64_t last_id = 0;     // keyset pagination: only ids below this (0 = from the newest)
    int limit = 100;         // 1..10000
    // Time window (since inclusive, until exclusive): live jobs by created_at, ended jobs by
    // updated_at (the time they ended).
    TimeBound since, until;
    std::string error;  // case-insensitive substring of the error text (ended jobs)
};

namespace detail {
struct ParamPack {
    std::string positional = "[";
    std::string keyed = "{}";
    bool first = true;
};
template <class T>
void pack_one(ParamPack& p, T&& v) {
    if constexpr (std::is_same_v<std::decay_t<T>, Keyed>) {
        p.keyed = v.json();
    } else {
        if (!p.first) p.positional += ',';
        p.first = false;
        p.positional += JsonValue(std::forward<T>(v)).text();
    }
}
template <class... Args>
ParamPack pack(Args&&... args) {
    ParamPack p;
    (pack_one(p, std::forward<Args>(args)), ...);
    p.positional += ']';
    return p;
}
}  // namespace detail

class Client {
  public:
    // Connects (pool of up to `pool_size`), applies migrations unless `migrate` is false.
    // An empty encryption key means no encryption.
    explicit Client(DatabaseConfig cfg, std::string_view encryption_key = {}, bool migrate = true,
                    size_t pool_size = 4);
    virtual ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // ---- adding jobs ----
    // Positional parameters are ordinary C++ values; a trailing queuer::Keyed holds keyed ones:
    //   client.add_job("echo", 1, "a", Keyed{{"name", "x"}});
    template <class... Args>
    Job add_job(const TaskRef& task, Args&&... args) {
        auto p = detail::pack(std::forward<Args>(args)...);
        return add_job_json(task.name(), p.positional, p.keyed, std::nullopt);
    }
    template <class... Args>
    Job add_job_with_options(const Options& options, const TaskRef& task, Args&&... args) {
        auto p = detail::pack(std::forward<Args>(args)...);
        return add_job_json(task.name(), p.positional, p.keyed, options);
    }
    // Inside the caller's open transaction on `tx` (BEGIN issued by the caller): the job exists
    // only if the caller commits.
    template <class... Args>
    Job add_job_tx(db::Connection& tx, const TaskRef& task, Args&&... args) {
        auto p = detail::pack(std::forward<Args>(args)...);
        return add_job_json_tx(tx, task.name(), p.positional, p.keyed, std::nullopt);
    }
    template <class... Args>
    Job add_job_with_options_tx(db::Connection& tx, const Options& options, const TaskRef& task,
                                Args&&... args) {
        auto p = detail::pack(std::forward<Args>(args)...);
        return add_job_json_tx(tx, task.name(), p.positional, p.keyed, options);
    }
    // The primitive under the templates: parameters as JSON text (array / object).
    Job add_job_json(std::string_view task, std::string_view parameters,
                     std::string_view parameters_keyed, std::optional<Options> options);
    Job add_job_json_tx(db::Connection& tx, std::string_view task, std::string_view parameters,
                        std::string_view parameters_keyed, std::optional<Options> options);
    // All or nothing, one COPY round trip; returns the new rids in input order.
    std::vector<std::string> add_jobs(const std::vector<BatchJob>& jobs);

    // ---- reading ----
    Job get_job(std::string_view rid);        // live jobs; Error(NotFound) otherwise
    Job get_job_ended(std::string_view rid);  // archived jobs; Error(NotFound) otherwise
    // Newest first, keyset-paginated by id.
    std::vector<Job> get_jobs(const JobQuery& q = {});
    std::vector<Job> get_jobs_ended(const JobQuery& q = {});
    std::vector<Job> get_jobs_by_worker_rid(std::string_view worker_rid, int64_t last_id = 0,
                                            int limit = 100);
    std::vector<Job> get_jobs_by_search(std::string_view search, int64_t last_id = 0,
                                        int limit = 100);

    // ---- changing ----
    // Ends a queued, scheduled or running job as CANCELLED (a running task is told through the
    // job_archive notification). Error(NotFound) if no live job has that rid.
    Job cancel_job(std::string_view rid);
    // Deletes an ended job from the archive (live jobs must be cancelled first).
    void delete_job(std::string_view rid);
    // A new job with the archived job's task, parameters and options.
    Job readd_job_from_archive(std::string_view rid);

    // The archived job once it has ended (also when it ended before the call), or nullopt after
    // `timeout`. Woken by the job_archive notification, no polling.
    std::optional<Job> wait_for_job_finished(std::string_view rid,
                                             std::chrono::milliseconds timeout);

    // ---- workers, master, connections ----
    Worker get_worker(std::string_view rid);
    std::vector<Worker> get_workers(int64_t last_id = 0, int limit = 100,
                                    std::string_view search = {});
    Master get_master();
    // Asks a worker to stop from anywhere: immediately (STOPPED: its running jobs are cancelled
    // and the process exits) or gracefully (STOPPING: no new claims, running jobs finish, then
    // STOPPED). The worker notices through a notification or its next heartbeat. Returns the
    // worker as updated; Error(NotFound) for an unknown rid, Error(Invalid) if already STOPPED.
    Worker stop_worker(std::string_view rid, bool graceful);
    std::vector<Connection> get_connections();

    const DatabaseConfig& db_config() const { return cfg_; }
    db::Pool& pool() { return *pool_; }
    bool encrypted() const { return cipher_ != nullptr; }

    // The default OnError merged into jobs added without one (the worker's default).
    void set_default_on_error(std::optional<OnError> e) { default_on_error_ = std::move(e); }

    // The form this database's job options are written in (queuer_settings 'compat', set by
    // `queuerctl migrate --compat`): read at construction, re-read at most every 30 s.
    CompatForm compat_form();

  protected:
    // What to do with a column that cannot be decrypted: throw Error(Crypto) (the engine, which
    // must not run such a job), or mark it in Job::unreadable and go on (listings, waits: one
    // foreign row never breaks them).
    enum class Unreadable { Throw, Mark };
    Job row_to_job(const db::Result& r, int row, Unreadable mode = Unreadable::Throw) const;
    CompatForm compat_form(db::Connection& c);
    // `raw_options`: the options column to write verbatim (a retry keeps the form its job was
    // written in); `options` must then be what they parse to. Otherwise `options` are written in
    // the database's form.
    Job insert_one(db::Connection& c, std::string_view task, std::string_view parameters,
                   std::string_view parameters_keyed, std::optional<Options> options,
                   const std::string* raw_options = nullptr);
    std::vector<Job> select_jobs(bool archive, const JobQuery& q);

    DatabaseConfig cfg_;
    std::unique_ptr<db::Pool> pool_;
    std::unique_ptr<Cipher> cipher_;
    std::optional<OnError> default_on_error_;

  private:
    std::mutex compat_mu_;
    std::optional<CompatForm> compat_;
    std::chrono::steady_clock::time_point compat_read_at_{};
};

// Column list every job query selects, in the order row_to_job reads.
extern const char* const kJobColumns;

}  // namespace queuer
