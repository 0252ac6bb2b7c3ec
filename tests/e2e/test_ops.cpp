// Operating queuerd, end to end: the HTTP endpoints of a real queuerd, its log formats, its
// crash report, its exit status for permanent start-up errors, and queuerctl's day-two verbs
// against it. The dashboard and alert rules in contrib/ are checked against a real scrape.
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>

#include "e2e.hpp"
#include "support/http_client.hpp"

using namespace queuer;
using namespace queuer::test;
using namespace std::chrono_literals;

#ifndef QUEUER_SOURCE_DIR
#error "QUEUER_SOURCE_DIR must name the source tree"
#endif

namespace {

int http_port(const Process& d) {
    if (!d.wait_log("http: listening on ", 30s)) return 0;
    std::smatch m;
    std::string log = d.log();
    static const std::regex re("http: listening on 127\\.0\\.0\\.1:([0-9]+)");
    if (!std::regex_search(log, m, re)) return 0;
    return std::stoi(m[1]);
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string l;
    while (std::getline(in, l))
        if (!l.empty()) out.push_back(l);
    return out;
}

std::string hostname() {
    char h[256] = {};
    ::gethostname(h, sizeof h - 1);
    return h;
}

}  // namespace

class Ops : public E2E {
  protected:
    DaemonOptions with_http(std::string name = "ops") {
        DaemonOptions o;
        o.name = std::move(name);
        o.http_listen = "127.0.0.1:0";
        return o;
    }
};

TEST_F(Ops, MetricsHealthAndReadiness) {
    auto& d = start_daemon(with_http());
    int port = http_port(d);
    ASSERT_GT(port, 0) << d.log();
    auto h = http_get(port, "/healthz");
    EXPECT_EQ(h.status, 200) << h.body;
    ASSERT_TRUE(eventually([&] { return http_get(port, "/readyz").status == 200; }))
        << http_get(port, "/readyz").body;
    EXPECT_EQ(http_get(port, "/readyz").body, "ready\n");
    EXPECT_EQ(http_get(port, "/nope").status, 404);

    auto ok = add("echo", "[1]");
    auto bad = add("fail", R"(["on purpose"])");
    auto retried =
        add("fail", R"(["again"])", R"({"on_error":{"max_retries":1,"retry_delay":0.05}})");
    EXPECT_EQ(wait(ok).first, 0);
    EXPECT_EQ(wait(bad).first, 3);
    EXPECT_EQ(wait(retried).first, 3);
    add("nobody-runs-this");  // stays QUEUED: the depth gauge sees it

    Exposition e;
    ASSERT_TRUE(eventually([&] {
        auto m = http_get(port, "/metrics");
        if (m.status != 200) return false;
        EXPECT_EQ(m.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
        e = parse_exposition(m.body);
        // The counters move in the finish reply's callback, after `wait` saw the rows end.
        return e.value("queuerd_queue_depth",
                       {{"task", "nobody-runs-this"}, {"status", "QUEUED"}}) == 1 &&
               e.value("queuerd_is_master") == 1 &&
               e.value("queuerd_jobs_finished_total", {{"task", "fail"}, {"status", "FAILED"}}) >=
                   2 &&
               e.value("queuerd_jobs_finished_total",
                       {{"task", "echo"}, {"status", "SUCCEEDED"}}) >= 1;
    })) << http_get(port, "/metrics").body;
    EXPECT_TRUE(e.errors.empty()) << e.errors.front();
    EXPECT_EQ(e.value("queuerd_jobs_finished_total", {{"task", "echo"}, {"status", "SUCCEEDED"}}),
              1);
    EXPECT_EQ(e.value("queuerd_jobs_finished_total", {{"task", "fail"}, {"status", "FAILED"}}), 2);
    EXPECT_EQ(e.value("queuerd_jobs_finished_total", {{"task", "fail"}, {"status", "RETRIED"}}), 1);
    EXPECT_EQ(e.value("queuerd_jobs_running"), 0);
    EXPECT_EQ(e.value("queuerd_max_concurrency"), 4);
    EXPECT_EQ(e.value("queuerd_db_up"), 1);
    EXPECT_EQ(e.value("queuerd_ready"), 1);
    EXPECT_EQ(e.value("queuerd_db_reconnects_total"), 0);
    EXPECT_EQ(e.value("queuerd_build_info", {{"version", "0.1.0"}}), 1);
    // Queue depth of a task this worker offers reads 0 rather than nothing.
    EXPECT_EQ(e.value("queuerd_queue_depth", {{"task", "echo"}, {"status", "QUEUED"}}), 0);
    EXPECT_GE(e.value("queuerd_queue_oldest_age_seconds",
                      {{"task", "nobody-runs-this"}, {"status", "QUEUED"}}),
              0);
    // Histograms: three runs of fail (one retried), cumulative buckets ending at _count.
    EXPECT_EQ(e.value("queuerd_job_duration_seconds_count", {{"task", "fail"}}), 3);
    EXPECT_EQ(e.value("queuerd_job_duration_seconds_bucket", {{"task", "fail"}, {"le", "+Inf"}}),
              3);
    EXPECT_GT(e.value("queuerd_job_duration_seconds_sum", {{"task", "fail"}}), 0);
    EXPECT_EQ(e.value("queuerd_job_wait_seconds_count", {{"task", "echo"}}), 1);
    double prev = 0;
    for (const auto& s : e.samples)
        if (s.name == "queuerd_job_duration_seconds_bucket" && s.labels.at("task") == "fail") {
            EXPECT_GE(s.value, prev);
            prev = s.value;
        }
    EXPECT_EQ(prev, 3);
    EXPECT_EQ(e.types["queuerd_job_wait_seconds"], "histogram");
    EXPECT_EQ(e.types["queuerd_jobs_finished_total"], "counter");

    // The worker row names the HTTP address.
    auto w = json(ctl({"list", "worker", "--json"}).out);
    ASSERT_EQ(w.Size(), 1u);
    EXPECT_EQ(std::string(w[0]["http"].GetString()), "127.0.0.1:" + std::to_string(port));

    // SIGTERM: stopping is not ready, and the endpoint goes away with the process.
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait(30s), 0) << d.log();
    EXPECT_EQ(http_get(port, "/healthz", 2s).status, 0);
}

