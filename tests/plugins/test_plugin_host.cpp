// PluginHost: loading the example plugin and the broken test plugins (each refusal's message),
// and the TaskFunc / NextIntervalFunc adapters driven with JobContexts built here (no engine,
// no database: client is null, so sub-jobs fail cleanly).
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>

#include <chrono>
#include <string>
#include <thread>

#include "plugin_host.hpp"
#include "queuer/error.hpp"
#include "queuer/model.hpp"

using namespace std::chrono_literals;
using queuerd::PluginHost;

namespace {

const std::string kExamples = QUEUER_EXAMPLES_PLUGIN;
std::string test_plugin(const std::string& name) {
    return std::string(QUEUER_TEST_PLUGIN_DIR) + "/lib" + name + ".so";
}

// The message of the queuer::Error(Plugin) that loading `paths` in order throws ("" if none).
std::string load_error(const std::vector<std::string>& paths) {
    PluginHost host;
    try {
        for (const auto& p : paths) host.load(p);
    } catch (const queuer::Error& e) {
        EXPECT_EQ(e.kind(), queuer::ErrorKind::Plugin);
        return e.what();
    }
    return "";
}

queuer::JobContext make_ctx(std::string task, std::string params = "[]", std::string keyed = "{}") {
    queuer::JobContext::Init init;
    init.rid = "6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f";
    init.task_name = std::move(task);
    init.parameters = std::move(params);
    init.parameters_keyed = std::move(keyed);
    return queuer::JobContext(std::move(init));
}

rapidjson::Document parse(const std::string& text) {
    rapidjson::Document d;
    d.Parse(text.c_str());
    EXPECT_FALSE(d.HasParseError()) << text;
    return d;
}

std::string run(const PluginHost& host, const std::string& task, queuer::JobContext& ctx) {
    auto tasks = host.tasks();
    auto it = tasks.find(task);
    if (it == tasks.end()) throw std::logic_error("no task " + task);
    // The adapter reports a failure as a value; the tests below read it as an exception.
    auto r = it->second(ctx);
    if (!r.ok) throw std::runtime_error(r.text);
    return r.text;
}

}  // namespace

TEST(PluginHostLoad, ExamplesLoadAndListTheirTasksAndFunctions) {
    PluginHost host;
    host.load(kExamples);
    ASSERT_EQ(host.plugins().size(), 1u);
    const auto& info = host.plugins()[0];
    EXPECT_EQ(info.path, kExamples);
    EXPECT_EQ(info.name, "examples");
    EXPECT_EQ(info.abi_major, QUEUER_PLUGIN_ABI_MAJOR);
    EXPECT_EQ(info.tasks, (std::vector<std::string>{"crash", "echo", "fail", "ignore_cancel",
                                                    "noop", "sleep", "spawn"}));
    EXPECT_EQ(info.next_interval_funcs,
              (std::vector<std::string>{"daily_0900_europe_berlin", "next_wall_clock"}));
    EXPECT_EQ(host.tasks().size(), 7u);
    EXPECT_EQ(host.next_interval_funcs().size(), 2u);

    std::string listing = host.listing();
    EXPECT_NE(listing.find(kExamples), std::string::npos) << listing;
    EXPECT_NE(listing.find("tasks: crash, echo, fail, ignore_cancel, noop, sleep, spawn"),
              std::string::npos)
        << listing;
    EXPECT_NE(listing.find("daily_0900_europe_berlin"), std::string::npos) << listing;
}

TEST(PluginHostLoad, MissingFileNamesThePathAndTheLoaderError) {
    std::string path = "/nonexistent/dir/libnothing.so";
    std::string msg = load_error({path});
    EXPECT_NE(msg.find("cannot load plugin " + path), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST(PluginHostLoad, MissingEntryPointNamesTheSymbolAndTheFile) {
    std::string path = test_plugin("no_entry");
    std::string msg = load_error({path});
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("queuer_plugin_entry"), std::string::npos) << msg;
}

TEST(PluginHostLoad, AbiMajorMismatchNamesExpectedAndFound) {
    std::string path = test_plugin("bad_abi");
    std::string msg = load_error({path});
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("expected major 1, found 99"), std::string::npos) << msg;
    EXPECT_NE(msg.find("ABI 99.0"), std::string::npos) << msg;
}

TEST(PluginHostLoad, NewerMinorThanTheHostIsRefused) {
    std::string path = test_plugin("newer_minor");
    std::string msg = load_error({path});
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("found 99"), std::string::npos) << msg;
}

TEST(PluginHostLoad, ShorterDescriptorLoadsAndItsMissingFieldsAreNotRead) {
    // short_def's descriptor ends before fini; a trap sits where fini would be.
    {
        PluginHost host;
        host.load(test_plugin("short_def"));
        ASSERT_EQ(host.plugins().size(), 1u);
        EXPECT_EQ(host.plugins()[0].tasks, std::vector<std::string>{"short_task"});
        auto ctx = make_ctx("short_task");
        EXPECT_EQ(run(host, "short_task", ctx), "[\"short\"]");
    }  // unloading must not call the trap
    SUCCEED();
}

