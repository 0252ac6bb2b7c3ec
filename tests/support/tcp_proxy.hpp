// Test support: a TCP proxy on loopback that can break the connections it carries, for fault
// tests. It listens on 127.0.0.1 (an ephemeral port) and forwards every accepted connection to
// an upstream host:port (PostgreSQL). The test points the program under test at the proxy and
// then, from any thread:
//   cut_all()            resets every open connection now (SO_LINGER 0 + close on both sides:
//                        both peers see ECONNRESET, as when a firewall or a failover drops them)
//   start_cuts(min, max) does cut_all() over and over, at random intervals in [min, max]
//   set_mode(Refuse)     cuts every open connection and resets every new one right after accept
//   set_mode(Blackhole)  stops forwarding: open connections freeze, new ones are accepted and
//                        then get no answer (a network partition)
//   set_mode(HoldReplies) forwards requests to the server but keeps its replies (a reply lost
//                        in the network for a while: the statement ran, the client does not
//                        know yet)
//   set_mode(Pass)       forwards again (connections held by Blackhole are reset; replies kept
//                        by HoldReplies are delivered, in order)
// Everything runs on one thread of its own (poll loop); the public methods are thread-safe and
// return once the loop has carried them out.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <list>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace queuer::test {

class TcpProxy {
  public:
    enum class Mode { Pass, Refuse, Blackhole, HoldReplies };

