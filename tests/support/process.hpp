// Test support for end-to-end tests: run the real binaries (queuerd, queuerctl) with an
// environment of the test's choosing, capture their output, send signals, wait with a bound.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace queuer::test {

inline std::string build_dir() {
    const char* d = std::getenv("QUEUER_BUILD_DIR");
    if (!d) throw std::runtime_error("QUEUER_BUILD_DIR is not set (run the tests through ctest)");
    return d;
}
inline std::string queuerd_bin() {
    return build_dir() + "/daemon/queuerd";
}
inline std::string queuerctl_bin() {
    return build_dir() + "/cli/queuerctl";
}
inline std::string examples_plugin() {
    return build_dir() + "/plugins/examples/libqueuer_examples.so";
}

inline std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

using Env = std::map<std::string, std::string>;

// The current environment with `overrides` applied (an empty value removes the variable only
// when it is "<unset>").
inline std::vector<std::string> make_env(const Env& overrides) {
    Env all;
    for (char** e = environ; *e; ++e) {
        std::string kv(*e);
        auto eq = kv.find('=');
        if (eq != std::string::npos) all[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : overrides) {
        if (v == "<unset>")
            all.erase(k);
        else
            all[k] = v;
    }
    std::vector<std::string> out;
    for (const auto& [k, v] : all) out.push_back(k + "=" + v);
    return out;
}

class Process {
  public:
    // Starts argv[0] with stdout+stderr to `log_path`.
    Process(const std::vector<std::string>& argv, const Env& env, const std::string& log_path)
        : log_(log_path) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                         0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        auto envs = make_env(env);
        std::vector<char*> envp;
        for (auto& e : envs) envp.push_back(e.data());
        envp.push_back(nullptr);
        int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), envp.data());
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
    }
    ~Process() {
        if (pid_ > 0 && status_ < 0) {
            ::kill(pid_, SIGKILL);
            int st;
            ::waitpid(pid_, &st, 0);
        }
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    void signal(int sig) { ::kill(pid_, sig); }
    pid_t pid() const { return pid_; }
    std::string log() const { return read_file(log_); }
    bool log_contains(const std::string& s) const { return log().find(s) != std::string::npos; }

    // Waits for `s` to appear in the log; false after `timeout`.
    bool wait_log(const std::string& s, std::chrono::milliseconds timeout) const {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            if (log_contains(s)) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    }

    // Exit code (128 + signal for a signal), or -1 if still running after `timeout`.
    int wait(std::chrono::milliseconds timeout) {
        if (status_ >= 0) return status_;
        auto end = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            int st = 0;
            pid_t r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                return status_;
            }
            if (std::chrono::steady_clock::now() >= end) return -1;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    bool alive() {
        if (status_ >= 0) return false;
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return false;
        }
        return true;
    }

  private:
    pid_t pid_ = -1;
    int status_ = -1;
    std::string log_;
};

struct RunResult {
    int code = -1;
    std::string out, err;
};

// Runs a command to completion (bounded), capturing stdout and stderr separately.
inline RunResult run(const std::vector<std::string>& argv, const Env& env,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    char out_tmpl[] = "/tmp/queuer-test-out.XXXXXX";
    char err_tmpl[] = "/tmp/queuer-test-err.XXXXXX";
    int ofd = mkstemp(out_tmpl), efd = mkstemp(err_tmpl);
    ::close(ofd);
    ::close(efd);
    RunResult r;
    {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, out_tmpl, O_WRONLY | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, err_tmpl, O_WRONLY | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        auto envs = make_env(env);
        std::vector<char*> envp;
        for (auto& e : envs) envp.push_back(e.data());
        envp.push_back(nullptr);
        pid_t pid;
        if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data()) != 0)
            throw std::runtime_error("cannot start " + argv[0]);
        posix_spawn_file_actions_destroy(&fa);
        auto end = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            int st = 0;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                break;
            }
            if (std::chrono::steady_clock::now() >= end) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &st, 0);
                r.code = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    r.out = read_file(out_tmpl);
    r.err = read_file(err_tmpl);
    ::unlink(out_tmpl);
    ::unlink(err_tmpl);
    return r;
}

}  // namespace queuer::test
