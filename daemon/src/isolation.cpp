// Process isolation: the parent's pool of task runner children (spawn, dispatch, cancel, reap) and
// the child's serving loop. See isolation.hpp for the design and the wire format.
#include "isolation.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "child_env.hpp"
#include "queuer/error.hpp"
#include "queuer/model.hpp"

extern char** environ;

namespace queuerd {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kChildFd = 3;
constexpr uint32_t kMaxFrame = 512u * 1024u * 1024u;

enum MsgType : uint8_t {
    // parent -> child
    kRun = 1,          // rid, task, attempt, params, keyed, deadline_ms (-1 none)
    kCancel = 2,       //
    kSubJobReply = 3,  // "1" + rid | "0" + error
    // child -> parent
    kReady = 10,       //
    kLoadFailed = 11,  // error
    kLog = 12,         // level, rid, task, text
    kSubJob = 13,      // task, params, keyed, options
    kDone = 14,        // "1" + result | "0" + error
};

struct Message {
    uint8_t type = 0;
    std::vector<std::string> fields;
};

// Length-prefixed frames over a stream socket. send() never raises SIGPIPE.
class Channel {
  public:
    explicit Channel(int fd) : fd_(fd) {}
    int fd() const { return fd_; }

    bool send(uint8_t type, std::initializer_list<std::string_view> fields) {
        std::string buf(4, '\0');
        buf.push_back(static_cast<char>(type));
        for (auto f : fields) {
            uint32_t n = static_cast<uint32_t>(f.size());
            buf.append(reinterpret_cast<const char*>(&n), 4);
            buf.append(f);
        }
        uint32_t total = static_cast<uint32_t>(buf.size() - 4);
        std::memcpy(buf.data(), &total, 4);
        std::lock_guard lock(send_mu_);
        const char* p = buf.data();
        size_t left = buf.size();
        while (left > 0) {
            ssize_t w = ::send(fd_, p, left, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR) continue;
                return false;
            }
            p += w;
            left -= static_cast<size_t>(w);
        }
        return true;
    }

    // Blocks for one whole frame; nullopt on EOF, error or a malformed frame. Reads are
    // buffered: one read() usually brings a whole frame, often several.
    std::optional<Message> recv() {
        for (;;) {
            Message m;
            switch (parse(m)) {
                case Got::Frame:
                    return m;
                case Got::Bad:
                    return std::nullopt;
                case Got::Need:
                    break;
            }
            int r = fill();
            if (r == 0 || r == kError) return std::nullopt;
            // kTimeout (a receive timeout is set on the socket): keep waiting.
        }
    }

    // One frame if it arrives within the socket's receive timeout (SO_RCVTIMEO); `closed` on EOF,
    // error or a malformed frame. The parent waits for its child this way: one read() per wake-up,
    // and a chance to look at cancellation and the deadline every timeout.
    struct Received {
        std::optional<Message> msg;
        bool closed = false;
    };
    Received recv_for() {
        for (;;) {
            Message m;
            switch (parse(m)) {
                case Got::Frame:
                    return {std::move(m), false};
                case Got::Bad:
                    return {std::nullopt, true};
                case Got::Need:
                    break;
            }
            int r = fill();
            if (r == 0 || r == kError) return {std::nullopt, true};
            if (r == kTimeout) return {};
        }
    }

    // True when a frame (or EOF) is waiting, within `timeout`.
    bool readable(std::chrono::milliseconds timeout) {
        if (in_.size() > pos_ && complete()) return true;
        pollfd p{fd_, POLLIN, 0};
        int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
        return rc > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
    }

    // A receive timeout, so that recv_for() returns when nothing arrives.
    void set_receive_timeout(std::chrono::milliseconds t) {
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(t.count() / 1000);
        tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }

  private:
    enum class Got { Frame, Need, Bad };
    static constexpr int kError = -1, kTimeout = -2;

    // Whether the buffer holds a whole frame (its length says how long it is).
    bool complete() const {
        if (in_.size() - pos_ < 4) return false;
        uint32_t total = 0;
        std::memcpy(&total, in_.data() + pos_, 4);
        return total < 1 || total > kMaxFrame || in_.size() - pos_ - 4 >= total;
    }