TEST(PluginHostLoad, FailingInitIsReportedWithTheFile) {
    std::string path = test_plugin("init_fails");
    std::string msg = load_error({path});
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("failed to initialise"), std::string::npos) << msg;
}

TEST(PluginHostLoad, DuplicateTaskNameNamesBothFiles) {
    std::string dup = test_plugin("dup_echo");
    PluginHost host;
    host.load(kExamples);
    try {
        host.load(dup);
        FAIL() << "a second plugin exporting echo was accepted";
    } catch (const queuer::Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("\"echo\""), std::string::npos) << msg;
        EXPECT_NE(msg.find(kExamples), std::string::npos) << msg;
        EXPECT_NE(msg.find(dup), std::string::npos) << msg;
    }
    // The refused plugin left the host as it was.
    EXPECT_EQ(host.plugins().size(), 1u);
    EXPECT_EQ(host.tasks().size(), 7u);
}

TEST(PluginHostLoad, DuplicateInTheOtherOrderNamesBothFilesToo) {
    std::string dup = test_plugin("dup_echo");
    std::string msg = load_error({dup, kExamples});
    EXPECT_NE(msg.find(kExamples), std::string::npos) << msg;
    EXPECT_NE(msg.find(dup), std::string::npos) << msg;
}

TEST(PluginHostLoad, TwoHostsMayLoadTheSamePlugin) {
    PluginHost a, b;
    a.load(kExamples);
    b.load(kExamples);
    {
        PluginHost c;
        c.load(kExamples);
    }  // c's fini must not pull the tasks from under a and b
    auto ctx = make_ctx("echo", "[7]");
    EXPECT_EQ(run(a, "echo", ctx), "[7]");
    auto ctx2 = make_ctx("echo", "[8]");
    EXPECT_EQ(run(b, "echo", ctx2), "[8]");
}

// ---- the TaskFunc adapter ------------------------------------------------------------------

class ExampleTasks : public ::testing::Test {
  protected:
    void SetUp() override { host_.load(kExamples); }
    PluginHost host_;
};

TEST_F(ExampleTasks, EchoReturnsThePositionalParameters) {
    auto ctx = make_ctx("echo", R"([1,"a"])");
    auto d = parse(run(host_, "echo", ctx));
    ASSERT_TRUE(d.IsArray());
    ASSERT_EQ(d.Size(), 2u);
    EXPECT_EQ(d[0].GetInt(), 1);
    EXPECT_STREQ(d[1].GetString(), "a");
}

TEST_F(ExampleTasks, EchoAppendsKeyedParametersAsTheLastElement) {
    auto ctx = make_ctx("echo", R"([1,"a"])", R"({"k":2})");
    auto d = parse(run(host_, "echo", ctx));
    ASSERT_TRUE(d.IsArray());
    ASSERT_EQ(d.Size(), 3u);
    EXPECT_EQ(d[0].GetInt(), 1);
    EXPECT_STREQ(d[1].GetString(), "a");
    ASSERT_TRUE(d[2].IsObject());
    EXPECT_EQ(d[2]["k"].GetInt(), 2);
}

TEST_F(ExampleTasks, NoopReturnsNoResult) {
    auto ctx = make_ctx("noop");
    EXPECT_EQ(run(host_, "noop", ctx), "[]");
}

TEST_F(ExampleTasks, FailThrowsItsParameterAsTheError) {
    auto ctx = make_ctx("fail", R"(["boom: disk full"])");
    try {
        run(host_, "fail", ctx);
        FAIL() << "fail did not fail";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "boom: disk full");
    }
}

TEST_F(ExampleTasks, MissingParameterBecomesTheError) {
    auto ctx = make_ctx("sleep", "[]");
    try {
        run(host_, "sleep", ctx);
        FAIL() << "sleep without a parameter succeeded";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("parameter 0 is missing"), std::string::npos)
            << e.what();
    }
}

TEST_F(ExampleTasks, SleepSleepsThenSucceeds) {
    auto ctx = make_ctx("sleep", "[30]");
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(run(host_, "sleep", ctx), "[]");
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
}

TEST_F(ExampleTasks, SleepStopsWithCancelledWhenTheJobIsCancelled) {
    auto ctx = make_ctx("sleep", "[60000]");
    std::thread canceller([&] {
        std::this_thread::sleep_for(50ms);
        ctx.cancel("cancelled");
    });
    auto t0 = std::chrono::steady_clock::now();
    try {
        run(host_, "sleep", ctx);
        ADD_FAILURE() << "a cancelled sleep succeeded";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "cancelled");
    }
    canceller.join();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST_F(ExampleTasks, SpawnWithoutAClientFailsCleanly) {
    auto ctx = make_ctx("spawn");
    try {
        run(host_, "spawn", ctx);
        FAIL() << "spawn without a database succeeded";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("add_sub_job(echo)"), std::string::npos) << e.what();
    }
}

