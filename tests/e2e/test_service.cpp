// queuerd as a service: the exit statuses systemd's Restart= rules rely on, the refusal of files
// other users could change, truncated plugins, systemd credentials, and the scrubbed environment
// of task-runner children. The real binaries, a real database.
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "e2e.hpp"

namespace queuer::test {
namespace {

using namespace std::chrono_literals;

std::string worker_rid(const Process& d) {
    std::smatch m;
    std::string log = d.log();
    static const std::regex re("ready: worker ([0-9a-f-]{36})");
    if (!std::regex_search(log, m, re)) throw std::runtime_error("no worker rid in:\n" + log);
    return m[1];
}

std::string test_plugin(const std::string& name) {
    return build_dir() + "/tests/plugins/broken/lib" + name + ".so";
}

class Service : public E2E {};

// An operator's stop is not a failure: exit 0, and systemd (Restart=on-failure) leaves it.
TEST_F(Service, OperatorStopExitsZero) {
    auto& d = start_daemon();
    auto rid = worker_rid(d);
    auto r = ctl({"stop", "worker", "--rid", rid, "--graceful"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(d.wait(60s), 0) << d.log();
}

TEST_F(Service, SigtermExitsZero) {
    auto& d = start_daemon();
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait(60s), 0) << d.log();
    EXPECT_TRUE(d.log_contains("stopped cleanly")) << d.log();
}

// A worker frozen past master.worker_stale_threshold is marked STOPPED by the master (its jobs
// requeued); when it wakes up it must exit 75 so that systemd starts a fresh one
// (docs/cluster.md). Needs Queuer::stop_cause() to report StopCause::Stale.
TEST_F(Service, WorkerDeclaredStaleExits75) {
    DaemonOptions victim_opts;
    victim_opts.name = "victim";
    auto& victim = start_daemon(victim_opts);
    DaemonOptions master_opts;
    master_opts.name = "survivor";
    auto& survivor = start_daemon(master_opts);
    auto rid = worker_rid(victim);

    victim.signal(SIGSTOP);
    bool stopped = eventually([&] { return client().get_worker(rid).status == "STOPPED"; }, 60s);
    victim.signal(SIGCONT);
    ASSERT_TRUE(stopped) << "the master never marked the frozen worker STOPPED\n" << survivor.log();
    EXPECT_EQ(victim.wait(60s), 75) << victim.log();
    EXPECT_TRUE(survivor.alive());
}

TEST_F(Service, MissingConfigIsExit1WithTheReason) {
    auto r = run({queuerd_bin(), "--config", dir_ + "/nope.yaml"}, env());
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find(dir_ + "/nope.yaml: cannot read the configuration file"),
              std::string::npos)
        << r.err;
}

TEST_F(Service, TruncatedPluginIsOneLineNotASignal) {
    auto size = std::filesystem::file_size(examples_plugin());
    std::string trunc = dir_ + "/libtrunc.so";
    {
        std::ifstream in(examples_plugin(), std::ios::binary);
        std::string data(size / 2, '\0');
        in.read(data.data(), static_cast<std::streamsize>(data.size()));
        std::ofstream(trunc, std::ios::binary) << data;
    }
    std::string cfg = dir_ + "/trunc.yaml";
    std::ofstream(cfg) << "worker:\n  name: t\n  max_concurrency: 1\nplugins:\n  - path: " << trunc
                       << "\n";
    for (auto args : {std::vector<std::string>{queuerd_bin(), "--config", cfg, "--check"},
                      std::vector<std::string>{queuerd_bin(), "--config", cfg}}) {
        auto r = run(args, env(), 60s);
        EXPECT_EQ(r.code, 1) << r.err;
        // The last line, and the only one about it: "queuerd: FILE:LINE: cannot load plugin P:
        // truncated: ..." (without --check, the start-up line comes before it).
        ASSERT_FALSE(r.err.empty());
        std::string last = r.err.substr(0, r.err.size() - 1);
        last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
        EXPECT_EQ(last.find("queuerd: " + cfg + ":5: cannot load plugin " + trunc + ": truncated"),
                  0u)
            << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n') - (args.size() == 4 ? 0 : 1), 1)
            << r.err;
    }
}

TEST_F(Service, FilesOthersCouldChangeAreRefusedUnlessAllowed) {
    std::string open_dir = dir_ + "/open";
    std::filesystem::create_directory(open_dir);
    ::chmod(open_dir.c_str(), 0777);
    std::string cfg = open_dir + "/queuerd.yaml";
    std::ofstream(cfg) << "worker:\n  name: t\n  max_concurrency: 1\nplugins:\n  - path: "
                       << examples_plugin() << "\n";
    auto r = run({queuerd_bin(), "--config", cfg, "--check"}, env());
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.err.find("directory " + open_dir + " is writable by others"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("--allow-insecure-permissions"), std::string::npos) << r.err;

    r = run({queuerd_bin(), "--config", cfg, "--check", "--allow-insecure-permissions"}, env());
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("warning: configuration file " + cfg), std::string::npos) << r.err;

