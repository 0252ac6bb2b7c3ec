// Fixture of the fault suite: real queuerd processes (the example plugin and the fault-task
// plugin), optionally connected through a TcpProxy that the test breaks on purpose, while the
// test's own checks connect to PostgreSQL directly. Every scenario ends with the same audit:
// each job is in job_archive exactly once, nothing is left RUNNING, and the executions the
// `count` task recorded are counted (duplicates are reported, and allowed only for jobs a killed
// or frozen worker was running).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../e2e/e2e.hpp"
#include "support/tcp_proxy.hpp"

namespace queuer::test {

inline std::string fault_plugin() {
    return build_dir() + "/tests/faults/libqueuer_fault_tasks.so";
}

struct WorkerSpec {
    std::string name = "w";
    int max_concurrency = 8;
    std::string isolation = "thread";
    std::string shutdown_grace = "10s";
    std::string heartbeat = "200ms";
    // master.worker_stale_threshold: long unless the scenario is about dead workers, so that a
    // heartbeat delayed by a slow machine never makes a live worker "dead".
    std::string stale = "60s";
    std::string on_error;          // lines under worker.on_error (4 spaces indent); "" = none
    std::string max_result_bytes;  // worker.max_result_bytes; "" = default
    bool examples = true;          // load the example plugin (echo, sleep, crash, ...)
    bool fault_tasks = true;       // load the fault-task plugin (count, poison)
    std::string key;               // QUEUER_ENCRYPTION_KEY; "" = none
    std::string spool_dir;         // worker.spool_dir; "" = none
    TcpProxy* via = nullptr;       // connect to PostgreSQL through this proxy
};

// One execution recorded by the count (or poison) task.
struct Execution {
    long pid = 0;
    int attempt = 0;
};

class FaultTest : public E2E {
  protected:
    FaultTest() : count_path_(dir_ + "/count.txt") {}
    ~FaultTest() override {
        // Processes first (they may be stopped: SIGKILL works on those too), then the proxies.
        daemons_.clear();
    }

    std::string count_path() const { return count_path_; }

    std::string write_worker_config(const WorkerSpec& s) {
        std::string path = dir_ + "/" + s.name + ".yaml";
        std::ofstream f(path);
        f << "worker:\n"
          << "  name: " << s.name << "\n"
          << "  max_concurrency: " << s.max_concurrency << "\n"
          << "  heartbeat_interval: " << s.heartbeat << "\n"
          << "  poll_interval: 1s\n"
          << "  shutdown_grace: " << s.shutdown_grace << "\n"
          << "  isolation: " << s.isolation << "\n";
        if (!s.max_result_bytes.empty()) f << "  max_result_bytes: " << s.max_result_bytes << "\n";
        f << "  spool_dir: \"" << s.spool_dir << "\"\n";
        if (!s.on_error.empty()) f << "  on_error:\n" << s.on_error;
        f << "plugins:\n";
        if (s.examples) f << "  - path: " << examples_plugin() << "\n";
        if (s.fault_tasks) f << "  - path: " << fault_plugin() << "\n";
        f << "master:\n"
          << "  master_lock_timeout: 2s\n"
          << "  master_poll_interval: 300ms\n"
          << "  worker_stale_threshold: " << s.stale << "\n"
          << "  worker_delete_threshold: 1h\n"
          << "  retention_archive: 30d\n"
          << "  job_stale_threshold: 10m\n"
          << "logging:\n"
          << "  level: info\n";
        return path;
    }

    // Starts queuerd and waits (generously) until it says it is ready.
    Process& start_worker(const WorkerSpec& s) {
        auto cfg = write_worker_config(s);
        Env extra;
        extra["QUEUER_ENCRYPTION_KEY"] = s.key.empty() ? "<unset>" : s.key;
        if (s.via) {
            extra["QUEUER_DB_HOST"] = s.via->host();
            extra["QUEUER_DB_PORT"] = std::to_string(s.via->port());
        }
        auto log = dir_ + "/" + s.name + "." + std::to_string(daemons_.size()) + ".log";
        daemons_.push_back(std::make_unique<Process>(
            std::vector<std::string>{queuerd_bin(), "--config", cfg}, env(extra), log));
        auto& d = *daemons_.back();
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!d.log_contains("ready:")) {
            if (!d.alive() || std::chrono::steady_clock::now() > end)
                throw std::runtime_error("queuerd " + s.name + " did not become ready:\n" +
                                         tail(d.log()));
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return d;
    }

    // The test's own connection, straight to PostgreSQL; reopened when it broke.
    db::Connection& db() {
        if (!conn_ || !conn_->ok()) conn_ = std::make_unique<db::Connection>(schema.connect());
        return *conn_;
    }
    int64_t scalar(const std::string& sql) {
        for (int i = 0;; ++i) {
            try {
                return db().exec(sql).i64(0, 0);
            } catch (const std::exception&) {
                conn_.reset();
                if (i >= 100) throw;
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
            }
        }
    }
    int64_t scalar(const std::string& sql, const db::Params& p) {
        return db().exec(sql, p).i64(0, 0);
    }
    std::vector<std::string> column(const std::string& sql, const db::Params& p = {}) {
        auto r = p.size() ? db().exec(sql, p) : db().exec(sql);
        std::vector<std::string> out;
        for (int i = 0; i < r.rows(); ++i) out.push_back(r.is_null(i, 0) ? "" : r.str(i, 0));
        return out;
    }

