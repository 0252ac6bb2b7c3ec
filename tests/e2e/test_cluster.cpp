// Several queuerd processes on one database: crashes, master hand-over, stops from anywhere, a
// PostgreSQL restart, encryption at rest.
#include <cstdlib>

#include "e2e.hpp"

using namespace queuer;
using namespace queuer::test;
using namespace std::chrono_literals;

namespace {
int count(db::Connection& c, const std::string& sql) {
    return c.exec(sql).i32(0, 0);
}
}  // namespace

TEST_F(E2E, ThreeDaemonsOneKilledEveryJobEndsOnce) {
    DaemonOptions a, b, c;
    a.name = "node-a";
    b.name = "node-b";
    c.name = "node-c";
    auto& da = start_daemon(a);
    start_daemon(b);
    start_daemon(c);
    std::vector<BatchJob> batch(3000);
    for (auto& j : batch) {
        j.task = "sleep";
        j.parameters = "[5]";
        Options o;
        o.on_error = OnError{0, 2, 0, RetryBackoff::None};
        j.options = o;
    }
    client().add_jobs(batch);
    auto conn = schema.connect();
    ASSERT_TRUE(
        eventually([&] { return count(conn, "SELECT count(*) FROM job_archive") > 600; }, 60s));
    da.signal(SIGKILL);
    da.wait(10s);
    ASSERT_TRUE(eventually([&] { return count(conn, "SELECT count(*) FROM job") == 0; }, 120s))
        << count(conn, "SELECT count(*) FROM job") << " jobs left";
    EXPECT_EQ(count(conn, "SELECT count(DISTINCT rid) FROM job_archive"), 3000);
    EXPECT_EQ(count(conn, "SELECT count(*) FROM job_archive"), 3000);  // none archived twice
    EXPECT_EQ(count(conn, "SELECT count(*) FROM job_archive WHERE status = 'SUCCEEDED'"), 3000);
    // The killed worker was declared dead by the master.
    EXPECT_TRUE(eventually([&] {
        return count(conn,
                     "SELECT count(*) FROM worker WHERE name = 'node-a' AND "
                     "status = 'STOPPED'") == 1;
    }));
}

TEST_F(E2E, MasterHandsOverWhenKilled) {
    DaemonOptions a, b;
    a.name = "first";
    b.name = "second";
    auto& da = start_daemon(a);
    auto conn = schema.connect();
    auto master_name = [&] {
        auto r = conn.exec(
            "SELECT w.name FROM master m JOIN worker w ON w.rid = m.worker_rid WHERE m.id = 1");
        return r.rows() ? r.str(0, 0) : std::string();
    };
    ASSERT_TRUE(eventually([&] { return master_name() == "first"; }, 10s)) << da.log();
    auto settings = conn.exec("SELECT settings FROM master WHERE id = 1").str(0, 0);
    EXPECT_NE(settings.find("master_lock_timeout"), std::string::npos);
    start_daemon(b);
    std::this_thread::sleep_for(800ms);
    EXPECT_EQ(master_name(), "first");  // the lock is fresh: no second master
    auto t0 = std::chrono::steady_clock::now();
    da.signal(SIGKILL);
    da.wait(10s);
    // Lock timeout 2 s, polled every 300 ms; or sooner once the stale sweep stops "first".
    ASSERT_TRUE(eventually([&] { return master_name() == "second"; }, 15s));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST_F(E2E, GracefulStopThroughQueuerctl) {
    auto& d = start_daemon();
    auto rid = add("sleep", "[1200]");
    ASSERT_TRUE(eventually([&] { return client().get_job(rid).status == "RUNNING"; }));
    auto worker = client().get_workers()[0];
    auto r = ctl({"stop", "worker", "--rid", worker.rid, "--graceful", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(d.wait(30s), 0) << d.log();
    EXPECT_EQ(client().get_job_ended(rid).status, "SUCCEEDED");
    EXPECT_EQ(client().get_worker(worker.rid).status, "STOPPED");
}

TEST_F(E2E, ImmediateStopThroughQueuerctlCancelsRunningJobs) {
    auto& d = start_daemon();
    auto rid = add("sleep", "[30000]");
    ASSERT_TRUE(eventually([&] { return client().get_job(rid).status == "RUNNING"; }));
    auto worker = client().get_workers()[0];
    auto r = ctl({"cancel", "worker", "--rid", worker.rid, "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(d.wait(30s), 0) << d.log();
    EXPECT_EQ(client().get_job_ended(rid).status, "CANCELLED");
    EXPECT_EQ(client().get_worker(worker.rid).status, "STOPPED");
}

TEST_F(E2E, EncryptedParametersAndResults) {
    std::string key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    Env with_key{{"QUEUER_ENCRYPTION_KEY", key}};
    start_daemon({}, with_key);
    std::string secret = "top-secret-value";
    auto rid = add("echo", "[\"" + secret + "\"]", "", with_key);
    auto [code, job] = wait(rid, 30, with_key);
    ASSERT_EQ(code, 0);
    EXPECT_EQ(std::string(job["results"][0].GetString()), secret);
    auto c = schema.connect();
    db::Params p;
    p.add(rid);
    auto row = c.exec(
        "SELECT parameters::text, results::text, encode(parameters_encrypted, 'escape'), "
        "encode(results_encrypted, 'escape'), length(results_encrypted) FROM job_archive "
        "WHERE rid = $1::uuid",
        p);
    ASSERT_EQ(row.rows(), 1);
    EXPECT_EQ(row.str(0, 0), "[]");
    EXPECT_EQ(row.str(0, 1), "[]");
    EXPECT_EQ(row.str(0, 2).find(secret), std::string::npos);
    EXPECT_EQ(row.str(0, 3).find(secret), std::string::npos);
    EXPECT_GT(row.i32(0, 4), 0);
    // The wrong key, or none, never gives garbage and never fails the read: the job is shown
    // with its status and an "unreadable" marker saying why (docs/compatibility.md).
    std::string wrong = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    auto r = ctl({"get", "jobArchive", "--rid", rid, "--json"}, {{"QUEUER_ENCRYPTION_KEY", wrong}});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.find(secret), std::string::npos);
    EXPECT_NE(r.out.find("\"unreadable\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("another key"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("SUCCEEDED"), std::string::npos) << r.out;
    auto none = ctl({"get", "jobArchive", "--rid", rid, "--json"});
    EXPECT_EQ(none.code, 0) << none.err;
    EXPECT_EQ(none.out.find(secret), std::string::npos);
    EXPECT_NE(none.out.find("QUEUER_ENCRYPTION_KEY"), std::string::npos) << none.out;
}

TEST_F(E2E, MasterDeletesExpiredArchiveRows) {
    DaemonOptions o;
    o.retention = "3s";
    start_daemon(o);
    auto old_job = add("noop");
    ASSERT_EQ(wait(old_job).first, 0);
    auto c = schema.connect();
    // Without TimescaleDB the master deletes expired rows in bounded batches on its poll.
    ASSERT_TRUE(eventually(
        [&] {
            db::Params p;
            p.add(old_job);
            return c.exec("SELECT 1 FROM job_archive WHERE rid = $1::uuid", p).rows() == 0;
        },
        20s));
    // A fresh job is still there right after it ended.
    auto fresh = add("noop");
    ASSERT_EQ(wait(fresh).first, 0);
    EXPECT_EQ(client().get_job_ended(fresh).status, "SUCCEEDED");
}
