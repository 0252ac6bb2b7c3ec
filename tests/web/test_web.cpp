// queuerctl web over HTTP: the real binary (queuerctl web --listen 127.0.0.1:0) against the
// PostgreSQL named by QUEUER_DB_*, in a schema of its own per test. Every endpoint: the pages
// (overview, jobs, archive, job detail, workers), the event stream, the assets and the actions,
// with their refusals (403 without the token, read-only, another origin, another Host) and with
// values holding markup.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "queuer/client.hpp"
#include "queuer/crypto.hpp"
#include "queuer/db.hpp"
#include "queuer/json.hpp"
#include "queuer/schema.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/test_db.hpp"

namespace queuer::test {
namespace {

using namespace std::chrono_literals;

const std::string kToken = "test-token-0123456789abcdef";

std::string hex_key() {
    return "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
}

int count(const std::string& hay, const std::string& needle) {
    int n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}

std::string url_encode(const std::string& s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// The rids of the job rows of a list page, in order.
std::vector<std::string> rows(const std::string& body) {
    std::vector<std::string> out;
    static const std::regex re("<tr data-rid=\"([0-9a-f-]{36})\"");
    for (auto it = std::sregex_iterator(body.begin(), body.end(), re); it != std::sregex_iterator();
         ++it)
        out.push_back((*it)[1].str());
    return out;
}

rapidjson::Document parse(const std::string& s) {
    rapidjson::Document d;
    d.Parse(s.c_str());
    return d;
}

struct Console {
    std::unique_ptr<Process> proc;
    int port = 0;
    std::string token;  // what actions must carry
    std::string log() const { return proc->log(); }
};

class Web : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/queuer-web.XXXXXX";
        dir_ = mkdtemp(tmpl);
        auto c = schema.connect();
        migrate(c, TimescaleMode::Off);
        client = std::make_unique<Client>(schema.config(), std::string_view{}, false, 2);
    }
    void TearDown() override {
        consoles_.clear();
        std::string cmd = "rm -rf '" + dir_ + "'";
        if (std::system(cmd.c_str()) != 0) {
        }
    }

    Env env(Env extra = {}) const {
        Env e{{"QUEUER_DB_SCHEMA", schema.config().schema},
              {"QUEUERD_WEB_TOKEN", kToken},
              {"QUEUER_ENCRYPTION_KEY", "<unset>"}};
        for (auto& [k, v] : extra) e[k] = v;
        return e;
    }

    // Starts queuerctl web and waits for its start line.
    Console& start(std::vector<std::string> args = {}, Env extra = {}) {
        std::vector<std::string> argv{queuerctl_bin(), "web", "--listen", "127.0.0.1:0"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto log = dir_ + "/web." + std::to_string(consoles_.size()) + ".log";
        auto con = std::make_unique<Console>();
        con->proc = std::make_unique<Process>(argv, env(extra), log);
        static const std::regex re("at http://127\\.0\\.0\\.1:([0-9]+)/(#token=([0-9a-f]+))?");
        auto end = std::chrono::steady_clock::now() + 60s;
        std::smatch m;
        std::string text;  // m points into it
        for (;;) {
            text = con->proc->log();
            if (std::regex_search(text, m, re)) break;
            if (!con->proc->alive() || std::chrono::steady_clock::now() > end)
                throw std::runtime_error("queuerctl web did not start:\n" + text);
            std::this_thread::sleep_for(50ms);
        }
        con->port = std::stoi(m[1].str());
        auto e = env(extra);
        con->token =
            m[3].matched ? m[3].str() : (e["QUEUERD_WEB_TOKEN"] == "<unset>" ? "" : kToken);
        consoles_.push_back(std::move(con));
        return *consoles_.back();
    }

    HttpReply get(const Console& c, const std::string& path, const std::string& headers = {}) {
        return http_raw(c.port,
                        "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(c.port) +
                            "\r\nConnection: close" + headers,
                        30s);
    }
    // POST with the console's token unless `headers` says otherwise ("" = no token).
    HttpReply post(const Console& c, const std::string& path, const std::string& body = {},
                   std::optional<std::string> headers = std::nullopt) {
        std::string h = headers ? *headers : "\r\nX-Queuerd-Token: " + c.token;
        return http_raw(c.port,
                        "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(c.port) +
                            "\r\nConnection: close\r\nContent-Type: "
                            "application/x-www-form-urlencoded\r\nContent-Length: " +
                            std::to_string(body.size()) + h,
                        30s, 64u << 20, body);
    }

    db::Result sql(const std::string& q, const db::Params& p = {}) {
        auto c = schema.connect();
        return c.exec(q, p);
    }

    // An ended job written straight into the archive, `ago` seconds ago.
    std::string archived(const std::string& task, const std::string& status,
                         const std::string& params = "[]", const std::string& error = "",
                         const std::string& results = "[]", double ago = 1,
                         const std::string& options = "{}") {
        db::Params p;
        p.add(task)
            .add(status)
            .add(params)
            .add(error)
            .add(results)
            .add(std::to_string(ago))
            .add(options);
        return sql("INSERT INTO job_archive (id, rid, task_name, status, parameters, error, "
                   "results, options, created_at, started_at, updated_at, attempts) VALUES ("
                   "nextval(pg_get_serial_sequence('job', 'id')), gen_random_uuid(), $1, $2, "
                   "$3::jsonb, $4, $5::jsonb, $7::jsonb, "
                   "LOCALTIMESTAMP - make_interval(secs => $6::float8 + 2), "
                   "LOCALTIMESTAMP - make_interval(secs => $6::float8 + 1), "
                   "LOCALTIMESTAMP - make_interval(secs => $6::float8), 1) RETURNING rid",
                   p)
            .str(0, 0);
    }

    std::string status_of(const std::string& rid) {
        db::Params p;
        p.add(rid);
        auto r =
            sql("SELECT status FROM job WHERE rid = $1::uuid UNION ALL SELECT status FROM "
                "job_archive WHERE rid = $1::uuid",
                p);
        return r.rows() ? r.str(0, 0) : "";
    }

    TestSchema schema;
    std::unique_ptr<Client> client;
    std::string dir_;
    std::vector<std::unique_ptr<Console>> consoles_;
};

// Reads a server-sent event stream on its own thread until told to stop.
class EventReader {
  public:
    explicit EventReader(int port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("cannot connect to the console");
        std::string req = "GET /events HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                          "\r\nAccept: text/event-stream\r\n\r\n";
        if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) < 0)
            throw std::runtime_error("cannot send");
        thread_ = std::thread([this] {
            char buf[65536];
            while (!stop_) {
                pollfd p{fd_, POLLIN, 0};
                if (::poll(&p, 1, 100) <= 0) continue;
                ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
                if (n <= 0) break;
                std::lock_guard g(mu_);
                raw_.append(buf, static_cast<size_t>(n));
            }
        });
    }
    ~EventReader() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    std::string raw() {
        std::lock_guard g(mu_);
        return raw_;
    }
    // The data of every event of this name so far.
    std::vector<std::string> events(const std::string& name) {
        std::vector<std::string> out;
        std::string text = raw();
        std::regex re("event: " + name + "\n(?:[0-9a-fA-F]+\r\n)?data: ([^\n]*)\n");
        for (auto it = std::sregex_iterator(text.begin(), text.end(), re);
             it != std::sregex_iterator(); ++it)
            out.push_back((*it)[1].str());
        return out;
    }
    template <class Pred>
    bool wait(Pred pred, std::chrono::seconds timeout) {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            if (pred()) return true;
            std::this_thread::sleep_for(50ms);
        }
        return pred();
    }

  private:
    int fd_ = -1;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::string raw_;
};