    std::string worker_rid(const std::string& name) {
        db::Params p;
        p.add(name);
        auto v = column("SELECT rid::text FROM worker WHERE name = $1 ORDER BY id DESC LIMIT 1", p);
        return v.empty() ? "" : v[0];
    }
    std::string master_rid() {
        auto v = column("SELECT COALESCE(worker_rid::text, '') FROM master WHERE id = 1");
        return v.empty() ? "" : v[0];
    }
    // The rids of the rows the database says worker `rid` holds RUNNING.
    std::vector<std::string> running_held_by(const std::string& rid) {
        db::Params p;
        p.add(rid);
        return column(
            "SELECT rid::text FROM job WHERE status = 'RUNNING' AND worker_rid = $1::uuid", p);
    }
    bool worker_stopped(const std::string& rid) {
        db::Params p;
        p.add(rid);
        return scalar("SELECT count(*) FROM worker WHERE rid = $1::uuid AND status = 'STOPPED'",
                      p) == 1;
    }
    // Jobs process `pid` executed whose outcome its worker `rid` did not write (none archived
    // under its rid): the ones a killed or frozen worker leaves to run again elsewhere.
    std::set<std::string> unwritten_by(long pid, const std::string& rid) {
        std::set<std::string> out;
        for (const auto& [job, runs] : executions())
            for (const auto& e : runs)
                if (e.pid == pid) out.insert(job);
        db::Params p;
        p.add(rid);
        for (const auto& job :
             column("SELECT rid::text FROM job_archive WHERE worker_rid = $1::uuid", p))
            out.erase(job);
        return out;
    }

