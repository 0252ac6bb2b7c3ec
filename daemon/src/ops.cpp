// queuerd's metrics and HTTP endpoints: see ops.hpp.
#include "ops.hpp"

#include <fmt/format.h>
#include <queuer/plugin.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "queuer/error.hpp"

namespace queuerd {

namespace m = queuer::metrics;

// ---- Metrics (the engine's observer) ----

Metrics::Metrics(m::Registry& r)
    : finished_(r.counter("queuerd_jobs_finished_total",
                          "Job runs ended, by task and outcome (SUCCEEDED, FAILED, CANCELLED, "
                          "RETRIED, REQUEUED).",
                          {"task", "status"})),
      started_(r.counter("queuerd_jobs_started_total", "Task calls started, by task.", {"task"})),
      duration_(r.histogram("queuerd_job_duration_seconds",
                            "Run time of a task call (one attempt), by task.", {"task"},
                            m::duration_buckets())),
      wait_(r.histogram("queuerd_job_wait_seconds",
                        "Time from a job's due time (scheduled_at, else created_at) until its "
                        "task started, by task.",
                        {"task"}, m::duration_buckets())),
      reconnects_(r.counter("queuerd_db_reconnects_total",
                            "Database connections of the engine re-established after a loss.")) {
    reconnects_.with();  // exported as 0 from the start
}

void Metrics::job_started(std::string_view task, double wait_seconds) {
    std::string t(task);
    started_.with({t}).inc();
    wait_.with({t}).observe(wait_seconds < 0 ? 0 : wait_seconds);
}

void Metrics::job_finished(std::string_view task, queuer::Outcome outcome, double run_seconds) {
    std::string t(task);
    finished_.with({t, queuer::to_string(outcome)}).inc();
    if (run_seconds > 0) duration_.with({t}).observe(run_seconds);
}

void Metrics::db_up(bool up) {
    db_up_ = up;
}

void Metrics::db_reconnected() {
    reconnects_.with().inc();
}

void Metrics::master_changed(bool is_master) {
    master_ = is_master;
}

// ---- Ops ----

Ops::Ops(queuer::DatabaseConfig db, std::string version, std::chrono::milliseconds depth_interval)
    : db_(std::move(db)), depth_interval_(depth_interval) {
    metrics_ = std::make_shared<Metrics>(registry_);
    start_time_ =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto worker_value = [this](auto read) {
        return [this, read]() -> std::vector<std::pair<m::LabelValues, double>> {
            std::shared_lock lk(worker_mu_);
            if (!worker_) return {};
            return {{{}, static_cast<double>(read(*worker_))}};
        };
    };
    registry_.gauge_func("queuerd_jobs_running", "Jobs this worker is running now.", {},
                         worker_value([](const queuer::Queuer& w) { return w.running_jobs(); }));
    registry_.gauge_func("queuerd_max_concurrency", "Jobs this worker runs at most at once.", {},
                         worker_value([](const queuer::Queuer& w) { return w.max_concurrency(); }));
    registry_.gauge_func("queuerd_is_master", "1 while this worker holds the master role, else 0.",
                         {}, [this]() -> std::vector<std::pair<m::LabelValues, double>> {
                             std::shared_lock lk(worker_mu_);
                             bool master = worker_ ? worker_->is_master() : false;
                             return {{{}, master ? 1.0 : 0.0}};
                         });
    registry_.gauge_func(
        "queuerd_db_up",
        "1 while the database answers (the engine's connections and the queue-depth query), "
        "else 0.",
        {}, [this]() -> std::vector<std::pair<m::LabelValues, double>> {
            bool up;
            {
                std::shared_lock lk(worker_mu_);
                up = worker_ != nullptr && metrics_->engine_db_up();
            }
            {
                std::lock_guard g(depth_mu_);
                if (depth_conn_failed_) up = false;
            }
            return {{{}, up ? 1.0 : 0.0}};
        });
    registry_.gauge_func("queuerd_ready",
                         "1 while registered, connected and listening (what /readyz says), "
                         "else 0.",
                         {}, [this]() -> std::vector<std::pair<m::LabelValues, double>> {
                             std::shared_lock lk(worker_mu_);
                             bool ready =
                                 worker_ && !stopping_ && worker_->not_ready_reason().empty();
                             return {{{}, ready ? 1.0 : 0.0}};
                         });
    registry_.gauge_func(
        "queuerd_queue_depth",
        "Live jobs in the database by task and status (QUEUED, SCHEDULED, RUNNING), all "
        "workers; read at most every few seconds.",
        {"task", "status"}, [this]() {
            std::vector<std::pair<m::LabelValues, double>> out;
            std::vector<std::string> tasks;
            {
                std::shared_lock lk(worker_mu_);
                tasks = known_tasks_;
            }
            std::lock_guard g(depth_mu_);
            if (!depth_valid_) return out;
            std::set<m::LabelValues> seen;
            for (const auto& s : depth_) {
                out.push_back({{s.task_name, s.status}, static_cast<double>(s.count)});
                seen.insert({s.task_name, s.status});
            }
            // An empty queue of a task this worker offers reads 0, not "no data".
            for (const auto& t : tasks)
                for (const char* st : {"QUEUED", "SCHEDULED", "RUNNING"})
                    if (!seen.count({t, st})) out.push_back({{t, st}, 0.0});
            return out;
        });
    registry_.gauge_func(
        "queuerd_queue_oldest_age_seconds",
        "By task and status: how long the oldest QUEUED or SCHEDULED job has been due, or the "
        "longest RUNNING job has run (from the same query as queuerd_queue_depth).",
        {"task", "status"}, [this]() {
            std::vector<std::pair<m::LabelValues, double>> out;
            std::lock_guard g(depth_mu_);
            if (!depth_valid_) return out;
            for (const auto& s : depth_) out.push_back({{s.task_name, s.status}, s.oldest_age_s});
            return out;
        });
    std::string abi = fmt::format("{}.{}", QUEUER_PLUGIN_ABI_MAJOR, QUEUER_PLUGIN_ABI_MINOR);
    registry_.gauge_func("queuerd_build_info", "Always 1; the version and plugin ABI as labels.",
                         {"version", "abi"},
                         [version, abi]() -> std::vector<std::pair<m::LabelValues, double>> {
                             return {{{version, abi}, 1.0}};
                         });
    registry_.gauge_func("queuerd_start_time_seconds",
                         "When this queuerd started, in seconds since the Unix epoch.", {},
                         [this]() -> std::vector<std::pair<m::LabelValues, double>> {
                             return {{{}, start_time_}};
                         });
    // The standard process gauges (for the idle-memory target and fd leaks).
    registry_.gauge_func(
        "process_resident_memory_bytes", "Resident memory of queuerd in bytes.", {},
        []() -> std::vector<std::pair<m::LabelValues, double>> {
            std::ifstream f("/proc/self/statm");
            long size = 0, resident = 0;
            if (!(f >> size >> resident)) return {};
            return {
                {{}, static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE))}};
        });
    registry_.gauge_func(
        "process_open_fds", "Open file descriptors of queuerd.", {},
        []() -> std::vector<std::pair<m::LabelValues, double>> {
            std::error_code ec;
            double n = 0;
            for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
                 !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
                ++n;
            if (ec) return {};
            return {{{}, n}};
        });
    depth_thread_ = std::thread([this] { depth_loop(); });
}