// ---- start, token, secrets ----

TEST_F(Web, StartLineCarriesAGeneratedTokenAndNothingElseDoes) {
    auto& c =
        start({}, {{"QUEUERD_WEB_TOKEN", "<unset>"}, {"QUEUER_DB_PASSWORD", "pw-s3cret-xyz"}});
    ASSERT_EQ(c.token.size(), 32u) << c.log();
    auto job = client->add_job("echo", 1);
    // Pages, a refused action (wrong token) and an accepted one.
    std::string bodies;
    for (const char* p : {"/", "/jobs", "/archive", "/workers"}) bodies += get(c, p).body;
    bodies += get(c, "/job/" + job.rid).body;
    auto bad = post(c, "/api/job/" + job.rid + "/cancel", "", "\r\nX-Queuerd-Token: nope");
    EXPECT_EQ(bad.status, 403);
    auto ok = post(c, "/api/job/" + job.rid + "/cancel");
    EXPECT_EQ(ok.status, 200) << ok.body;
    bodies += bad.body + ok.body;
    EXPECT_EQ(bodies.find(c.token), std::string::npos) << "a page or reply contains the token";
    EXPECT_EQ(bodies.find("pw-s3cret-xyz"), std::string::npos);
    std::string log = c.log();
    EXPECT_EQ(count(log, c.token), 1) << "the token must appear on the start line only:\n" << log;
    EXPECT_EQ(log.find("pw-s3cret-xyz"), std::string::npos) << log;
    EXPECT_NE(log.find("cancelled job " + job.rid), std::string::npos) << log;
    EXPECT_NE(log.find("refused POST"), std::string::npos) << log;
}

TEST_F(Web, TokenFromTheEnvironmentIsNeverPrintedAndSigtermStopsCleanly) {
    auto& c = start();
    EXPECT_EQ(c.token, kToken);
    EXPECT_EQ(c.log().find(kToken), std::string::npos) << c.log();
    EXPECT_NE(c.log().find("QUEUERD_WEB_TOKEN"), std::string::npos) << c.log();
    EventReader open_page(c.port);  // a live page does not hold the stop up
    ASSERT_TRUE(open_page.wait([&] { return !open_page.events("db").empty(); }, 30s));
    c.proc->signal(SIGTERM);
    EXPECT_EQ(c.proc->wait(30s), 0) << c.log();
    EXPECT_NE(c.log().find("stopping (SIGTERM)"), std::string::npos) << c.log();
}