TEST_F(Ops, DashboardAndAlertRulesUseExportedNames) {
    auto& d = start_daemon(with_http());
    int port = http_port(d);
    ASSERT_GT(port, 0);
    auto scraped = parse_exposition(http_get(port, "/metrics").body).names();
    // The PRODUCT.md contract, at least.
    for (const char* n :
         {"queuerd_jobs_finished_total", "queuerd_jobs_running", "queuerd_max_concurrency",
          "queuerd_job_duration_seconds", "queuerd_job_wait_seconds", "queuerd_db_up",
          "queuerd_db_reconnects_total", "queuerd_is_master", "queuerd_queue_depth",
          "queuerd_build_info"})
        EXPECT_TRUE(scraped.count(n)) << n << " is not exported";
    static const std::regex name_re("queuerd_[a-z][a-z0-9_]*");
    int checked = 0;
    for (const char* file :
         {"/contrib/grafana/queuerd-dashboard.json", "/contrib/prometheus/queuerd-alerts.yml"}) {
        std::string text = read_file(std::string(QUEUER_SOURCE_DIR) + file);
        ASSERT_FALSE(text.empty()) << file;
        for (auto it = std::sregex_iterator(text.begin(), text.end(), name_re);
             it != std::sregex_iterator(); ++it) {
            EXPECT_TRUE(scraped.count(it->str()))
                << file << " uses " << it->str() << ", which queuerd does not export";
            ++checked;
        }
    }
    EXPECT_GT(checked, 20);
    // Every alert named in the issue is there.
    std::string alerts =
        read_file(std::string(QUEUER_SOURCE_DIR) + "/contrib/prometheus/queuerd-alerts.yml");
    for (const char* a :
         {"QueuerdWorkerDown", "QueuerdQueueAge", "QueuerdFailureRate", "QueuerdDatabaseDown"})
        EXPECT_NE(alerts.find(a), std::string::npos) << a;
}

