// Process isolation: plugin tasks in task runner children. A crash, abort or exit fails only its
// job and the pool goes on; a child that ignores cancellation is killed at its deadline; sub-job
// requests and log lines travel to the parent; no child is left behind.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "isolation.hpp"
#include "queuer/error.hpp"

using namespace std::chrono_literals;
using queuerd::IsolationOptions;
using queuerd::ProcessPool;

namespace {

const std::string kExamples = QUEUER_EXAMPLES_PLUGIN;

IsolationOptions options(std::vector<std::string> plugins = {kExamples}) {
    IsolationOptions o;
    o.runner_path = QUEUER_TASK_RUNNER;
    o.plugin_paths = std::move(plugins);
    o.kill_grace = 300ms;
    return o;
}

std::unique_ptr<queuer::JobContext> ctx_for(
    std::string task, std::string params = "[]",
    std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    queuer::JobContext::Init init;
    init.rid = "0a7d5c3e-1b2f-4a6c-9d8e-7f6a5b4c3d2e";
    init.task_name = std::move(task);
    init.parameters = std::move(params);
    if (timeout) init.deadline = std::chrono::steady_clock::now() + *timeout;
    return std::make_unique<queuer::JobContext>(std::move(init));
}

std::string error_of(ProcessPool& pool, queuer::JobContext& ctx) {
    auto r = pool.run(ctx);
    return r.ok ? "(no error)" : r.text;
}

// The results of a task that must succeed ("(failed: ...)" otherwise).
std::string results(queuer::TaskResult r) {
    return r.ok ? r.text : "(failed: " + r.text + ")";
}

bool no_children_left() {
    int status = 0;
    return ::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

}  // namespace

TEST(ProcessIsolation, EchoRunsInAChildAndTheChildIsReused) {
    {
        ProcessPool pool(options());
        auto c1 = ctx_for("echo", R"([1,"a"])");
        EXPECT_EQ(results(pool.run(*c1)), R"([1,"a"])");
        auto c2 = ctx_for("noop");
        EXPECT_EQ(results(pool.run(*c2)), "[]");
        EXPECT_EQ(pool.children(), 1u);
        EXPECT_EQ(pool.idle(), 1u);
    }
    EXPECT_TRUE(no_children_left());
}

TEST(ProcessIsolation, TaskErrorTextIsPassedThrough) {
    ProcessPool pool(options());
    auto c = ctx_for("fail", R"(["no such customer"])");
    EXPECT_EQ(error_of(pool, *c), "no such customer");
    EXPECT_EQ(pool.children(), 1u);  // a failing task does not cost the child
}

TEST(ProcessIsolation, SegfaultFailsTheJobWithTheSignalAndThePoolGoesOn) {
    ProcessPool pool(options());
    auto crash = ctx_for("crash", R"(["segv"])");
    std::string err = error_of(pool, *crash);
    EXPECT_EQ(err, "task crashed: signal 11 (SIGSEGV)");
    EXPECT_EQ(pool.children(), 0u);  // the dead child is gone, reaped

    auto next = ctx_for("echo", R"(["after"])");
    EXPECT_EQ(results(pool.run(*next)), R"(["after"])");
    EXPECT_EQ(pool.children(), 1u);
}

TEST(ProcessIsolation, AbortIsReportedWithItsSignal) {
    ProcessPool pool(options());
    auto c = ctx_for("crash", R"(["abort"])");
    EXPECT_EQ(error_of(pool, *c), "task crashed: signal 6 (SIGABRT)");
    auto next = ctx_for("noop");
    EXPECT_EQ(results(pool.run(*next)), "[]");
}

TEST(ProcessIsolation, ExitInATaskIsReportedWithItsStatus) {
    ProcessPool pool(options());
    auto c = ctx_for("crash", R"(["exit"])");
    EXPECT_EQ(error_of(pool, *c), "task exited with status 3");
    auto next = ctx_for("noop");
    EXPECT_EQ(results(pool.run(*next)), "[]");
}

TEST(ProcessIsolation, ChildIgnoringCancellationIsKilledAtItsDeadline) {
    {
        ProcessPool pool(options());
        auto c = ctx_for("ignore_cancel", "[60000]", 200ms);
        auto t0 = std::chrono::steady_clock::now();
        std::string err = error_of(pool, *c);
        auto took = std::chrono::steady_clock::now() - t0;
        EXPECT_NE(err.find("task killed"), std::string::npos) << err;
        EXPECT_NE(err.find("timed out"), std::string::npos) << err;
        EXPECT_LT(took, 20s);  // far below the task's 60 s
        EXPECT_EQ(pool.children(), 0u);

        auto next = ctx_for("echo", "[2]");
        EXPECT_EQ(results(pool.run(*next)), "[2]");
    }
    EXPECT_TRUE(no_children_left());
}

TEST(ProcessIsolation, CooperativeTaskStopsAtItsDeadlineAndKeepsItsChild) {
    ProcessPool pool(options());
    auto c = ctx_for("sleep", "[60000]", 100ms);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(error_of(pool, *c), "cancelled");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
    EXPECT_EQ(pool.children(), 1u);  // it returned in time: not killed
    auto next = ctx_for("noop");
    EXPECT_EQ(results(pool.run(*next)), "[]");
    EXPECT_EQ(pool.children(), 1u);
}

TEST(ProcessIsolation, CancellationIsForwardedToTheChild) {
    ProcessPool pool(options());
    auto c = ctx_for("sleep", "[60000]");
    std::thread canceller([&] {
        std::this_thread::sleep_for(100ms);
        c->cancel("cancelled");
    });
    EXPECT_EQ(error_of(pool, *c), "cancelled");
    canceller.join();
    EXPECT_EQ(pool.children(), 1u);
}

TEST(ProcessIsolation, SubJobRequestsAreExecutedByTheParent) {
    // The parent runs the request through the job's JobContext; without a database client that
    // fails, and the failure travels back to the task in the child.
    ProcessPool pool(options());
    auto c = ctx_for("spawn");
    std::string err = error_of(pool, *c);
    EXPECT_NE(err.find("add_sub_job(echo)"), std::string::npos) << err;
    EXPECT_EQ(pool.children(), 1u);
}

TEST(ProcessIsolation, LogLinesFromTheChildReachTheParentsLog) {
    std::mutex mu;
    std::vector<std::string> lines;
    queuerd::set_plugin_log_sink(
        [&](int, std::string_view rid, std::string_view task, std::string_view text) {
            std::lock_guard lock(mu);
            lines.push_back(std::string(task) + "|" + std::string(rid) + "|" + std::string(text));
        });
    {
        ProcessPool pool(options({std::string(QUEUER_TEST_PLUGIN_DIR) + "/libc_tasks.so"}));
        auto c = ctx_for("c_log");
        EXPECT_EQ(results(pool.run(*c)), R"([1,false,"tagged"])");
    }
    queuerd::set_plugin_log_sink(nullptr);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "c_log|0a7d5c3e-1b2f-4a6c-9d8e-7f6a5b4c3d2e|hello from c_log");
}