TEST_F(Web, BadStartsExitTwoWithOneClearLine) {
    auto short_token = run({queuerctl_bin(), "web", "--listen", "127.0.0.1:0"},
                           env({{"QUEUERD_WEB_TOKEN", "short-secret"}}), 30s);
    EXPECT_EQ(short_token.code, 2) << short_token.err;
    EXPECT_NE(short_token.err.find("QUEUERD_WEB_TOKEN must be at least 16"), std::string::npos)
        << short_token.err;
    EXPECT_EQ(short_token.err.find("short-secret"), std::string::npos) << short_token.err;

    auto bad_listen = run({queuerctl_bin(), "web", "--listen", "localhost"}, env(), 30s);
    EXPECT_EQ(bad_listen.code, 2);
    EXPECT_NE(bad_listen.err.find("--listen \"localhost\" has no port"), std::string::npos)
        << bad_listen.err;

    auto& c = start();
    auto taken = run({queuerctl_bin(), "web", "--listen", "127.0.0.1:" + std::to_string(c.port)},
                     env(), 30s);
    EXPECT_EQ(taken.code, 2) << taken.err;
    EXPECT_NE(taken.err.find("cannot listen"), std::string::npos) << taken.err;

    auto no_schema = run({queuerctl_bin(), "web", "--listen", "127.0.0.1:0"},
                         env({{"QUEUER_DB_SCHEMA", "no_such_schema_here"}}), 30s);
    EXPECT_EQ(no_schema.code, 2) << no_schema.err;
    EXPECT_NE(no_schema.err.find("no_such_schema_here"), std::string::npos) << no_schema.err;
}

// ---- pages ----

TEST_F(Web, OverviewShowsQueuesThroughputAndTheLatestJobs) {
    for (int i = 0; i < 3; ++i) client->add_job("resize", i);
    auto newest = client->add_job("mail", "x");
    archived("resize", "SUCCEEDED");
    archived("resize", "SUCCEEDED");
    archived("resize", "FAILED", "[]", "boom");
    archived("mail", "CANCELLED");
    archived("old", "SUCCEEDED", "[]", "", "[]", 7200);  // outside the last hour
    auto& c = start();
    auto r = get(c, "/");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["content-type"], "text/html; charset=utf-8");
    EXPECT_NE(r.headers["server-timing"].find("app;dur="), std::string::npos);
    EXPECT_NE(r.body.find("<svg class=\"chart\""), std::string::npos);
    EXPECT_NE(r.body.find("4 in all"), std::string::npos) << "the chart counts 4 ended jobs";
    EXPECT_NE(r.body.find("<a href=\"/jobs?task=resize\">resize</a>"), std::string::npos);
    EXPECT_NE(r.body.find("href=\"/archive?task=resize&amp;status=FAILED&amp;since=1h\">1<"),
              std::string::npos)
        << r.body;
    EXPECT_NE(r.body.find("href=\"/jobs?task=resize&amp;status=QUEUED\">3<"), std::string::npos);
    EXPECT_EQ(r.body.find(">old<"), std::string::npos) << "a job ended 2 h ago is not in the hour";
    EXPECT_NE(r.body.find("<tr data-rid=\"" + newest.rid + "\">"), std::string::npos);
    EXPECT_NE(r.body.find("data-channels=\"job job_archive worker\""), std::string::npos);

    // The console keeps the hour it has read and reads the last minutes again: a job that
    // ends now is counted (the overview itself is shared for up to 1 s).
    archived("mail", "SUCCEEDED", "[]", "", "[]", 0);
    bool counted = false;
    for (int i = 0; i < 100 && !counted; ++i) {
        std::this_thread::sleep_for(200ms);
        counted = get(c, "/").body.find("5 in all") != std::string::npos;
    }
    EXPECT_TRUE(counted) << get(c, "/").body;

    auto part = get(c, "/", "\r\nX-Partial: 1");
    ASSERT_EQ(part.status, 200);
    EXPECT_EQ(part.body.find("<!doctype"), std::string::npos) << "a fragment, not a page";
    EXPECT_NE(part.body.find("<section class=\"cards\">"), std::string::npos);
}

TEST_F(Web, MarkupInTaskNamesParametersAndErrorsShowsAsText) {
    const std::string task = "<script>alert(1)</script>";
    auto live = client->add_job_json(task, R"(["<img src=x onerror=alert(2)>"])",
                                     R"({"k":"\"><svg onload=alert(3)>"})", std::nullopt);
    auto ended = archived("t</td><b>", "FAILED", R"(["x"])", "</pre><script>alert(4)</script>");
    auto& c = start();
    std::vector<std::string> paths = {
        "/",
        "/jobs",
        "/archive",
        "/job/" + live.rid,
        "/job/" + ended,
        "/jobs?task=" + url_encode(task),
        "/archive?search=" + url_encode("\"><script>alert(5)</script>"),
        "/job?rid=" + url_encode("<script>alert(6)</script>")};
    for (const auto& p : paths) {
        auto r = get(c, p);
        SCOPED_TRACE(p);
        EXPECT_TRUE(r.status == 200 || r.status == 400) << r.status;
        for (const char* raw :
             {"<script>alert", "<img src=x", "<svg onload", "</td><b>", "</pre><script>"})
            EXPECT_EQ(r.body.find(raw), std::string::npos) << "unescaped " << raw << " in " << p;
    }
    EXPECT_NE(get(c, "/").body.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
    auto d = get(c, "/job/" + live.rid).body;
    EXPECT_NE(d.find("&lt;img src=x onerror=alert(2)&gt;"), std::string::npos) << d;
    EXPECT_NE(d.find("&lt;svg onload=alert(3)&gt;"), std::string::npos) << d;
    EXPECT_NE(get(c, "/job/" + ended).body.find("&lt;/pre&gt;&lt;script&gt;alert(4)"),
              std::string::npos);
    EXPECT_NE(get(c, "/archive?search=" + url_encode("\"><script>alert(5)</script>"))
                  .body.find("value=\"&quot;&gt;&lt;script&gt;alert(5)"),
              std::string::npos);
    // JSON replies escape markup too.
    auto j = post(c, "/api/job/" + url_encode("<script>") + "/cancel");
    EXPECT_EQ(j.status, 400);
    EXPECT_EQ(j.body.find("<script>"), std::string::npos) << j.body;
    EXPECT_TRUE(parse(j.body).IsObject()) << j.body;
    EXPECT_NE(std::string(parse(j.body)["error"].GetString()).find("is not a job RID"),
              std::string::npos)
        << j.body;
    auto w = post(c, "/api/worker/nope/stop", "mode=now");
    EXPECT_EQ(w.status, 400);
    EXPECT_NE(w.body.find("\"nope\\\" is not a worker RID"), std::string::npos) << w.body;
    auto v = post(c, "/api/job/" + live.rid + "/explode");
    EXPECT_EQ(v.status, 404);
    EXPECT_NE(v.body.find("unknown action"), std::string::npos) << v.body;
}

