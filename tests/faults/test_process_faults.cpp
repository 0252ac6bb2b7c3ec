// Faults of worker processes: kill -9 of one worker among three, a worker frozen (SIGSTOP)
// past the stale threshold, a job whose task segfaults a thread-isolated worker. A master
// recovers what the dead worker held; duplicate executions are allowed only for the jobs the
// dead or frozen worker was running, and are reported.
#include "faults.hpp"

using namespace queuer;
using namespace queuer::test;
using namespace std::chrono_literals;

namespace {

// Rows put back in the queue must not still name a worker (worker_id 0, worker_rid NULL). In
// these scenarios no task fails, so every such row is one the master or reconciliation requeued.
const char* kRequeuedWithOwner =
    "SELECT count(*) FROM job WHERE status IN ('QUEUED', 'SCHEDULED')"
    " AND (worker_rid IS NOT NULL OR worker_id <> 0)";

}  // namespace

// c. kill -9 of one worker (not the master) among three during a drain of 200 ms jobs with
// retries: the master marks it stale (threshold 3 s) and requeues its jobs; each job ends
// SUCCEEDED exactly once; only the jobs the killed worker was running may have run twice.
TEST_F(FaultsSerial, KillMinusNineOfOneWorkerAmongThree) {
    WorkerSpec s[3];
    Process* d[3];
    std::string wrid[3];
    for (int i = 0; i < 3; ++i) {
        s[i].name = "kill-" + std::to_string(i);
        s[i].max_concurrency = 4;
        s[i].stale = "3s";
        d[i] = &start_worker(s[i]);
        wrid[i] = worker_rid(s[i].name);
    }
    const size_t n = 300;
    auto rids = add_count_jobs(n, 200, R"({"on_error":{"max_retries":3}})");
    // A victim that is not the master and holds running jobs.
    int victim = -1;
    ASSERT_TRUE(wait_until(
        [&] {
            if (scalar("SELECT count(*) FROM job_archive") < 40) return false;
            auto m = master_rid();
            for (int i = 0; i < 3; ++i) {
                if (wrid[i] == m || running_held_by(wrid[i]).empty()) continue;
                victim = i;
                return true;
            }
            return false;
        },
        120s))
        << state();
    long vpid = d[victim]->pid();
    d[victim]->signal(SIGKILL);
    EXPECT_EQ(d[victim]->wait(10s), 128 + SIGKILL);
    auto held = running_held_by(wrid[victim]);
    std::printf("[ FAULTS   ] kill-9: worker %s (pid %ld) killed holding %zu running jobs\n",
                s[victim].name.c_str(), vpid, held.size());
    int64_t owned_requeued = 0;
    bool ended = wait_until(
        [&] {
            owned_requeued = std::max(owned_requeued, scalar(kRequeuedWithOwner));
            db::Params p;
            p.add_array(rids);
            return scalar("SELECT count(*) FROM job WHERE rid::text = ANY($1::text[])", p) == 0;
        },
        120s);
    EXPECT_TRUE(ended) << state() << "\n" << logs();
    expect_exactly_once(rids);
    EXPECT_EQ(archived_with_status(rids, "SUCCEEDED"), static_cast<int64_t>(n)) << state();
    EXPECT_EQ(owned_requeued, 0) << "requeued rows must carry worker_id 0 and worker_rid NULL";
    // Executions: the killed worker's unfinished jobs may have run twice, never more, and no
    // other job may have.
    for (const auto& [rid, runs] : executions()) {
        int others = 0;
        for (const auto& e : runs) others += e.pid != vpid;
        EXPECT_LE(others, 1) << "job " << rid << " ran " << others
                             << " times on the surviving workers";
    }
    // A job the killed worker finished (archived under its rid) has no excuse to run again.
    check_executions(rids, unwritten_by(vpid, wrid[victim]), true, "kill-9");
    EXPECT_TRUE(wait_until([&] { return worker_stopped(wrid[victim]); }, 30s));
    for (int i = 0; i < 3; ++i) {
        if (i != victim) {
            EXPECT_TRUE(d[i]->alive()) << tail(d[i]->log());
        }
    }
}