TEST(ProcessIsolation, PoolGrowsToTheNumberOfConcurrentJobs) {
    ProcessPool pool(options());
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] {
            auto c = ctx_for("sleep", "[300]");
            if (results(pool.run(*c)) == "[]") ++ok;
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), 4);
    EXPECT_GE(pool.children(), 2u);
    EXPECT_LE(pool.children(), 4u);
    EXPECT_EQ(pool.idle(), pool.children());
}

TEST(ProcessIsolation, PluginThatFailsInTheChildIsReportedAtStart) {
    std::string bad = std::string(QUEUER_TEST_PLUGIN_DIR) + "/libbad_abi.so";
    ProcessPool pool(options({bad}));
    try {
        pool.prestart(1);
        FAIL() << "a runner with a bad plugin started";
    } catch (const queuer::Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find(bad), std::string::npos) << msg;
        EXPECT_NE(msg.find("expected major 1, found 99"), std::string::npos) << msg;
    }
    EXPECT_EQ(pool.children(), 0u);
}

TEST(ProcessIsolation, MissingRunnerIsReported) {
    IsolationOptions o = options();
    o.runner_path = "/nonexistent/queuerd-task-runner";
    ProcessPool pool(o);
    auto c = ctx_for("noop");
    std::string err = error_of(pool, *c);
    EXPECT_NE(err.find("/nonexistent/queuerd-task-runner"), std::string::npos) << err;
    EXPECT_EQ(pool.children(), 0u);
}

TEST(ProcessIsolation, PrestartedChildrenAreIdleAndReaped) {
    {
        ProcessPool pool(options());
        pool.prestart(3);
        EXPECT_EQ(pool.children(), 3u);
        EXPECT_EQ(pool.idle(), 3u);
    }
    EXPECT_TRUE(no_children_left());
}
