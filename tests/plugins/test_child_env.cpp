// task_runner_environment(): what a task-runner child (process isolation) gets from queuerd's
// environment: all of it but the secrets by default; with worker.task_environment, the basic
// variables and the listed ones; never a secret.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "child_env.hpp"

namespace {

std::vector<std::string> env_of(const std::vector<const char*>& vars,
                                const std::vector<std::string>& extra = {}) {
    std::vector<const char*> envp(vars);
    envp.push_back(nullptr);
    return queuerd::task_runner_environment(extra, envp.data());
}

bool has(const std::vector<std::string>& env, const std::string& kv) {
    return std::find(env.begin(), env.end(), kv) != env.end();
}

bool has_name(const std::vector<std::string>& env, const std::string& name) {
    return std::any_of(env.begin(), env.end(),
                       [&](const std::string& kv) { return kv.rfind(name + "=", 0) == 0; });
}

const std::vector<const char*> kDaemonEnv = {
    "PATH=/usr/bin:/bin",
    "HOME=/var/lib/queuerd",
    "LANG=C.UTF-8",
    "LC_TIME=de_DE.UTF-8",
    "TZ=Europe/Berlin",
    "TMPDIR=/tmp/q",
    "LD_LIBRARY_PATH=/opt/acme/lib",
    "JOURNAL_STREAM=8:12345",
    "ASAN_OPTIONS=detect_leaks=1",
    "QUEUER_DB_HOST=db.example",
    "QUEUER_DB_PASSWORD=s3cret",
    "QUEUER_DB_USERNAME=queuerd",
    "QUEUER_ENCRYPTION_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "QUEUERD_WEB_TOKEN=tok",
    "CREDENTIALS_DIRECTORY=/run/credentials/queuerd.service",
    "NOTIFY_SOCKET=/run/systemd/notify",
    "WATCHDOG_USEC=30000000",
    "WATCHDOG_PID=42",
    "LISTEN_FDS=1",
    "AWS_SECRET_ACCESS_KEY=aws",
    "ACME_URL=https://acme.example",
    "ACME_TOKEN=t",
    "OTHER=1",
    "malformed",
};

TEST(ChildEnv, ByDefaultEverythingButTheSecrets) {
    auto env = env_of(kDaemonEnv);
    for (const char* kv : {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "AWS_SECRET_ACCESS_KEY=aws",
                           "ACME_URL=https://acme.example", "ACME_TOKEN=t", "OTHER=1"})
        EXPECT_TRUE(has(env, kv)) << kv;
    for (const char* name : {"QUEUER_DB_HOST", "QUEUER_DB_PASSWORD", "QUEUER_DB_USERNAME",
                             "QUEUER_ENCRYPTION_KEY", "QUEUERD_WEB_TOKEN", "CREDENTIALS_DIRECTORY",
                             "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS"})
        EXPECT_FALSE(has_name(env, name)) << name;
    EXPECT_FALSE(has_name(env, "malformed"));
    EXPECT_EQ(env.front(), "PATH=/usr/bin:/bin");
}

TEST(ChildEnv, AListKeepsWhatTasksNeedAndDropsTheRest) {
    auto env = env_of(kDaemonEnv, {"NOT_SET_ANYWHERE"});
    for (const char* kv :
         {"PATH=/usr/bin:/bin", "HOME=/var/lib/queuerd", "LANG=C.UTF-8", "LC_TIME=de_DE.UTF-8",
          "TZ=Europe/Berlin", "TMPDIR=/tmp/q", "LD_LIBRARY_PATH=/opt/acme/lib",
          "JOURNAL_STREAM=8:12345", "ASAN_OPTIONS=detect_leaks=1"})
        EXPECT_TRUE(has(env, kv)) << kv;
    for (const char* name :
         {"QUEUER_DB_HOST", "QUEUER_DB_PASSWORD", "QUEUER_DB_USERNAME", "QUEUER_ENCRYPTION_KEY",
          "QUEUERD_WEB_TOKEN", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC",
          "WATCHDOG_PID", "LISTEN_FDS", "AWS_SECRET_ACCESS_KEY", "ACME_URL", "OTHER"})
        EXPECT_FALSE(has_name(env, name)) << name;
    EXPECT_FALSE(has_name(env, "malformed"));
    // Order follows the daemon's environment.
    EXPECT_EQ(env.front(), "PATH=/usr/bin:/bin");
}

TEST(ChildEnv, TaskEnvironmentAddsNamesAndPrefixes) {
    auto env = env_of(kDaemonEnv, {"ACME_*", "OTHER"});
    EXPECT_TRUE(has(env, "ACME_URL=https://acme.example"));
    EXPECT_TRUE(has(env, "ACME_TOKEN=t"));
    EXPECT_TRUE(has(env, "OTHER=1"));
    EXPECT_FALSE(has_name(env, "AWS_SECRET_ACCESS_KEY"));
}

TEST(ChildEnv, SecretsStayOutEvenWhenNamed) {
    auto env = env_of(kDaemonEnv, {"QUEUER_*", "QUEUER_DB_PASSWORD", "QUEUER_ENCRYPTION_KEY",
                                   "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "QUEUERD_*"});
    for (const auto& kv : env) {
        EXPECT_NE(kv.rfind("QUEUER_DB_", 0), 0u) << kv;
        EXPECT_NE(kv.rfind("QUEUER_ENCRYPTION_KEY=", 0), 0u) << kv;
        EXPECT_NE(kv.rfind("QUEUERD_WEB_TOKEN=", 0), 0u) << kv;
        EXPECT_NE(kv.rfind("CREDENTIALS_DIRECTORY=", 0), 0u) << kv;
        EXPECT_NE(kv.rfind("NOTIFY_SOCKET=", 0), 0u) << kv;
    }
}

TEST(ChildEnv, ThisProcessEnvironmentHasNoSecretsAfterScrubbing) {
    auto saved = [](const char* n) {
        const char* v = std::getenv(n);
        return v ? std::optional<std::string>(v) : std::nullopt;
    };
    auto restore = [](const char* n, const std::optional<std::string>& v) {
        if (v)
            ::setenv(n, v->c_str(), 1);
        else
            ::unsetenv(n);
    };
    auto pw = saved("QUEUER_DB_PASSWORD"), key = saved("QUEUER_ENCRYPTION_KEY");
    ::setenv("QUEUER_DB_PASSWORD", "from-test", 1);
    ::setenv("QUEUER_ENCRYPTION_KEY", "from-test", 1);
    auto env = queuerd::task_runner_environment();
    restore("QUEUER_DB_PASSWORD", pw);
    restore("QUEUER_ENCRYPTION_KEY", key);
    EXPECT_FALSE(has_name(env, "QUEUER_DB_PASSWORD"));
    EXPECT_FALSE(has_name(env, "QUEUER_ENCRYPTION_KEY"));
    if (std::getenv("PATH")) {
        EXPECT_TRUE(has_name(env, "PATH"));
    }
}

TEST(ChildEnv, PatternMatching) {
    using queuerd::matches_pattern;
    EXPECT_TRUE(matches_pattern("ACME_URL", {"ACME_*"}));
    EXPECT_TRUE(matches_pattern("ACME_", {"ACME_*"}));
    EXPECT_FALSE(matches_pattern("ACM", {"ACME_*"}));
    EXPECT_TRUE(matches_pattern("X", {"Y", "X"}));
    EXPECT_FALSE(matches_pattern("XY", {"X"}));
    EXPECT_FALSE(matches_pattern("X", {}));
}

}  // namespace