// d. A worker frozen (SIGSTOP) past the stale threshold: the master (the other worker) declares
// it stale and its jobs run elsewhere. Woken (SIGCONT), the frozen worker must not write over
// the recovered rows; it stops and exits 75 (stale).
TEST_F(FaultsSerial, FrozenWorkerPastTheStaleThreshold) {
    WorkerSpec ms, fs;
    ms.name = "freeze-master";
    fs.name = "freeze-victim";
    ms.max_concurrency = fs.max_concurrency = 4;
    ms.stale = fs.stale = "3s";
    auto& master = start_worker(ms);
    auto mrid = worker_rid(ms.name);
    ASSERT_TRUE(wait_until([&] { return master_rid() == mrid; }, 30s)) << tail(master.log());
    auto& frozen = start_worker(fs);
    auto frid = worker_rid(fs.name);
    const size_t n = 80;
    auto rids = add_count_jobs(n, 500, R"({"on_error":{"max_retries":3}})");
    ASSERT_TRUE(wait_until([&] { return !running_held_by(frid).empty(); }, 60s)) << state();
    frozen.signal(SIGSTOP);
    long fpid = frozen.pid();
    auto held = running_held_by(frid);
    std::printf("[ FAULTS   ] sigstop: worker %s frozen holding %zu running jobs\n",
                fs.name.c_str(), held.size());
    // The master declares it stale and takes its jobs back.
    int64_t owned_requeued = 0;
    bool recovered = wait_until(
        [&] {
            owned_requeued = std::max(owned_requeued, scalar(kRequeuedWithOwner));
            return worker_stopped(frid) && running_held_by(frid).empty();
        },
        60s);
    EXPECT_TRUE(recovered) << state() << "\n" << tail(master.log());
    // ... and they run elsewhere while the frozen worker sleeps.
    db::Params hp;
    hp.add_array(held);
    EXPECT_TRUE(wait_until(
        [&] {
            owned_requeued = std::max(owned_requeued, scalar(kRequeuedWithOwner));
            return scalar("SELECT count(*) FROM job_archive WHERE rid::text = ANY($1::text[])",
                          hp) == static_cast<int64_t>(held.size());
        },
        60s))
        << state();
    frozen.signal(SIGCONT);
    int code = frozen.wait(60s);
    EXPECT_EQ(code, 75) << "a worker declared stale exits 75\n" << tail(frozen.log());
    EXPECT_TRUE(wait_all_ended(rids, 120s)) << state() << "\n" << logs();
    expect_exactly_once(rids);
    EXPECT_EQ(archived_with_status(rids, "SUCCEEDED"), static_cast<int64_t>(n)) << state();
    EXPECT_EQ(owned_requeued, 0) << "requeued rows must carry worker_id 0 and worker_rid NULL";
    // The rows recovered from the frozen worker were finished elsewhere, and not overwritten by
    // it when it woke up.
    EXPECT_EQ(scalar("SELECT count(*) FROM job_archive WHERE rid::text = ANY($1::text[]) AND "
                     "worker_rid = '" +
                         frid + "'",
                     hp),
              0)
        << "the woken worker wrote over recovered rows";
    check_executions(rids, unwritten_by(fpid, frid), true, "sigstop");
    EXPECT_TRUE(master.alive()) << tail(master.log());
}

