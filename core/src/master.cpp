// The master's pass: take or renew the lock, mark stale workers, recover their jobs, delete old
// workers, apply archive retention. Runs on libuv's thread pool with its own connection; the
// loop only schedules it.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "engine.hpp"
#include "engine_sql.hpp"
#include "master_sql.hpp"
#include "queuer/error.hpp"

namespace queuer {

namespace {
double seconds(std::chrono::nanoseconds d) {
    return std::chrono::duration<double>(d).count();
}
}  // namespace

void Queuer::Engine::master_tick() {
    if (master_in_flight || !opts.master || !accepting) return;
    master_in_flight = true;
    struct Out {
        bool is_master = false;
        int64_t stale = 0, requeued = 0, failed = 0, deleted = 0, expired = 0;
        bool retention_applied = false;
        std::optional<Error> error;
    };
    auto out = std::make_shared<Out>();
    MasterSettings s = *opts.master;
    bool retention_done = retention_applied;
    detail::queue_work(
        &loop,
        [this, out, s, retention_done] {
            try {
                if (!master_conn || !master_conn->ok())
                    master_conn = std::make_unique<db::Connection>(db::Connection::open(q.cfg_));
                auto& c = *master_conn;
                db::Params take;
                take.add(q.worker_.id).add(q.worker_.rid).add(s.to_json());
                take.add(fmt::format("{}", seconds(s.master_lock_timeout)));
                out->is_master = c.exec(detail::kTakeMaster, take).rows() > 0;
                if (!out->is_master) return;
                db::Params sweep;
                sweep.add(fmt::format("{}", seconds(s.worker_stale_threshold)));
                sweep.add(fmt::format("{}", seconds(s.worker_delete_threshold)));
                sweep.add(q.worker_.rid);
                auto r = c.exec(detail::kMasterSweep, sweep);
                out->stale = r.i64(0, 0);
                out->requeued = r.i64(0, 1);
                out->failed = r.i64(0, 2);
                out->deleted = r.i64(0, 3);
                if (s.retention_archive.count() <= 0) return;
                bool hyper =
                    c.exec("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").rows() > 0 &&
                    c.exec(
                         "SELECT 1 FROM timescaledb_information.hypertables"
                         " WHERE hypertable_name = 'job_archive'"
                         " AND hypertable_schema = current_schema()")
                            .rows() > 0;
                if (hyper) {
                    // TimescaleDB drops whole chunks itself; (re)install the policy once.
                    if (!retention_done) {
                        db::Params p;
                        p.add(fmt::format("{} seconds", seconds(s.retention_archive)));
                        c.exec("SELECT remove_retention_policy('job_archive', if_exists => TRUE)");
                        c.exec(
                            "SELECT add_retention_policy('job_archive', "
                            "drop_after => $1::interval)",
                            p);
                        out->retention_applied = true;
                    }
                    return;
                }
                db::Params ret;
                ret.add(fmt::format("{}", seconds(s.retention_archive)));
                for (int i = 0; i < 20; ++i) {  // bounded: at most 100,000 rows per pass
                    auto n = c.exec(detail::kRetentionBatch, ret).affected();
                    out->expired += n;
                    if (n < 5000) break;
                }
            } catch (const Error& e) {
                if (e.kind() == ErrorKind::Connection) master_conn.reset();
                out->error = e;
            }
        },
        [this, out] {
            master_in_flight = false;
            if (out->error) {
                spdlog::warn("master pass failed: {}", out->error->what());
                return;
            }
            if (out->retention_applied) retention_applied = true;
            if (out->is_master != master.load()) {
                master = out->is_master;
                if (opts.observer) opts.observer->master_changed(out->is_master);
                if (out->is_master)
                    spdlog::info("this worker is now the master");
                else
                    spdlog::info("this worker is no longer the master");
            }
            if (out->stale || out->requeued || out->failed || out->deleted)
                spdlog::info(
                    "master: {} stale workers stopped, {} of their jobs requeued, {} "
                    "failed (no retries left), {} old workers deleted",
                    out->stale, out->requeued, out->failed, out->deleted);
            if (out->expired) spdlog::info("master: {} expired archive rows deleted", out->expired);
            if (out->requeued) request_claim();
        });
}

}  // namespace queuer
