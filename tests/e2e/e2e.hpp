// End-to-end fixture: a schema of its own, the real queuerd with the real example plugin, driven
// by the real queuerctl.
#pragma once

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "queuer/client.hpp"
#include "queuer/crypto.hpp"
#include "support/process.hpp"
#include "support/test_db.hpp"

namespace queuer::test {

struct DaemonOptions {
    std::string name = "e2e";
    int max_concurrency = 4;
    std::string isolation = "thread";
    std::string shutdown_grace = "10s";
    std::string extra_plugins;      // more "  - path: ..." lines
    std::string stale = "2s";       // master.worker_stale_threshold
    std::string retention = "30d";  // master.retention_archive
    std::string http_listen;        // http.listen ("" = off)
    std::string log_format;         // logging.format ("" = the default, text)
};

class E2E : public ::testing::Test {
  protected:
    E2E() {
        char tmpl[] = "/tmp/queuer-e2e.XXXXXX";
        dir_ = mkdtemp(tmpl);
    }
    ~E2E() override {
        daemons_.clear();
        std::string cmd = "rm -rf '" + dir_ + "'";
        if (std::system(cmd.c_str()) != 0) {
        }
    }

    Env env(Env extra = {}) const {
        Env e{{"QUEUER_DB_SCHEMA", schema.config().schema}};
        for (auto& [k, v] : extra) e[k] = v;
        return e;
    }

    std::string write_config(const DaemonOptions& o) {
        std::string path = dir_ + "/" + o.name + ".yaml";
        std::ofstream f(path);
        f << "worker:\n"
          << "  name: " << o.name << "\n"
          << "  max_concurrency: " << o.max_concurrency << "\n"
          << "  heartbeat_interval: 200ms\n"
          << "  poll_interval: 1s\n"
          << "  shutdown_grace: " << o.shutdown_grace << "\n"
          << "  isolation: " << o.isolation << "\n"
          << "plugins:\n"
          << "  - path: " << examples_plugin() << "\n"
          << o.extra_plugins << "master:\n"
          << "  master_lock_timeout: 2s\n"
          << "  master_poll_interval: 300ms\n"
          << "  worker_stale_threshold: " << o.stale << "\n"
          << "  worker_delete_threshold: 1h\n"
          << "  retention_archive: " << o.retention << "\n"
          << "  job_stale_threshold: 10m\n"
          << "logging:\n"
          << "  level: info\n";
        if (!o.log_format.empty()) f << "  format: " << o.log_format << "\n";
        if (!o.http_listen.empty()) f << "http:\n  listen: " << o.http_listen << "\n";
        return path;
    }

    // Starts queuerd and waits until it says it is ready.
    Process& start_daemon(const DaemonOptions& o = {}, Env extra = {}) {
        auto cfg = write_config(o);
        auto log = dir_ + "/" + o.name + "." + std::to_string(daemons_.size()) + ".log";
        daemons_.push_back(std::make_unique<Process>(
            std::vector<std::string>{queuerd_bin(), "--config", cfg}, env(extra), log));
        auto& d = *daemons_.back();
        // "ready:" in text and json lines alike.
        if (!d.wait_log("ready: worker", std::chrono::seconds(30)))
            throw std::runtime_error("queuerd did not become ready:\n" + d.log());
        return d;
    }

    RunResult ctl(std::vector<std::string> args, Env extra = {}) const {
        args.insert(args.begin(), queuerctl_bin());
        return run(args, env(extra));
    }

    static rapidjson::Document json(const std::string& text) {
        rapidjson::Document d;
        d.Parse(text.c_str());
        return d;
    }

    // queuerctl add job ... --json; returns the rid.
    std::string add(const std::string& task, const std::string& params = "[]",
                    const std::string& options = "", Env extra = {}) {
        std::vector<std::string> a{"add", "job", "--task", task, "--params", params, "--json"};
        if (!options.empty()) {
            a.push_back("--options");
            a.push_back(options);
        }
        auto r = ctl(a, extra);
        if (r.code != 0) throw std::runtime_error("add job failed: " + r.err);
        auto d = json(r.out);
        return d["rid"].GetString();
    }

    // queuerctl wait job; returns {exit code, parsed job}.
    std::pair<int, rapidjson::Document> wait(const std::string& rid, int timeout_s = 30,
                                             Env extra = {}) {
        auto r = ctl(
            {"wait", "job", "--rid", rid, "--timeout", std::to_string(timeout_s), "--json"}, extra);
        return {r.code, json(r.out)};
    }

    Client& client() {
        if (!client_) client_ = std::make_unique<Client>(schema.config(), "", true);
        return *client_;
    }

    bool eventually(const std::function<bool()>& cond,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            if (cond()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return cond();
    }

    TestSchema schema;
    std::string dir_;
    std::vector<std::unique_ptr<Process>> daemons_;
    std::unique_ptr<Client> client_;
};

}  // namespace queuer::test
