// queuer::http::Server on libmicrohttpd: see queuer/http.hpp.
//
// MHD runs with one listening thread and one thread per connection (bounded by
// Options::max_connections). That makes streams simple: a stream's content reader blocks on a
// condition variable in its own connection thread until data, the keepalive interval or the
// end, and nothing ever busy-waits. We bind the listening socket ourselves so that a bind
// failure can name its reason, then hand it to MHD.
#include "queuer/http.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <microhttpd.h>
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
    // The content reader: blocks until there is something to send.
    ssize_t read(char* out, size_t max, std::chrono::milliseconds keepalive,
                 const std::string& keepalive_data) {
        std::unique_lock lk(mu_);
        while (buf_.empty() && !gone_ && !closing_) {
            bool woke =
                cv_.wait_for(lk, keepalive, [&] { return !buf_.empty() || gone_ || closing_; });
            if (!woke && !keepalive_data.empty()) buf_ = keepalive_data;
        }
        if (gone_) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (buf_.empty()) return closing_ ? MHD_CONTENT_READER_END_OF_STREAM : 0;
        size_t n = std::min(max, buf_.size());
        std::memcpy(out, buf_.data(), n);
        buf_.erase(0, n);
        return static_cast<ssize_t>(n);
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

// Per request: the body as it arrives.
struct RequestState {
    std::string body;
    bool too_large = false;
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

}  // namespace

struct Server::Impl {
    Options opts;
    std::vector<Route> routes;
    MHD_Daemon* daemon = nullptr;
    int fd = -1;
    std::string bound;
    int bound_port = 0;

    std::mutex streams_mu;
    std::set<StreamImpl*> streams;
    bool stopping = false;

    struct Reader {
        Impl* server;
        std::shared_ptr<StreamImpl> stream;
        std::chrono::milliseconds keepalive;
        std::string keepalive_data;
    };

    static ssize_t read_cb(void* cls, uint64_t, char* buf, size_t max) {
        auto* r = static_cast<Reader*>(cls);
        return r->stream->read(buf, max, r->keepalive, r->keepalive_data);
    }
    static void free_cb(void* cls) {
        auto* r = static_cast<Reader*>(cls);
        r->stream->abort();
        {
            std::lock_guard g(r->server->streams_mu);
            r->server->streams.erase(r->stream.get());
        }
        delete r;
    }

    static void completed_cb(void*, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
        delete static_cast<RequestState*>(*con_cls);
        *con_cls = nullptr;
    }

    static MHD_Result header_it(void* cls, MHD_ValueKind, const char* key, const char* value) {
        auto* req = static_cast<Request*>(cls);
        std::string k;
        for (const char* p = key; *p; ++p)
            k += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
        auto& slot = req->headers[k];
        if (!slot.empty()) slot += ", ";
        slot += value ? value : "";
        return MHD_YES;
    }
    static MHD_Result query_it(void* cls, MHD_ValueKind, const char* key, const char* value) {
        static_cast<Request*>(cls)->query.emplace_back(key ? key : "", value ? value : "");
        return MHD_YES;
    }

    Response dispatch(Request& req) {
        bool path_known = false;
        std::string allow;
        for (const auto& r : routes) {
            bool match = false;
            if (r.prefix) {
                if (req.path.compare(0, r.path.size(), r.path) == 0) {
                    match = true;
                }
            } else {
                match = req.path == r.path;
            }
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

    static MHD_Result access_cb(void* cls, MHD_Connection* conn, const char* url,
                                const char* method, const char*, const char* upload_data,
                                size_t* upload_data_size, void** con_cls) {
        auto* self = static_cast<Impl*>(cls);
        if (*con_cls == nullptr) {
            *con_cls = new RequestState();
            return MHD_YES;
        }
        auto* st = static_cast<RequestState*>(*con_cls);
        if (*upload_data_size > 0) {
            if (st->body.size() + *upload_data_size > self->opts.max_body)
                st->too_large = true;
            else
                st->body.append(upload_data, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }

        Request req;
        req.method = method ? method : "";
        req.path = url ? url : "/";
        req.body = std::move(st->body);
        MHD_get_connection_values(conn, MHD_HEADER_KIND, header_it, &req);
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_it, &req);
        if (const auto* info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            info && info->client_addr)
            req.remote = format_addr(info->client_addr);

        Response resp =
            st->too_large ? Response::text(413, "request body too large\n") : self->dispatch(req);

        MHD_Response* mr = nullptr;
        if (resp.on_stream && resp.status < 400) {
            auto stream = std::make_shared<StreamImpl>();
            {
                std::lock_guard g(self->streams_mu);
                if (self->stopping) return MHD_NO;
                self->streams.insert(stream.get());
            }
            if (!resp.body.empty()) stream->write(resp.body);
            auto* reader = new Reader{self, stream, resp.keepalive, resp.keepalive_data};
            mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read_cb, reader,
                                                   free_cb);
            if (!mr) {
                free_cb(reader);
                return MHD_NO;
            }
            try {
                resp.on_stream(stream);
            } catch (...) {
                stream->close();
            }
        } else {
            mr = MHD_create_response_from_buffer(
                resp.body.size(), const_cast<char*>(resp.body.data()), MHD_RESPMEM_MUST_COPY);
            if (!mr) return MHD_NO;
        }
        MHD_add_response_header(mr, "Content-Type", resp.content_type.c_str());
        MHD_add_response_header(mr, "Server", self->opts.server_name.c_str());
        for (const auto& [k, v] : resp.headers) MHD_add_response_header(mr, k.c_str(), v.c_str());
        MHD_Result rc = MHD_queue_response(conn, static_cast<unsigned>(resp.status), mr);
        MHD_destroy_response(mr);
        return rc;
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
    if (impl_->daemon) return;
    const std::string& listen = impl_->opts.listen;
    auto [host, port] = split_host_port(listen, impl_->opts.listen_name);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (host.empty() ? AI_PASSIVE : 0);
    addrinfo* res = nullptr;
    std::string port_s = std::to_string(port);
    int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), port_s.c_str(), &hints, &res);
    if (gai != 0 || !res)
        throw Error(ErrorKind::Config,
                    fmt::format("{} \"{}\": cannot resolve \"{}\": {}", impl_->opts.listen_name,
                                listen, host, gai_strerror(gai)));
    std::string last_error;
    int fd = -1;
    bool v6 = false;
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_error = std::strerror(errno);
            continue;
        }
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 64) == 0) {
            v6 = ai->ai_family == AF_INET6;
            break;
        }
        last_error = std::strerror(errno);
        ::close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        throw Error(ErrorKind::Connection,
                    fmt::format("{} \"{}\": cannot listen: {}", impl_->opts.listen_name, listen,
                                last_error));
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    impl_->bound = format_addr(reinterpret_cast<sockaddr*>(&ss));
    impl_->bound_port = ss.ss_family == AF_INET6
                            ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                            : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ITC;
    if (v6) flags |= MHD_USE_IPv6;
    impl_->stopping = false;
    impl_->daemon = MHD_start_daemon(
        flags, 0, nullptr, nullptr, &Impl::access_cb, impl_.get(), MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned>(impl_->opts.max_connections),
        MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(impl_->opts.idle_timeout.count()),
        MHD_OPTION_NOTIFY_COMPLETED, &Impl::completed_cb, nullptr, MHD_OPTION_END);
    if (!impl_->daemon) {
        ::close(fd);
        throw Error(ErrorKind::Connection, fmt::format("{} \"{}\": the HTTP server did not start",
                                                       impl_->opts.listen_name, listen));
    }
    impl_->fd = fd;
}

void Server::stop() {
    if (!impl_->daemon) return;
    {
        std::lock_guard g(impl_->streams_mu);
        impl_->stopping = true;
        for (auto* s : impl_->streams) s->abort();
    }
    // Quiesce first: MHD then hands the listening socket back instead of closing it, and we
    // close it exactly once.
    MHD_socket s = MHD_quiesce_daemon(impl_->daemon);
    MHD_stop_daemon(impl_->daemon);
    impl_->daemon = nullptr;
    if (s != MHD_INVALID_SOCKET) ::close(s);
    impl_->fd = -1;
}

bool Server::running() const {
    return impl_->daemon != nullptr;
}

std::string Server::address() const {
    return impl_->bound;
}

int Server::port() const {
    return impl_->bound_port;
}

}  // namespace queuer::http