    Got parse(Message& m) {
        if (in_.size() - pos_ < 4) return Got::Need;
        uint32_t total = 0;
        std::memcpy(&total, in_.data() + pos_, 4);
        if (total < 1 || total > kMaxFrame) return Got::Bad;
        if (in_.size() - pos_ - 4 < total) return Got::Need;
        const char* b = in_.data() + pos_ + 4;
        m.type = static_cast<uint8_t>(b[0]);
        size_t at = 1;
        while (at < total) {
            if (total - at < 4) return Got::Bad;
            uint32_t n = 0;
            std::memcpy(&n, b + at, 4);
            at += 4;
            if (total - at < n) return Got::Bad;
            m.fields.emplace_back(b + at, n);
            at += n;
        }
        pos_ += 4 + total;
        if (pos_ == in_.size()) {
            in_.clear();
            pos_ = 0;
        }
        return Got::Frame;
    }

    // Appends what the socket has (blocking for at least one byte, or until the receive
    // timeout). Returns bytes read, 0 at EOF, kError or kTimeout.
    int fill() {
        if (pos_ > 0 && pos_ * 2 >= in_.size()) {
            in_.erase(0, pos_);
            pos_ = 0;
        }
        char buf[64 * 1024];
        for (;;) {
            ssize_t r = ::read(fd_, buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return kTimeout;
            if (r < 0) return kError;
            in_.append(buf, static_cast<size_t>(r));
            return static_cast<int>(r);
        }
    }

    std::string in_;  // received, not yet parsed from pos_
    size_t pos_ = 0;
    int fd_;
    std::mutex send_mu_;
};

std::string field(const Message& m, size_t i) {
    return i < m.fields.size() ? m.fields[i] : "";
}

std::string describe_status(int status) {
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char* abbrev = sigabbrev_np(sig);
        return abbrev ? fmt::format("task crashed: signal {} (SIG{})", sig, abbrev)
                      : fmt::format("task crashed: signal {}", sig);
    }
    if (WIFEXITED(status)) return fmt::format("task exited with status {}", WEXITSTATUS(status));
    return fmt::format("task ended with wait status {}", status);
}

// Reaps `pid`, killing it when it has not gone within `wait`. Returns its wait status.
int reap(pid_t pid, std::chrono::milliseconds wait) {
    int status = 0;
    auto until = Clock::now() + wait;
    while (true) {
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 && errno != EINTR) return 0;
        if (Clock::now() >= until) break;
        std::this_thread::sleep_for(2ms);
    }
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

struct Child {
    pid_t pid = -1;
    std::unique_ptr<Channel> channel;
    int fd = -1;

    ~Child() {
        if (fd >= 0) ::close(fd);
    }
};

struct Spawned {
    pid_t pid = -1;
    int fd = -1;
    int error = 0;  // errno when spawning failed
};

}  // namespace

// ---- the parent's pool ----------------------------------------------------------------------

struct ProcessPool::State {
    IsolationOptions options;
    std::vector<std::string> argv_strings;

    mutable std::mutex mu;
    std::vector<std::unique_ptr<Child>> idle;
    size_t live = 0;
    bool closed = false;

    // The spawner thread: the one thread that forks, so PR_SET_PDEATHSIG in the children is tied
    // to it, and it lives as long as the pool.
    std::mutex spawn_mu;
    std::condition_variable spawn_cv;
    std::deque<std::promise<Spawned>> spawn_requests;
    bool spawn_stop = false;
    std::thread spawner;

    // The children's environment: an allow-list, never queuerd's secrets (child_env.hpp).
    std::vector<std::string> env_strings;

    explicit State(IsolationOptions o) : options(std::move(o)) {
        env_strings = task_runner_environment(options.task_environment);
        argv_strings.push_back(options.runner_path);
        for (const auto& a : options.runner_args) argv_strings.push_back(a);
        argv_strings.push_back("--fd");
        argv_strings.push_back(std::to_string(kChildFd));
        for (const auto& p : options.plugin_paths) {
            argv_strings.push_back("--plugin");
            argv_strings.push_back(p);
        }
        spawner = std::thread([this] { spawn_loop(); });
    }

