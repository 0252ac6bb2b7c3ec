// The metrics registry's text format, and the HTTP server wrapper (queuer_http) on a real
// socket: routing, query strings, headers, bodies, streams.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "queuer/error.hpp"
#include "queuer/http.hpp"
#include "queuer/metrics.hpp"
#include "support/http_client.hpp"

using namespace queuer;
using namespace queuer::test;

TEST(Metrics, CounterAndGaugeLines) {
    metrics::Registry r;
    auto& c = r.counter("x_total", "Things done.", {"task"});
    c.with({"a"}).inc();
    c.with({"a"}).inc(2);
    c.with({"b"}).inc();
    r.gauge("g", "A gauge.").with().set(2.5);
    auto text = r.render();
    EXPECT_NE(text.find("# HELP x_total Things done.\n# TYPE x_total counter\n"), std::string::npos)
        << text;
    EXPECT_NE(text.find("x_total{task=\"a\"} 3\n"), std::string::npos) << text;
    EXPECT_NE(text.find("x_total{task=\"b\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("# TYPE g gauge\ng 2.5\n"), std::string::npos) << text;
    auto e = parse_exposition(text);
    EXPECT_TRUE(e.errors.empty());
    EXPECT_EQ(e.value("x_total", {{"task", "a"}}), 3);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
    metrics::Registry r;
    auto& h = r.histogram("d_seconds", "Durations.", {"task"}, {0.1, 1, 10});
    for (double v : {0.05, 0.1, 0.5, 2.0, 20.0, 0.01}) h.with({"t"}).observe(v);
    auto e = parse_exposition(r.render());
    ASSERT_TRUE(e.errors.empty());
    EXPECT_EQ(e.types["d_seconds"], "histogram");
    // le is inclusive: 0.1 falls in the 0.1 bucket.
    EXPECT_EQ(e.value("d_seconds_bucket", {{"task", "t"}, {"le", "0.1"}}), 3);
    EXPECT_EQ(e.value("d_seconds_bucket", {{"task", "t"}, {"le", "1"}}), 4);
    EXPECT_EQ(e.value("d_seconds_bucket", {{"task", "t"}, {"le", "10"}}), 5);
    EXPECT_EQ(e.value("d_seconds_bucket", {{"task", "t"}, {"le", "+Inf"}}), 6);
    EXPECT_EQ(e.value("d_seconds_count", {{"task", "t"}}), 6);
    EXPECT_NEAR(e.value("d_seconds_sum", {{"task", "t"}}), 22.66, 1e-9);
    // Non-decreasing across buckets, +Inf == count.
    double prev = -1;
    for (const auto& s : e.samples) {
        if (s.name != "d_seconds_bucket") continue;
        EXPECT_GE(s.value, prev);
        prev = s.value;
    }
}

TEST(Metrics, LabelValuesAreEscaped) {
    metrics::Registry r;
    r.counter("e_total", "Help with a \\ backslash\nand a newline.", {"task"})
        .with({"a\"b\\c\nd"})
        .inc();
    auto text = r.render();
    EXPECT_NE(text.find("e_total{task=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("# HELP e_total Help with a \\\\ backslash\\nand a newline.\n"),
              std::string::npos)
        << text;
    auto e = parse_exposition(text);
    ASSERT_TRUE(e.errors.empty());
    EXPECT_EQ(e.samples.at(0).labels.at("task"), "a\"b\\c\nd");
    EXPECT_EQ(metrics::escape_label_value("plain"), "plain");
}

TEST(Metrics, ValuesAndNames) {
    EXPECT_EQ(metrics::format_value(3), "3");
    EXPECT_EQ(metrics::format_value(0.25), "0.25");
    EXPECT_EQ(metrics::format_value(INFINITY), "+Inf");
    EXPECT_EQ(metrics::format_value(-INFINITY), "-Inf");
    EXPECT_EQ(metrics::format_value(std::nan("")), "NaN");
    metrics::Registry r;
    EXPECT_THROW(r.counter("bad-name", "x"), std::invalid_argument);
    EXPECT_THROW(r.counter("ok", "x", {"bad label"}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h", "x", {"le"}, {1}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h2", "x", {}, {2, 1}), std::invalid_argument);
    r.counter("a_total", "x");
    EXPECT_THROW(r.gauge("a_total", "x"), std::invalid_argument);
    r.histogram("h3", "x", {}, {1});
    r.gauge_func("f", "x", {"k"}, [] {
        return std::vector<std::pair<metrics::LabelValues, double>>{{{"v"}, 7}};
    });
    auto names = r.sample_names();
    for (const char* n : {"a_total", "h3", "h3_bucket", "h3_sum", "h3_count", "f"})
        EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
    EXPECT_NE(r.render().find("f{k=\"v\"} 7\n"), std::string::npos);
    EXPECT_THROW(r.counter("c_total", "x", {"a"}).with({"1", "2"}), std::invalid_argument);
}

TEST(Metrics, ConcurrentUpdatesWhileRendering) {
    metrics::Registry r;
    auto& c = r.counter("n_total", "x", {"t"});
    auto& h = r.histogram("h_seconds", "x", {"t"}, metrics::duration_buckets());
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&, i] {
            for (int k = 0; k < 2000; ++k) {
                c.with({std::to_string(i % 2)}).inc();
                h.with({"x"}).observe(0.001 * k);
            }
        });
    for (int k = 0; k < 50; ++k) EXPECT_TRUE(parse_exposition(r.render()).errors.empty());
    for (auto& t : ts) t.join();
    auto e = parse_exposition(r.render());
    EXPECT_EQ(e.value("n_total", {{"t", "0"}}) + e.value("n_total", {{"t", "1"}}), 8000);
    EXPECT_EQ(e.value("h_seconds_count"), 8000);
}

// ---- the HTTP server ----

class HttpServer : public ::testing::Test {
  protected:
    void SetUp() override {
        http::Options o;
        o.listen = "127.0.0.1:0";
        o.max_body = 16;
        server = std::make_unique<http::Server>(o);
        server->route("GET", "/hello", [](const http::Request& r) {
            return http::Response::text(200, "hello " + r.query_value("name", "nobody") + "\n")
                .header("X-Test", "yes");
        });
        server->route("POST", "/echo", [](const http::Request& r) {
            return http::Response::json(
                201, "{\"got\":\"" + r.body + "\",\"h\":\"" + r.header("X-Thing") + "\"}");
        });
        server->route("GET", "/jobs/*", [](const http::Request& r) {
            return http::Response::text(200, "job " + r.params.at(0));
        });
        server->route("GET", "/boom", [](const http::Request&) -> http::Response {
            throw std::runtime_error("kaput");
        });
        server->route("GET", "/events", [this](const http::Request&) {
            auto r = http::Response::stream("text/event-stream",
                                            [this](std::shared_ptr<http::Stream> s) {
                                                std::lock_guard g(mu);
                                                stream = s;
                                            });
            r.body = "retry: 1000\n\n";
            return r;
        });
        server->start();
        port = server->port();
        ASSERT_GT(port, 0);
    }
    std::unique_ptr<http::Server> server;
    int port = 0;
    std::mutex mu;
    std::shared_ptr<http::Stream> stream;
};

TEST_F(HttpServer, RoutesQueryHeadersAndErrors) {
    auto r = http_get(port, "/hello?name=a%20b&x=1");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "hello a b\n");
    EXPECT_EQ(r.headers["x-test"], "yes");
    EXPECT_EQ(r.headers["content-type"], "text/plain; charset=utf-8");
    EXPECT_EQ(http_get(port, "/nope").status, 404);
    auto m = http_raw(port, "DELETE /hello HTTP/1.1\r\nHost: x\r\nConnection: close");
    EXPECT_EQ(m.status, 405);
    EXPECT_EQ(m.headers["allow"], "GET");
    EXPECT_EQ(http_get(port, "/jobs/abc-123").body, "job abc-123");
    auto b = http_get(port, "/boom");
    EXPECT_EQ(b.status, 500);
    EXPECT_NE(b.body.find("kaput"), std::string::npos);
    auto p = http_raw(port,
                      "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Thing: t1\r\n"
                      "Content-Length: 5\r\n\r\nabcde");
    EXPECT_EQ(p.status, 201);
    EXPECT_EQ(p.body, "{\"got\":\"abcde\",\"h\":\"t1\"}");
    auto big = http_raw(port,
                        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        "Content-Length: 40\r\n\r\n0123456789012345678901234567890123456789");
    EXPECT_EQ(big.status, 413);
}

