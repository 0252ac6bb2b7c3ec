// The worker engine against a real PostgreSQL, with tasks as C++ callables.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "queuer/error.hpp"
#include "queuer/queuer.hpp"
#include "support/test_db.hpp"

using namespace queuer;
using namespace std::chrono_literals;

namespace {

EngineOptions fast_engine() {
    EngineOptions o;
    o.poll_interval = 500ms;
    o.heartbeat_interval = 200ms;
    return o;
}

class Engine : public ::testing::Test {
  protected:
    std::unique_ptr<Queuer> make(int concurrency = 4, std::optional<OnError> on_error = {}) {
        return std::make_unique<Queuer>("test-worker", concurrency, "", schema.config(), on_error,
                                        fast_engine());
    }
    Job finished(Client& c, const std::string& rid, std::chrono::milliseconds t = 20s) {
        auto j = c.wait_for_job_finished(rid, t);
        if (!j) throw std::runtime_error("job " + rid + " did not finish in time");
        return *j;
    }
    test::TestSchema schema;
};

JobQuery with_status(std::string s) {
    JobQuery q;
    q.status = std::move(s);
    return q;
}

JobQuery with_limit(int n) {
    JobQuery q;
    q.limit = n;
    return q;
}

rapidjson::Document parse(const std::string& s) {
    rapidjson::Document d;
    d.Parse(s.c_str());
    return d;
}

TaskFunc echo_task() {
    return
        [](JobContext& ctx) { return "[" + ctx.parameters() + "," + ctx.parameters_keyed() + "]"; };
}

TaskFunc sleep_until_cancelled(std::atomic<bool>* saw_cancel = nullptr) {
    return [saw_cancel](JobContext& ctx) -> std::string {
        for (int i = 0; i < 1000 && !ctx.is_cancelled(); ++i) std::this_thread::sleep_for(10ms);
        if (ctx.is_cancelled()) {
            if (saw_cancel) *saw_cancel = true;
            throw std::runtime_error("stopped: " + ctx.cancel_reason());
        }
        return "[]";
    };
}

}  // namespace

TEST_F(Engine, RunsTaskWithPositionalAndKeyedParameters) {
    auto q = make();
    auto echo = q->add_task("echo", echo_task());
    q->start();
    auto job = q->add_job(echo, 1, "a", Keyed{{"name", "x"}});
    auto done = finished(*q, job.rid);
    EXPECT_EQ(done.status, "SUCCEEDED");
    EXPECT_EQ(done.attempts, 1);
    auto d = parse(done.results);
    ASSERT_TRUE(d.IsArray());
    EXPECT_EQ(d[0][0].GetInt(), 1);
    EXPECT_STREQ(d[0][1].GetString(), "a");
    EXPECT_STREQ(d[1]["name"].GetString(), "x");
    EXPECT_EQ(done.worker_rid, q->worker().rid);
    EXPECT_THROW(q->get_job(job.rid), Error);  // gone from the live table
}

TEST_F(Engine, TaskErrorEndsJobFailedWithTheMessage) {
    auto q = make();
    q->add_task("boom", [](JobContext&) -> std::string { throw std::runtime_error("it broke"); });
    q->add_task("weird", [](JobContext&) -> std::string { throw 42; });
    q->start();
    auto a = finished(*q, q->add_job("boom").rid);
    EXPECT_EQ(a.status, "FAILED");
    EXPECT_NE(a.error.find("it broke"), std::string::npos);
    EXPECT_EQ(a.attempts, 1);
    auto b = finished(*q, q->add_job("weird").rid);
    EXPECT_EQ(b.status, "FAILED");
    EXPECT_NE(b.error.find("exception"), std::string::npos);
}

TEST_F(Engine, InvalidJsonResultsFailTheJob) {
    auto q = make();
    q->add_task("bad", [](JobContext&) { return std::string("{not json"); });
    q->start();
    auto j = finished(*q, q->add_job("bad").rid);
    EXPECT_EQ(j.status, "FAILED");
    EXPECT_NE(j.error.find("JSON"), std::string::npos);
}

struct BackoffCase {
    RetryBackoff backoff;
    double min_seconds;  // sum of the delays before retries 1 and 2
};

class Backoff : public Engine, public ::testing::WithParamInterface<BackoffCase> {};

