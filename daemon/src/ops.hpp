// queuerd's operations surface: the metrics (fed by the engine through EngineObserver, and read
// from the worker and a cached database query at scrape time) and the HTTP endpoint
// (http.listen): /metrics, /healthz, /readyz. Served on the HTTP server's own threads; nothing
// here runs on the engine loop or a task thread, and nothing an HTTP request does waits for the
// engine.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>

#include "queuer/admin.hpp"
#include "queuer/app_config.hpp"
#include "queuer/http.hpp"
#include "queuer/metrics.hpp"
#include "queuer/queuer.hpp"

namespace queuerd {

// Every metric name queuerd exports (checked against the dashboard and alert rules by tests).
// Registers them into `r` and returns the observer that feeds them.
class Metrics : public queuer::EngineObserver {
  public:
    explicit Metrics(queuer::metrics::Registry& r);
    void job_started(std::string_view task, double wait_seconds) override;
    void job_finished(std::string_view task, queuer::Outcome outcome, double run_seconds) override;
    void db_up(bool up) override;
    void db_reconnected() override;
    void master_changed(bool is_master) override;

    bool engine_db_up() const { return db_up_.load(); }
    bool engine_master() const { return master_.load(); }

  private:
    queuer::metrics::Family<queuer::metrics::Counter>& finished_;
    queuer::metrics::Family<queuer::metrics::Counter>& started_;
    queuer::metrics::Family<queuer::metrics::Histogram>& duration_;
    queuer::metrics::Family<queuer::metrics::Histogram>& wait_;
    queuer::metrics::Family<queuer::metrics::Counter>& reconnects_;
    std::atomic<bool> db_up_{true};
    std::atomic<bool> master_{false};
};

class Ops {
  public:
    // Registers the metrics. The queue-depth query uses its own connection (`db`), on its own
    // thread, at most every `depth_interval`.
    Ops(queuer::DatabaseConfig db, std::string version,
        std::chrono::milliseconds depth_interval = std::chrono::seconds(5));
    ~Ops();
    Ops(const Ops&) = delete;
    Ops& operator=(const Ops&) = delete;

    std::shared_ptr<queuer::EngineObserver> observer() { return metrics_; }
    queuer::metrics::Registry& registry() { return registry_; }

    // Starts the HTTP endpoint (throws queuer::Error naming the address).
    void start_http(const std::string& listen);
    std::string http_address() const;

    // The worker the endpoints report on (nullptr: none yet, or gone). Blocks until no request
    // is reading the old one.
    void attach(queuer::Queuer* worker);
    // Start-up state for /readyz before a worker exists ("waiting for the database", ...).
    void set_phase(std::string reason);
    void set_stopping();

    // Live jobs QUEUED+SCHEDULED from the last depth refresh (-1 unknown); asks for a refresh.
    int64_t queued_total();
    // Asks the depth thread for a refresh (no-op if fresh) and waits up to `wait` for it.
    void refresh_depth(std::chrono::milliseconds wait);

    // Stops the HTTP server and the depth thread. Idempotent.
    void stop();

  private:
    void depth_loop();
    queuer::http::Response healthz();
    queuer::http::Response readyz();
    queuer::http::Response metrics();

    queuer::metrics::Registry registry_;
    std::shared_ptr<Metrics> metrics_;
    queuer::DatabaseConfig db_;
    std::chrono::milliseconds depth_interval_;
    std::unique_ptr<queuer::http::Server> http_;

    mutable std::shared_mutex worker_mu_;
    queuer::Queuer* worker_ = nullptr;
    std::vector<std::string> known_tasks_;  // the worker's tasks: depth 0 is exported for them
    std::string phase_ = "starting";
    bool stopping_ = false;

    // Queue depth cache.
    std::mutex depth_mu_;
    std::condition_variable depth_cv_;
    std::vector<queuer::admin::LiveStat> depth_;
    bool depth_valid_ = false;
    bool depth_conn_failed_ = false;
    std::chrono::steady_clock::time_point depth_at_{};
    uint64_t depth_generation_ = 0;
    bool depth_wanted_ = false;
    bool depth_quit_ = false;
    std::thread depth_thread_;
    double start_time_ = 0;
};

}  // namespace queuerd
