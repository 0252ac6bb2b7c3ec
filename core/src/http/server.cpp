// queuer::http::Server on CivetWeb: see queuer/http.hpp.
//
// CivetWeb (Debian's libcivetweb1, which depends on nothing but libc: no TLS stack is loaded
// into queuerd) serves each connection on one of a bounded set of worker threads
// (Options::max_connections). That makes streams simple: a streaming handler blocks on a
// condition variable in its own worker thread until data, the keepalive interval or the end,
// and nothing ever busy-waits. Connections are not kept alive between requests.
#include "queuer/http.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <civetweb.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>

#include "queuer/error.hpp"

namespace queuer::http {

// ---- helpers ----

std::string url_decode(std::string_view s, bool plus_is_space) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%' && i + 2 < s.size()) {
            int h = hex(s[i + 1]), l = hex(s[i + 2]);
            if (h >= 0 && l >= 0) {
                out += static_cast<char>(h * 16 + l);
                i += 2;
                continue;
            }
        }
        out += (c == '+' && plus_is_space) ? ' ' : c;
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view q) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!q.empty()) {
        size_t amp = q.find('&');
        std::string_view part = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
        if (part.empty()) continue;
        size_t eq = part.find('=');
        if (eq == std::string_view::npos)
            out.emplace_back(url_decode(part), "");
        else
            out.emplace_back(url_decode(part.substr(0, eq)), url_decode(part.substr(eq + 1)));
    }
    return out;
}

std::pair<std::string, int> split_host_port(std::string_view listen, std::string_view what) {
    auto bad = [&](const char* why) {
        return Error(ErrorKind::Config,
                     fmt::format("{} \"{}\" {}; expected HOST:PORT such as 127.0.0.1:9464, "
                                 "[::1]:9464 or :9464",
                                 what, listen, why));
    };
    std::string host;
    std::string_view port;
    if (!listen.empty() && listen.front() == '[') {
        size_t close = listen.find(']');
        if (close == std::string_view::npos || close + 1 >= listen.size() ||
            listen[close + 1] != ':')
            throw bad("is not a valid address");
        host = std::string(listen.substr(1, close - 1));
        port = listen.substr(close + 2);
    } else {
        size_t colon = listen.rfind(':');
        if (colon == std::string_view::npos) throw bad("has no port");
        host = std::string(listen.substr(0, colon));
        if (host.find(':') != std::string::npos) throw bad("needs brackets around an IPv6 address");
        port = listen.substr(colon + 1);
    }
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw bad("has no valid port");
    int p = std::stoi(std::string(port));
    if (p > 65535) throw bad("has a port above 65535");
    return {host, p};
}

std::string Request::query_value(std::string_view name, std::string_view fallback) const {
    for (const auto& [k, v] : query)
        if (k == name) return v;
    return std::string(fallback);
}

bool Request::has_query(std::string_view name) const {
    for (const auto& [k, v] : query)
        if (k == name) return true;
    return false;
}

std::string Request::header(std::string_view name, std::string_view fallback) const {
    std::string lower;
    for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = headers.find(lower);
    return it == headers.end() ? std::string(fallback) : it->second;
}