TEST_F(Web, JobsPageFiltersSearchesAndPagesByLastId) {
    std::vector<std::string> a;
    for (int i = 0; i < 25; ++i) a.push_back(client->add_job("a", i).rid);
    for (int i = 0; i < 5; ++i) client->add_job("b", i);
    auto needle = client->add_job("c", "needle-42").rid;
    Options later;
    later.schedule = Schedule{};
    later.schedule->start = now() + std::chrono::hours(1);
    auto sched = client->add_job_with_options(later, "c", 1).rid;
    auto& c = start();

    EXPECT_EQ(rows(get(c, "/jobs?task=b").body).size(), 5u);
    auto s = rows(get(c, "/jobs?status=SCHEDULED").body);
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0], sched);
    EXPECT_EQ(rows(get(c, "/jobs?search=needle-42").body), std::vector<std::string>{needle});
    EXPECT_EQ(rows(get(c, "/jobs?since=1h&task=b").body).size(), 5u);
    EXPECT_EQ(rows(get(c, "/jobs?until=1h").body).size(), 0u);

    // Pages of 10 for task a, newest first, through the "Older" link.
    std::set<std::string> seen;
    std::string path = "/jobs?task=a&limit=10";
    std::vector<size_t> sizes;
    for (int page = 0; page < 5 && !path.empty(); ++page) {
        auto r = get(c, path);
        ASSERT_EQ(r.status, 200) << r.body;
        auto got = rows(r.body);
        sizes.push_back(got.size());
        for (const auto& rid : got) EXPECT_TRUE(seen.insert(rid).second) << rid << " twice";
        std::smatch m;
        static const std::regex older("id=\"older\" href=\"([^\"]+)\"");
        path.clear();
        if (std::regex_search(r.body, m, older)) {
            path = m[1].str();
            for (size_t p; (p = path.find("&amp;")) != std::string::npos;) path.replace(p, 5, "&");
        }
    }
    EXPECT_EQ(sizes, (std::vector<size_t>{10, 10, 5}));
    EXPECT_EQ(seen, std::set<std::string>(a.begin(), a.end()));

    auto bad_since = get(c, "/jobs?since=yesterday");
    EXPECT_EQ(bad_since.status, 400);
    EXPECT_NE(bad_since.body.find("neither a duration"), std::string::npos) << bad_since.body;
    EXPECT_NE(bad_since.body.find("<form class=\"filters\""), std::string::npos)
        << "the form stays, to correct it";
    EXPECT_EQ(get(c, "/jobs?status=FAILED").status, 400);
    EXPECT_EQ(get(c, "/jobs?limit=5").status, 400);
    EXPECT_EQ(get(c, "/jobs?before=x").status, 400);
}

TEST_F(Web, ArchivePageFiltersByStatusTimeErrorAndParameters) {
    auto failed = archived("t", "FAILED", R"(["a"])", "disk full on /var");
    auto ok = archived("t", "SUCCEEDED", R"(["x-needle"])");
    auto old = archived("t", "SUCCEEDED", "[]", "", "[]", 3 * 3600);
    auto& c = start();
    EXPECT_EQ(rows(get(c, "/archive?status=FAILED").body), std::vector<std::string>{failed});
    EXPECT_EQ(rows(get(c, "/archive?status=failed").body), std::vector<std::string>{failed})
        << "status in any case";
    EXPECT_EQ(rows(get(c, "/archive?error=DISK").body), std::vector<std::string>{failed});
    EXPECT_EQ(rows(get(c, "/archive?search=x-needle").body), std::vector<std::string>{ok});
    EXPECT_EQ(rows(get(c, "/archive?search=disk%20full").body), std::vector<std::string>{failed})
        << "search looks in the error text too";
    EXPECT_EQ(rows(get(c, "/archive?since=1h").body).size(), 2u);
    EXPECT_EQ(rows(get(c, "/archive?until=2h").body), std::vector<std::string>{old});
    auto all = get(c, "/archive");
    EXPECT_EQ(rows(all.body), (std::vector<std::string>{old, ok, failed}))
        << "newest first by id: " << all.body;
    EXPECT_NE(all.body.find("disk full on /var"), std::string::npos);
    EXPECT_EQ(get(c, "/archive?status=QUEUED").status, 400);
}

