// Poison inputs: results the database refuses or that are too large, jobs sealed with another
// encryption key (or none), a schedule that starts in 1970. Each must end (FAILED with the
// reason, or one run now and the series continuing from now) without blocking other jobs and
// without looping.
#include <random>

#include "faults.hpp"

using namespace queuer;
using namespace queuer::test;
using namespace std::chrono_literals;

namespace {

std::string random_key_hex() {
    std::random_device rd;
    static const char* hex = "0123456789abcdef";
    std::string k;
    for (int i = 0; i < 64; ++i) k += hex[rd() % 16];
    return k;
}

}  // namespace

// e. Poison results among 300 normal jobs at max_concurrency 8, max_result_bytes 64kB: a
// result with \u0000 (jsonb refuses it), one with invalid UTF-8, one of 200 kB, an error text
// with invalid UTF-8. The poison jobs end FAILED with the reason; every other job SUCCEEDED;
// SIGTERM afterwards: exit 0 within the grace, nothing RUNNING.
TEST_F(Faults, PoisonResultsInABatch) {
    WorkerSpec w;
    w.name = "poison";
    w.max_result_bytes = "64kB";
    auto& d = start_worker(w);
    struct Poison {
        size_t at;
        std::string kind;
    };
    const std::vector<Poison> poisons = {
        {10, "nul"},        {11, "big:200000"},  {40, "badutf8"}, {41, "nul"},
        {90, "errbadutf8"}, {150, "big:200000"}, {151, "nul"},    {220, "badutf8"},
    };
    const size_t n = 300;
    auto normal_params = count_params(2);
    std::map<size_t, std::string> kind_at;
    for (const auto& p : poisons) kind_at[p.at] = p.kind;
    std::vector<BatchJob> batch(n);
    for (size_t i = 0; i < n; ++i) {
        auto k = kind_at.find(i);
        if (k == kind_at.end()) {
            batch[i].task = "count";
            batch[i].parameters = normal_params;
        } else {
            batch[i].task = "poison";
            batch[i].parameters = "[\"" + k->second + "\",\"" + count_path() + "\"]";
        }
    }
    auto rids = client().add_jobs(batch);
    bool ended = wait_all_ended(rids, 60s);
    EXPECT_TRUE(ended) << "jobs never ended: " << state() << "\n" << tail(d.log());
    std::vector<std::string> normal;
    for (size_t i = 0; i < n; ++i)
        if (!kind_at.count(i)) normal.push_back(rids[i]);
    EXPECT_EQ(archived_with_status(normal, "SUCCEEDED"), static_cast<int64_t>(normal.size()))
        << state();
    for (const auto& p : poisons) {
        db::Params q;
        q.add(rids[p.at]);
        auto r = db().exec(
            "SELECT status, COALESCE(error, '') FROM job_archive WHERE rid = $1::uuid", q);
        if (r.rows() != 1) {
            ADD_FAILURE() << "poison " << p.kind << " job " << rids[p.at] << " has " << r.rows()
                          << " archive rows";
            continue;
        }
        auto status = r.str(0, 0), error = r.str(0, 1);
        EXPECT_EQ(status, "FAILED") << p.kind << ": " << error;
        if (p.kind == "nul" || p.kind == "badutf8")
            EXPECT_EQ(error.rfind("the database refused the result:", 0), 0u)
                << p.kind << ": " << error;
        else if (p.kind.rfind("big:", 0) == 0)
            EXPECT_NE(error.find("larger than worker.max_result_bytes"), std::string::npos)
                << p.kind << ": " << error;
        else
            EXPECT_FALSE(error.empty()) << p.kind;
    }
    check_executions(rids, {}, true, "poison");
    d.signal(SIGTERM);
    int code = d.wait(40s);  // grace 10 s
    EXPECT_EQ(code, 0) << tail(d.log());
    expect_exactly_once(rids);
}

