// queuerctl web: see console.hpp and docs/web.md.
//
// Safety, in the order a request meets it:
//  * Host: a console bound to loopback answers only to Host 127.0.0.1/localhost/[::1] (a page
//    on another site that rebinds its DNS name to 127.0.0.1 gets 403, so it cannot read jobs).
//  * GET never changes anything. Every POST needs the token in X-Queuerd-Token (or
//    Authorization: Bearer): a header, which a page of another origin cannot set on a request
//    to us without a CORS preflight we never answer; no cookies are used at all. A POST whose
//    Origin is not ours, or that the browser marks cross-site, is refused too. --read-only
//    refuses every POST and renders no action.
//  * Output: pages are rendered here with every value escaped (html.hpp); the
//    Content-Security-Policy allows scripts and styles from our own /assets only, so even a
//    value that escaped escaping could not run.
//  * The token is compared in constant time and never written anywhere but the start line; the
//    database password is never written at all (DatabaseConfig::describe has none).
#include "console.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/random.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "assets.hpp"
#include "html.hpp"
#include "pages.hpp"
#include "queuer/admin.hpp"
#include "queuer/client.hpp"
#include "queuer/crypto.hpp"
#include "queuer/error.hpp"
#include "queuer/http.hpp"

namespace queuerctl::web {

namespace admin = queuer::admin;
namespace http = queuer::http;
using queuer::Error;
using queuer::ErrorKind;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxEventStreams = 32;
constexpr auto kCoalesce = std::chrono::milliseconds(500);
constexpr auto kWorkerCheck = std::chrono::seconds(3);
constexpr auto kOverviewTtl = std::chrono::seconds(1);
constexpr auto kRescan = std::chrono::seconds(150);
constexpr int kStatementTimeoutMs = 10000;

void say(const std::string& line) {
    std::string s = "queuerctl web: " + line + "\n";
    std::fputs(s.c_str(), stderr);
}

uint64_t fnv1a(const unsigned char* p, size_t n, uint64_t h = 1469598103934665603ull) {
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
    // The length of the expected token is not a secret worth hiding; its content is.
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string json_message(bool ok, std::string_view text, std::string_view extra = {}) {
    return fmt::format("{{\"ok\":{},\"{}\":{}{}}}", ok ? "true" : "false", ok ? "message" : "error",
                       json_str(text), extra);
}

http::Response json_reply(int status, std::string body) {
    auto r = http::Response::json(status, std::move(body));
    return r;
}

// The status of a failed request and what to tell the user.
std::pair<int, std::string> describe_error(const Error& e) {
    switch (e.kind()) {
        case ErrorKind::Invalid:
            return {400, e.what()};
        case ErrorKind::NotFound:
            return {404, e.what()};
        case ErrorKind::Connection:
            return {503, std::string("the database cannot be reached: ") + e.what()};
        case ErrorKind::Database:
            if (e.sqlstate() == "57014")
                return {503,
                        "the query took longer than 10 s and was stopped; narrow the filters "
                        "(a time window, a task or a status)"};
            return {500, std::string("the database refused: ") + e.what()};
        default:
            return {500, e.what()};
    }
}

bool is_loopback_host(std::string_view host) {
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

struct Console::Impl {
    queuer::AppConfig cfg;
    Options opts;
    std::string token;
    Site site;
    std::unique_ptr<queuer::Client> client;
    std::unique_ptr<queuer::Cipher> cipher;
    std::unique_ptr<http::Server> server;
    bool bound_loopback = false;
    std::vector<std::string> allowed_hosts;  // when bound_loopback
    std::vector<std::string> asset_etags;

    // ---- server-sent events ----
    std::mutex hub_mu;
    std::vector<std::shared_ptr<http::Stream>> streams;
    bool db_up = true;
    std::string db_error;

    std::thread listener;
    std::mutex stop_mu;
    std::condition_variable stop_cv;
    bool stopping = false;

    // ---- the overview, shared by all clients for up to kOverviewTtl ----
    std::mutex overview_mu;
    Clock::time_point overview_at{};
    std::string overview_html;
    // Its last hour, per minute, task and status (under overview_mu): read whole once, then
    // only the last kRescan (so a busy archive costs the first overview only; start() warms
    // it up in the background).
    std::map<queuer::TimePoint, std::map<std::pair<std::string, std::string>, int64_t>> minutes;
    bool minutes_warm = false;
    std::thread warmer;

    // ================= request plumbing =================

    bool host_ok(const http::Request& req) const {
        if (!bound_loopback) return true;
        std::string host = lower(req.header("host"));
        if (host.empty()) return true;  // HTTP/1.0 without Host: no browser sends that
        for (const auto& h : allowed_hosts)
            if (host == h) return true;
        return false;
    }

    void security_headers(http::Response& r) const {
        r.header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                 "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
        r.header("X-Content-Type-Options", "nosniff");
        r.header("X-Frame-Options", "DENY");
        r.header("Referrer-Policy", "no-referrer");
        r.header("Cross-Origin-Opener-Policy", "same-origin");
        r.header("Cross-Origin-Resource-Policy", "same-origin");
        r.header("Permissions-Policy", "camera=(), microphone=(), geolocation=()");
    }

    using Fn = std::function<http::Response(const http::Request&)>;

    http::Response guard(const http::Request& req, const Fn& fn) {
        auto t0 = Clock::now();
        http::Response r;
        if (!host_ok(req)) {
            say(fmt::format("refused {} {} from {}: unexpected Host header \"{}\"", req.method,
                            req.path, req.remote, req.header("host")));
            r = http::Response::text(
                403, fmt::format("This console answers only to {} (Host header \"{}\" refused: "
                                 "DNS rebinding protection).\n",
                                 allowed_hosts.empty() ? "" : allowed_hosts.front(),
                                 req.header("host")));
        } else {
            try {
                r = fn(req);
            } catch (const Error& e) {
                auto [status, text] = describe_error(e);
                if (status >= 500) say(fmt::format("{} {}: {}", req.method, req.path, text));
                r = req.path.rfind("/api/", 0) == 0 ? json_reply(status, json_message(false, text))
                                                    : error_page(req, status, text);
            } catch (const std::exception& e) {
                say(fmt::format("{} {}: internal error: {}", req.method, req.path, e.what()));
                r = http::Response::text(500, "internal error\n");
            }
        }
        security_headers(r);
        bool cache_set = false;
        for (const auto& [k, v] : r.headers) cache_set = cache_set || k == "Cache-Control";
        if (!cache_set) r.header("Cache-Control", "no-store");
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        r.header("Server-Timing", fmt::format("app;dur={:.2f}", ms));
        return r;
    }

    void route(const char* method, const char* path, Fn fn) {
        server->route(method, path, [this, fn = std::move(fn)](const http::Request& req) {
            return guard(req, fn);
        });
    }

    static bool partial(const http::Request& req) { return req.header("x-partial") == "1"; }

    http::Response html(const http::Request& req, int status, std::string_view nav,
                        std::string_view title, std::string_view channels, std::string_view head,
                        std::string_view live) {
        http::Response r;
        r.status = status;
        r.content_type = "text/html; charset=utf-8";
        r.body = partial(req) ? std::string(live) : page(site, nav, title, channels, head, live);
        return r;
    }

    http::Response error_page(const http::Request& req, int status, const std::string& text) {
        return html(req, status, "", "Error", "", "<h1>Something went wrong</h1>",
                    message_box("error", text));
    }

    queuer::TimePoint db_now(queuer::db::Connection& c) {
        return queuer::parse_time(c.exec("SELECT LOCALTIMESTAMP").get(0, 0), "now");
    }

    // ================= pages =================

    std::string overview_fragment() {
        std::lock_guard g(overview_mu);
        if (!overview_html.empty() && Clock::now() - overview_at < kOverviewTtl)
            return overview_html;
        auto c = client->pool().acquire();
        OverviewData d;
        d.live = admin::live_stats(*c);
        d.activity = last_hour(*c);
        d.newest = admin::newest_jobs(*c, 10);
        d.master = admin::master_info(*c);
        for (const auto& w : admin::list_workers(*c, 0)) {
            ++d.workers_active;
            if (w.stale) ++d.workers_stale;
        }
        overview_html = overview_live(d);
        overview_at = Clock::now();
        return overview_html;
    }

    // The last 60 minutes of the archive. The minutes from kRescan ago are read again each
    // time (a job's updated_at is its finishing transaction's start: one that commits late
    // still lands in a minute read again); older minutes are kept as read.
    admin::Activity last_hour(queuer::db::Connection& c) {
        auto em = admin::ended_per_minute(c, minutes_warm ? kRescan : std::chrono::seconds(3600));
        minutes.erase(minutes.lower_bound(em.from), minutes.end());
        for (const auto& r : em.rows) minutes[r.minute][{r.task_name, r.status}] += r.count;
        auto first = std::chrono::floor<std::chrono::minutes>(em.now) - std::chrono::minutes(59);
        minutes.erase(minutes.begin(), minutes.lower_bound(first));
        minutes_warm = true;
        std::vector<admin::MinuteCount> rows;
        for (const auto& [minute, counts] : minutes)
            for (const auto& [key, n] : counts) rows.push_back({minute, key.first, key.second, n});
        return admin::summarize_activity(rows, em.now, 60);
    }

    http::Response overview(const http::Request& req) {
        return html(req, 200, "overview", "Overview", "job job_archive worker", "<h1>Overview</h1>",
                    overview_fragment());
    }

    http::Response list(const http::Request& req, bool archive) {
        ListQuery q;
        q.task = req.query_value("task");
        q.status = upper(req.query_value("status"));
        q.since = req.query_value("since");
        q.until = req.query_value("until");
        q.search = req.query_value("search");
        if (archive) q.error = req.query_value("error");
        const char* nav = archive ? "archive" : "jobs";
        const char* title = archive ? "Archive" : "Jobs";
        const char* channels = archive ? "job_archive" : "job job_archive";
        auto bad = [&](const std::string& text) {
            return html(req, 400, nav, title, channels, list_head(archive, q),
                        message_box("error", text));
        };
        auto whole = [](const std::string& v, int64_t& out) {
            if (v.empty()) return true;
            if (v.size() > 18 ||
                !std::all_of(v.begin(), v.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
                return false;
            out = std::stoll(v);
            return true;
        };
        int64_t limit = q.limit;
        if (!whole(req.query_value("before"), q.before) || !whole(req.query_value("limit"), limit))
            return bad("before and limit must be whole numbers");
        q.limit = static_cast<int>(std::min<int64_t>(limit, 1000000));
        if (q.before < 0) return bad("before must not be negative");
        if (q.limit < 10 || q.limit > 500) return bad("limit must be 10..500");
        admin::Filter f;
        try {
            f = filter_from(q, archive);
        } catch (const Error& e) {
            return bad(e.what());
        }
        auto c = client->pool().acquire();
        admin::JobPage pg;
        try {
            pg = admin::list_jobs(*c, archive, f, q.before, q.limit);
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::Invalid) throw;
            return bad(e.what());
        }
        return html(req, 200, nav, title, channels, list_head(archive, q),
                    list_live(site, archive, q, pg, db_now(*c)));
    }

    static admin::Filter filter_from(const ListQuery& q, bool archive) {
        admin::Filter f;
        if (!q.task.empty()) queuer::validate_task_name(q.task, "task");
        f.task = q.task;
        if (!q.status.empty()) {
            // One status, or several separated by commas.
            size_t start = 0;
            for (;;) {
                size_t comma = q.status.find(',', start);
                std::string one = q.status.substr(
                    start, comma == std::string::npos ? std::string::npos : comma - start);
                if (!one.empty()) f.statuses.push_back(one);
                if (comma == std::string::npos) break;
                start = comma + 1;
            }
        }
        f.since = admin::parse_time_bound(q.since, "since");
        f.until = admin::parse_time_bound(q.until, "until");
        f.search = q.search;
        if (archive) f.error = q.error;
        if (q.search.size() > 200 || q.error.size() > 200)
            throw Error(ErrorKind::Invalid, "search and error texts are limited to 200 characters");
        return f;
    }

    http::Response goto_job(const http::Request& req) {
        std::string rid = req.query_value("rid");
        // Trim what a copy and paste brings along.
        while (!rid.empty() && std::isspace(static_cast<unsigned char>(rid.back()))) rid.pop_back();
        while (!rid.empty() && std::isspace(static_cast<unsigned char>(rid.front())))
            rid.erase(0, 1);
        try {
            queuer::validate_rid(rid, "rid");
        } catch (const Error&) {
            return error_page(req, 400,
                              fmt::format("\"{}\" is not a job RID (a UUID such as "
                                          "0b6f7c1e-1f53-4b8e-9b1a-6a2c1d2e3f40)",
                                          rid));
        }
        http::Response r = http::Response::text(303, "see /job/" + rid + "\n");
        r.header("Location", "/job/" + lower(rid));
        return r;
    }

    http::Response detail(const http::Request& req) {
        std::string rid = req.params.empty() ? "" : req.params[0];
        try {
            queuer::validate_rid(rid, "rid");
        } catch (const Error&) {
            return error_page(req, 400, fmt::format("\"{}\" is not a job RID (a UUID)", rid));
        }
        auto c = client->pool().acquire();
        auto d = admin::job_detail(*c, rid, cipher.get());
        if (!d)
            return html(req, 404, "", "Job not found", "job job_archive", "<h1>Job not found</h1>",
                        message_box("error", "No job has RID " + rid +
                                                 " (it may have been deleted from the archive)."));
        return html(req, 200, "", d->job.task_name + " " + d->job.rid.substr(0, 8),
                    "job job_archive", "", detail_live(site, *d, db_now(*c)));
    }

    http::Response workers(const http::Request& req) {
        auto c = client->pool().acquire();
        auto m = admin::master_info(*c);
        auto w = admin::list_workers(*c, 50);
        return html(req, 200, "workers", "Workers", "worker job",
                    "<h1>Workers</h1><p class=\"lede\">Active workers, then the latest stopped "
                    "ones.</p>",
                    workers_live(site, m, w));
    }

    http::Response asset(const http::Request& req) {
        std::string name = req.params.empty() ? "" : req.params[0];
        for (size_t i = 0; i < kAssetCount; ++i) {
            if (name != kAssets[i].name) continue;
            const std::string& etag = asset_etags[i];
            http::Response r;
            if (req.header("if-none-match") == etag) {
                r.status = 304;
            } else {
                r.content_type = kAssets[i].content_type;
                r.body.assign(reinterpret_cast<const char*>(kAssets[i].data), kAssets[i].size);
            }
            r.header("ETag", etag);
            r.header("Cache-Control", req.query_value("v") == site.asset_version
                                          ? "public, max-age=31536000, immutable"
                                          : "no-cache");
            return r;
        }
        return http::Response::text(404, "no such asset\n");
    }

    // ================= live updates =================

    std::string db_event() {
        return fmt::format("event: db\ndata: {{\"up\":{},\"error\":{}}}\n\n",
                           db_up ? "true" : "false", json_str(db_error));
    }

    http::Response events(const http::Request&) {
        {
            std::lock_guard g(hub_mu);
            std::erase_if(streams, [](const auto& s) { return s->closed(); });
            if (streams.size() >= kMaxEventStreams) {
                auto r = http::Response::text(
                    503, fmt::format("too many live pages open (at most {})\n", kMaxEventStreams));
                r.header("Retry-After", "10");
                return r;
            }
        }
        auto r =
            http::Response::stream("text/event-stream", [this](std::shared_ptr<http::Stream> s) {
                std::lock_guard g(hub_mu);
                s->write(db_event());
                streams.push_back(std::move(s));
            });
        r.body = "retry: 3000\n\n";
        // Writes find a page that went away; short, so that its place among kMaxEventStreams
        // is free again soon.
        r.keepalive = std::chrono::seconds(5);
        r.header("X-Accel-Buffering", "no");
        return r;
    }

    size_t stream_count() {
        std::lock_guard g(hub_mu);
        std::erase_if(streams, [](const auto& s) { return s->closed(); });
        return streams.size();
    }

    void broadcast(const std::string& data) {
        std::lock_guard g(hub_mu);
        std::erase_if(streams, [&](const auto& s) { return !s->write(data); });
    }

    void set_db(bool up, std::string error) {
        {
            std::lock_guard g(hub_mu);
            if (db_up == up && db_error == error) return;
            db_up = up;
            db_error = std::move(error);
        }
        broadcast(db_event());
    }

    bool wait_stop(std::chrono::milliseconds d) {
        std::unique_lock lk(stop_mu);
        return stop_cv.wait_for(lk, d, [&] { return stopping; });
    }

    // One LISTEN connection; notifications are counted and flushed as one "change" event at
    // most every kCoalesce. The worker table has no notification for registrations and
    // heartbeats: while a page is open, a fingerprint of it is read every kWorkerCheck.
    void listen_loop() {
        struct Pending {
            int64_t job = 0, archive = 0, worker = 0;
            std::vector<std::string> rids;
            bool more = false;
            bool any() const { return job || archive || worker; }
        } pending;
        std::optional<queuer::db::Connection> conn;
        auto backoff = std::chrono::milliseconds(1000);
        Clock::time_point last_flush{}, last_worker_check{};
        std::string worker_fp;
        for (;;) {
            {
                std::lock_guard g(stop_mu);
                if (stopping) return;
            }
            if (!conn) {
                try {
                    auto dc = cfg.database;
                    dc.application_name = "queuerctl web (listen)";
                    conn = queuer::db::Connection::open(dc);
                    conn->listen("job");
                    conn->listen("job_archive");
                    conn->listen("worker");
                    if (!db_up) say("the database is back; live updates resume");
                    set_db(true, "");
                    backoff = std::chrono::milliseconds(1000);
                    // Whatever happened while we were away: every page refreshes once.
                    pending.job = pending.archive = pending.worker = 1;
                    pending.more = true;
                } catch (const Error& e) {
                    conn.reset();
                    if (db_up) say(fmt::format("live updates paused: {}", e.what()));
                    set_db(false, e.what());
                    if (wait_stop(backoff)) return;
                    backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
                    continue;
                }
            }
            auto now = Clock::now();
            try {
                if (now - last_worker_check >= kWorkerCheck && stream_count() > 0) {
                    last_worker_check = now;
                    auto r = conn->exec(
                        "SELECT count(*)::text || ':' || COALESCE(sum(hashtext(rid::text || "
                        "COALESCE(status, '') || COALESCE(current_concurrency, 0)::text || "
                        "COALESCE(max_concurrency, 0)::text)), 0)::text || ':' || "
                        "COALESCE((SELECT worker_rid::text FROM master WHERE id = 1), '') "
                        "FROM worker");
                    std::string fp = r.str(0, 0);
                    if (!worker_fp.empty() && fp != worker_fp) ++pending.worker;
                    worker_fp = fp;
                }
                for (auto& n : conn->drain_notifications()) {
                    if (n.channel == "job")
                        ++pending.job;
                    else if (n.channel == "job_archive")
                        ++pending.archive;
                    else if (n.channel == "worker")
                        ++pending.worker;
                    else
                        continue;
                    if (n.channel == "worker") continue;
                    rapidjson::Document d;
                    d.Parse(n.payload.c_str());
                    if (d.IsObject() && d.HasMember("rid") && d["rid"].IsString()) {
                        if (pending.rids.size() < 20)
                            pending.rids.emplace_back(d["rid"].GetString());
                        else
                            pending.more = true;
                    }
                }
            } catch (const Error& e) {
                say(fmt::format("live updates paused: {}", e.what()));
                conn.reset();
                set_db(false, e.what());
                continue;
            }
            now = Clock::now();
            if (pending.any() && now - last_flush >= kCoalesce) {
                std::string rids = "[";
                for (size_t i = 0; i < pending.rids.size(); ++i)
                    rids += (i ? "," : "") + json_str(pending.rids[i]);
                rids += "]";
                broadcast(fmt::format(
                    "event: change\ndata: {{\"job\":{},\"job_archive\":{},\"worker\":{},"
                    "\"rids\":{},\"more\":{}}}\n\n",
                    pending.job, pending.archive, pending.worker, rids,
                    pending.more ? "true" : "false"));
                pending = Pending{};
                last_flush = now;
            }
            // Sleep until a notification, the end of the coalescing window, the next worker
            // check or a stop (checked at least every 250 ms).
            auto wait = std::chrono::milliseconds(250);
            if (pending.any()) {
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(last_flush +
                                                                                  kCoalesce - now);
                wait = std::max(std::chrono::milliseconds(1), std::min(wait, left));
                // Within the window, do not wake for every notification: sleep it out.
                if (wait_stop(wait)) return;
                continue;
            }
            pollfd p{conn->socket(), POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(wait.count()));
        }
    }

    // ================= actions =================

    std::optional<http::Response> refuse(const http::Request& req) {
        auto no = [&](const char* reason, const std::string& text) {
            say(fmt::format("refused {} {} from {}: {}", req.method, req.path, req.remote, text));
            return json_reply(403,
                              json_message(false, text, fmt::format(",\"reason\":\"{}\"", reason)));
        };
        if (opts.read_only) return no("read-only", "this console is read-only (--read-only)");
        // Behind a reverse proxy that terminates TLS the origin is https://, with the Host
        // header passed on.
        std::string origin = lower(req.header("origin"));
        std::string host = lower(req.header("host"));
        if (!origin.empty() && origin != "http://" + host && origin != "https://" + host)
            return no("origin", "the request comes from another origin (" + origin + ")");
        if (req.header("sec-fetch-site") == "cross-site")
            return no("origin", "the browser marked the request cross-site");
        std::string given = req.header("x-queuerd-token");
        if (given.empty()) {
            std::string auth = req.header("authorization");
            if (auth.rfind("Bearer ", 0) == 0) given = auth.substr(7);
        }
        if (given.empty())
            return no("token",
                      "this action needs the token printed by queuerctl web at start (header "
                      "X-Queuerd-Token)");
        if (!equal_constant_time(given, token)) return no("token", "wrong token");
        return std::nullopt;
    }

    static std::vector<std::pair<std::string, std::string>> form(const http::Request& req) {
        // The body (application/x-www-form-urlencoded), then the query string.
        auto kv = http::parse_query(req.body);
        for (const auto& q : req.query) kv.push_back(q);
        return kv;
    }
    static std::string field(const std::vector<std::pair<std::string, std::string>>& kv,
                             std::string_view name) {
        for (const auto& [k, v] : kv)
            if (k == name) return v;
        return {};
    }

    // "<rid>/<verb>" of an action's path: the RID (checked) and the verb, or the 400 reply for a
    // malformed RID ("job" or "worker" names what it should have been).
    struct RidAndVerb {
        std::string rid, verb;
        std::optional<http::Response> bad;
    };
    static RidAndVerb rid_and_verb(const http::Request& req, std::string_view what) {
        std::string rest = req.params.empty() ? "" : req.params[0];
        auto slash = rest.find('/');
        RidAndVerb r{rest.substr(0, slash),
                     slash == std::string::npos ? "" : rest.substr(slash + 1), std::nullopt};
        try {
            queuer::validate_rid(r.rid, "rid");
        } catch (const Error&) {
            r.bad = json_reply(
                400, json_message(false, fmt::format("\"{}\" is not a {} RID", r.rid, what)));
        }
        return r;
    }

    // POST /api/job/<rid>/cancel | /api/job/<rid>/retry
    http::Response job_action(const http::Request& req) {
        if (auto r = refuse(req)) return *r;
        auto [rid, verb, bad] = rid_and_verb(req, "job");
        if (bad) return *bad;
        if (verb != "cancel" && verb != "retry")
            return json_reply(
                404, json_message(false, "unknown action \"" + verb + "\" (cancel or retry)"));
        auto c = client->pool().acquire();
        admin::Filter f;
        f.rid = rid;
        if (verb == "cancel") {
            int64_t n = admin::cancel_jobs(*c, f, false);
            if (n == 0) {
                auto d = admin::job_detail(*c, rid, nullptr);
                if (d && d->archived)
                    return json_reply(409,
                                      json_message(false, "job " + rid + " has already ended (" +
                                                              d->job.status + ")"));
                return json_reply(404, json_message(false, "no live job has RID " + rid));
            }
            say(fmt::format("{} cancelled job {}", req.remote, rid));
            return json_reply(200, json_message(true, "Cancelled job " + rid));
        }
        f.statuses = {"SUCCEEDED", "FAILED", "CANCELLED"};
        std::vector<std::string> rids;
        admin::retry_jobs(*c, f, false, &rids);
        if (rids.empty()) {
            auto d = admin::job_detail(*c, rid, nullptr);
            if (d && !d->archived)
                return json_reply(409, json_message(false, "job " + rid + " has not ended yet (" +
                                                               d->job.status + ")"));
            return json_reply(404, json_message(false, "no archived job has RID " + rid));
        }
        say(fmt::format("{} retried job {} as {}", req.remote, rid, rids.front()));
        return json_reply(200,
                          json_message(true, "Queued job " + rids.front(),
                                       ",\"rid\":" + json_str(rids.front()) +
                                           ",\"location\":" + json_str("/job/" + rids.front())));
    }

    // POST /api/jobs/cancel and /api/archive/retry: the filters of the list page; dry_run=1
    // counts and changes nothing.
    http::Response bulk(const http::Request& req, bool archive) {
        if (auto r = refuse(req)) return *r;
        auto kv = form(req);
        ListQuery q;
        q.task = field(kv, "task");
        q.status = upper(field(kv, "status"));
        q.since = field(kv, "since");
        q.until = field(kv, "until");
        q.search = field(kv, "search");
        if (archive) q.error = field(kv, "error");
        bool dry = field(kv, "dry_run") == "1" || field(kv, "dry_run") == "true";
        admin::Filter f = filter_from(q, archive);
        auto c = client->pool().acquire();
        int64_t n = archive ? admin::retry_jobs(*c, f, dry) : admin::cancel_jobs(*c, f, dry);
        std::string verb = archive ? "retry" : "cancel";
        if (!dry) {
            std::string qs = query_string(q.filter_pairs());
            say(fmt::format("{} bulk {}: {} job{} ({})", req.remote, verb, n, n == 1 ? "" : "s",
                            qs.empty() ? "no filter" : qs.substr(1)));
        }
        std::string text = dry ? fmt::format("{} job{} would be {}", num(n), n == 1 ? "" : "s",
                                             archive ? "queued again" : "cancelled")
                               : fmt::format("{} {} job{}", archive ? "Queued again" : "Cancelled",
                                             num(n), n == 1 ? "" : "s");
        return json_reply(200, json_message(true, text,
                                            fmt::format(",\"count\":{},\"dry_run\":{}", n,
                                                        dry ? "true" : "false")));
    }

    // POST /api/worker/<rid>/stop with mode=graceful|now
    http::Response worker_stop(const http::Request& req) {
        if (auto r = refuse(req)) return *r;
        auto [rid, verb, bad] = rid_and_verb(req, "worker");
        if (bad) return *bad;
        if (verb != "stop")
            return json_reply(404, json_message(false, "unknown action \"" + verb + "\" (stop)"));
        std::string mode = field(form(req), "mode");
        if (mode != "graceful" && mode != "now")
            return json_reply(400, json_message(false, "mode must be graceful or now"));
        queuer::Worker w;
        try {
            w = client->stop_worker(rid, mode == "graceful");
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::Invalid)
                return json_reply(409, json_message(false, e.what()));
            throw;
        }
        say(fmt::format("{} stopped worker {} ({}) {}", req.remote, w.name, w.rid,
                        mode == "graceful" ? "gracefully" : "now"));
        return json_reply(
            200, json_message(true,
                              mode == "graceful"
                                  ? "Worker " + w.name + " stops once its running jobs finish"
                                  : "Worker " + w.name + " stops now",
                              ",\"status\":" + json_str(w.status)));
    }

    void add_routes() {
        route("GET", "/", [this](const http::Request& r) { return overview(r); });
        route("GET", "/jobs", [this](const http::Request& r) { return list(r, false); });
        route("GET", "/archive", [this](const http::Request& r) { return list(r, true); });
        route("GET", "/job", [this](const http::Request& r) { return goto_job(r); });
        route("GET", "/job/*", [this](const http::Request& r) { return detail(r); });
        route("GET", "/workers", [this](const http::Request& r) { return workers(r); });
        route("GET", "/events", [this](const http::Request& r) { return events(r); });
        route("GET", "/assets/*", [this](const http::Request& r) { return asset(r); });
        route("POST", "/api/job/*", [this](const http::Request& r) { return job_action(r); });
        route("POST", "/api/jobs/cancel",
              [this](const http::Request& r) { return bulk(r, false); });
        route("POST", "/api/archive/retry",
              [this](const http::Request& r) { return bulk(r, true); });
        route("POST", "/api/worker/*", [this](const http::Request& r) { return worker_stop(r); });
    }
};

Console::Console(const queuer::AppConfig& cfg, Options options, std::string token,
                 std::string version)
    : impl_(std::make_unique<Impl>()) {
    auto& m = *impl_;
    m.cfg = cfg;
    m.cfg.database.application_name = "queuerctl web";
    if (m.cfg.database.statement_timeout_ms <= 0 ||
        m.cfg.database.statement_timeout_ms > kStatementTimeoutMs)
        m.cfg.database.statement_timeout_ms = kStatementTimeoutMs;
    m.opts = std::move(options);
    m.token = std::move(token);
    if (!m.cfg.encryption_key.empty())
        m.cipher = std::make_unique<queuer::Cipher>(m.cfg.encryption_key);
    // Pages read through a small pool; stop_worker is Client's.
    m.client = std::make_unique<queuer::Client>(m.cfg.database, std::string_view{}, false, 4);
    {
        auto c = m.client->pool().acquire();
        std::string missing = admin::check_schema(*c);
        if (!missing.empty())
            throw Error(ErrorKind::Config,
                        missing +
                            "; check QUEUER_DB_SCHEMA (or database.schema): 'queuerctl "
                            "migrate' creates the schema, queuerd creates it at start");
    }
    m.site.read_only = m.opts.read_only;
    m.site.schema = m.cfg.database.schema;
    m.site.database = m.cfg.database.describe();
    m.site.version = std::move(version);
    uint64_t all = 1469598103934665603ull;
    for (size_t i = 0; i < kAssetCount; ++i) {
        uint64_t h = fnv1a(kAssets[i].data, kAssets[i].size);
        m.asset_etags.push_back(fmt::format("\"{:016x}\"", h));
        all = fnv1a(reinterpret_cast<const unsigned char*>(&h), sizeof h, all);
    }
    m.site.asset_version = fmt::format("{:012x}", all & 0xffffffffffffull);
}

Console::~Console() {
    stop();
}

void Console::start() {
    auto& m = *impl_;
    auto [host, port] = http::split_host_port(m.opts.listen, "--listen");
    (void)port;
    http::Options ho;
    ho.listen = m.opts.listen;
    ho.max_connections = 64;
    ho.max_body = 64 * 1024;
    ho.server_name = "queuerctl-web";
    ho.listen_name = "--listen";
    m.server = std::make_unique<http::Server>(ho);
    m.add_routes();
    m.server->start();
    std::string bound = m.server->address();
    std::string bound_host = bound.substr(0, bound.rfind(':'));
    if (!bound_host.empty() && bound_host.front() == '[')
        bound_host = bound_host.substr(1, bound_host.size() - 2);
    m.bound_loopback = !host.empty() && is_loopback_host(bound_host);
    if (m.bound_loopback) {
        std::string p = std::to_string(m.server->port());
        m.allowed_hosts = {"127.0.0.1:" + p, "localhost:" + p, "[::1]:" + p, lower(bound)};
        if (p == "80") {
            for (const char* h : {"127.0.0.1", "localhost", "[::1]"}) m.allowed_hosts.push_back(h);
        }
    }
    m.stopping = false;
    m.listener = std::thread([&m] { m.listen_loop(); });
    // The overview's first read of the archive's last hour, before anyone asks.
    m.warmer = std::thread([&m] {
        try {
            m.overview_fragment();
        } catch (const std::exception&) {
            // The first page will say what is wrong.
        }
    });
}

void Console::stop() {
    auto& m = *impl_;
    {
        std::lock_guard g(m.stop_mu);
        m.stopping = true;
    }
    m.stop_cv.notify_all();
    if (m.listener.joinable()) m.listener.join();
    if (m.warmer.joinable()) m.warmer.join();
    if (m.server) m.server->stop();
}

std::string Console::address() const {
    return impl_->server ? impl_->server->address() : "";
}

bool Console::loopback() const {
    return impl_->bound_loopback;
}

// ================= queuerctl web =================

namespace {

std::string random_token() {
    unsigned char buf[16];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = ::getrandom(buf + got, sizeof buf - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error(ErrorKind::Config,
                        fmt::format("cannot make a token: getrandom: {}", std::strerror(errno)));
        }
        got += static_cast<size_t>(n);
    }
    std::string out;
    for (unsigned char c : buf) out += fmt::format("{:02x}", c);
    return out;
}

}  // namespace

int serve(const queuer::AppConfig& cfg, const Options& options, const std::string& version) {
    std::string token;
    bool from_env = false;
    if (!options.read_only) {
        const char* env = std::getenv("QUEUERD_WEB_TOKEN");
        if (env && *env) {
            std::string t = env;
            bool printable =
                std::all_of(t.begin(), t.end(), [](char c) { return c > ' ' && c < 127; });
            if (t.size() < 16 || !printable)
                throw Error(ErrorKind::Config,
                            fmt::format("QUEUERD_WEB_TOKEN must be at least 16 printable "
                                        "characters without spaces (it has {} character{}{}); "
                                        "e.g. QUEUERD_WEB_TOKEN=$(openssl rand -hex 16)",
                                        t.size(), t.size() == 1 ? "" : "s",
                                        printable ? "" : ", some not printable"));
            token = std::move(t);
            from_env = true;
        } else {
            token = random_token();
        }
    }
    // Every thread started from here on inherits this mask; this one waits for the signals.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    Console console(cfg, options, token, version);
    console.start();
    std::string url = "http://" + console.address() + "/";
    std::string line;
    if (options.read_only)
        line = fmt::format("queuerctl web: read-only console for schema {} at {}\n",
                           cfg.database.schema, url);
    else if (from_env)
        line = fmt::format(
            "queuerctl web: console for schema {} at {} (actions need the token "
            "from QUEUERD_WEB_TOKEN)\n",
            cfg.database.schema, url);
    else
        line = fmt::format(
            "queuerctl web: console for schema {} at {}#token={} (actions need "
            "this token; keep this line private)\n",
            cfg.database.schema, url, token);
    std::fputs(line.c_str(), stdout);
    std::fflush(stdout);
    if (!console.loopback())
        say(
            fmt::format("warning: listening on {}, which other hosts may reach: anyone who can "
                        "connect reads every job's parameters and results; put it behind a "
                        "reverse proxy with TLS and authentication",
                        console.address()));
    int sig = 0;
    sigwait(&sigs, &sig);
    say(fmt::format("stopping ({})", sig == SIGINT ? "SIGINT" : "SIGTERM"));
    console.stop();
    return 0;
}

}  // namespace queuerctl::web