Response Response::text(int status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

Response Response::json(int status, std::string body) {
    Response r;
    r.status = status;
    r.content_type = "application/json";
    r.body = std::move(body);
    return r;
}

Response Response::stream(std::string content_type,
                          std::function<void(std::shared_ptr<Stream>)> on_stream) {
    Response r;
    r.content_type = std::move(content_type);
    r.on_stream = std::move(on_stream);
    r.header("Cache-Control", "no-cache");
    return r;
}

namespace {

// At most this much unsent data per stream; a client that reads slower is dropped.
constexpr size_t kMaxStreamBuffer = 4u << 20;

class StreamImpl : public Stream {
  public:
    bool write(std::string_view data) override {
        std::lock_guard g(mu_);
        if (gone_ || closing_) return false;
        if (buf_.size() + data.size() > kMaxStreamBuffer) {
            gone_ = true;
            cv_.notify_all();
            return false;
        }
        buf_.append(data);
        cv_.notify_all();
        return true;
    }
    void close() override {
        std::lock_guard g(mu_);
        closing_ = true;
        cv_.notify_all();
    }
    bool closed() const override {
        std::lock_guard g(mu_);
        return gone_ || closing_;
    }
    // The client went away or the server stops.
    void abort() {
        std::lock_guard g(mu_);
        gone_ = true;
        cv_.notify_all();
    }
    // Waits for something to send (data, or the keepalive after `keepalive` of silence).
    // Returns false at the end (closed and sent, or gone).
    bool next(std::string& out, std::chrono::milliseconds keepalive,
              const std::string& keepalive_data) {
        std::unique_lock lk(mu_);
        while (buf_.empty() && !gone_ && !closing_) {
            bool woke =
                cv_.wait_for(lk, keepalive, [&] { return !buf_.empty() || gone_ || closing_; });
            if (!woke && !keepalive_data.empty()) buf_ = keepalive_data;
        }
        if (gone_ || buf_.empty()) return false;
        out.swap(buf_);
        buf_.clear();
        return true;
    }

  private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::string buf_;
    bool gone_ = false;
    bool closing_ = false;
};

struct Route {
    std::string method;
    std::string path;  // exact, or prefix when `prefix`
    bool prefix = false;
    Handler handler;
};

std::string format_addr(const sockaddr* sa) {
    char host[INET6_ADDRSTRLEN] = {};
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return fmt::format("{}:{}", host, ntohs(in->sin_port));
    }
    if (sa->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return fmt::format("[{}]:{}", host, ntohs(in6->sin6_port));
    }
    return "?";
}

bool write_all(mg_connection* conn, std::string_view data) {
    while (!data.empty()) {
        int n = mg_write(conn, data.data(), data.size());
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

// Header values must not break the response apart.
std::string header_safe(std::string_view v) {
    std::string out;
    for (char c : v) out += (c == '\r' || c == '\n') ? ' ' : c;
    return out;
}

std::once_flag g_library_once;

// Binds (and releases) the address the way the server will, so that a failure names its reason
// ("Address already in use", "Cannot assign requested address"); CivetWeb only says that it
// failed. "" when it can be bound.
std::string bind_problem(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (host.empty() ? AI_PASSIVE : 0);
    addrinfo* res = nullptr;
    std::string port_s = std::to_string(port);
    if (getaddrinfo(host.empty() ? nullptr : host.c_str(), port_s.c_str(), &hints, &res) != 0 ||
        !res)
        return {};
    std::string why;
    int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    if (fd >= 0) {
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 1) != 0)
            why = std::strerror(errno);
        ::close(fd);
    }
    freeaddrinfo(res);
    return why;
}

}  // namespace

struct Server::Impl {
    Options opts;
    std::vector<Route> routes;
    mg_context* ctx = nullptr;
    std::string bound;
    int bound_port = 0;

    std::mutex streams_mu;
    std::set<StreamImpl*> streams;
    bool stopping = false;

    Response dispatch(Request& req) {
        bool path_known = false;
        std::string allow;
        for (const auto& r : routes) {
            bool match = r.prefix ? req.path.compare(0, r.path.size(), r.path) == 0
                                  : req.path == r.path;
            if (!match) continue;
            path_known = true;
            bool method_ok = r.method == "*" || r.method == req.method ||
                             (r.method == "GET" && req.method == "HEAD");
            if (!method_ok) {
                if (allow.find(r.method) == std::string::npos)
                    allow += (allow.empty() ? "" : ", ") + r.method;
                continue;
            }
            req.params.clear();
            if (r.prefix) req.params.push_back(req.path.substr(r.path.size()));
            try {
                return r.handler(req);
            } catch (const std::exception& e) {
                return Response::text(500, fmt::format("internal error: {}\n", e.what()));
            } catch (...) {
                return Response::text(500, "internal error\n");
            }
        }
        if (path_known) {
            auto r = Response::text(405, "method not allowed\n");
            r.header("Allow", allow);
            return r;
        }
        return Response::text(404, "not found\n");
    }