TEST_F(Web, JobDetailShowsParametersOptionsTimelineParentAndChildren) {
    Options o;
    o.on_error = OnError{5, 2, 1, RetryBackoff::Linear};
    o.metadata_json = R"({"team":"billing"})";
    auto parent = client->add_job_json("parent-task", R"([1,"two"])", R"({"key":"value-k"})", o);
    Options child_opts;
    child_opts.parent_rid = parent.rid;
    auto child_live = client->add_job_with_options(child_opts, "child-task", 1);
    auto child_done = archived("child-task", "SUCCEEDED", "[]", "", R"(["result-r"])", 0,
                               R"({"parent_rid":")" + parent.rid + "\"}");
    auto& c = start();

    auto p = get(c, "/job/" + parent.rid);
    ASSERT_EQ(p.status, 200) << p.body;
    for (const char* s : {"parent-task", "st-queued", "value-k", "&quot;two&quot;",
                          "&quot;team&quot;: &quot;billing&quot;", "&quot;max_retries&quot;: 2",
                          "Created", "Cancel job", "data-channels=\"job job_archive\""})
        EXPECT_NE(p.body.find(s), std::string::npos) << s;
    EXPECT_NE(p.body.find("/job/" + child_live.rid), std::string::npos) << "live child";
    EXPECT_NE(p.body.find("/job/" + child_done), std::string::npos) << "archived child";

    auto ch = get(c, "/job/" + child_done);
    ASSERT_EQ(ch.status, 200);
    EXPECT_NE(ch.body.find("result-r"), std::string::npos);
    EXPECT_NE(ch.body.find("Retry as a new job"), std::string::npos);
    EXPECT_NE(ch.body.find("in the archive"), std::string::npos);
    EXPECT_NE(ch.body.find("href=\"/job/" + parent.rid + "\""), std::string::npos) << "parent";
    EXPECT_NE(ch.body.find("Ended (succeeded)"), std::string::npos);

    // A SUCCEEDED parent in the archive: its children were added before it ended, so the scan
    // stops at the first job created after it ended (here `later`). A row that claims to be its
    // child but was added after that cannot exist; it shows that the bound is applied.
    // (Times as the engine writes them: each row's later than those written before it.)
    auto done_parent = archived("parent-task", "SUCCEEDED", "[]", "", "[]", 0);
    auto done_child = archived("child-task", "SUCCEEDED", "[]", "", "[]", 0,
                               R"({"parent_rid":")" + done_parent + "\"}");
    client->add_job("later", 1);
    auto impossible = archived("child-task", "SUCCEEDED", "[]", "", "[]", 0,
                               R"({"parent_rid":")" + done_parent + "\"}");
    auto dp = get(c, "/job/" + done_parent);
    EXPECT_NE(dp.body.find("/job/" + done_child), std::string::npos) << dp.body;
    EXPECT_EQ(dp.body.find("/job/" + impossible), std::string::npos);
    EXPECT_EQ(dp.body.find("are not looked for"), std::string::npos);
    // A FAILED parent's task may have run on after a timeout: the bound comes ten minutes
    // after its end, and the page says so.
    sql("UPDATE job_archive SET status = 'FAILED' WHERE rid = '" + done_parent + "'");
    dp = get(c, "/job/" + done_parent);
    EXPECT_NE(dp.body.find("/job/" + done_child), std::string::npos);
    EXPECT_NE(dp.body.find("/job/" + impossible), std::string::npos);
    EXPECT_NE(dp.body.find("ten minutes after this job ended) are not looked for"),
              std::string::npos);

    EXPECT_EQ(get(c, "/job/00000000-0000-4000-8000-000000000000").status, 404);
    EXPECT_EQ(get(c, "/job/not-a-rid").status, 400);
    auto go = get(c, "/job?rid=%20" + parent.rid + "%20");
    EXPECT_EQ(go.status, 303);
    EXPECT_EQ(go.headers["location"], "/job/" + parent.rid);
    EXPECT_EQ(get(c, "/job?rid=nope").status, 400);
}

TEST_F(Web, EncryptedValuesStayEncryptedUnlessTheConsoleHasTheKey) {
    Client sealed(schema.config(), hex_key(), false, 1);
    auto job = sealed.add_job("secret-task", "plain-secret-value");
    auto& without = start();
    auto r = get(without, "/job/" + job.rid);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body.find("plain-secret-value"), std::string::npos);
    EXPECT_NE(r.body.find("encrypted; the console has no key"), std::string::npos) << r.body;
    EXPECT_NE(get(without, "/jobs").body.find("encrypted parameters"), std::string::npos);
    EXPECT_EQ(get(without, "/jobs?search=plain-secret").body.find(job.rid), std::string::npos);

    auto& with = start({}, {{"QUEUER_ENCRYPTION_KEY", hex_key()}});
    auto k = get(with, "/job/" + job.rid);
    EXPECT_NE(k.body.find("plain-secret-value"), std::string::npos) << k.body;
    EXPECT_NE(k.body.find("decrypted with the console"), std::string::npos);

    auto& wrong = start({}, {{"QUEUER_ENCRYPTION_KEY", std::string(64, 'a')}});
    auto w = get(wrong, "/job/" + job.rid);
    EXPECT_EQ(w.body.find("plain-secret-value"), std::string::npos);
    EXPECT_NE(w.body.find("does not open it"), std::string::npos) << w.body;
}