// f. Jobs sealed with key A, run by a worker with key B, then by a worker with no key: each ends
// FAILED at once ("cannot be decrypted", attempts 1) even with max_retries 5, the task never
// runs, and the logs stay short (no retry storm).
TEST_F(Faults, JobsSealedWithAnotherKeyFailAtOnce) {
    auto key_a = random_key_hex(), key_b = random_key_hex();
    auto add_sealed = [&](int k) {
        std::vector<std::string> out;
        for (int i = 0; i < k; ++i)
            out.push_back(add("count", count_params(0),
                              R"({"on_error":{"max_retries":5,"retry_delay":0}})",
                              {{"QUEUER_ENCRYPTION_KEY", key_a}}));
        return out;
    };
    std::vector<Process*> daemons;
    std::vector<std::string> all;
    for (const char* who : {"wrong-key", "no-key"}) {
        WorkerSpec w;
        w.name = who;
        if (std::string(who) == "wrong-key") w.key = key_b;
        auto& d = start_worker(w);
        daemons.push_back(&d);
        auto rids = add_sealed(3);
        all.insert(all.end(), rids.begin(), rids.end());
        EXPECT_TRUE(wait_all_ended(rids, 20s)) << who << ": " << state() << "\n" << tail(d.log());
        d.signal(SIGTERM);
        EXPECT_EQ(d.wait(40s), 0) << tail(d.log());
    }
    expect_exactly_once(all);
    db::Params p;
    p.add_array(all);
    auto r = db().exec(
        "SELECT rid::text, status, COALESCE(error, ''), attempts FROM job_archive "
        "WHERE rid::text = ANY($1::text[])",
        p);
    for (int i = 0; i < r.rows(); ++i) {
        EXPECT_EQ(r.str(i, 1), "FAILED") << r.str(i, 0);
        EXPECT_NE(r.str(i, 2).find("cannot be decrypted"), std::string::npos)
            << r.str(i, 0) << ": " << r.str(i, 2);
        EXPECT_EQ(r.i64(i, 3), 1) << r.str(i, 0) << " was attempted " << r.i64(i, 3) << " times";
    }
    EXPECT_EQ(execution_count(), 0u) << "a task ran on parameters it could not have decrypted";
    for (auto* d : daemons) {
        auto log = d->log();
        size_t about = 0;
        for (const auto& rid : all) about += lines_containing(log, rid);
        std::printf("[ FAULTS   ] wrong-key: %zu log lines name the 6 jobs\n", about);
        EXPECT_LE(about, 3u * all.size()) << "retry storm?\n" << tail(log);
    }
}

// g. A schedule that starts in 1970 with max_count 0 (unlimited) and interval 1 s (Go's integer
// nanoseconds): it runs once now and continues from now (missed runs skipped), about one run a
// second; cancelling the series' live job stops it.
TEST_F(Faults, ScheduleStartingInThePast) {
    WorkerSpec w;
    w.name = "schedule";
    w.max_concurrency = 4;
    auto& d = start_worker(w);
    auto t0 = std::chrono::steady_clock::now();
    add("count", count_params(0),
        R"({"schedule":{"start":"1970-01-01T00:00:00Z","max_count":0,"interval":1000000000}})");
    ASSERT_TRUE(wait_until([&] { return execution_count() >= 1; }, 30s)) << tail(d.log());
    std::this_thread::sleep_for(5s);
    size_t runs = execution_count();
    auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[ FAULTS   ] schedule: %zu runs in %.1f s\n", runs, elapsed);
    RecordProperty("runs", static_cast<int>(runs));
    // One run now, then one per second: at most elapsed + 2 (a bound, never a minimum).
    EXPECT_LE(static_cast<double>(runs), elapsed + 2.0)
        << "a schedule in the past must not catch up on missed runs";
    EXPECT_GE(runs, 2u) << "the series did not continue after its first run";
    // Cancel the series' live job (the one in `job`), as an operator would.
    bool cancelled = false;
    std::string last;
    for (int attempt = 0; attempt < 20 && !cancelled; ++attempt) {
        auto l = ctl({"list", "job", "--json"});
        auto doc = json(l.out);
        if (l.code == 0 && doc.IsArray()) {
            for (const auto& j : doc.GetArray()) {
                if (std::string(j["task_name"].GetString()) != "count") continue;
                auto c = ctl({"cancel", "job", "--rid", j["rid"].GetString()});
                last = c.err;
                if (c.code == 0) cancelled = true;
                break;
            }
        }
        if (!cancelled) std::this_thread::sleep_for(200ms);
    }
    ASSERT_TRUE(cancelled) << "could not cancel the series' live job: " << last << "\n" << state();
    EXPECT_TRUE(wait_until([&] { return scalar("SELECT count(*) FROM job") == 0; }, 10s))
        << "the series goes on after its job was cancelled: " << state();
    size_t at_cancel = execution_count();
    std::this_thread::sleep_for(4s);
    EXPECT_EQ(execution_count(), at_cancel) << "runs after the series was cancelled";
    EXPECT_EQ(scalar("SELECT count(*) FROM job"), 0) << state();
    // Each run is its own job: archived exactly once.
    std::vector<std::string> ran;
    for (const auto& [rid, runs_of] : executions()) ran.push_back(rid);
    expect_exactly_once(ran);
    check_executions(ran, {}, true, "schedule");
    EXPECT_EQ(scalar("SELECT count(*) FROM job_archive WHERE status = 'CANCELLED'"), 1);
}