TEST_P(Backoff, RetriesThroughTheQueueThenFails) {
    auto q = make();
    std::atomic<int> calls{0};
    q->add_task("flaky", [&](JobContext&) -> std::string {
        ++calls;
        throw std::runtime_error("attempt failed");
    });
    q->start();
    Options o;
    o.on_error = OnError{0, 2, 0.2, GetParam().backoff};
    auto t0 = std::chrono::steady_clock::now();
    auto j = finished(*q, q->add_job_with_options(o, "flaky").rid);
    auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(j.status, "FAILED");
    EXPECT_EQ(j.attempts, 3);  // max_retries 2 = at most 3 runs
    EXPECT_EQ(calls.load(), 3);
    EXPECT_NE(j.error.find("attempt failed"), std::string::npos);
    EXPECT_GE(elapsed, GetParam().min_seconds * 0.9);
}

INSTANTIATE_TEST_SUITE_P(Each, Backoff,
                         ::testing::Values(BackoffCase{RetryBackoff::None, 0.4},
                                           BackoffCase{RetryBackoff::Linear, 0.6},
                                           BackoffCase{RetryBackoff::Exponential, 0.6}));

TEST_F(Engine, RetrySucceedsOnTheThirdRun) {
    auto q = make();
    std::atomic<int> calls{0};
    q->add_task("third", [&](JobContext& ctx) -> std::string {
        ++calls;
        if (ctx.attempt() < 3) throw std::runtime_error("not yet");
        return "[\"ok\"]";
    });
    q->start();
    Options o;
    o.on_error = OnError{0, 5, 0.05, RetryBackoff::None};
    auto j = finished(*q, q->add_job_with_options(o, "third").rid);
    EXPECT_EQ(j.status, "SUCCEEDED");
    EXPECT_EQ(j.attempts, 3);
    EXPECT_EQ(calls.load(), 3);
    EXPECT_EQ(j.results, "[\"ok\"]");
}

TEST_F(Engine, WorkerDefaultOnErrorAppliesToJobsWithout) {
    auto q = make(2, OnError{0, 1, 0.01, RetryBackoff::None});
    q->add_task("boom", [](JobContext&) -> std::string { throw std::runtime_error("x"); });
    q->start();
    auto j = finished(*q, q->add_job("boom").rid);
    EXPECT_EQ(j.status, "FAILED");
    EXPECT_EQ(j.attempts, 2);
}

TEST_F(Engine, TimeoutCancelsTheTaskAndFailsTheAttempt) {
    auto q = make();
    std::atomic<bool> saw{false};
    q->add_task("slow", sleep_until_cancelled(&saw));
    q->start();
    Options o;
    o.on_error = OnError{0.3, 0, 0, RetryBackoff::None};
    auto t0 = std::chrono::steady_clock::now();
    auto j = finished(*q, q->add_job_with_options(o, "slow").rid);
    EXPECT_EQ(j.status, "FAILED");
    EXPECT_NE(j.error.find("timed out"), std::string::npos) << j.error;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);  // far below the task's 10 s
    for (int i = 0; i < 200 && !saw; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(saw.load());
}