    // A key file others can read.
    std::string safe_cfg = dir_ + "/key.yaml";
    std::string key = dir_ + "/encryption.key";
    std::ofstream(key) << "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
    ::chmod(key.c_str(), 0644);
    std::ofstream(safe_cfg) << "worker:\n  name: t\n  max_concurrency: 1\nencryption:\n"
                            << "  key_file: encryption.key\n";
    r = run({queuerd_bin(), "--config", safe_cfg, "--check"},
            env({{"QUEUER_ENCRYPTION_KEY", "<unset>"}}));
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.err.find("secret file " + key + ": it is readable by others"), std::string::npos)
        << r.err;
    ::chmod(key.c_str(), 0600);
    r = run({queuerd_bin(), "--config", safe_cfg, "--check"},
            env({{"QUEUER_ENCRYPTION_KEY", "<unset>"}}));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("encryption: on, key from " + key), std::string::npos) << r.out;
}

TEST_F(Service, CheckSaysWhereThePasswordComesFrom) {
    std::string creds = dir_ + "/credentials";
    std::filesystem::create_directory(creds);
    std::ofstream(creds + "/db-password") << "from-credential\n";
    std::string cfg = write_config({});
    auto r = run({queuerd_bin(), "--config", cfg, "--check"},
                 env({{"QUEUER_DB_PASSWORD", "<unset>"}, {"CREDENTIALS_DIRECTORY", creds}}));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("database password: from systemd credential db-password"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(r.out.find("from-credential"), std::string::npos) << r.out;
}

// Process isolation runs plugin code in task-runner children: none of queuerd's secrets may be in
// their environment (child_env.hpp; the executor must pass task_runner_environment()).
TEST_F(Service, TaskRunnerChildrenGetNoSecrets) {
    DaemonOptions o;
    o.isolation = "process";
    o.extra_plugins = "  - path: " + test_plugin("env_probe") + "\n";
    const std::string key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    Env secrets{{"QUEUER_ENCRYPTION_KEY", key}, {"QUEUERD_WEB_TOKEN", "web-token"}};
    start_daemon(o, secrets);
    auto rid = add("env_names", "[]", "", secrets);
    auto [code, job] = wait(rid, 60, secrets);
    ASSERT_EQ(code, 0);
    ASSERT_TRUE(job["results"].IsArray());
    bool path = false;
    for (const auto& v : job["results"].GetArray()) {
        std::string name = v.GetString();
        EXPECT_NE(name.rfind("QUEUER_DB_", 0), 0u) << name;
        EXPECT_NE(name, "QUEUER_ENCRYPTION_KEY");
        EXPECT_NE(name, "QUEUERD_WEB_TOKEN");
        path = path || name == "PATH";
    }
    EXPECT_TRUE(path) << "PATH must reach the task";
}

}  // namespace
}  // namespace queuer::test
