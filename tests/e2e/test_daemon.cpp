// queuerd end to end: the real binary with libqueuer_examples.so, driven by queuerctl.
#include <sys/stat.h>

#include <fstream>
#include <set>

#include "e2e.hpp"

using namespace queuer;
using namespace queuer::test;
using namespace std::chrono_literals;

namespace {
bool exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}
}  // namespace

TEST_F(E2E, EchoWithPositionalAndKeyedParameters) {
    start_daemon();
    auto r = ctl({"add", "job", "--task", "echo", "--params", R"([1,"a"])", "--keyed",
                  R"({"k":"v"})", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    std::string rid = json(r.out)["rid"].GetString();
    auto [code, job] = wait(rid);
    ASSERT_EQ(code, 0);
    EXPECT_STREQ(job["status"].GetString(), "SUCCEEDED");
    const auto& res = job["results"];
    ASSERT_TRUE(res.IsArray());
    ASSERT_GE(res.Size(), 2u);
    EXPECT_EQ(res[0].GetInt(), 1);
    EXPECT_STREQ(res[1].GetString(), "a");
    EXPECT_NE(r.out.find("echo"), std::string::npos);
    bool keyed_echoed = false;
    for (const auto& v : res.GetArray())
        if (v.IsObject() && v.HasMember("k")) keyed_echoed = true;
    EXPECT_TRUE(keyed_echoed);
}

TEST_F(E2E, FailWithRetriesCountsAttempts) {
    start_daemon();
    auto rid = add("fail", R"(["broken on purpose"])",
                   R"({"on_error":{"max_retries":2,"retry_delay":0.1,"retry_backoff":"linear"}})");
    auto [code, job] = wait(rid);
    EXPECT_EQ(code, 3);
    EXPECT_STREQ(job["status"].GetString(), "FAILED");
    EXPECT_EQ(job["attempts"].GetInt(), 3);
    EXPECT_NE(std::string(job["error"].GetString()).find("broken on purpose"), std::string::npos);
}

TEST_F(E2E, TimeoutFailsTheAttempt) {
    start_daemon();
    auto rid = add("sleep", "[20000]", R"({"on_error":{"timeout":0.3}})");
    auto [code, job] = wait(rid);
    EXPECT_EQ(code, 3);
    EXPECT_NE(std::string(job["error"].GetString()).find("timed out"), std::string::npos);
}

TEST_F(E2E, CancelARunningSleep) {
    start_daemon();
    auto rid = add("sleep", "[20000]");
    ASSERT_TRUE(eventually([&] {
        auto r = ctl({"get", "job", "--rid", rid, "--json"});
        return r.code == 0 && r.out.find("RUNNING") != std::string::npos;
    }));
    auto c = ctl({"cancel", "job", "--rid", rid, "--json"});
    ASSERT_EQ(c.code, 0) << c.err;
    auto [code, job] = wait(rid, 10);
    EXPECT_EQ(code, 3);
    EXPECT_STREQ(job["status"].GetString(), "CANCELLED");
}

TEST_F(E2E, ScheduledStartWaitsForItsTime) {
    start_daemon();
    auto start = now() + 4s;
    auto rid = add("echo", "[1]", R"({"schedule":{"start":")" + format_time(start) + R"("}})");
    auto r = ctl({"get", "job", "--rid", rid, "--json"});
    if (now() < start - 500ms) {
        EXPECT_NE(r.out.find("SCHEDULED"), std::string::npos) << r.out;
    }
    auto [code, job] = wait(rid);
    EXPECT_EQ(code, 0);
    // It did not start before its time (same host, same clock).
    auto started = parse_time(job["started_at"].GetString(), "started_at");
    EXPECT_GE(started, start - 50ms);
}

TEST_F(E2E, PeriodicJobRunsThreeTimes) {
    start_daemon();
    add("noop", "[]", R"({"schedule":{"max_count":3,"interval":"300ms"}})");
    ASSERT_TRUE(eventually([&] {
        JobQuery q;
        q.status = "SUCCEEDED";
        return client().get_jobs_ended(q).size() >= 3;
    }));
    std::this_thread::sleep_for(800ms);
    EXPECT_EQ(client().get_jobs_ended({}).size(), 3u);
    EXPECT_TRUE(client().get_jobs({}).empty());
}

TEST_F(E2E, SpawnRecordsTheParent) {
    start_daemon();
    auto rid = add("spawn");
    auto [code, job] = wait(rid);
    ASSERT_EQ(code, 0);
    ASSERT_TRUE(eventually([&] {
        for (const auto& j : client().get_jobs_ended({}))
            if (j.options.parent_rid == rid) return j.status == "SUCCEEDED";
        return false;
    }));
}

TEST_F(E2E, SigtermLetsRunningJobsFinish) {
    auto& d = start_daemon();
    std::vector<BatchJob> batch(3);
    for (auto& b : batch) {
        b.task = "sleep";
        b.parameters = "[2500]";
    }
    auto rids = client().add_jobs(batch);
    ASSERT_TRUE(eventually([&] {
        JobQuery q;
        q.status = "RUNNING";
        return client().get_jobs(q).size() == 3;
    }));
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait(30s), 0) << d.log();
    for (const auto& rid : rids) EXPECT_EQ(client().get_job_ended(rid).status, "SUCCEEDED");
    auto workers = client().get_workers();
    ASSERT_EQ(workers.size(), 1u);
    EXPECT_EQ(workers[0].status, "STOPPED");
}

TEST_F(E2E, SighupChangesConcurrency) {
    DaemonOptions o;
    o.max_concurrency = 1;
    auto& d = start_daemon(o);
    o.max_concurrency = 3;
    write_config(o);
    d.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] {
        auto w = client().get_workers();
        return !w.empty() && w[0].max_concurrency == 3;
    })) << d.log();
    // And it is used: three sleeps run at once.
    std::vector<BatchJob> batch(3);
    for (auto& b : batch) {
        b.task = "sleep";
        b.parameters = "[4000]";
    }
    client().add_jobs(batch);
    EXPECT_TRUE(eventually([&] {
        JobQuery q;
        q.status = "RUNNING";
        return client().get_jobs(q).size() == 3;
    }));
}