TEST_F(Engine, CancelQueuedAndRunningJobs) {
    auto q = make();
    std::atomic<bool> saw{false}, started{false};
    q->add_task("slow", [&, inner = sleep_until_cancelled(&saw)](JobContext& ctx) {
        started = true;
        return inner(ctx);
    });
    q->start();
    auto queued = q->add_job("nobody-has-this");
    auto c = q->cancel_job(queued.rid);
    EXPECT_EQ(c.status, "CANCELLED");
    EXPECT_EQ(q->get_job_ended(queued.rid).status, "CANCELLED");

    auto run = q->add_job("slow");
    for (int i = 0; i < 500; ++i) {
        if (q->get_job(run.rid).status == "RUNNING") break;
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(q->get_job(run.rid).status, "RUNNING");
    q->cancel_job(run.rid);
    for (int i = 0; i < 300 && !saw; ++i) std::this_thread::sleep_for(10ms);
    // The task was told, or the cancellation overtook our claim's result and it never started;
    // never does it run on uncancelled.
    EXPECT_TRUE(saw.load() || !started.load());
    for (int i = 0; i < 300 && q->running_jobs() > 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(q->running_jobs(), 0);
    auto ended = finished(*q, run.rid);
    EXPECT_EQ(ended.status, "CANCELLED");
}

TEST_F(Engine, ScheduledStartInTheFutureWaits) {
    auto q = make();
    q->add_task("echo", echo_task());
    q->start();
    Options o;
    Schedule s;
    s.start = now() + 3s;
    o.schedule = s;
    auto j = q->add_job_with_options(o, "echo", 1);
    EXPECT_EQ(j.status, "SCHEDULED");
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(q->get_job(j.rid).status, "SCHEDULED");
    auto done = finished(*q, j.rid);
    EXPECT_EQ(done.status, "SUCCEEDED");
    ASSERT_TRUE(done.started_at.has_value());
    EXPECT_GE(*done.started_at, *s.start - 50ms);  // server and client clocks are the same host
}

TEST_F(Engine, PeriodicJobRunsMaxCountTimes) {
    auto q = make();
    std::atomic<int> runs{0};
    q->add_task("tick", [&](JobContext&) {
        ++runs;
        return std::string("[]");
    });
    q->start();
    Options o;
    Schedule s;
    s.start = now();
    s.max_count = 3;
    s.interval = 300ms;
    o.schedule = s;
    q->add_job_with_options(o, "tick");
    for (int i = 0; i < 1000 && q->get_jobs_ended(with_status("SUCCEEDED")).size() < 3; ++i)
        std::this_thread::sleep_for(20ms);
    auto ended = q->get_jobs_ended({});
    ASSERT_EQ(ended.size(), 3u);
    std::set<int> counts;
    for (const auto& j : ended) counts.insert(j.schedule_count);
    EXPECT_EQ(counts, (std::set<int>{1, 2, 3}));
    std::this_thread::sleep_for(700ms);
    EXPECT_EQ(runs.load(), 3);
    EXPECT_TRUE(q->get_jobs({}).empty());
}

TEST_F(Engine, NextIntervalFunctionDecidesTheNextRun) {
    auto q = make();
    std::atomic<int> called{0};
    q->add_task("tick", [](JobContext&) { return std::string("[]"); });
    q->add_next_interval_func("plus_200ms", [&](TimePoint prev, int) {
        ++called;
        return prev + 200ms;
    });
    q->start();
    Options o;
    Schedule s;
    s.start = now();
    s.max_count = 2;
    s.next_interval = "plus_200ms";
    o.schedule = s;
    q->add_job_with_options(o, "tick");
    for (int i = 0; i < 500 && q->get_jobs_ended({}).size() < 2; ++i)
        std::this_thread::sleep_for(20ms);
    EXPECT_EQ(q->get_jobs_ended({}).size(), 2u);
    EXPECT_GE(called.load(), 1);
}

TEST_F(Engine, WorkerWithoutTheTaskOrFunctionLeavesTheJobAlone) {
    auto q = make();
    q->add_task("echo", echo_task());
    q->start();
    auto other = q->add_job("other-task");
    Options o;
    Schedule s;
    s.start = now();
    s.max_count = 2;
    s.next_interval = "unknown_function";
    o.schedule = s;
    auto sched = q->add_job_with_options(o, "echo");
    std::this_thread::sleep_for(1200ms);  // more than two poll intervals
    EXPECT_EQ(q->get_job(other.rid).status, "QUEUED");
    EXPECT_EQ(q->get_job(sched.rid).status, "SCHEDULED");
}

// Tasks running at once never exceed max_concurrency. The rows RUNNING for the worker in the
// database are the running tasks plus the jobs claimed ahead (worker.prefetch): with prefetch 0
// they never exceed max_concurrency either, with prefetch P never max_concurrency + P.
class Concurrency : public Engine, public ::testing::WithParamInterface<int> {};

TEST_P(Concurrency, NeverExceedsTheMaximum) {
    int prefetch = GetParam();
    auto o = fast_engine();
    o.prefetch = prefetch;
    auto q = std::make_unique<Queuer>("test-worker", 3, "", schema.config(), std::nullopt, o);
    std::atomic<int> now_running{0}, peak{0};
    q->add_task("work", [&](JobContext&) {
        int n = ++now_running;
        int p = peak.load();
        while (n > p && !peak.compare_exchange_weak(p, n)) {
        }
        std::this_thread::sleep_for(20ms);
        --now_running;
        return std::string("[]");
    });
    std::vector<BatchJob> batch(60);
    for (auto& b : batch) b.task = "work";
    q->add_jobs(batch);
    std::atomic<bool> sampling{true};
    int db_peak = 0;
    std::thread sampler([&] {
        auto c = schema.connect();
        while (sampling) {
            auto r = c.exec("SELECT count(*) FROM job WHERE status = 'RUNNING'");
            db_peak = std::max(db_peak, r.i32(0, 0));
            std::this_thread::sleep_for(2ms);
        }
    });
    q->start();
    for (int i = 0; i < 2000 && q->get_jobs_ended(with_limit(100)).size() < 60; ++i)
        std::this_thread::sleep_for(10ms);
    sampling = false;
    sampler.join();
    EXPECT_EQ(q->get_jobs_ended(with_limit(100)).size(), 60u);
    EXPECT_LE(peak.load(), 3);
    EXPECT_LE(db_peak, 3 + prefetch);
    EXPECT_GE(peak.load(), 2);  // it did run in parallel
    if (prefetch > 0) {
        EXPECT_GT(db_peak, 3) << "jobs were claimed ahead";
    }
}

INSTANTIATE_TEST_SUITE_P(Prefetch, Concurrency, ::testing::Values(0, 10));

TEST_F(Engine, TwoWorkersRunEachOfTwoThousandJobsExactlyOnce) {
    auto a = make(4);
    auto b = make(4);
    std::mutex mu;
    std::map<std::string, int> runs;
    auto task = [&](JobContext& ctx) {
        std::lock_guard g(mu);
        ++runs[ctx.rid()];
        return std::string("[]");
    };
    a->add_task("count", task);
    b->add_task("count", task);
    std::vector<BatchJob> batch(2000);
    for (auto& j : batch) j.task = "count";
    auto rids = a->add_jobs(batch);
    a->start();
    b->start();
    auto c = schema.connect();
    for (int i = 0; i < 6000; ++i) {
        if (c.exec("SELECT count(*) FROM job").i32(0, 0) == 0) break;
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(c.exec("SELECT count(*) FROM job").i32(0, 0), 0);
    EXPECT_EQ(c.exec("SELECT count(*) FROM job_archive WHERE status = 'SUCCEEDED'").i32(0, 0),
              2000);
    EXPECT_EQ(c.exec("SELECT count(DISTINCT rid) FROM job_archive").i32(0, 0), 2000);
    std::lock_guard g(mu);
    EXPECT_EQ(runs.size(), 2000u);
    for (const auto& rid : rids) EXPECT_EQ(runs[rid], 1) << rid;
}

TEST_F(Engine, WaitForAJobThatAlreadyEnded) {
    auto q = make();
    q->add_task("echo", echo_task());
    q->start();
    auto j = q->add_job("echo", 5);
    finished(*q, j.rid);
    auto t0 = std::chrono::steady_clock::now();
    auto again = q->wait_for_job_finished(j.rid, 5s);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->status, "SUCCEEDED");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
}

TEST_F(Engine, SubJobRecordsItsParent) {
    auto q = make();
    std::string child_rid;
    q->add_task("child", echo_task());
    q->add_task("parent", [&](JobContext& ctx) {
        auto child = ctx.add_job("child", "hello");
        child_rid = child.rid;
        return "[\"" + child.rid + "\"]";
    });
    q->start();
    auto p = q->add_job("parent");
    finished(*q, p.rid);
    ASSERT_FALSE(child_rid.empty());
    auto child = finished(*q, child_rid);
    EXPECT_EQ(child.options.parent_rid, p.rid);
    EXPECT_EQ(child.status, "SUCCEEDED");
}

TEST_F(Engine, GracefulStopLetsRunningJobsFinish) {
    auto q = make();
    std::atomic<bool> started{false};
    q->add_task("short", [&](JobContext&) {
        started = true;
        std::this_thread::sleep_for(400ms);
        return std::string("[1]");
    });
    q->start();
    auto j = q->add_job("short");
    for (int i = 0; i < 500 && !started; ++i) std::this_thread::sleep_for(10ms);
    q->stop(5s);
    EXPECT_EQ(q->get_job_ended(j.rid).status, "SUCCEEDED");
    EXPECT_EQ(q->get_worker(q->worker().rid).status, "STOPPED");
}

TEST_F(Engine, StopAfterGraceRequeuesWhatStillRuns) {
    auto q = make();
    std::atomic<bool> started{false};
    q->add_task("long", [&](JobContext& ctx) -> std::string {
        started = true;
        while (!ctx.is_cancelled()) std::this_thread::sleep_for(10ms);
        throw std::runtime_error("interrupted");
    });
    q->start();
    auto j = q->add_job("long");
    for (int i = 0; i < 500 && !started; ++i) std::this_thread::sleep_for(10ms);
    q->stop(100ms);
    auto back = q->get_job(j.rid);
    EXPECT_EQ(back.status, "QUEUED");
    EXPECT_EQ(back.attempts, 0);
}

TEST_F(Engine, StopRequestFromElsewhereIsNoticed) {
    auto q = make();
    std::atomic<bool> stopped{false};
    q->on_stopped([&] { stopped = true; });
    q->start();
    Client other(schema.config(), "", false);
    other.stop_worker(q->worker().rid, true);
    for (int i = 0; i < 500 && !stopped; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(stopped.load());
}

TEST_F(Engine, RejectsBadRegistrations) {
    auto q = make();
    q->add_task("echo", echo_task());
    EXPECT_THROW(q->add_task("echo", echo_task()), Error);
    EXPECT_THROW(q->add_task("", echo_task()), Error);
    EXPECT_THROW(q->add_task("x", TaskFunc{}), Error);
    EXPECT_THROW(q->add_task("y", TaskFn{}), Error);
    EXPECT_THROW(Queuer("w", 0, "", schema.config()), Error);
    auto w = q->get_worker(q->worker().rid);
    EXPECT_EQ(w.available_tasks, std::vector<std::string>{"echo"});
}

TEST_F(Engine, ListenersHearUpdatesAndEndedJobs) {
    auto q = make();
    std::mutex mu;
    std::vector<JobEvent> updates, ended;
    q->on_job_update([&](const JobEvent& e) {
        std::lock_guard g(mu);
        updates.push_back(e);
    });
    q->on_job_ended([&](const JobEvent& e) {
        std::lock_guard g(mu);
        ended.push_back(e);
    });
    q->add_task("echo", echo_task());
    q->start();
    auto j = q->add_job("echo", 1);
    finished(*q, j.rid);
    auto c = q->add_job("nobody-runs-this");
    q->cancel_job(c.rid);
    auto heard = [&](const std::vector<JobEvent>& v, const std::string& rid,
                     const std::string& status) {
        std::lock_guard g(mu);
        for (const auto& e : v)
            if (e.rid == rid && e.status == status) return true;
        return false;
    };
    for (int i = 0; i < 300 && !heard(ended, c.rid, "CANCELLED"); ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(heard(updates, j.rid, "QUEUED"));
    EXPECT_TRUE(heard(updates, j.rid, "RUNNING"));
    EXPECT_TRUE(heard(ended, j.rid, "SUCCEEDED"));
    EXPECT_TRUE(heard(ended, c.rid, "CANCELLED"));  // the reference's waiters missed this one
}

TEST_F(Engine, CancelInAnotherSchemaDoesNotTouchAJobWithTheSameId) {
    // NOTIFY channels are database-wide and ids repeat across schemas: match by rid.
    test::TestSchema other;
    auto a = make();
    auto b = std::make_unique<Queuer>("other-worker", 4, "", other.config(), std::nullopt,
                                      fast_engine());
    std::atomic<bool> a_saw{false}, b_saw{false}, a_started{false};
    a->add_task("slow", [&, inner = sleep_until_cancelled(&a_saw)](JobContext& ctx) {
        a_started = true;
        return inner(ctx);
    });
    b->add_task("slow", sleep_until_cancelled(&b_saw));
    a->start();
    b->start();
    auto ja = a->add_job("slow");
    auto jb = b->add_job("slow");
    ASSERT_EQ(ja.id, jb.id);
    for (int i = 0; i < 500; ++i) {
        if (a->get_job(ja.rid).status == "RUNNING" && b->get_job(jb.rid).status == "RUNNING") break;
        std::this_thread::sleep_for(10ms);
    }
    a->cancel_job(ja.rid);
    for (int i = 0; i < 300 && !a_saw; ++i) std::this_thread::sleep_for(10ms);
    // Told while running, or stopped before it started (the cancel overtook the claim).
    EXPECT_TRUE(a_saw.load() || !a_started.load());
    EXPECT_EQ(a->get_job_ended(ja.rid).status, "CANCELLED");
    std::this_thread::sleep_for(300ms);
    EXPECT_FALSE(b_saw.load());
    EXPECT_EQ(b->get_job(jb.rid).status, "RUNNING");
}

TEST_F(Engine, StopRightAfterAClaimFinishesWhatStartedAndRequeuesTheRest) {
    // stop() as soon as the table shows the jobs RUNNING, possibly before the claim's result
    // reached the loop, before a free task thread took a run, or as tasks return. A job whose
    // task started finishes within the grace (archived SUCCEEDED: its outcome is written before
    // stop() returns); a job whose claim came back after the stop began never starts: it is
    // back in the queue at once, with no worker and the attempt not counted. Nothing stays
    // RUNNING. Rounds vary the task's length and the moment of the stop, to meet the races.
    auto c = schema.connect();
    std::mutex mu;
    std::set<std::string> started;
    size_t started_total = 0, jobs_total = 0;
    for (int round = 0; round < 12; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        auto task_ms = std::chrono::milliseconds(round % 4 == 3 ? 300 : (round % 4) * 5);
        auto q = make();
        q->add_task("short", [&, task_ms](JobContext& ctx) {
            {
                std::lock_guard g(mu);
                started.insert(ctx.rid());
            }
            std::this_thread::sleep_for(task_ms);
            return std::string("[]");
        });
        q->start();
        std::vector<BatchJob> batch(3);
        for (auto& b : batch) b.task = "short";
        auto rids = q->add_jobs(batch);
        for (int i = 0; i < 2000; ++i) {
            if (c.exec("SELECT count(*) FROM job WHERE status = 'RUNNING'").i32(0, 0) == 3) break;
            std::this_thread::sleep_for(1ms);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(round % 3));
        q->stop(10s);
        std::lock_guard g(mu);
        for (const auto& rid : rids) {
            ++jobs_total;
            auto r = c.exec(
                "SELECT 'archive ' || status FROM job_archive WHERE rid = '" + rid +
                "' UNION ALL SELECT 'job ' || status || ' ' || COALESCE(worker_rid::text, '-') "
                "|| ' attempts ' || attempts FROM job WHERE rid = '" +
                rid + "'");
            ASSERT_EQ(r.rows(), 1) << rid << " is neither live nor archived";
            if (started.count(rid)) {
                ++started_total;
                EXPECT_EQ(r.str(0, 0), "archive SUCCEEDED") << rid << " started, then stop()";
            } else {
                EXPECT_EQ(r.str(0, 0), "job QUEUED - attempts 0") << rid << " never started";
            }
        }
        EXPECT_EQ(c.exec("SELECT count(*) FROM job WHERE status = 'RUNNING'").i32(0, 0), 0);
        c.exec("DELETE FROM job");  // what went back to the queue is not the next round's
    }
    std::printf("[ ENGINE   ] stop right after a claim: %zu of %zu jobs had started\n",
                started_total, jobs_total);
}

// A job added while a claim is on its way back may miss that claim's snapshot; the claim comes
// back short, but the notification heard meanwhile must still lead to another claim (not wait
// for the poll, 60 s here).
TEST_F(Engine, JobsAddedWhileAClaimIsInFlightAreNotLeftForThePoll) {
    auto o = fast_engine();
    o.poll_interval = 60s;
    auto q = std::make_unique<Queuer>("test-worker", 2, "", schema.config(), std::nullopt, o);
    q->add_task("echo", echo_task());
    q->start();
    auto c = schema.connect();
    // Many short bursts: each burst's last job has a chance to arrive during a claim.
    for (int round = 0; round < 25; ++round) {
        for (int i = 0; i < 6; ++i) q->add_job("echo", round, i);
        int ended = 0;
        for (int w = 0; w < 100 && ended < (round + 1) * 6; ++w) {
            ended = c.exec("SELECT count(*) FROM job_archive").i32(0, 0);
            if (ended < (round + 1) * 6) std::this_thread::sleep_for(50ms);
        }
        ASSERT_EQ(ended, (round + 1) * 6)
            << "round " << round << ": jobs left waiting for the 60 s poll";
    }
}