    // Polls `cond` every `step` until it holds or `timeout` passes (bounds, not timings).
    static bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
                           std::chrono::milliseconds step = std::chrono::milliseconds(200)) {
        auto end = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (cond()) return true;
            if (std::chrono::steady_clock::now() >= end) return false;
            std::this_thread::sleep_for(step);
        }
    }

    // Jobs of `task` with these parameters and options, added in one COPY; their rids.
    std::vector<std::string> add_batch(size_t n, const std::string& task,
                                       const std::function<std::string(size_t)>& params,
                                       const std::string& options_json = "") {
        std::vector<BatchJob> batch(n);
        for (size_t i = 0; i < n; ++i) {
            batch[i].task = task;
            batch[i].parameters = params(i);
            if (!options_json.empty()) batch[i].options = Options::from_json(options_json);
        }
        return client().add_jobs(batch);
    }
    std::string count_params(int ms) const {
        return "[\"" + count_path_ + "\"," + std::to_string(ms) + "]";
    }
    std::vector<std::string> add_count_jobs(size_t n, int ms, const std::string& options = "") {
        auto p = count_params(ms);
        return add_batch(
            n, "count", [&](size_t) { return p; }, options);
    }

    // rid -> every execution the count/poison tasks recorded.
    std::map<std::string, std::vector<Execution>> executions() const {
        std::map<std::string, std::vector<Execution>> out;
        std::istringstream in(read_file(count_path_));
        std::string rid;
        Execution e;
        while (in >> rid >> e.pid >> e.attempt) out[rid].push_back(e);
        return out;
    }
    size_t execution_count() const {
        size_t n = 0;
        for (const auto& [rid, v] : executions()) n += v.size();
        return n;
    }

    // Status counts of both tables, for failure messages.
    std::string state() {
        std::string s;
        try {
            auto r = db().exec(
                "SELECT 'job ' || status, count(*) FROM job GROUP BY status UNION ALL "
                "SELECT 'archive ' || status, count(*) FROM job_archive GROUP BY status "
                "ORDER BY 1");
            for (int i = 0; i < r.rows(); ++i) s += r.str(i, 0) + "=" + r.str(i, 1) + " ";
            auto w = db().exec(
                "SELECT w.name, count(*) FROM job j LEFT JOIN worker w ON w.rid = j.worker_rid "
                "WHERE j.status = 'RUNNING' GROUP BY w.name");
            for (int i = 0; i < w.rows(); ++i)
                s += "[RUNNING under " + (w.is_null(i, 0) ? std::string("?") : w.str(i, 0)) + ": " +
                     w.str(i, 1) + "] ";
        } catch (const std::exception& e) {
            s += std::string("(state unavailable: ") + e.what() + ")";
        }
        return s;
    }

    // The last `lines` lines of a log, for failure messages.
    static std::string tail(const std::string& text, size_t lines = 40) {
        size_t pos = text.size();
        for (size_t n = 0; n <= lines && pos > 0; ++n) {
            pos = text.rfind('\n', pos - 1);
            if (pos == std::string::npos) return text;
        }
        return text.substr(pos + 1);
    }
    std::string logs() {
        std::string s;
        for (auto& d : daemons_)
            s += "---- pid " + std::to_string(d->pid()) + "\n" + tail(d->log());
        return s;
    }

    static size_t lines_containing(const std::string& text, const std::string& needle) {
        size_t n = 0;
        std::istringstream in(text);
        std::string line;
        while (std::getline(in, line))
            if (line.find(needle) != std::string::npos) ++n;
        return n;
    }

    // Waits until none of `rids` is left in `job` (each ended), bounded.
    bool wait_all_ended(const std::vector<std::string>& rids, std::chrono::milliseconds timeout) {
        db::Params p;
        p.add_array(rids);
        return wait_until(
            [&] {
                try {
                    return scalar("SELECT count(*) FROM job WHERE rid::text = ANY($1::text[])",
                                  p) == 0;
                } catch (const std::exception&) {
                    conn_.reset();
                    return false;
                }
            },
            timeout, std::chrono::milliseconds(250));
    }

    // The audit every scenario ends with: each of `rids` is in job_archive exactly once (count
    // and distinct rids), none is still in `job`, and no job of the schema is left RUNNING.
    void expect_exactly_once(const std::vector<std::string>& rids) {
        db::Params p;
        p.add_array(rids);
        auto n = static_cast<int64_t>(rids.size());
        EXPECT_EQ(scalar("SELECT count(*) FROM job_archive WHERE rid::text = ANY($1::text[])", p),
                  n)
            << "archive rows of the test's jobs; " << state();
        EXPECT_EQ(scalar("SELECT count(DISTINCT rid) FROM job_archive WHERE rid::text = "
                         "ANY($1::text[])",
                         p),
                  n)
            << "distinct archived rids; " << state();
        EXPECT_EQ(scalar("SELECT count(*) FROM job WHERE rid::text = ANY($1::text[])", p), 0)
            << "jobs never ended; " << state();
        EXPECT_EQ(scalar("SELECT count(*) FROM job WHERE status = 'RUNNING'"), 0)
            << "RUNNING rows left; " << state();
    }

    int64_t archived_with_status(const std::vector<std::string>& rids, const std::string& status) {
        db::Params p;
        p.add_array(rids).add(status);
        return scalar(
            "SELECT count(*) FROM job_archive WHERE rid::text = ANY($1::text[]) AND status = $2",
            p);
    }

    // Execution audit: each rid of `rids` ran at least once (when `ran_at_least_once`) and at
    // most once, except the rids in `may_repeat` (jobs of a killed or frozen worker), whose
    // repeats are reported. Returns the number of duplicate executions.
    size_t check_executions(const std::vector<std::string>& rids,
                            const std::set<std::string>& may_repeat = {},
                            bool ran_at_least_once = true, const std::string& label = "",
                            const std::string& why = "its worker was killed or frozen") {
        auto ex = executions();
        size_t dupes = 0, unexpected = 0, missing = 0;
        std::string detail;
        for (const auto& rid : rids) {
            auto it = ex.find(rid);
            size_t n = it == ex.end() ? 0 : it->second.size();
            if (n == 0 && ran_at_least_once) {
                ++missing;
                if (missing <= 5) detail += " never ran: " + rid + ";";
            }
            if (n <= 1) continue;
            dupes += n - 1;
            std::string pids;
            for (const auto& e : it->second)
                pids += std::to_string(e.pid) + "/attempt " + std::to_string(e.attempt) + " ";
            if (may_repeat.count(rid)) {
                std::printf("[ FAULTS   ] %s: job %s ran %zu times (allowed: %s): %s\n",
                            label.c_str(), rid.c_str(), n, why.c_str(), pids.c_str());
            } else {
                ++unexpected;
                if (unexpected <= 5)
                    detail += " ran " + std::to_string(n) + "x: " + rid + " (" + pids + ");";
            }
        }
        RecordProperty("duplicate_executions" + (label.empty() ? "" : "_" + label),
                       static_cast<int>(dupes));
        std::printf(
            "[ FAULTS   ] %s: %zu jobs, %zu executions recorded, %zu duplicate executions "
            "(%zu unexpected)\n",
            label.c_str(), rids.size(), execution_count(), dupes, unexpected);
        EXPECT_EQ(unexpected, 0u) << "jobs that ran more than once without a killed or frozen "
                                     "worker:"
                                  << detail;
        EXPECT_EQ(missing, 0u) << "jobs that never ran:" << detail;
        return dupes;
    }

    std::string count_path_;
    std::unique_ptr<db::Connection> conn_;
};

// Test suites: FaultsSerial tests run alone (ctest RUN_SERIAL: they take the server away, or
// depend on a short stale threshold that a loaded machine could trip); Faults tests may run
// alongside others.
class Faults : public FaultTest {};
class FaultsSerial : public FaultTest {};

}  // namespace queuer::test