TEST_F(HttpServer, StreamsDeliverWritesFromAnotherThread) {
    std::string got;
    std::thread client([&] {
        auto r = http_raw(port, "GET /events HTTP/1.1\r\nHost: x\r\nConnection: close",
                          std::chrono::seconds(20));
        got = r.body;
        EXPECT_EQ(r.headers["content-type"], "text/event-stream");
    });
    std::shared_ptr<http::Stream> s;
    for (int i = 0; i < 400 && !s; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
        std::lock_guard g(mu);
        s = stream;
    }
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->write("data: one\n\n"));
    EXPECT_TRUE(s->write("data: two\n\n"));
    s->close();
    EXPECT_FALSE(s->write("data: late\n\n"));
    client.join();
    EXPECT_EQ(got, "retry: 1000\n\ndata: one\n\ndata: two\n\n");
}

TEST_F(HttpServer, StopEndsOpenStreams) {
    std::thread client([&] {
        http_raw(port, "GET /events HTTP/1.1\r\nHost: x\r\nConnection: close",
                 std::chrono::seconds(20));
    });
    std::shared_ptr<http::Stream> s;
    for (int i = 0; i < 400 && !s; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
        std::lock_guard g(mu);
        s = stream;
    }
    ASSERT_TRUE(s);
    server->stop();  // returns although the stream was never closed by its writer
    EXPECT_FALSE(s->write("data: after stop\n\n"));
    client.join();
    EXPECT_FALSE(server->running());
}

TEST(HttpListen, BadAddressesAreNamed) {
    EXPECT_THROW(http::split_host_port("9464", "http.listen"), queuer::Error);
    EXPECT_THROW(http::split_host_port("::1:9464", "http.listen"), queuer::Error);
    EXPECT_THROW(http::split_host_port("host:99999", "http.listen"), queuer::Error);
    EXPECT_EQ(http::split_host_port("[::1]:80", "x").first, "::1");
    EXPECT_EQ(http::split_host_port(":9464", "x").second, 9464);
    // A port taken by another server: the reason is named.
    http::Options o;
    o.listen = "127.0.0.1:0";
    http::Server a(o);
    a.start();
    o.listen = "127.0.0.1:" + std::to_string(a.port());
    http::Server b(o);
    try {
        b.start();
        ADD_FAILURE() << "bound twice";
    } catch (const queuer::Error& e) {
        EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(o.listen), std::string::npos) << e.what();
    }
    EXPECT_EQ(http::url_decode("a%2Fb+c"), "a/b c");
    auto q = http::parse_query("a=1&b=x%20y&c");
    ASSERT_EQ(q.size(), 3u);
    EXPECT_EQ(q[1].second, "x y");
}