TEST_F(E2E, CheckListsTasksAndTouchesNothing) {
    auto cfg = write_config({});
    auto r = run({queuerd_bin(), "--config", cfg, "--check"}, env());
    EXPECT_EQ(r.code, 0) << r.err;
    for (const char* t : {"echo", "noop", "sleep", "fail", "spawn"})
        EXPECT_NE(r.out.find(t), std::string::npos) << t;
    auto v = run({queuerd_bin(), "--version"}, env());
    EXPECT_EQ(v.code, 0);
    EXPECT_NE(v.out.find("queuerd"), std::string::npos);
}

TEST_F(E2E, BadConfigurationsAreRefusedWithTheReason) {
    auto check = [&](const std::string& yaml, const std::string& expect) {
        std::string path = dir_ + "/bad.yaml";
        std::ofstream(path) << yaml;
        auto r = run({queuerd_bin(), "--config", path}, env(), 30s);
        EXPECT_EQ(r.code, 1) << yaml << "\n" << r.err;
        EXPECT_NE(r.err.find(expect), std::string::npos) << "expected \"" << expect << "\" in:\n"
                                                         << r.err;
    };
    check("worker:\n  name: w\n  max_concurrency: 2\n  colour: blue\n", "worker.colour");
    check("worker:\n  name: w\n  max_concurrency: lots\n", "max_concurrency");
    check("worker:\n  max_concurrency: 2\n", "worker.name");
    check("worker: [unclosed\n", "bad.yaml");
    check("worker:\n  name: w\n  max_concurrency: 2\nplugins:\n  - path: /nonexistent/x.so\n",
          "/nonexistent/x.so");
    std::string broken = build_dir() + "/tests/plugins/broken/";
    if (exists(broken + "libbad_abi.so")) {
        check("worker:\n  name: w\n  max_concurrency: 2\nplugins:\n  - path: " + broken +
                  "libbad_abi.so\n",
              "libbad_abi.so");
        check("worker:\n  name: w\n  max_concurrency: 2\nplugins:\n  - path: " + broken +
                  "libno_entry.so\n",
              "queuer_plugin_entry");
        check("worker:\n  name: w\n  max_concurrency: 2\nplugins:\n  - path: " + examples_plugin() +
                  "\n  - path: " + broken + "libdup_echo.so\n",
              "libdup_echo.so");
    } else {
        ADD_FAILURE() << "broken test plugins not built in " << broken;
    }
    // Usage errors are exit status 1 too (only queuerctl uses 2).
    auto r = run({queuerd_bin(), "--bogus-flag"}, env());
    EXPECT_EQ(r.code, 1);
}