TEST_F(ExampleTasks, DailyBerlinFunctionGivesTheNextNineOClockLocalTime) {
    auto f = host_.next_interval_funcs().at("daily_0900_europe_berlin");
    auto t = [](const char* s) { return queuer::parse_time(s, "test time"); };
    // Winter (CET, UTC+1): 08:00 local -> 09:00 local the same day.
    EXPECT_EQ(f(t("2026-01-15T07:00:00Z"), 1), t("2026-01-15T08:00:00Z"));
    // Summer (CEST, UTC+2): 10:00 local -> 09:00 local the next day.
    EXPECT_EQ(f(t("2026-07-15T08:00:00Z"), 1), t("2026-07-16T07:00:00Z"));
    // Exactly at 09:00 local: the next day, never the same instant.
    EXPECT_EQ(f(t("2026-01-15T08:00:00Z"), 2), t("2026-01-16T08:00:00Z"));
    // Across the spring change (2026-03-29): 09:00 CET then 09:00 CEST.
    EXPECT_EQ(f(t("2026-03-28T08:00:00Z"), 3), t("2026-03-29T07:00:00Z"));
}

TEST(PluginNextInterval, WallClockFunctionReadsItsZoneFromTheEnvironment) {
    ::setenv("QUEUER_EXAMPLES_WALL_CLOCK", "18:30 America/New_York", 1);
    PluginHost host;
    host.load(kExamples);
    ::unsetenv("QUEUER_EXAMPLES_WALL_CLOCK");
    auto f = host.next_interval_funcs().at("next_wall_clock");
    auto t = [](const char* s) { return queuer::parse_time(s, "test time"); };
    // 2026-01-15 12:00 EST -> 18:30 EST (23:30Z) the same day.
    EXPECT_EQ(f(t("2026-01-15T17:00:00Z"), 1), t("2026-01-15T23:30:00Z"));
}

TEST(PluginNextInterval, MalformedWallClockSettingRefusesThePlugin) {
    ::setenv("QUEUER_EXAMPLES_WALL_CLOCK", "25:99 Nowhere/Atlantis", 1);
    std::string msg = load_error({kExamples});
    ::unsetenv("QUEUER_EXAMPLES_WALL_CLOCK");
    EXPECT_NE(msg.find(kExamples), std::string::npos) << msg;
}

// ---- the C ABI from C ----------------------------------------------------------------------

class CTasks : public ::testing::Test {
  protected:
    void SetUp() override { host_.load(test_plugin("c_tasks")); }
    PluginHost host_;
};

TEST_F(CTasks, LogAttemptDeadlineAndUserDataReachTheTask) {
    std::vector<std::string> lines;
    queuerd::set_plugin_log_sink(
        [&](int, std::string_view rid, std::string_view task, std::string_view text) {
            lines.push_back(std::string(task) + "|" + std::string(rid) + "|" + std::string(text));
        });
    queuer::JobContext::Init init;
    init.rid = "6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f";
    init.task_name = "c_log";
    init.attempt = 3;
    init.deadline = std::chrono::steady_clock::now() + 60s;
    queuer::JobContext ctx(std::move(init));
    std::string result = run(host_, "c_log", ctx);
    queuerd::set_plugin_log_sink(nullptr);
    EXPECT_EQ(result, R"([3,true,"tagged"])");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "c_log|6f1c2b9e-3d4a-4c5b-8e7f-0a1b2c3d4e5f|hello from c_log");
}

TEST_F(CTasks, ErrorWithoutTextBecomesTaskFailed) {
    auto ctx = make_ctx("c_error_no_text");
    try {
        run(host_, "c_error_no_text", ctx);
        FAIL() << "no error";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "task failed");
    }
}

TEST_F(CTasks, ResultsThatAreNotJsonAreRefused) {
    auto ctx = make_ctx("c_bad_result");
    try {
        run(host_, "c_bad_result", ctx);
        FAIL() << "invalid JSON results were accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
    }
}

TEST_F(CTasks, NextIntervalFunctionsAndTheirErrors) {
    auto funcs = host_.next_interval_funcs();
    auto t = queuer::parse_time("2026-01-15T07:00:00Z", "t");
    EXPECT_EQ(funcs.at("every_minute")(t, 1), t + std::chrono::minutes(1));
    try {
        funcs.at("always_fails")(t, 4);
        FAIL() << "no error";
    } catch (const std::runtime_error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("always_fails"), std::string::npos) << msg;
        EXPECT_NE(msg.find("count 4"), std::string::npos) << msg;
    }
}