    ~State() {
        {
            std::lock_guard lock(spawn_mu);
            spawn_stop = true;
        }
        spawn_cv.notify_all();
        spawner.join();
        shutdown();
    }

    void shutdown() {
        std::vector<std::unique_ptr<Child>> children;
        {
            std::lock_guard lock(mu);
            closed = true;
            children.swap(idle);
        }
        // Closing the channel tells a child to exit; give them a moment together, then kill.
        for (auto& c : children) {
            ::close(c->fd);
            c->fd = -1;
        }
        for (auto& c : children) {
            reap(c->pid, 1000ms);
            forget();
        }
    }

    void forget() {
        std::lock_guard lock(mu);
        if (live > 0) --live;
    }

    void spawn_loop() {
        std::unique_lock lock(spawn_mu);
        while (true) {
            spawn_cv.wait(lock, [&] { return spawn_stop || !spawn_requests.empty(); });
            if (spawn_stop) {
                for (auto& r : spawn_requests) r.set_value(Spawned{-1, -1, ECANCELED});
                spawn_requests.clear();
                return;
            }
            auto req = std::move(spawn_requests.front());
            spawn_requests.pop_front();
            lock.unlock();
            req.set_value(fork_exec());
            lock.lock();
        }
    }

    // Runs on the spawner thread only. Between fork and exec only async-signal-safe calls.
    Spawned fork_exec() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return {-1, -1, errno};
        std::vector<char*> argv, envp;
        for (auto& s : argv_strings) argv.push_back(s.data());
        argv.push_back(nullptr);
        for (auto& s : env_strings) envp.push_back(s.data());
        envp.push_back(nullptr);
        const char* path = argv_strings[0].c_str();
        pid_t parent = ::getpid();

