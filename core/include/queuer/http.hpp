// queuer::http: a small HTTP server on libmicrohttpd (library target queuer_http, so that
// queuer_core does not depend on it). Handlers run on the server's own threads (one per
// connection, bounded), never on an engine loop or a task thread. Used by queuerd for
// /metrics, /healthz, /readyz and by `queuerctl web`.
//
//   queuer::http::Server s({.listen = "127.0.0.1:9464"});
//   s.route("GET", "/healthz", [](const Request&) { return Response::text(200, "ok\n"); });
//   s.route("GET", "/events", [](const Request&) {
//       return Response::stream("text/event-stream", [](std::shared_ptr<Stream> st) {
//           keep st; later, from any thread: st->write("data: hello\n\n");
//       });
//   });
//   s.start();   // binds; throws queuer::Error(Config) naming the address on failure
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace queuer::http {

struct Request {
    std::string method;                                      // "GET", "POST", ...
    std::string path;                                        // decoded path, no query string
    std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
    std::map<std::string, std::string> headers;              // names lower-cased
    std::string body;                                        // at most Options::max_body bytes
    std::string remote;                                      // "ADDR:PORT" of the client
    // Route parameters: for a route "/jobs/*", params[0] is the rest of the path.
    std::vector<std::string> params;

    // The first value of a query parameter, or `fallback`.
    std::string query_value(std::string_view name, std::string_view fallback = {}) const;
    bool has_query(std::string_view name) const;
    // A header's value (name case-insensitive), or `fallback`.
    std::string header(std::string_view name, std::string_view fallback = {}) const;
};

// A live response body written from any thread (server-sent events, long polls). write()
// queues data for the client; it returns false once the client has gone or the server stops,
// then the holder should drop it. Thread-safe.
class Stream {
  public:
    virtual ~Stream() = default;
    virtual bool write(std::string_view data) = 0;
    // Ends the response after what was written has been sent.
    virtual void close() = 0;
    virtual bool closed() const = 0;
};

struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    // When set, the body is a stream: called once (on a server thread) with the stream, after
    // the status and headers are decided; `body` is sent first.
    std::function<void(std::shared_ptr<Stream>)> on_stream;
    // While a stream is idle, this is written every `keepalive` (an SSE comment by default) so
    // that a client that went away is noticed.
    std::chrono::milliseconds keepalive{std::chrono::seconds(15)};
    std::string keepalive_data = ": keepalive\n\n";

    static Response text(int status, std::string body);
    static Response json(int status, std::string body);
    static Response stream(std::string content_type,
                           std::function<void(std::shared_ptr<Stream>)> on_stream);
    Response& header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
};

using Handler = std::function<Response(const Request&)>;

struct Options {
    // "HOST:PORT", "[IPv6]:PORT" or ":PORT" (all interfaces); port 0 picks a free port.
    std::string listen;
    size_t max_connections = 64;  // more are refused by the server
    size_t max_body = 1u << 20;   // larger request bodies get 413
    std::chrono::seconds idle_timeout{60};
    std::string server_name = "queuer";  // the Server header
    // What `listen` is called in error messages (the configuration key or the flag).
    std::string listen_name = "http.listen";
};

class Server {
  public:
    explicit Server(Options options);
    ~Server();  // stop()
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Routes, matched in the order added: an exact path, or a prefix ending in "*" whose rest
    // becomes Request::params[0]. method "*" matches any method. Unmatched paths get 404;
    // a known path with another method gets 405 with Allow. Add routes before start().
    void route(std::string method, std::string path, Handler handler);

    // Binds and starts serving. Throws queuer::Error(Config) for an address that does not
    // parse or resolve, and queuer::Error(Connection) when it cannot bind (the reason named).
    void start();
    // Ends open streams, stops accepting, waits for running handlers. Idempotent.
    void stop();
    bool running() const;
    // The bound address, "HOST:PORT" with the real port (after start()).
    std::string address() const;
    int port() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Percent-decoding ("+" as space when `plus_is_space`); invalid escapes are kept as they are.
std::string url_decode(std::string_view s, bool plus_is_space = true);
// "a=1&b=x%20y" -> {{"a","1"},{"b","x y"}}.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view q);
// Splits "host:port" / "[v6]:port" / ":port"; throws queuer::Error(Config) naming `what`.
std::pair<std::string, int> split_host_port(std::string_view listen, std::string_view what);

}  // namespace queuer::http