TEST_F(Ops, JsonLogLinesCarryJobFields) {
    DaemonOptions o = with_http("jsonlog");
    o.log_format = "json";
    auto& d = start_daemon(o);
    auto rid = add("spawn");
    EXPECT_EQ(wait(rid).first, 0);
    ASSERT_TRUE(d.wait_log("spawned child job", 20s)) << d.log();
    std::string wrid = json(ctl({"list", "worker", "--json"}).out)[0]["rid"].GetString();
    bool job_line = false;
    int n = 0;
    for (const auto& l : lines(d.log())) {
        rapidjson::Document j;
        j.Parse(l.c_str());
        ASSERT_FALSE(j.HasParseError()) << "not a JSON line: " << l;
        ASSERT_TRUE(j.IsObject()) << l;
        for (const char* k : {"ts", "level", "msg"})
            ASSERT_TRUE(j.HasMember(k)) << k << " in " << l;
        EXPECT_TRUE(
            std::regex_match(std::string(j["ts"].GetString()),
                             std::regex("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z")))
            << l;
        ++n;
        if (std::string(j["msg"].GetString()).find("spawned child job") != std::string::npos) {
            job_line = true;
            ASSERT_TRUE(j.HasMember("job_rid")) << l;
            EXPECT_EQ(std::string(j["job_rid"].GetString()), rid);
            EXPECT_EQ(std::string(j["task"].GetString()), "spawn");
            EXPECT_EQ(std::string(j["worker_rid"].GetString()), wrid);
            EXPECT_STREQ(j["level"].GetString(), "info");
        }
    }
    EXPECT_TRUE(job_line) << d.log();
    EXPECT_GT(n, 3);
}

TEST_F(Ops, TextLogsUnderSystemdCarrySyslogPriorities) {
    // JOURNAL_STREAM set = stderr goes to journald: each line starts with <N>.
    auto& d = start_daemon(with_http("journalstream"), {{"JOURNAL_STREAM", "8:12345"}});
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait(30s), 0);
    auto ls = lines(d.log());
    ASSERT_GT(ls.size(), 3u);
    bool info = false;
    for (const auto& l : ls) {
        EXPECT_TRUE(std::regex_search(l, std::regex("^<[0-7]>\\["))) << l;
        if (l.rfind("<6>[info] ready: worker", 0) == 0) info = true;
    }
    EXPECT_TRUE(info) << d.log();
    // The schema did not exist: that warning is priority 4.
    EXPECT_NE(d.log().find("<4>[warn] schema"), std::string::npos) << d.log();
}

TEST_F(Ops, JournalFormatWithoutJournaldFallsBackToText) {
    struct stat st;
    if (::stat("/run/systemd/journal/socket", &st) == 0)
        GTEST_SKIP() << "journald runs here: the lines go to the journal, not to the test's log";
    DaemonOptions o = with_http("journal");
    o.log_format = "journal";
    auto& d = start_daemon(o);
    EXPECT_TRUE(d.log_contains("journald cannot be reached")) << d.log();
    EXPECT_EQ(wait(add("echo", "[1]")).first, 0);
}

TEST_F(Ops, CrashInThreadIsolationNamesItsJob) {
    auto& d = start_daemon(with_http("crashy"));
    auto rid = add("crash", R"(["abort"])");
    int code = d.wait(30s);
    EXPECT_EQ(code, 128 + SIGABRT) << d.log();
    auto log = d.log();
    EXPECT_NE(log.find("fatal signal SIGABRT"), std::string::npos) << log;
    EXPECT_NE(log.find("job " + rid + " task crash"), std::string::npos) << log;
}

TEST_F(Ops, PermanentStartErrorsExit78WithOneLine) {
    auto cfg = write_config(with_http("perm"));
    auto check = [&](Env extra, const std::string& expect) {
        auto r = run({queuerd_bin(), "--config", cfg}, env(extra), 60s);
        EXPECT_EQ(r.code, 78) << r.err;
        EXPECT_NE(r.err.find(expect), std::string::npos) << "expected \"" << expect << "\" in\n"
                                                         << r.err;
        int critical = 0;
        for (const auto& l : lines(r.err))
            if (l.find("[critical]") != std::string::npos) ++critical;
        EXPECT_EQ(critical, 1) << r.err;
        EXPECT_EQ(r.err.find("retrying"), std::string::npos) << r.err;
    };
    check({{"QUEUER_DB_DATABASE", "no_such_db_q"}}, "unknown database");
    check({{"QUEUER_DB_USERNAME", "no_such_role_q"}}, "unknown role");
    check({{"QUEUER_DB_SSLMODE", "bogus"}}, "invalid connection option");

    // --check refuses the bad sslmode too (exit 1 naming it); --check --connect tries the database.
    auto c =
        run({queuerd_bin(), "--config", cfg, "--check"}, env({{"QUEUER_DB_SSLMODE", "bogus"}}));
    EXPECT_EQ(c.code, 1) << c.out << c.err;
    EXPECT_NE(c.err.find("QUEUER_DB_SSLMODE"), std::string::npos) << c.err;
    auto good = run({queuerd_bin(), "--config", cfg, "--check", "--connect"}, env());
    EXPECT_EQ(good.code, 0) << good.err;
    EXPECT_NE(good.out.find("database connection: ok"), std::string::npos) << good.out;
    auto nodb = run({queuerd_bin(), "--config", cfg, "--check", "--connect"},
                    env({{"QUEUER_DB_DATABASE", "no_such_db_q"}}));
    EXPECT_EQ(nodb.code, 1);
    EXPECT_NE(nodb.err.find("no_such_db_q"), std::string::npos) << nodb.err;

    // An HTTP address taken by another process is permanent too.
    auto& first = start_daemon(with_http("first"));
    int port = http_port(first);
    ASSERT_GT(port, 0);
    DaemonOptions o = with_http("second");
    o.http_listen = "127.0.0.1:" + std::to_string(port);
    auto cfg2 = write_config(o);
    auto r = run({queuerd_bin(), "--config", cfg2}, env(), 60s);
    EXPECT_EQ(r.code, 78) << r.err;
    EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
}

