// queuerd without a database: which start-up errors are permanent (exit 78), the crash report's
// slot table, and the log formats as written to stderr.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "crash_report.hpp"
#include "logging.hpp"
#include "queuer/log.hpp"
#include "startup.hpp"

using queuer::Error;
using queuer::ErrorKind;

TEST(Startup, PermanentErrorsAreNamed) {
    auto reason = [](ErrorKind k, const std::string& msg, const std::string& state = {}) {
        return queuerd::permanent_reason(Error(k, msg, state)).value_or("transient");
    };
    const std::string at = "cannot connect to PostgreSQL at u@h:5432/db (schema public): ";
    EXPECT_EQ(reason(ErrorKind::Connection,
                     at + "connection to server at \"h\", port 5432 failed: FATAL: password "
                          "authentication failed for user \"u\""),
              "authentication refused");
    EXPECT_EQ(reason(ErrorKind::Connection,
                     at + "FATAL: no pg_hba.conf entry for host \"10.0.0.1\", user \"u\""),
              "authentication refused");
    EXPECT_EQ(reason(ErrorKind::Connection, at + "fe_sendauth: no password supplied"),
              "authentication refused");
    EXPECT_EQ(reason(ErrorKind::Database, "permission denied", "28P01"), "authentication refused");
    EXPECT_EQ(reason(ErrorKind::Connection, at + "FATAL: database \"x\" does not exist"),
              "unknown database");
    EXPECT_EQ(reason(ErrorKind::Connection, at + "FATAL: role \"x\" does not exist"),
              "unknown role");
    EXPECT_EQ(reason(ErrorKind::Connection, at + "invalid sslmode value: \"bogus\""),
              "invalid connection option");
    EXPECT_EQ(
        reason(ErrorKind::Connection, at + "server does not support SSL, but SSL was required"),
        "invalid connection option");
    EXPECT_EQ(reason(ErrorKind::Database, "permission denied for database postgres", "42501"),
              "permission denied");
    EXPECT_EQ(reason(ErrorKind::Config, "database.timescaledb is true but ..."), "configuration");
    EXPECT_EQ(reason(ErrorKind::Database,
                     "the database schema is at version 9, newer than this build knows (5)"),
              "schema version");
    // Transient: retried.
    EXPECT_EQ(reason(ErrorKind::Connection,
                     at + "connection to server at \"h\", port 5432 failed: Connection refused Is "
                          "the server running on that host and accepting TCP/IP connections?"),
              "transient");
    EXPECT_EQ(reason(ErrorKind::Connection, at + "FATAL: the database system is starting up"),
              "transient");
    EXPECT_EQ(reason(ErrorKind::Connection, at + "FATAL: sorry, too many clients already"),
              "transient");
    EXPECT_EQ(
        reason(ErrorKind::Connection, "query failed: server closed the connection unexpectedly"),
        "transient");
}

TEST(CrashReport, SlotsAreTakenAndReleased) {
    int before = queuerd::crash::recorded_jobs();
    {
        queuerd::crash::JobSlot a("rid-a", "task-a");
        queuerd::crash::JobSlot b("rid-b", std::string(1000, 'x'));  // cut to the slot, no overflow
        EXPECT_EQ(queuerd::crash::recorded_jobs(), before + 2);
    }
    EXPECT_EQ(queuerd::crash::recorded_jobs(), before);
}

namespace {

// Runs `fn` with stderr redirected to a file; returns what it wrote.
template <class F>
std::string capture_stderr(F fn) {
    std::fflush(stderr);
    char path[] = "/tmp/queuerd-log-test.XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    std::fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    unlink(path);
    return ss.str();
}

}  // namespace

TEST(Logging, JsonLinesCarryFieldsAndCapLongMessages) {
    unsetenv("JOURNAL_STREAM");
    auto out = capture_stderr([] {
        queuerd::setup_logging(queuer::LogLevel::Info, queuer::LogFormat::Json);
        queuerd::set_log_worker("w-rid");
        spdlog::warn("plain \"quoted\" line\nwith a newline");
        queuer::log::Fields f;
        f.job_rid = "job-1";
        f.task = "resize";
        queuer::log::write(queuer::log::Level::Warn, "job failed: boom", f);
        queuer::log::write(queuer::log::Level::Debug, "not shown at info");
        spdlog::info(std::string(40000, 'y'));
        queuerd::set_log_worker("");
    });
    std::istringstream in(out);
    std::string line;
    std::vector<rapidjson::Document> docs;
    while (std::getline(in, line)) {
        rapidjson::Document d;
        d.Parse(line.c_str());
        ASSERT_FALSE(d.HasParseError()) << line;
        docs.push_back(std::move(d));
    }
    ASSERT_EQ(docs.size(), 3u) << out;
    EXPECT_STREQ(docs[0]["level"].GetString(), "warn");
    EXPECT_STREQ(docs[0]["msg"].GetString(), "plain \"quoted\" line\nwith a newline");
    EXPECT_STREQ(docs[0]["worker_rid"].GetString(), "w-rid");
    EXPECT_FALSE(docs[0].HasMember("job_rid"));
    EXPECT_STREQ(docs[1]["job_rid"].GetString(), "job-1");
    EXPECT_STREQ(docs[1]["task"].GetString(), "resize");
    EXPECT_STREQ(docs[1]["msg"].GetString(), "job failed: boom");
    std::string big = docs[2]["msg"].GetString();
    EXPECT_LT(big.size(), 17000u);
    EXPECT_NE(big.find("(40000 bytes)"), std::string::npos);
}

TEST(Logging, TextUnderSystemdHasPriorityPrefixes) {
    setenv("JOURNAL_STREAM", "8:1", 1);
    auto out = capture_stderr([] {
        queuerd::setup_logging(queuer::LogLevel::Debug, queuer::LogFormat::Text);
        spdlog::debug("d");
        spdlog::info("i");
        spdlog::warn("w");
        spdlog::error("e");
        spdlog::critical("c");
        queuer::log::Fields f;
        f.job_rid = "job-2";
        f.task = "t";
        queuer::log::write(queuer::log::Level::Info, "about a job", f);
    });
    unsetenv("JOURNAL_STREAM");
    EXPECT_TRUE(queuerd::syslog_prefix_on_stderr());
    EXPECT_EQ(out,
              "<7>[debug] d\n<6>[info] i\n<4>[warn] w\n<3>[error] e\n<2>[critical] c\n"
              "<6>[info] about a job (job job-2, task t)\n");
}