        pid_t pid = ::fork();
        if (pid < 0) {
            int e = errno;
            ::close(sv[0]);
            ::close(sv[1]);
            return {-1, -1, e};
        }
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
            if (sv[1] == kChildFd) {
                ::fcntl(kChildFd, F_SETFD, 0);
            } else if (::dup2(sv[1], kChildFd) < 0) {
                ::_exit(127);
            }
            ::syscall(SYS_close_range, kChildFd + 1, ~0U, 0);  // no stray descriptors
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            ::execve(path, argv.data(), envp.data());
            ::_exit(127);
        }
        ::close(sv[1]);
        return {pid, sv[0], 0};
    }

    // Starts a child and waits until it has loaded the plugins.
    std::unique_ptr<Child> start_child() {
        std::future<Spawned> fut;
        {
            std::lock_guard lock(spawn_mu);
            if (spawn_stop) throw queuer::Error(queuer::ErrorKind::Plugin, "process pool stopped");
            spawn_requests.emplace_back();
            fut = spawn_requests.back().get_future();
        }
        spawn_cv.notify_one();
        Spawned s = fut.get();
        if (s.pid < 0)
            throw queuer::Error(queuer::ErrorKind::Plugin,
                                fmt::format("cannot start task runner {}: {}", options.runner_path,
                                            std::strerror(s.error)));
        auto child = std::make_unique<Child>();
        child->pid = s.pid;
        child->fd = s.fd;
        child->channel = std::make_unique<Channel>(s.fd);
        child->channel->set_receive_timeout(10ms);
        {
            std::lock_guard lock(mu);
            ++live;
        }

        auto fail = [&](const std::string& why) -> std::unique_ptr<Child> {
            ::close(child->fd);
            child->fd = -1;
            int status = reap(child->pid, 1000ms);
            forget();
            // "task crashed: ..." / "task exited ..." reads "it crashed: ..." here.
            std::string how = WIFEXITED(status) && WEXITSTATUS(status) == 127
                                  ? std::string("could not be executed (exit status 127)")
                                  : "it" + describe_status(status).substr(4);
            throw queuer::Error(queuer::ErrorKind::Plugin,
                                fmt::format("task runner {} failed to start: {}",
                                            options.runner_path, why.empty() ? how : why));
        };

        auto until = Clock::now() + options.start_timeout;
        while (true) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
            if (left <= 0ms)
                return fail(
                    fmt::format("no ready message within {} ms", options.start_timeout.count()));
            if (!child->channel->readable(std::min(left, 100ms))) continue;
            auto m = child->channel->recv();
            if (!m) return fail("");
            if (m->type == kReady) return child;
            if (m->type == kLoadFailed) return fail(field(*m, 0));
            if (m->type == kLog) {
                emit_plugin_log(std::atoi(field(*m, 0).c_str()), field(*m, 1), field(*m, 2),
                                field(*m, 3));
            }
        }
    }

    std::unique_ptr<Child> acquire() {
        {
            std::lock_guard lock(mu);
            if (closed) throw queuer::Error(queuer::ErrorKind::Plugin, "process pool stopped");
            if (!idle.empty()) {
                auto c = std::move(idle.back());
                idle.pop_back();
                return c;
            }
        }
        return start_child();
    }

    void release(std::unique_ptr<Child> child) {
        {
            std::lock_guard lock(mu);
            if (!closed) {
                idle.push_back(std::move(child));
                return;
            }
        }
        destroy(std::move(child), 0ms);
    }

    // Kills (after `wait` for it to exit on its own) and reaps a child; returns its wait status.
    int destroy(std::unique_ptr<Child> child, std::chrono::milliseconds wait) {
        ::close(child->fd);
        child->fd = -1;
        int status = reap(child->pid, wait);
        forget();
        return status;
    }

    // What the task produced, as a value: its results, its error, or how its child died.
    queuer::TaskResult run(queuer::JobContext& ctx) {
        std::unique_ptr<Child> child;
        try {
            child = acquire();
        } catch (const std::exception& e) {
            return queuer::TaskResult::failure(e.what());  // the runner cannot be started
        }
        Channel& ch = *child->channel;

        const auto& deadline = ctx.deadline();
        int64_t deadline_ms = -1;
        if (deadline) {
            deadline_ms = std::max<int64_t>(
                0, std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now())
                       .count());
        }
        if (!ch.send(kRun,
                     {ctx.rid(), ctx.task_name(), std::to_string(ctx.attempt()), ctx.parameters(),
                      ctx.parameters_keyed(), std::to_string(deadline_ms)})) {
            int status = destroy(std::move(child), 0ms);
            return queuer::TaskResult::failure(describe_status(status));
        }

        bool cancel_sent = false;
        std::string reason;
        Clock::time_point kill_at{};
        while (true) {
            // Waits up to 10 ms (the socket's receive timeout) for the child's next frame, then
            // looks at cancellation and the deadline.
            auto got = ch.recv_for();
            if (got.closed) {
                // EOF: the child died (or broke the protocol); say how and replace it.
                int status = destroy(std::move(child), 1000ms);
                return queuer::TaskResult::failure(describe_status(status));
            }
            if (auto& m = got.msg) {
                switch (m->type) {
                    case kDone: {
                        bool ok = field(*m, 0) == "1";
                        std::string payload = field(*m, 1);
                        release(std::move(child));
                        return ok ? queuer::TaskResult::success(std::move(payload))
                                  : queuer::TaskResult::failure(std::move(payload));
                    }
                    case kLog:
                        emit_plugin_log(std::atoi(field(*m, 0).c_str()), field(*m, 1), field(*m, 2),
                                        field(*m, 3));
                        break;
                    case kSubJob: {
                        std::string reply_ok = "1", reply;
                        try {
                            std::optional<queuer::Options> opts;
                            if (!field(*m, 3).empty())
                                opts = queuer::Options::from_json(field(*m, 3));
                            reply = ctx.add_job_json(field(*m, 0), field(*m, 1), field(*m, 2),
                                                     std::move(opts))
                                        .rid;
                        } catch (const std::exception& e) {
                            reply_ok = "0";
                            reply = e.what();
                        }
                        ch.send(kSubJobReply, {reply_ok, reply});
                        break;
                    }
                    default:
                        break;  // unknown frames from a newer runner: ignore
                }
            }
            auto now = Clock::now();
            if (!cancel_sent) {
                bool timed_out = deadline && now >= *deadline;
                if (timed_out || ctx.is_cancelled()) {
                    reason = ctx.is_cancelled() ? ctx.cancel_reason() : "timed out";
                    if (reason.empty()) reason = "cancelled";
                    ch.send(kCancel, {});
                    cancel_sent = true;
                    kill_at = now + options.kill_grace;
                }
            } else if (now >= kill_at) {
                destroy(std::move(child), 0ms);
                return queuer::TaskResult::failure(
                    fmt::format("task killed: it did not stop within {} ms after it was {}",
                                options.kill_grace.count(), reason));
            }
        }
    }
};