TEST_F(Web, WorkersPageShowsTheMasterAndWorkers) {
    sql("INSERT INTO worker (name, status, available_tasks, max_concurrency, options) VALUES "
        "('<b>w1</b>', 'RUNNING', ARRAY['echo','sleep'], 4, "
        "'{\"queuerd\":{\"host\":\"node-7\",\"pid\":42,\"version\":\"9.9\",\"http\":\"\"}}'), "
        "('w-old', 'STOPPED', ARRAY['echo'], 1, '{}')");
    sql("UPDATE master SET worker_rid = (SELECT rid FROM worker WHERE status = 'RUNNING'), "
        "worker_id = (SELECT id FROM worker WHERE status = 'RUNNING'), updated_at = "
        "LOCALTIMESTAMP WHERE id = 1");
    auto& c = start();
    auto r = get(c, "/workers");
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("&lt;b&gt;w1&lt;/b&gt;"), std::string::npos);
    EXPECT_EQ(r.body.find("<b>w1</b>"), std::string::npos);
    EXPECT_NE(r.body.find("node-7 \u00b7 pid 42 \u00b7 queuerd 9.9"), std::string::npos);
    EXPECT_NE(r.body.find("echo, sleep"), std::string::npos);
    EXPECT_NE(r.body.find("<span class=\"tag\">master</span>"), std::string::npos);
    EXPECT_NE(r.body.find("w-old"), std::string::npos);
    EXPECT_NE(r.body.find("Graceful"), std::string::npos);
    EXPECT_LT(r.body.find("&lt;b&gt;w1"), r.body.find("w-old")) << "active workers first";
}

// ---- actions ----

TEST_F(Web, EveryActionIsRefusedWithoutTheToken) {
    auto job = client->add_job("t", 1);
    auto ended = archived("t", "FAILED");
    sql("INSERT INTO worker (name, status) VALUES ('w', 'READY')");
    std::string worker = sql("SELECT rid FROM worker").str(0, 0);
    auto& c = start();
    struct Call {
        std::string path, body;
    };
    std::vector<Call> calls = {{"/api/job/" + job.rid + "/cancel", ""},
                               {"/api/job/" + ended + "/retry", ""},
                               {"/api/jobs/cancel", "task=t"},
                               {"/api/archive/retry", "task=t"},
                               {"/api/worker/" + worker + "/stop", "mode=now"}};
    std::string port = std::to_string(c.port);
    for (const auto& call : calls) {
        SCOPED_TRACE(call.path);
        for (const std::string& h :
             {std::string(), std::string("\r\nX-Queuerd-Token: wrong-token-0000000000"),
              "\r\nX-Queuerd-Token: " + kToken.substr(0, kToken.size() - 1),
              "\r\nAuthorization: Basic " + kToken,
              "\r\nX-Queuerd-Token: " + kToken + "\r\nOrigin: http://evil.example",
              "\r\nX-Queuerd-Token: " + kToken + "\r\nSec-Fetch-Site: cross-site"}) {
            auto r = post(c, call.path, call.body, h);
            EXPECT_EQ(r.status, 403) << h << ": " << r.body;
            auto d = parse(r.body);
            ASSERT_TRUE(d.IsObject()) << r.body;
            EXPECT_FALSE(d["ok"].GetBool());
        }
        // A GET never acts.
        EXPECT_EQ(get(c, call.path).status, 405);
    }
    EXPECT_EQ(status_of(job.rid), "QUEUED");
    EXPECT_EQ(sql("SELECT count(*) FROM job").i64(0, 0), 1);
    EXPECT_EQ(sql("SELECT status FROM worker").str(0, 0), "READY");
    // The same origin, and the bearer form, are accepted.
    auto same =
        post(c, "/api/job/" + job.rid + "/cancel", "",
             "\r\nAuthorization: Bearer " + kToken + "\r\nOrigin: http://127.0.0.1:" + port +
                 "\r\nSec-Fetch-Site: same-origin");
    EXPECT_EQ(same.status, 200) << same.body;
    EXPECT_EQ(status_of(job.rid), "CANCELLED");
}

TEST_F(Web, CancelAndRetryOneJob) {
    auto job = client->add_job_json("t", R"([1,"p"])", R"({"k":1})", std::nullopt);
    auto& c = start();
    auto r = post(c, "/api/job/" + job.rid + "/cancel");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(parse(r.body)["ok"].GetBool());
    EXPECT_EQ(status_of(job.rid), "CANCELLED");
    EXPECT_EQ(post(c, "/api/job/" + job.rid + "/cancel").status, 409) << "already ended";

    auto retry = post(c, "/api/job/" + job.rid + "/retry");
    ASSERT_EQ(retry.status, 200) << retry.body;
    auto d = parse(retry.body);
    std::string rid = d["rid"].GetString();
    EXPECT_EQ(std::string(d["location"].GetString()), "/job/" + rid);
    auto again = client->get_job(rid);
    EXPECT_EQ(again.status, "QUEUED");
    EXPECT_EQ(again.task_name, "t");
    EXPECT_EQ(json::compact(again.parameters, "p"), R"([1,"p"])");
    EXPECT_EQ(json::compact(again.parameters_keyed, "k"), R"({"k":1})");
    EXPECT_EQ(post(c, "/api/job/" + rid + "/retry").status, 409) << "not ended yet";

    std::string none = "00000000-0000-4000-8000-000000000000";
    EXPECT_EQ(post(c, "/api/job/" + none + "/cancel").status, 404);
    EXPECT_EQ(post(c, "/api/job/" + none + "/retry").status, 404);
    EXPECT_EQ(post(c, "/api/job/" + rid + "/explode").status, 404);
    EXPECT_EQ(post(c, "/api/job/not-a-rid/cancel").status, 400);
}