Ops::~Ops() {
    stop();
}

void Ops::stop() {
    if (http_) {
        http_->stop();
        http_.reset();
    }
    {
        std::lock_guard g(depth_mu_);
        depth_quit_ = true;
        depth_cv_.notify_all();
    }
    if (depth_thread_.joinable()) depth_thread_.join();
}

void Ops::start_http(const std::string& listen) {
    queuer::http::Options o;
    o.listen = listen;
    o.server_name = "queuerd";
    o.max_connections = 32;
    auto server = std::make_unique<queuer::http::Server>(o);
    server->route("GET", "/metrics", [this](const queuer::http::Request&) { return metrics(); });
    server->route("GET", "/healthz", [this](const queuer::http::Request&) { return healthz(); });
    server->route("GET", "/readyz", [this](const queuer::http::Request&) { return readyz(); });
    server->route("GET", "/", [](const queuer::http::Request&) {
        return queuer::http::Response::text(
            200, "queuerd: /metrics (Prometheus), /healthz (event loop), /readyz (ready)\n");
    });
    server->start();
    http_ = std::move(server);
}

std::string Ops::http_address() const {
    return http_ ? http_->address() : std::string();
}

void Ops::attach(queuer::Queuer* worker) {
    std::unique_lock lk(worker_mu_);
    worker_ = worker;
    if (worker) known_tasks_ = worker->worker().available_tasks;
}