// d2. A heartbeat that reached the database but whose reply is held in the network (the TCP
// proxy keeps every reply of the victim's connections) past the master's stale threshold. The
// master declares the victim stale and recovers its jobs; when the replies arrive, the first
// one the victim reads about its own row says RUNNING (the heartbeat ran before the sweep). It
// must still see that it was taken for dead: it stops and exits 75, and writes over nothing.
// The victim's own worker_stale_threshold is 60 s, the master's 3 s: the master's is the one
// that judged it (read from the master row).
TEST_F(FaultsSerial, HeartbeatReplyHeldPastTheMastersStaleThreshold) {
    auto direct = schema.config();
    TcpProxy proxy(direct.host, direct.port);
    WorkerSpec ms, vs;
    ms.name = "held-master";
    vs.name = "held-victim";
    ms.max_concurrency = vs.max_concurrency = 4;
    ms.stale = "3s";
    vs.stale = "60s";
    vs.via = &proxy;
    auto& master = start_worker(ms);
    auto mrid = worker_rid(ms.name);
    ASSERT_TRUE(wait_until([&] { return master_rid() == mrid; }, 30s)) << tail(master.log());
    auto& victim = start_worker(vs);
    auto vrid = worker_rid(vs.name);
    const size_t n = 16;
    auto rids = add_count_jobs(n, 1500, R"({"on_error":{"max_retries":3}})");
    ASSERT_TRUE(wait_until([&] { return !running_held_by(vrid).empty(); }, 60s)) << state();
    proxy.set_mode(TcpProxy::Mode::HoldReplies);
    // The victim's heartbeats stop once one is in flight; the master declares it stale.
    bool swept = wait_until([&] { return worker_stopped(vrid); }, 60s);
    EXPECT_TRUE(swept) << state() << "\n" << tail(master.log());
    proxy.set_mode(TcpProxy::Mode::Pass);
    long vpid = victim.pid();
    EXPECT_EQ(victim.wait(60s), 75) << "a worker the master declared stale exits 75\n"
                                    << tail(victim.log());
    EXPECT_TRUE(victim.log_contains("declared this worker stale")) << tail(victim.log());
    EXPECT_TRUE(wait_all_ended(rids, 120s)) << state() << "\n" << logs();
    expect_exactly_once(rids);
    EXPECT_EQ(archived_with_status(rids, "SUCCEEDED"), static_cast<int64_t>(n)) << state();
    EXPECT_EQ(scalar(kRequeuedWithOwner), 0) << "requeued rows must carry no worker";
    // Executions by the victim whose outcome it did not write may repeat (it was taken for
    // dead while running them); the others ran once.
    check_executions(rids, unwritten_by(vpid, vrid), true, "held-heartbeat");
    EXPECT_TRUE(master.alive()) << tail(master.log());
}

// i. A job whose task segfaults its (thread-isolated) worker, with max_retries 3: it may take
// down at most two workers (the first crash, and one retry after the retry delay); then it ends
// FAILED "not retried again" and the master's log names it. The master offers no `crash` task;
// dead workers are replaced so that three crash-capable workers stay up.
TEST_F(FaultsSerial, SegfaultingJobKillsAtMostTwoThreadIsolatedWorkers) {
    WorkerSpec ms;
    ms.name = "crash-master";
    ms.examples = false;  // only the fault tasks: never claims `crash`
    ms.stale = "3s";
    auto& master = start_worker(ms);
    auto mrid = worker_rid(ms.name);
    ASSERT_TRUE(wait_until([&] { return master_rid() == mrid; }, 30s)) << tail(master.log());
    std::vector<Process*> crashers;
    int started = 0;
    auto start_crasher = [&] {
        WorkerSpec c;
        c.name = "crash-" + std::to_string(++started);
        c.max_concurrency = 2;
        c.stale = "3s";
        crashers.push_back(&start_worker(c));
    };
    for (int i = 0; i < 3; ++i) start_crasher();
    auto rid = add("crash", "[\"segv\"]", R"({"on_error":{"max_retries":3}})");
    db::Params p;
    p.add(rid);
    std::vector<int> deaths;
    bool ended = wait_until(
        [&] {
            int died = 0;
            for (auto*& c : crashers) {
                if (c && !c->alive()) {
                    deaths.push_back(c->wait(0ms));
                    c = nullptr;
                    ++died;
                }
            }
            for (; died > 0 && started < 8; --died) start_crasher();  // keep three up
            return scalar("SELECT count(*) FROM job_archive WHERE rid = $1::uuid", p) > 0;
        },
        120s, 100ms);
    std::string codes;
    for (int c : deaths) codes += std::to_string(c) + " ";
    std::printf("[ FAULTS   ] crash: %zu workers died (exit statuses %s)\n", deaths.size(),
                codes.c_str());
    RecordProperty("workers_killed", static_cast<int>(deaths.size()));
    ASSERT_TRUE(ended) << "the crashing job never ended; " << deaths.size() << " workers died; "
                       << state() << "\n"
                       << tail(master.log());
    EXPECT_LE(deaths.size(), 2u) << "exit statuses: " << codes;
    auto r = db().exec(
        "SELECT status, COALESCE(error, ''), attempts FROM job_archive WHERE rid = $1::uuid", p);
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.str(0, 0), "FAILED");
    EXPECT_NE(r.str(0, 1).find("not retried again"), std::string::npos) << r.str(0, 1);
    // The sweep's row is visible before its callback logs: wait for the line.
    EXPECT_TRUE(master.wait_log(rid, 10s)) << "the master's log does not name the job\n"
                                           << tail(master.log());
    expect_exactly_once({rid});
    EXPECT_TRUE(master.alive()) << tail(master.log());
}