    // The status line and headers; Content-Length unless the body is a stream.
    std::string head(mg_connection* conn, const Response& r, std::optional<size_t> length) {
        std::string h = fmt::format("HTTP/1.1 {} {}\r\n", r.status,
                                    mg_get_response_code_text(conn, r.status));
        h += fmt::format("Content-Type: {}\r\n", header_safe(r.content_type));
        h += fmt::format("Server: {}\r\n", header_safe(opts.server_name));
        for (const auto& [k, v] : r.headers)
            h += fmt::format("{}: {}\r\n", header_safe(k), header_safe(v));
        if (length) h += fmt::format("Content-Length: {}\r\n", *length);
        h += "Connection: close\r\n\r\n";
        return h;
    }

    int handle(mg_connection* conn) {
        const mg_request_info* info = mg_get_request_info(conn);
        Request req;
        req.method = info->request_method ? info->request_method : "";
        req.path = info->local_uri ? info->local_uri : "/";
        if (info->query_string) req.query = parse_query(info->query_string);
        for (int i = 0; i < info->num_headers; ++i) {
            std::string k;
            for (const char* p = info->http_headers[i].name; p && *p; ++p)
                k += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
            auto& slot = req.headers[k];
            if (!slot.empty()) slot += ", ";
            slot += info->http_headers[i].value ? info->http_headers[i].value : "";
        }
        req.remote = std::strchr(info->remote_addr, ':')
                         ? fmt::format("[{}]:{}", info->remote_addr, info->remote_port)
                         : fmt::format("{}:{}", info->remote_addr, info->remote_port);
        // The body, at most max_body bytes.
        bool too_large = info->content_length > static_cast<long long>(opts.max_body);
        if (!too_large) {
            char buf[16 * 1024];
            for (;;) {
                int n = mg_read(conn, buf, sizeof buf);
                if (n <= 0) break;
                if (req.body.size() + static_cast<size_t>(n) > opts.max_body) {
                    too_large = true;
                    break;
                }
                req.body.append(buf, static_cast<size_t>(n));
            }
        }
        Response resp =
            too_large ? Response::text(413, "request body too large\n") : dispatch(req);
        bool head_only = req.method == "HEAD";

        if (!resp.on_stream || resp.status >= 400) {
            std::string out = head(conn, resp, resp.body.size());
            if (!head_only) out += resp.body;
            write_all(conn, out);
            return resp.status;
        }
        auto stream = std::make_shared<StreamImpl>();
        {
            std::lock_guard g(streams_mu);
            if (stopping) return 503;
            streams.insert(stream.get());
        }
        bool ok = write_all(conn, head(conn, resp, std::nullopt) + resp.body);
        if (ok && !head_only) {
            try {
                resp.on_stream(stream);
            } catch (...) {
                stream->close();
            }
            std::string chunk;
            while (stream->next(chunk, resp.keepalive, resp.keepalive_data))
                if (!write_all(conn, chunk)) break;
        }
        stream->abort();  // the holder's next write() returns false
        {
            std::lock_guard g(streams_mu);
            streams.erase(stream.get());
        }
        return resp.status;
    }

    static int request_cb(mg_connection* conn, void* cbdata) {
        return static_cast<Impl*>(cbdata)->handle(conn);
    }
};

Server::Server(Options options) : impl_(std::make_unique<Impl>()) {
    impl_->opts = std::move(options);
}

Server::~Server() {
    stop();
}