ProcessPool::ProcessPool(IsolationOptions options)
    : state_(std::make_shared<State>(std::move(options))) {}

ProcessPool::~ProcessPool() {
    state_->shutdown();
}

queuer::TaskResult ProcessPool::run(queuer::JobContext& ctx) {
    return state_->run(ctx);
}

std::map<std::string, queuer::TaskFn> ProcessPool::tasks(const PluginHost& host) const {
    std::map<std::string, queuer::TaskFn> out;
    for (const auto& [name, t] : host.plugin_tasks()) {
        std::shared_ptr<State> state = state_;
        out.emplace(name, [state](queuer::JobContext& ctx) { return state->run(ctx); });
    }
    return out;
}

void ProcessPool::register_into(const PluginHost& host, queuer::Queuer& queuer) const {
    for (auto& [name, fn] : tasks(host)) queuer.add_task(name, std::move(fn));
    for (auto& [name, fn] : host.next_interval_funcs())
        queuer.add_next_interval_func(name, std::move(fn));
}

void ProcessPool::prestart(size_t n) {
    while (idle() < n) state_->release(state_->start_child());
}

size_t ProcessPool::children() const {
    std::lock_guard lock(state_->mu);
    return state_->live;
}

size_t ProcessPool::idle() const {
    std::lock_guard lock(state_->mu);
    return state_->idle.size();
}

std::string default_runner_path() {
    if (const char* env = std::getenv("QUEUERD_TASK_RUNNER"); env && *env) return env;
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return "queuerd-task-runner";
    std::string self(buf, static_cast<size_t>(n));
    auto slash = self.rfind('/');
    return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) +
           "/queuerd-task-runner";
}

// ---- the child ------------------------------------------------------------------------------

namespace {

// One job in the child: cancellation and sub-jobs go through the channel to the parent.
class ChildBackend final : public JobBackend {
  public:
    ChildBackend(Channel& ch, std::mutex& recv_mu, std::string rid, std::string task,
                 int64_t deadline_ms)
        : ch_(ch), recv_mu_(recv_mu), rid_(std::move(rid)), task_(std::move(task)) {
        if (deadline_ms >= 0) deadline_ = Clock::now() + std::chrono::milliseconds(deadline_ms);
    }
    const std::string& rid() const override { return rid_; }
    const std::string& task_name() const override { return task_; }

    bool is_cancelled() override {
        if (cancelled_) return true;
        std::lock_guard lock(recv_mu_);
        while (!cancelled_ && ch_.readable(0ms)) {
            if (!handle(ch_.recv())) break;
        }
        return cancelled_;
    }
    int64_t deadline_ms() override {
        if (!deadline_) return -1;
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - Clock::now());
        return std::max<int64_t>(0, left.count());
    }
    std::string add_sub_job(std::string_view task, std::string_view params, std::string_view keyed,
                            std::string_view options) override {
        std::lock_guard lock(recv_mu_);  // one request in flight per job
        if (!ch_.send(kSubJob, {task, params, keyed, options}))
            throw std::runtime_error("lost the connection to queuerd");
        while (true) {
            auto m = ch_.recv();
            if (!m) {
                parent_gone_ = cancelled_ = true;
                throw std::runtime_error("lost the connection to queuerd");
            }
            if (m->type == kSubJobReply) {
                if (field(*m, 0) == "1") return field(*m, 1);
                throw std::runtime_error(field(*m, 1));
            }
            handle(std::move(m));
        }
    }
    void log(int level, std::string_view text) override {
        ch_.send(kLog, {std::to_string(level), rid_, task_, text});
    }
    bool parent_gone() const { return parent_gone_; }

