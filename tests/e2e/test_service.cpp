// queuerd as a service: the exit statuses systemd's Restart= rules rely on, the refusal of files
// other users could change, truncated plugins, systemd credentials, and the scrubbed environment
// of task-runner children. The real binaries, a real database.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
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

// Type=notify: systemd hears READY=1 once the worker runs, STATUS lines, WATCHDOG=1 while the
// engine loop turns (WATCHDOG_USEC), and STOPPING=1 on SIGTERM, each from the main process
// (NotifyAccess=main). The test's socket stands where systemd's would be.
TEST_F(Service, ServiceManagerHearsReadyStatusWatchdogAndStopping) {
    std::string path = dir_ + "/notify.sock";
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    ASSERT_LT(path.size(), sizeof(a.sun_path));
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << std::strerror(errno);
    int on = 1;
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)), 0);
    struct Msg {
        std::string text;
        pid_t pid = -1;
    };
    auto receive = [&](std::chrono::milliseconds timeout) -> std::optional<Msg> {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
        char buf[4096];
        iovec iov{buf, sizeof(buf)};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        ssize_t n = ::recvmsg(fd, &msg, 0);
        if (n < 0) return std::nullopt;
        Msg m{std::string(buf, static_cast<size_t>(n))};
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                ucred cr{};
                std::memcpy(&cr, CMSG_DATA(c), sizeof(cr));
                m.pid = cr.pid;
            }
        return m;
    };
    // Everything the daemon says until `want` appears in a message (or 30 s pass).
    std::vector<Msg> heard;
    auto hear = [&](const std::string& want) {
        auto end = std::chrono::steady_clock::now() + 30s;
        while (std::chrono::steady_clock::now() < end) {
            auto m = receive(500ms);
            if (!m) continue;
            heard.push_back(*m);
            if (m->text.find(want) != std::string::npos) return true;
        }
        return false;
    };
    auto all = [&] {
        std::string s;
        for (auto& m : heard) s += "[" + std::to_string(m.pid) + "] " + m.text + "\n";
        return s;
    };

    auto& d = start_daemon({}, {{"NOTIFY_SOCKET", path}, {"WATCHDOG_USEC", "1500000"}});
    EXPECT_TRUE(hear("READY=1")) << all();
    EXPECT_TRUE(hear("STATUS=running ")) << all();  // the periodic line: "running 0/4 jobs, ..."
    EXPECT_TRUE(hear("WATCHDOG=1")) << all();
    d.signal(SIGTERM);
    EXPECT_TRUE(hear("STOPPING=1")) << all();
    EXPECT_EQ(d.wait(60s), 0) << d.log();
    ::close(fd);
    ASSERT_FALSE(heard.empty());
    for (auto& m : heard) EXPECT_EQ(m.pid, d.pid()) << m.text;
    // READY=1 came first, and only once.
    EXPECT_NE(heard.front().text.find("READY=1"), std::string::npos) << all();
    int ready = 0;
    for (auto& m : heard) ready += m.text.find("READY=1") != std::string::npos;
    EXPECT_EQ(ready, 1) << all();
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