void Server::route(std::string method, std::string path, Handler handler) {
    Route r;
    r.method = std::move(method);
    if (!path.empty() && path.back() == '*') {
        r.prefix = true;
        path.pop_back();
    }
    r.path = std::move(path);
    r.handler = std::move(handler);
    impl_->routes.push_back(std::move(r));
}

void Server::start() {
    if (impl_->ctx) return;
    const std::string& listen = impl_->opts.listen;
    auto [host, port] = split_host_port(listen, "http.listen");
    // CivetWeb takes numeric addresses: resolve a name first (the first address wins).
    std::string ip = host;
    bool v6 = false;
    if (!host.empty()) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        int gai = getaddrinfo(host.c_str(), nullptr, &hints, &res);
        if (gai != 0 || !res)
            throw Error(ErrorKind::Config,
                        fmt::format("http.listen \"{}\": cannot resolve \"{}\": {}", listen, host,
                                    gai_strerror(gai)));
        std::string a = format_addr(res->ai_addr);
        v6 = res->ai_family == AF_INET6;
        freeaddrinfo(res);
        ip = a.substr(0, a.rfind(':'));  // "[::1]" or "127.0.0.1"
    }
    // ":PORT" = every interface (IPv4 and IPv6 where the system has it).
    std::string ports = host.empty() ? fmt::format("+{}", port) : fmt::format("{}:{}", ip, port);
    std::string threads = std::to_string(std::max<size_t>(impl_->opts.max_connections, 1));
    std::string timeout = std::to_string(impl_->opts.idle_timeout.count() * 1000);
    const char* options[] = {"listening_ports",
                             ports.c_str(),
                             "num_threads",
                             threads.c_str(),
                             "request_timeout_ms",
                             timeout.c_str(),
                             "enable_keep_alive",
                             "no",
                             "decode_url",
                             "yes",
                             nullptr};
    std::call_once(g_library_once, [] { mg_init_library(0); });
    mg_callbacks callbacks{};
    // CivetWeb's own messages (e.g. a bind failure) come back through mg_start2's error text;
    // nothing else is printed.
    callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
    mg_init_data init{};
    init.callbacks = &callbacks;
    init.user_data = impl_.get();
    init.configuration_options = options;
    char text[256] = {};
    unsigned code = 0;
    mg_error_data err{};
    err.code = &code;
    err.text = text;
    err.text_buffer_size = sizeof text;
    impl_->stopping = false;
    if (port != 0) {
        std::string probe_host = ip;
        if (!probe_host.empty() && probe_host.front() == '[')
            probe_host = probe_host.substr(1, probe_host.size() - 2);
        if (auto why = bind_problem(probe_host, port); !why.empty())
            throw Error(ErrorKind::Connection,
                        fmt::format("http.listen \"{}\": cannot listen: {}", listen, why));
    }
    impl_->ctx = mg_start2(&init, &err);
    if (!impl_->ctx)
        throw Error(ErrorKind::Connection, fmt::format("http.listen \"{}\": cannot listen: {}",
                                                       listen, text[0] ? text : "unknown error"));
    mg_set_request_handler(impl_->ctx, "/", &Impl::request_cb, impl_.get());
    mg_server_port p[4] = {};
    int n = mg_get_server_ports(impl_->ctx, 4, p);
    impl_->bound_port = n > 0 ? p[0].port : port;
    impl_->bound = host.empty() ? fmt::format(":{}", impl_->bound_port)
                                : fmt::format("{}:{}", ip, impl_->bound_port);
    (void)v6;
}

void Server::stop() {
    if (!impl_->ctx) return;
    {
        std::lock_guard g(impl_->streams_mu);
        impl_->stopping = true;
        for (auto* s : impl_->streams) s->abort();
    }
    mg_stop(impl_->ctx);  // waits for the worker threads
    impl_->ctx = nullptr;
}

bool Server::running() const {
    return impl_->ctx != nullptr;
}

std::string Server::address() const {
    return impl_->bound;
}

int Server::port() const {
    return impl_->bound_port;
}

}  // namespace queuer::http