TEST_F(Ops, TransientErrorsAreRetriedAndReadyzSaysWhy) {
    auto cfg = write_config(with_http("transient"));
    Process d({queuerd_bin(), "--config", cfg},
              env({{"QUEUER_DB_HOST", "127.0.0.1"}, {"QUEUER_DB_PORT", "1"}}),
              dir_ + "/transient.log");
    int port = http_port(d);
    ASSERT_GT(port, 0) << d.log();
    ASSERT_TRUE(d.wait_log("retrying until it answers", 30s)) << d.log();
    EXPECT_TRUE(d.alive());
    EXPECT_EQ(http_get(port, "/healthz").status, 200);
    auto r = http_get(port, "/readyz");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "waiting for the database\n");
    auto m = parse_exposition(http_get(port, "/metrics").body);
    EXPECT_EQ(m.value("queuerd_db_up"), 0);
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait(30s), 0) << d.log();
}

TEST_F(Ops, QueuerctlDayTwoAgainstARunningDaemon) {
    auto& d = start_daemon(with_http("daytwo"));
    // list worker: host, pid, master.
    ASSERT_TRUE(eventually([&] {
        auto w = json(ctl({"list", "worker", "--json"}).out);
        return w.IsArray() && w.Size() == 1 && w[0]["is_master"].GetBool();
    }));
    auto w = json(ctl({"list", "worker", "--json"}).out);
    EXPECT_EQ(std::string(w[0]["host"].GetString()), hostname());
    EXPECT_EQ(w[0]["pid"].GetInt64(), d.pid());
    auto table = ctl({"list", "worker"}, {{"NO_COLOR", "1"}});
    EXPECT_NE(table.out.find("master"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find(std::to_string(d.pid())), std::string::npos) << table.out;

    // status
    auto st = json(ctl({"status", "--json"}).out);
    ASSERT_TRUE(st.IsObject());
    EXPECT_EQ(st["schema_version"].GetInt(), st["expected_schema_version"].GetInt());
    EXPECT_STREQ(st["master"]["worker_name"].GetString(), "daytwo");
    EXPECT_EQ(st["workers_by_status"]["RUNNING"].GetInt(), 1);
    auto human = ctl({"status"}, {{"NO_COLOR", "1"}});
    EXPECT_EQ(human.code, 0);
    EXPECT_NE(human.out.find("Master:"), std::string::npos) << human.out;

    // Jobs to look at.
    std::vector<std::string> failed;
    for (int i = 0; i < 3; ++i) failed.push_back(add("fail", R"(["broken-A"])"));
    failed.push_back(add("fail", R"(["other reason"])"));
    for (const auto& r : failed) EXPECT_EQ(wait(r).first, 3);
    EXPECT_EQ(wait(add("echo", "[1]")).first, 0);

    // add job: a task no live worker offers warns, --strict refuses.
    auto warn = ctl({"add", "job", "--task", "nobody-runs-this", "--json"});
    EXPECT_EQ(warn.code, 0);
    EXPECT_NE(warn.err.find("no live worker offers task \"nobody-runs-this\""), std::string::npos)
        << warn.err;
    auto strict = ctl({"add", "job", "--task", "nobody-runs-this", "--strict"});
    EXPECT_EQ(strict.code, 1);
    auto quiet = ctl({"add", "job", "--task", "noop", "--json"});
    EXPECT_EQ(quiet.err, "");
    EXPECT_EQ(wait(json(quiet.out)["rid"].GetString()).first, 0);

    // stats: the JSON shape of PRODUCT.md.
    auto s = json(ctl({"stats", "--json"}).out);
    ASSERT_TRUE(s.IsObject());
    EXPECT_EQ(s["since_s"].GetInt(), 3600);
    int64_t fail_count = 0;
    for (const auto& e : s["ended"].GetArray())
        if (std::string(e["task_name"].GetString()) == "fail" &&
            std::string(e["status"].GetString()) == "FAILED")
            fail_count = e["count"].GetInt64();
    EXPECT_EQ(fail_count, 4);
    bool nobody = false;
    for (const auto& l : s["live"].GetArray())
        if (std::string(l["task_name"].GetString()) == "nobody-runs-this") {
            nobody = true;
            EXPECT_STREQ(l["status"].GetString(), "QUEUED");
            EXPECT_EQ(l["count"].GetInt(), 1);
            EXPECT_GE(l["oldest_age_s"].GetDouble(), 0);
        }
    EXPECT_TRUE(nobody);
    EXPECT_EQ(ctl({"stats", "--since", "24h", "--json"}).code, 0);

    // list filters
    auto by_error = json(ctl({"list", "jobArchive", "--status", "FAILED", "--since", "1h",
                              "--error", "BROKEN-a", "--json"})
                             .out);
    EXPECT_EQ(by_error.Size(), 3u);
    EXPECT_EQ(json(ctl({"list", "jobArchive", "--error", "zzz-none", "--json"}).out).Size(), 0u);
    EXPECT_EQ(json(ctl({"list", "jobArchive", "--until", "1h", "--json"}).out).Size(), 0u);
    EXPECT_EQ(json(ctl({"list", "job", "--since", "1h", "--json"}).out).Size(), 1u);
    EXPECT_EQ(ctl({"list", "job", "--since", "yesterday"}).code, 2);

    // bulk retry: dry run counts, the real one re-queues (and the daemon fails them again).
    auto dry = json(
        ctl({"retry", "jobs", "--task", "fail", "--error", "broken-A", "--dry-run", "--json"}).out);
    EXPECT_EQ(dry["count"].GetInt(), 3);
    EXPECT_TRUE(dry["dry_run"].GetBool());
    EXPECT_EQ(json(ctl({"list", "job", "--json"}).out).Size(), 1u) << "a dry run changes nothing";
    auto real = json(ctl({"retry", "jobs", "--task", "fail", "--error", "broken-A", "--json"}).out);
    EXPECT_EQ(real["count"].GetInt(), 3);
    ASSERT_TRUE(eventually([&] {
        auto a =
            json(ctl({"list", "jobArchive", "--status", "FAILED", "--limit", "100", "--json"}).out);
        return a.IsArray() && a.Size() == 7;
    }));

    // bulk cancel of the job nobody runs; bulk delete of the cancelled.
    EXPECT_EQ(json(ctl({"cancel", "jobs", "--task", "nobody-runs-this", "--dry-run", "--json"})
                       .out)["count"]
                  .GetInt(),
              1);
    auto cancelled = ctl({"cancel", "jobs", "--task", "nobody-runs-this"}, {{"NO_COLOR", "1"}});
    EXPECT_EQ(cancelled.out, "Cancelled 1 job\n");
    EXPECT_EQ(json(ctl({"list", "job", "--json"}).out).Size(), 0u);
    auto refused = ctl({"delete", "jobs"});
    EXPECT_EQ(refused.code, 2);
    EXPECT_EQ(
        json(ctl({"delete", "jobs", "--status", "CANCELLED", "--json"}).out)["count"].GetInt(), 1);
    EXPECT_EQ(json(ctl({"list", "jobArchive", "--status", "CANCELLED", "--json"}).out).Size(), 0u);
    EXPECT_EQ(ctl({"cancel", "jobs", "--status", "FAILED"}).code, 2);

    // list connection honours --limit and --lastId (pids below, highest first).
    auto all = json(ctl({"list", "connection", "--limit", "100", "--json"}).out);
    ASSERT_GE(all.Size(), 2u);
    auto one = json(ctl({"list", "connection", "--limit", "1", "--json"}).out);
    ASSERT_EQ(one.Size(), 1u);
    int top = one[0]["pid"].GetInt();
    auto next = json(
        ctl({"list", "connection", "--limit", "100", "--lastId", std::to_string(top), "--json"})
            .out);
    EXPECT_GE(next.Size(), 1u);
    for (const auto& c : next.GetArray()) EXPECT_LT(c["pid"].GetInt(), top);
}