void Ops::set_phase(std::string reason) {
    std::unique_lock lk(worker_mu_);
    phase_ = std::move(reason);
}

void Ops::set_stopping() {
    std::unique_lock lk(worker_mu_);
    stopping_ = true;
}

queuer::http::Response Ops::healthz() {
    std::shared_lock lk(worker_mu_);
    if (!worker_) return queuer::http::Response::text(200, "starting: " + phase_ + "\n");
    if (stopping_) return queuer::http::Response::text(200, "ok (stopping)\n");
    if (worker_->loop_healthy()) return queuer::http::Response::text(200, "ok\n");
    return queuer::http::Response::text(503, "the engine loop has not turned for 5 s\n");
}

queuer::http::Response Ops::readyz() {
    std::shared_lock lk(worker_mu_);
    if (stopping_) return queuer::http::Response::text(503, "stopping\n");
    if (!worker_) return queuer::http::Response::text(503, phase_ + "\n");
    std::string why = worker_->not_ready_reason();
    if (why.empty()) return queuer::http::Response::text(200, "ready\n");
    return queuer::http::Response::text(503, why + "\n");
}

queuer::http::Response Ops::metrics() {
    refresh_depth(std::chrono::seconds(2));
    queuer::http::Response r = queuer::http::Response::text(200, registry_.render());
    r.content_type = m::kContentType;
    return r;
}

int64_t Ops::queued_total() {
    refresh_depth(std::chrono::milliseconds(0));
    std::lock_guard g(depth_mu_);
    if (!depth_valid_) return -1;
    int64_t n = 0;
    for (const auto& s : depth_)
        if (s.status == "QUEUED" || s.status == "SCHEDULED") n += s.count;
    return n;
}

void Ops::refresh_depth(std::chrono::milliseconds wait) {
    std::unique_lock lk(depth_mu_);
    auto now = std::chrono::steady_clock::now();
    if (depth_generation_ > 0 && now - depth_at_ < depth_interval_) return;  // fresh enough
    depth_wanted_ = true;
    depth_cv_.notify_all();
    if (wait.count() <= 0) return;
    uint64_t gen = depth_generation_;
    depth_cv_.wait_for(lk, wait, [&] { return depth_generation_ != gen || depth_quit_; });
}

void Ops::depth_loop() {
    std::unique_ptr<queuer::db::Connection> conn;
    bool logged_failure = false;
    std::unique_lock lk(depth_mu_);
    for (;;) {
        depth_cv_.wait(lk, [&] { return depth_quit_ || depth_wanted_; });
        if (depth_quit_) return;
        // However often it is asked for, the query runs at most once per interval.
        auto next = depth_at_ + depth_interval_;
        if (depth_generation_ > 0 && std::chrono::steady_clock::now() < next) {
            depth_cv_.wait_until(lk, next, [&] { return depth_quit_; });
            if (depth_quit_) return;
        }
        depth_wanted_ = false;
        lk.unlock();
        std::vector<queuer::admin::LiveStat> fresh;
        bool ok = false, conn_failed = false;
        try {
            if (!conn || !conn->ok())
                conn = std::make_unique<queuer::db::Connection>(queuer::db::Connection::open(db_));
            fresh = queuer::admin::live_stats(*conn);
            ok = true;
            if (logged_failure) spdlog::info("queue depth: the database answers again");
            logged_failure = false;
        } catch (const queuer::Error& e) {
            conn_failed = e.kind() == queuer::ErrorKind::Connection;
            if (conn_failed) conn.reset();
            // Once per outage, not once per refresh.
            if (!logged_failure) spdlog::warn("queue depth: {}", e.what());
            logged_failure = true;
        } catch (const std::exception& e) {
            if (!logged_failure) spdlog::warn("queue depth: {}", e.what());
            logged_failure = true;
        }
        lk.lock();
        if (ok) depth_ = std::move(fresh);
        depth_valid_ = ok;
        depth_conn_failed_ = conn_failed;
        depth_at_ = std::chrono::steady_clock::now();
        ++depth_generation_;
        depth_cv_.notify_all();
    }
}

}  // namespace queuerd