TEST_F(Web, BulkRetryAndCancelTakeThePageFiltersAndCountFirst) {
    for (int i = 0; i < 3; ++i) archived("x", "FAILED", "[" + std::to_string(i) + "]", "timeout");
    archived("x", "FAILED", "[9]", "disk full");
    archived("y", "FAILED");
    archived("x", "SUCCEEDED");
    auto& c = start();
    auto dry = post(c, "/api/archive/retry", "task=x&error=timeout&dry_run=1");
    ASSERT_EQ(dry.status, 200) << dry.body;
    EXPECT_EQ(parse(dry.body)["count"].GetInt64(), 3);
    EXPECT_TRUE(parse(dry.body)["dry_run"].GetBool());
    EXPECT_EQ(sql("SELECT count(*) FROM job").i64(0, 0), 0) << "a dry run changes nothing";

    auto all_failed_x = post(c, "/api/archive/retry", "task=x&dry_run=1");
    EXPECT_EQ(parse(all_failed_x.body)["count"].GetInt64(), 4) << "no status: FAILED ones";

    auto done = post(c, "/api/archive/retry", "task=x&error=timeout");
    ASSERT_EQ(done.status, 200) << done.body;
    EXPECT_EQ(parse(done.body)["count"].GetInt64(), 3);
    EXPECT_EQ(sql("SELECT count(*) FROM job WHERE task_name = 'x' AND status = 'QUEUED'").i64(0, 0),
              3);

    client->add_job("y", 1);
    auto cdry = post(c, "/api/jobs/cancel", "task=x&status=QUEUED&dry_run=1");
    EXPECT_EQ(parse(cdry.body)["count"].GetInt64(), 3) << cdry.body;
    auto cancel = post(c, "/api/jobs/cancel", "task=x&status=QUEUED");
    EXPECT_EQ(parse(cancel.body)["count"].GetInt64(), 3) << cancel.body;
    EXPECT_EQ(sql("SELECT count(*) FROM job").i64(0, 0), 1) << "task y's job stays";

    EXPECT_EQ(post(c, "/api/archive/retry", "status=QUEUED").status, 400);
    EXPECT_EQ(post(c, "/api/jobs/cancel", "since=never").status, 400);
}

TEST_F(Web, StopAWorkerGracefullyOrNow) {
    sql("INSERT INTO worker (name, status) VALUES ('w1', 'RUNNING'), ('w2', 'READY')");
    auto w1 = sql("SELECT rid FROM worker WHERE name = 'w1'").str(0, 0);
    auto w2 = sql("SELECT rid FROM worker WHERE name = 'w2'").str(0, 0);
    auto& c = start();
    auto g = post(c, "/api/worker/" + w1 + "/stop", "mode=graceful");
    ASSERT_EQ(g.status, 200) << g.body;
    EXPECT_EQ(std::string(parse(g.body)["status"].GetString()), "STOPPING");
    EXPECT_EQ(sql("SELECT status FROM worker WHERE name = 'w1'").str(0, 0), "STOPPING");
    auto n = post(c, "/api/worker/" + w2 + "/stop", "mode=now");
    ASSERT_EQ(n.status, 200) << n.body;
    EXPECT_EQ(sql("SELECT status FROM worker WHERE name = 'w2'").str(0, 0), "STOPPED");
    EXPECT_EQ(post(c, "/api/worker/" + w2 + "/stop", "mode=now").status, 409);
    EXPECT_EQ(post(c, "/api/worker/" + w1 + "/stop", "mode=later").status, 400);
    EXPECT_EQ(post(c, "/api/worker/00000000-0000-4000-8000-000000000000/stop", "mode=now").status,
              404);
}

TEST_F(Web, ReadOnlyShowsNoActionsAndRefusesThem) {
    auto job = client->add_job("t", 1);
    archived("t", "FAILED");
    sql("INSERT INTO worker (name, status) VALUES ('w', 'READY')");
    auto& c = start({"--read-only"});
    EXPECT_NE(c.log().find("read-only console"), std::string::npos) << c.log();
    for (const std::string& p :
         std::vector<std::string>{"/", "/jobs", "/archive", "/workers", "/job/" + job.rid}) {
        auto r = get(c, p);
        EXPECT_EQ(r.status, 200) << p;
        EXPECT_EQ(r.body.find("data-action"), std::string::npos) << p;
        EXPECT_NE(r.body.find("data-readonly=\"1\""), std::string::npos) << p;
    }
    auto r = post(c, "/api/job/" + job.rid + "/cancel", "", "\r\nX-Queuerd-Token: " + kToken);
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(std::string(parse(r.body)["reason"].GetString()), "read-only");
    EXPECT_EQ(status_of(job.rid), "QUEUED");
}

// ---- plumbing: Host, headers, assets ----