  private:
    // Handles a frame that arrived during the job; false on EOF.
    bool handle(std::optional<Message> m) {
        if (!m) {
            parent_gone_ = cancelled_ = true;
            return false;
        }
        if (m->type == kCancel) cancelled_ = true;
        return true;
    }

    Channel& ch_;
    std::mutex& recv_mu_;
    std::string rid_, task_;
    std::optional<Clock::time_point> deadline_;
    std::atomic<bool> cancelled_{false};
    std::atomic<bool> parent_gone_{false};
};

}  // namespace

int run_task_runner(int fd, const std::vector<std::string>& plugin_paths) {
    Channel ch(fd);
    std::mutex recv_mu;
    // Outside a job (plugin init), log lines go to the parent too.
    set_plugin_log_sink(
        [&ch](int level, std::string_view rid, std::string_view task, std::string_view text) {
            ch.send(kLog, {std::to_string(level), rid, task, text});
        });

    std::unique_ptr<PluginHost> host;
    try {
        host = std::make_unique<PluginHost>(plugin_paths);
    } catch (const std::exception& e) {
        ch.send(kLoadFailed, {e.what()});
        set_plugin_log_sink(nullptr);
        return 2;
    }
    if (!ch.send(kReady, {})) return 0;

    int rc = 0;
    while (true) {
        std::optional<Message> m;
        {
            std::lock_guard lock(recv_mu);
            m = ch.recv();
        }
        if (!m) break;                  // the parent closed the channel: exit
        if (m->type != kRun) continue;  // e.g. a CANCEL that raced with DONE
        std::string rid = field(*m, 0), task = field(*m, 1);
        int attempt = std::atoi(field(*m, 2).c_str());
        int64_t deadline_ms = std::strtoll(field(*m, 5).c_str(), nullptr, 10);

        ChildBackend backend(ch, recv_mu, rid, task, deadline_ms);
        TaskOutcome out;
        auto it = host->plugin_tasks().find(task);
        if (it == host->plugin_tasks().end()) {
            out.error =
                fmt::format("task \"{}\" is not provided by the plugins of this runner", task);
        } else {
            out = invoke_task(it->second, backend, attempt, field(*m, 3), field(*m, 4));
        }
        if (!ch.send(kDone, {out.ok ? "1" : "0", out.ok ? out.result : out.error})) break;
        if (backend.parent_gone()) break;
    }
    set_plugin_log_sink(nullptr);
    host.reset();
    return rc;
}

int task_runner_main(int argc, char** argv) {
    // Terminal and service-manager signals are for queuerd, which drains and then closes our
    // channel; a child that died on Ctrl-C would fail the job it runs.
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGTERM, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);

    int fd = -1;
    std::vector<std::string> plugins;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--fd" && i + 1 < argc) {
            fd = std::atoi(argv[++i]);
        } else if (a == "--plugin" && i + 1 < argc) {
            plugins.emplace_back(argv[++i]);
        } else {
            fmt::print(stderr, "queuerd-task-runner: unknown argument \"{}\"\n", a);
            fmt::print(stderr,
                       "usage: queuerd-task-runner --fd N [--plugin PATH]...\n"
                       "(started by queuerd for worker.isolation: process)\n");
            return 2;
        }
    }
    if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) {
        fmt::print(stderr,
                   "queuerd-task-runner: no channel; it is started by queuerd, not by "
                   "hand\n");
        return 2;
    }
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return run_task_runner(fd, plugins);
}

}  // namespace queuerd