TEST_F(E2E, CrashingTaskInProcessIsolationFailsOnlyItsJob) {
    DaemonOptions o;
    o.isolation = "process";
    auto& d = start_daemon(o);
    auto crash = add("crash", R"(["segv"])");
    auto [code, job] = wait(crash);
    EXPECT_EQ(code, 3);
    EXPECT_NE(std::string(job["error"].GetString()).find("signal"), std::string::npos)
        << job["error"].GetString();
    EXPECT_TRUE(d.alive());
    auto next = add("echo", "[7]");
    auto [code2, job2] = wait(next);
    EXPECT_EQ(code2, 0);
    EXPECT_EQ(job2["results"][0].GetInt(), 7);
    auto ab = add("crash", R"(["abort"])");
    EXPECT_EQ(wait(ab).first, 3);
    auto ex = add("crash", R"(["exit"])");
    EXPECT_EQ(wait(ex).first, 3);
    EXPECT_TRUE(d.alive());
    EXPECT_EQ(wait(add("noop")).first, 0);
}

TEST_F(E2E, OperatorVerbsAgainstARunningDaemon) {
    start_daemon();
    auto workers = ctl({"list", "worker", "--json"});
    ASSERT_EQ(workers.code, 0) << workers.err;
    auto w = json(workers.out);
    ASSERT_TRUE(w.IsArray());
    ASSERT_EQ(w.Size(), 1u);
    EXPECT_STREQ(w[0]["status"].GetString(), "RUNNING");
    std::string wrid = w[0]["rid"].GetString();
    auto one = ctl({"get", "worker", "--rid", wrid, "--json"});
    EXPECT_EQ(one.code, 0);
    EXPECT_NE(one.out.find("\"echo\""), std::string::npos);  // its available tasks

    auto conns = ctl({"list", "connection", "--json"});
    ASSERT_EQ(conns.code, 0) << conns.err;
    EXPECT_NE(conns.out.find("\"queuerd\""), std::string::npos);

    // Run five jobs, page through the archive two at a time: no gaps, no duplicates.
    std::set<std::string> rids;
    for (int i = 0; i < 5; ++i) rids.insert(add("echo", "[" + std::to_string(i) + "]"));
    for (const auto& r : rids) ASSERT_EQ(wait(r).first, 0);
    std::set<std::string> seen;
    std::string last = "0";
    for (int page = 0; page < 5; ++page) {
        auto p = ctl({"list", "jobArchive", "--limit", "2", "--lastId", last, "--json"});
        ASSERT_EQ(p.code, 0) << p.err;
        auto d = json(p.out);
        if (d.Size() == 0) break;
        for (const auto& j : d.GetArray()) {
            EXPECT_TRUE(seen.insert(j["rid"].GetString()).second);
            last = std::to_string(j["id"].GetInt64());
        }
    }
    EXPECT_EQ(seen, rids);

    // retry job: a new job from an ended one, run again by the daemon.
    auto retried = ctl({"retry", "job", "--rid", *rids.begin(), "--json"});
    ASSERT_EQ(retried.code, 0) << retried.err;
    std::string nrid = json(retried.out)["rid"].GetString();
    EXPECT_NE(nrid, *rids.begin());
    EXPECT_EQ(wait(nrid).first, 0);
}

TEST_F(E2E, SigtermWithATaskThatIgnoresCancellationStillExitsAndKeepsTheJob) {
    DaemonOptions o;
    o.shutdown_grace = "500ms";
    auto& d = start_daemon(o);
    auto rid = add("ignore_cancel", "[30000]");
    ASSERT_TRUE(eventually([&] { return client().get_job(rid).status == "RUNNING"; }));
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait(30s), 0) << d.log();
    auto back = client().get_job(rid);  // back in the queue for another worker, not lost
    EXPECT_EQ(back.status, "QUEUED");
    EXPECT_EQ(back.attempts, 0);
}