TEST_F(Web, AnswersOnlyToLoopbackHostNamesAndSendsSecurityHeaders) {
    auto& c = start();
    std::string port = std::to_string(c.port);
    auto evil =
        http_raw(c.port, "GET / HTTP/1.1\r\nHost: evil.example:" + port + "\r\nConnection: close");
    EXPECT_EQ(evil.status, 403) << "DNS rebinding";
    for (std::string host : {"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port}) {
        auto r = http_raw(c.port, "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close");
        EXPECT_EQ(r.status, 200) << host;
    }
    auto r = get(c, "/jobs");
    EXPECT_NE(r.headers["content-security-policy"].find("script-src 'self'"), std::string::npos);
    EXPECT_EQ(r.headers["content-security-policy"].find("unsafe-inline"), std::string::npos);
    EXPECT_EQ(r.headers["x-content-type-options"], "nosniff");
    EXPECT_EQ(r.headers["x-frame-options"], "DENY");
    EXPECT_EQ(r.headers["cache-control"], "no-store");
    EXPECT_EQ(r.body.find("<script>"), std::string::npos) << "no inline script";
    EXPECT_EQ(r.body.find(" style=\""), std::string::npos) << "no inline style";
    EXPECT_EQ(r.body.find("http://"), std::string::npos) << "nothing from elsewhere (no CDN)";
    EXPECT_EQ(get(c, "/nope").status, 404);
}

TEST_F(Web, AssetsAreCompiledInWithTypesAndValidators) {
    auto& c = start();
    auto page = get(c, "/").body;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(page, m, std::regex("/assets/app\\.js\\?v=([0-9a-f]+)")));
    std::string v = m[1].str();
    struct Want {
        const char* name;
        const char* type;
        const char* contains;
    };
    for (const auto& w : {Want{"app.js", "text/javascript; charset=utf-8", "EventSource"},
                          Want{"style.css", "text/css; charset=utf-8", "prefers-color-scheme"},
                          Want{"favicon.svg", "image/svg+xml", "<svg"}}) {
        SCOPED_TRACE(w.name);
        auto r = get(c, std::string("/assets/") + w.name + "?v=" + v);
        ASSERT_EQ(r.status, 200);
        EXPECT_EQ(r.headers["content-type"], w.type);
        EXPECT_NE(r.body.find(w.contains), std::string::npos);
        EXPECT_NE(r.headers["cache-control"].find("immutable"), std::string::npos);
        std::string etag = r.headers["etag"];
        ASSERT_FALSE(etag.empty());
        auto again = get(c, std::string("/assets/") + w.name, "\r\nIf-None-Match: " + etag);
        EXPECT_EQ(again.status, 304);
        EXPECT_TRUE(again.body.empty());
    }
    // The file in the source tree is what is served.
    std::ifstream f(std::string(QUEUER_SOURCE_DIR) + "/cli/web/app.js");
    std::string src((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(get(c, "/assets/app.js").body, src);
    EXPECT_EQ(get(c, "/assets/nope.js").status, 404);
}

// ---- live updates ----

TEST_F(Web, EventsTellPagesWhatChangedAndCoalesceBursts) {
    auto& c = start();
    EventReader ev(c.port);
    ASSERT_TRUE(ev.wait([&] { return !ev.events("db").empty(); }, 30s)) << ev.raw();
    EXPECT_EQ(parse(ev.events("db").front())["up"].GetBool(), true);
    EXPECT_NE(ev.raw().find("Content-Type: text/event-stream"), std::string::npos) << ev.raw();

    // A job added: a change on channel job carrying its rid (other tests share the server and
    // its channels: when their notifications crowd it out, add another).
    bool seen = false;
    for (int attempt = 0; attempt < 3 && !seen; ++attempt) {
        auto job = client->add_job("live", attempt);
        seen = ev.wait(
            [&] {
                for (const auto& e : ev.events("change"))
                    if (e.find(job.rid) != std::string::npos) return true;
                return false;
            },
            30s);
    }
    ASSERT_TRUE(seen) << ev.raw();

    // 10,000 notifications in one burst: the counts add up, in a handful of events.
    size_t before = ev.events("change").size();
    auto t0 = std::chrono::steady_clock::now();
    sql("SELECT pg_notify('job_archive', json_build_object('id', i, 'rid', gen_random_uuid(), "
        "'status', 'SUCCEEDED')::text) FROM generate_series(1, 10000) i");
    int64_t total = 0;
    size_t events = 0;
    double seconds = 0;
    bool all = ev.wait(
        [&] {
            auto list = ev.events("change");
            total = 0;
            for (size_t i = before; i < list.size(); ++i)
                total += parse(list[i])["job_archive"].GetInt64();
            events = list.size() - before;
            seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            return total >= 10000;
        },
        60s);
    ASSERT_TRUE(all) << "only " << total << " of 10000 notifications were counted";
    // At most one event per 500 ms window (plus the one open at each end).
    EXPECT_LE(static_cast<double>(events), seconds * 2 + 2)
        << events << " events in " << seconds << " s";
    EXPECT_LT(events, 100u);
    bool more = false;
    auto list = ev.events("change");
    for (size_t i = before; i < list.size(); ++i) more = more || parse(list[i])["more"].GetBool();
    EXPECT_TRUE(more) << "a burst's rids are cut short and say so";
}

TEST_F(Web, TooManyEventStreamsAreRefusedNotQueued) {
    auto& c = start();
    std::vector<std::unique_ptr<EventReader>> readers;
    for (int i = 0; i < 32; ++i) readers.push_back(std::make_unique<EventReader>(c.port));
    for (auto& r : readers)
        ASSERT_TRUE(r->wait([&] { return !r->events("db").empty(); }, 30s)) << r->raw();
    auto extra = get(c, "/events");
    EXPECT_EQ(extra.status, 503) << extra.body;
    EXPECT_EQ(get(c, "/").status, 200) << "pages still answer";
    readers.pop_back();
    // A closed stream frees its place once the server notices it.
    bool freed = false;
    for (int i = 0; i < 100 && !freed; ++i) {
        EventReader again(c.port);
        freed = again.wait([&] { return !again.events("db").empty(); }, 1s);
    }
    EXPECT_TRUE(freed);
}

}  // namespace
}  // namespace queuer::test