    TcpProxy(std::string upstream_host, int upstream_port)
        : up_host_(std::move(upstream_host)), up_port_(upstream_port) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listen_fd_ < 0) throw std::runtime_error("proxy: socket: " + errno_text());
        int one = 1;
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(listen_fd_, 256) != 0)
            throw std::runtime_error("proxy: bind/listen: " + errno_text());
        socklen_t len = sizeof a;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        if (::pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0)
            throw std::runtime_error("proxy: pipe: " + errno_text());
        resolve_upstream();
        thread_ = std::thread([this] { loop(); });
    }

    ~TcpProxy() {
        stop_ = true;
        wake();
        if (thread_.joinable()) thread_.join();
        for (auto& c : conns_) reset(c);
        for (int fd : held_) reset_fd(fd);
        ::close(listen_fd_);
        ::close(wake_[0]);
        ::close(wake_[1]);
    }
    TcpProxy(const TcpProxy&) = delete;
    TcpProxy& operator=(const TcpProxy&) = delete;

    int port() const { return port_; }
    std::string host() const { return "127.0.0.1"; }

    // Resets every open connection (both sides) now.
    void cut_all() {
        run([this] { cut_now(); });
    }

    // Cuts every open connection again and again, waiting a random time in [min, max] between
    // cuts, until stop_cuts().
    void start_cuts(std::chrono::milliseconds min, std::chrono::milliseconds max) {
        run([this, min, max] {
            cut_min_ = min;
            cut_max_ = max;
            cutting_ = true;
            next_cut_ = std::chrono::steady_clock::now() + random_interval();
        });
    }
    void stop_cuts() {
        run([this] { cutting_ = false; });
    }

    void set_mode(Mode m) {
        run([this, m] {
            if (m == mode_) return;
            if (m == Mode::Refuse) cut_now();
            if (mode_ == Mode::Blackhole) {
                for (int fd : held_) reset_fd(fd);
                held_.clear();
            }
            mode_ = m;
        });
    }

    // Counters, for the test's report.
    size_t accepted() const { return accepted_; }
    size_t cuts() const { return cuts_; }              // cut_all() rounds (manual or periodic)
    size_t connections_cut() const { return reset_; }  // connections reset by cuts or Refuse
    size_t open_connections() {
        size_t n = 0;
        run([this, &n] {
            for (const auto& c : conns_) n += c.dead ? 0 : 1;
        });
        return n;
    }

  private:
    struct Conn {
        int client = -1, server = -1;
        std::string up, down;  // client->server, server->client bytes not yet written
        bool client_eof = false, server_eof = false;
        bool up_shut = false, down_shut = false;
        bool dead = false;
    };

    static std::string errno_text() { return std::strerror(errno); }

    void resolve_upstream() {
        addrinfo hints{};
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        std::string port = std::to_string(up_port_);
        if (::getaddrinfo(up_host_.c_str(), port.c_str(), &hints, &res) != 0 || !res)
            throw std::runtime_error("proxy: cannot resolve " + up_host_);
        std::memcpy(&up_addr_, res->ai_addr, sizeof up_addr_);
        ::freeaddrinfo(res);
    }

    std::chrono::milliseconds random_interval() {
        std::uniform_int_distribution<int64_t> d(cut_min_.count(), cut_max_.count());
        return std::chrono::milliseconds(d(rng_));
    }

    void wake() {
        char c = 1;
        [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);
    }

    // Runs `fn` on the loop thread and waits until it has run.
    void run(std::function<void()> fn) {
        if (std::this_thread::get_id() == thread_.get_id()) {
            fn();
            return;
        }
        std::unique_lock lk(mu_);
        uint64_t ticket = ++posted_;
        commands_.push_back(std::move(fn));
        wake();
        cv_.wait(lk, [&] { return done_ >= ticket || stop_; });
    }

    void run_commands() {
        std::vector<std::function<void()>> cmds;
        uint64_t upto;
        {
            std::lock_guard lk(mu_);
            cmds.swap(commands_);
            upto = posted_;
        }
        for (auto& f : cmds) f();
        {
            std::lock_guard lk(mu_);
            done_ = upto;
        }
        cv_.notify_all();
    }

    static void reset_fd(int fd) {
        if (fd < 0) return;
        linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(fd);
    }
    void reset(Conn& c) {
        reset_fd(c.client);
        reset_fd(c.server);
        c.client = c.server = -1;
        c.dead = true;
    }
    void close_gracefully(Conn& c) {
        ::close(c.client);
        ::close(c.server);
        c.client = c.server = -1;
        c.dead = true;
    }

    void cut_now() {
        ++cuts_;
        for (auto& c : conns_) {
            if (c.dead) continue;
            reset(c);
            ++reset_;
        }
        // Dead entries are dropped at the top of the loop (poll()'s entries may point at them).
    }

    void accept_all() {
        for (;;) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;
            ++accepted_;
            if (mode_ == Mode::Refuse) {
                reset_fd(fd);
                ++reset_;
                continue;
            }
            if (mode_ == Mode::Blackhole) {
                held_.push_back(fd);
                continue;
            }
            // Loopback: a blocking connect returns at once (refused while the server is down).
            int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (s < 0 ||
                ::connect(s, reinterpret_cast<sockaddr*>(&up_addr_), sizeof up_addr_) != 0) {
                if (s >= 0) ::close(s);
                reset_fd(fd);
                continue;
            }
            ::fcntl(s, F_SETFL, ::fcntl(s, F_GETFL) | O_NONBLOCK);
            int one = 1;
            ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            Conn c;
            c.client = fd;
            c.server = s;
            conns_.push_back(std::move(c));
        }
    }

    // Moves bytes from `from` into `buf`; false on a reset/error (the connection is then dead).
    static bool pump_in(int from, std::string& buf, bool& eof) {
        char tmp[65536];
        for (int i = 0; i < 16; ++i) {
            ssize_t n = ::read(from, tmp, sizeof tmp);
            if (n > 0) {
                buf.append(tmp, static_cast<size_t>(n));
                if (buf.size() > (1u << 20)) return true;
                continue;
            }
            if (n == 0) {
                eof = true;
                return true;
            }
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        }
        return true;
    }
    static bool pump_out(int to, std::string& buf) {
        while (!buf.empty()) {
            ssize_t n = ::send(to, buf.data(), buf.size(), MSG_NOSIGNAL);
            if (n > 0) {
                buf.erase(0, static_cast<size_t>(n));
                continue;
            }
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
        }
        return true;
    }

    void loop() {
        while (!stop_) {
            conns_.remove_if([](const Conn& c) { return c.dead; });
            std::vector<pollfd> fds;
            fds.push_back({wake_[0], POLLIN, 0});
            fds.push_back({listen_fd_, POLLIN, 0});
            std::vector<Conn*> owners;
            bool flowing = mode_ != Mode::Blackhole;
            bool replying = mode_ != Mode::HoldReplies;
            for (auto& c : conns_) {
                short ce = 0, se = 0;
                if (flowing) {
                    if (!c.client_eof && c.up.size() < (1u << 20)) ce |= POLLIN;
                    if (!c.server_eof && c.down.size() < (1u << 20)) se |= POLLIN;
                    if (!c.down.empty() && replying) ce |= POLLOUT;
                    if (!c.up.empty()) se |= POLLOUT;
                }
                fds.push_back({c.client, ce, 0});
                fds.push_back({c.server, se, 0});
                owners.push_back(&c);
            }
            int timeout = 200;
            if (cutting_) {
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                next_cut_ - std::chrono::steady_clock::now())
                                .count();
                timeout = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(left, 200)));
            }
            int n = ::poll(fds.data(), fds.size(), timeout);
            if (n < 0 && errno != EINTR) break;
            if (fds[0].revents & POLLIN) {
                char buf[256];
                while (::read(wake_[0], buf, sizeof buf) > 0) {
                }
            }
            run_commands();
            if (stop_) break;
            if (cutting_ && std::chrono::steady_clock::now() >= next_cut_) {
                cut_now();
                next_cut_ = std::chrono::steady_clock::now() + random_interval();
                continue;  // the pollfd entries refer to closed connections now
            }
            if (fds[1].revents & POLLIN) accept_all();
            for (size_t i = 0; i < owners.size(); ++i) {
                Conn& c = *owners[i];
                if (c.dead || mode_ == Mode::Blackhole) continue;
                short cr = fds[2 + 2 * i].revents, sr = fds[3 + 2 * i].revents;
                bool ok = true;
                if (cr & (POLLIN | POLLHUP | POLLERR))
                    ok = ok && pump_in(c.client, c.up, c.client_eof);
                if (sr & (POLLIN | POLLHUP | POLLERR))
                    ok = ok && pump_in(c.server, c.down, c.server_eof);
                if (ok) ok = pump_out(c.server, c.up) && (!replying || pump_out(c.client, c.down));
                if (!ok) {
                    // One side was reset: reset the other too, as a broken path would.
                    reset(c);
                    continue;
                }
                if (c.client_eof && c.up.empty() && !c.up_shut) {
                    ::shutdown(c.server, SHUT_WR);
                    c.up_shut = true;
                }
                if (replying && c.server_eof && c.down.empty() && !c.down_shut) {
                    ::shutdown(c.client, SHUT_WR);
                    c.down_shut = true;
                }
                if (c.up_shut && c.down_shut) close_gracefully(c);
            }
        }
        std::lock_guard lk(mu_);
        done_ = posted_;
        cv_.notify_all();
    }

    std::string up_host_;
    int up_port_;
    sockaddr_in up_addr_{};
    int listen_fd_ = -1;
    int port_ = 0;
    int wake_[2] = {-1, -1};
    std::thread thread_;
    std::atomic<bool> stop_{false};

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::function<void()>> commands_;
    uint64_t posted_ = 0, done_ = 0;

    // Loop thread only.
    std::list<Conn> conns_;
    std::vector<int> held_;
    Mode mode_ = Mode::Pass;
    bool cutting_ = false;
    std::chrono::milliseconds cut_min_{1000}, cut_max_{2000};
    std::chrono::steady_clock::time_point next_cut_{};
    std::mt19937_64 rng_{std::random_device{}()};
    std::atomic<size_t> accepted_{0}, cuts_{0}, reset_{0};
};

}  // namespace queuer::test
