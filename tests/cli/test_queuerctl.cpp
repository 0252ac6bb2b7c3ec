// queuerctl, the real binary, against the PostgreSQL named by QUEUER_DB_*: every test has a
// schema of its own (QUEUER_DB_SCHEMA=t_<random>), dropped at the end.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "queuer/queuer.hpp"
#include "queuer/schema.hpp"
#include "support/test_db.hpp"

extern char** environ;

namespace {

#ifndef QUEUERCTL_PATH
#error "QUEUERCTL_PATH must name the queuerctl binary"
#endif

struct CtlRun {
    int code = -1;
    std::string out;
    std::string err;
};

using Env = std::map<std::string, std::optional<std::string>>;

// Runs queuerctl with `args`; the environment is ours with `env` applied (nullopt = unset).
CtlRun run_ctl(const std::vector<std::string>& args, const Env& env) {
    std::map<std::string, std::string> vars;
    for (char** e = environ; *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : env) {
        if (v)
            vars[k] = *v;
        else
            vars.erase(k);
    }
    std::vector<std::string> env_text;
    for (const auto& [k, v] : vars) env_text.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_text) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_text = {QUEUERCTL_PATH};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_text) argv.push_back(s.data());
    argv.push_back(nullptr);

    int out_pipe[2], err_pipe[2];
    EXPECT_EQ(::pipe2(out_pipe, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(err_pipe, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    CtlRun r;
    if (rc != 0) {
        ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
        ::close(out_pipe[0]);
        ::close(err_pipe[0]);
        return r;
    }
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    int open_fds = 2;
    while (open_fds > 0) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[8192];
            ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

std::string describe(const CtlRun& r) {
    return "exit " + std::to_string(r.code) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

int count_lines(const std::string& s) {
    int n = 0;
    for (char c : s)
        if (c == '\n') ++n;
    if (!s.empty() && s.back() != '\n') ++n;
    return n;
}

rapidjson::Document parse(const std::string& text) {
    rapidjson::Document d;
    d.Parse(text.c_str());
    EXPECT_FALSE(d.HasParseError()) << "not JSON: " << text;
    return d;
}

std::string str(const rapidjson::Value& v, const char* key) {
    if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString()) return {};
    return v[key].GetString();
}

const char* const kUnknownRid = "7d3b5a1e-1f53-4b8e-9b1a-6a2c1d2e3f40";

class Queuerctl : public ::testing::Test {
  protected:
    Queuerctl() {
        env_["QUEUER_DB_SCHEMA"] = schema_.config().schema;
        env_["NO_COLOR"] = "1";
    }

    CtlRun ctl(const std::vector<std::string>& args, const Env& extra = {}) {
        Env env = env_;
        for (const auto& [k, v] : extra) env[k] = v;
        return run_ctl(args, env);
    }
    // Runs and expects exit 0; returns stdout.
    std::string ok(const std::vector<std::string>& args, const Env& extra = {}) {
        auto r = ctl(args, extra);
        EXPECT_EQ(r.code, 0) << describe(r);
        return r.out;
    }
    void migrate() { ok({"migrate"}); }
    std::string add(const std::string& task, const std::string& params = "[]") {
        auto d = parse(ok({"add", "job", "--task", task, "--params", params, "--json"}));
        return str(d, "rid");
    }
    // Expects exit `code` and exactly one line on stderr, containing `needle`.
    void expect_error(const std::vector<std::string>& args, int code, const std::string& needle,
                      const Env& extra = {}) {
        auto r = ctl(args, extra);
        EXPECT_EQ(r.code, code) << describe(r);
        EXPECT_EQ(count_lines(r.err), 1) << describe(r);
        EXPECT_NE(r.err.find(needle), std::string::npos) << describe(r);
        EXPECT_EQ(r.err.rfind("queuerctl: ", 0), 0u) << describe(r);
    }

    queuer::test::TestSchema schema_;
    Env env_;
};

TEST_F(Queuerctl, MigrateTwice) {
    auto first = ok({"migrate"});
    EXPECT_NE(first.find("version 0 -> "), std::string::npos) << first;
    auto second = ok({"migrate"});
    EXPECT_NE(second.find("already at version"), std::string::npos) << second;
    auto d = parse(ok({"migrate", "--json"}));
    EXPECT_EQ(d["from_version"].GetInt(), d["to_version"].GetInt());
    EXPECT_EQ(d["to_version"].GetInt(), queuer::schema_version());
}

TEST_F(Queuerctl, MigrateCompatSetsTheFormEveryClientWrites) {
    auto d = parse(ok({"migrate", "--json"}));
    EXPECT_EQ(str(d, "compat"), "python");  // the default
    const std::string sched =
        R"({"schedule":{"start":"2030-01-02T03:04:05Z","max_count":2,"interval":"1h"}})";
    auto py = str(parse(ok({"add", "job", "--task", "t", "--options", sched, "--json"})), "rid");
    d = parse(ok({"migrate", "--compat", "go", "--json"}));
    EXPECT_EQ(str(d, "compat"), "go");
    EXPECT_EQ(str(d, "previous_compat"), "python");
    EXPECT_EQ(d["converted_live"].GetInt(), 1);  // the job written for Python, now for Go
    auto go = str(parse(ok({"add", "job", "--task", "t", "--options", sched, "--json"})), "rid");
    auto c = schema_.connect();
    for (const auto& rid : {py, go}) {
        queuer::db::Params p;
        p.add(rid);
        auto r = c.exec(
            "SELECT options -> 'schedule' ->> 'start', (options -> 'schedule' -> "
            "'interval')::text FROM job WHERE rid = $1::uuid",
            p);
        EXPECT_EQ(r.str(0, 0), "2030-01-02T03:04:05.000000Z");
        EXPECT_EQ(r.str(0, 1), "3600000000000");
    }
    auto human = ok({"migrate", "--compat", "python"});
    EXPECT_NE(human.find("now written for python clients (was go)"), std::string::npos) << human;
    expect_error({"migrate", "--compat", "rust"}, 2, "--compat must be python or go");
}

TEST_F(Queuerctl, RetryKeepsAPythonJobsOptionsAsWritten) {
    migrate();
    ok({"migrate", "--compat", "go"});
    auto c = schema_.connect();
    const std::string py =
        R"({"schedule": {"start": "2030-01-02T03:04:05", "interval": 90.5, "max_count": 2, )"
        R"("next_interval": null}, "on_error": null})";
    queuer::db::Params p;
    p.add(py);
    auto rid = c.exec(
                    "INSERT INTO job_archive (id, options, task_name, status) VALUES (77, "
                    "$1::jsonb, 'py', 'FAILED') RETURNING rid",
                    p)
                   .str(0, 0);
    auto fresh = str(parse(ok({"retry", "job", "--rid", rid, "--json"})), "rid");
    queuer::db::Params q;
    q.add(fresh).add(py);
    EXPECT_TRUE(
        c.exec("SELECT options = $2::jsonb FROM job WHERE rid = $1::uuid", q).boolean(0, 0));
}

TEST_F(Queuerctl, ListAndWaitShowARowAnotherClientEncryptedInsteadOfFailing) {
    migrate();
    auto plain = add("echo", "[1]");
    auto sealed = add("echo", "[2]");
    ok({"cancel", "job", "--rid", plain});
    // A row whose results another client sealed (pgcrypto's packet header, as the Go/Python
    // clients' update_job_final_encrypted writes it).
    auto c = schema_.connect();
    queuer::db::Params p;
    p.add(sealed);
    c.exec(
        "WITH m AS (DELETE FROM job WHERE rid = $1::uuid RETURNING *) INSERT INTO job_archive "
        "(id, rid, options, task_name, parameters, status, results, results_encrypted) SELECT "
        "id, rid, options, task_name, parameters, 'SUCCEEDED', '[]', "
        "'\\xc30d04070302aabbccddeeff00112233445566778899'::bytea FROM m",
        p);
    auto list = parse(ok({"list", "jobArchive", "--json"}));
    ASSERT_EQ(list.Size(), 2u);
    int marked = 0;
    for (const auto& j : list.GetArray()) {
        if (!j.HasMember("unreadable")) continue;
        ++marked;
        EXPECT_EQ(str(j, "rid"), sealed);
        EXPECT_EQ(str(j["unreadable"], "encrypted_by"), "pgcrypto");
        EXPECT_TRUE(j["results"].IsNull());
    }
    EXPECT_EQ(marked, 1);
    auto w = ctl({"wait", "job", "--rid", sealed, "--timeout", "5", "--json"});
    EXPECT_EQ(w.code, 0) << describe(w);
    EXPECT_EQ(str(parse(w.out), "status"), "SUCCEEDED");
    auto human = ok({"get", "jobArchive", "--rid", sealed});
    EXPECT_NE(human.find("encrypted by pgcrypto"), std::string::npos) << human;
}

TEST_F(Queuerctl, AddJobThenGetJobKeepsParameters) {
    // The contract's "done" check: migrate, add, get.
    migrate();
    const std::string params =
        R"([1,"a","it's \"quoted\"","'); DROP TABLE job; --",{"nested":[true,null,2.5]}])";
    const std::string keyed = R"({"who":"O'Brien","sql":"1; DELETE FROM job"})";
    auto added =
        parse(ok({"add", "job", "--task", "echo", "--params", params, "--keyed", keyed, "--json"}));
    ASSERT_TRUE(added.IsObject());
    std::string rid = str(added, "rid");
    EXPECT_EQ(str(added, "task_name"), "echo");
    EXPECT_EQ(str(added, "status"), "QUEUED");
    ASSERT_TRUE(added.HasMember("parameters"));

    auto got = parse(ok({"get", "job", "--rid", rid, "--json"}));
    EXPECT_EQ(str(got, "rid"), rid);
    EXPECT_EQ(str(got, "status"), "QUEUED");
    auto want_params = parse(params);
    auto want_keyed = parse(keyed);
    EXPECT_TRUE(got["parameters"] == want_params) << ok({"get", "job", "-r", rid, "--json"});
    EXPECT_TRUE(got["parameters_keyed"] == want_keyed);
    EXPECT_TRUE(added["parameters"] == want_params);

    // Human output: key/value lines; the job table still exists.
    auto human = ok({"get", "job", "--rid", rid});
    EXPECT_NE(human.find("Task name:"), std::string::npos) << human;
    EXPECT_NE(human.find("QUEUED"), std::string::npos) << human;
    EXPECT_EQ(parse(ok({"list", "job", "--json"})).Size(), 1u);
}

TEST_F(Queuerctl, OnlyMigrateCreatesASchema) {
    // A mistyped QUEUER_DB_SCHEMA must never create a schema silently: exit 2 naming it.
    const std::string& name = schema_.config().schema;
    expect_error({"add", "job", "--task", "echo"}, 2, "schema \"" + name + "\" does not exist");
    expect_error({"add", "job", "--task", "echo"}, 2, "queuerctl migrate");
    expect_error({"status"}, 2, name);
    expect_error({"stats"}, 2, name);
    expect_error({"retry", "jobs", "--dry-run"}, 2, name);
    auto c = schema_.connect();
    auto r = c.exec("SELECT count(*) FROM pg_namespace WHERE nspname = '" + name + "'");
    EXPECT_EQ(r.i64(0, 0), 0) << "a verb other than migrate created the schema";
    migrate();
    auto rid = add("echo", "[1]");
    EXPECT_EQ(rid.size(), 36u);
}

TEST_F(Queuerctl, AddJobForATaskNobodyOffers) {
    migrate();
    auto r = ctl({"add", "job", "--task", "nobody-offers-this", "--json"});
    EXPECT_EQ(r.code, 0) << describe(r);
    EXPECT_NE(r.err.find("warning: no live worker offers task \"nobody-offers-this\""),
              std::string::npos)
        << describe(r);
    EXPECT_EQ(str(parse(r.out), "task_name"), "nobody-offers-this");
    expect_error({"add", "job", "--task", "nobody-offers-this", "--strict"}, 1,
                 "no live worker offers task");
    EXPECT_EQ(parse(ok({"list", "job", "--json"})).Size(), 1u) << "--strict added nothing";
    // A live worker that offers it: no warning.
    queuer::Queuer worker("cli-offers", 1, "", schema_.config());
    worker.add_task("nobody-offers-this", [](queuer::JobContext&) { return std::string(); });
    auto quiet = ctl({"add", "job", "--task", "nobody-offers-this", "--strict", "--json"});
    EXPECT_EQ(quiet.code, 0) << describe(quiet);
    EXPECT_EQ(quiet.err, "");
}

TEST_F(Queuerctl, VersionFlagAndDayTwoHelp) {
    auto v = ok({"--version"});
    EXPECT_EQ(v.rfind("queuerctl ", 0), 0u) << v;
    for (const auto& args : std::vector<std::vector<std::string>>{{"status", "--help"},
                                                                  {"stats", "--help"},
                                                                  {"retry", "jobs", "--help"},
                                                                  {"cancel", "jobs", "--help"},
                                                                  {"delete", "jobs", "--help"}}) {
        auto out = ok(args);
        EXPECT_NE(out.find("Examples:"), std::string::npos) << out;
    }
    migrate();
    expect_error({"list", "job", "--since", "soon"}, 2, "--since");
    expect_error({"list", "worker", "--since", "1h"}, 2, "--since");
    expect_error({"list", "job", "--error", "x"}, 2, "--error");
    expect_error({"retry", "jobs", "--status", "QUEUED"}, 2, "--status");
    expect_error({"delete", "jobs"}, 2, "--all");
    expect_error({"stats", "--since", "2026-01-01T00:00:00Z"}, 2, "duration");
    auto d = parse(ok({"delete", "jobs", "--all", "--dry-run", "--json"}));
    EXPECT_EQ(d["count"].GetInt(), 0);
    EXPECT_TRUE(d["dry_run"].GetBool());
}

TEST_F(Queuerctl, AddJobsFromFile) {
    migrate();
    auto dir = std::filesystem::temp_directory_path();
    auto file = (dir / ("queuerctl-jobs-" + schema_.config().schema + ".jsonl")).string();
    {
        std::ofstream f(file);
        f << R"({"task":"echo","parameters":[1,"x"]})"
          << "\n"
          << R"({"task":"echo","parameters":[2],"parameters_keyed":{"k":"it's"}})"
          << "\n"
          << "\n"
          << R"({"task":"sleep","parameters":[10],"options":{"on_error":{"timeout":5,"max_retries":1,"retry_delay":1,"retry_backoff":"none"}}})"
          << "\n";
    }
    auto d = parse(ok({"add", "jobs", "--file", file, "--json"}));
    ASSERT_TRUE(d.IsObject());
    EXPECT_EQ(d["count"].GetInt(), 3);
    ASSERT_EQ(d["rids"].Size(), 3u);
    std::set<std::string> rids;
    for (const auto& r : d["rids"].GetArray()) rids.insert(r.GetString());
    EXPECT_EQ(rids.size(), 3u);
    auto second = parse(ok({"get", "job", "--rid", d["rids"][1].GetString(), "--json"}));
    EXPECT_EQ(str(second["parameters_keyed"], "k"), "it's");
    auto third = parse(ok({"get", "job", "--rid", d["rids"][2].GetString(), "--json"}));
    EXPECT_EQ(str(third, "task_name"), "sleep");
    EXPECT_EQ(third["options"]["on_error"]["max_retries"].GetInt(), 1);

    {
        std::ofstream f(file);
        f << R"({"task":"echo"})"
          << "\n"
          << R"({"task":"echo","parameters":{"not":"array"}})"
          << "\n";
    }
    expect_error({"add", "jobs", "--file", file}, 2, file + ":2:");
    EXPECT_EQ(parse(ok({"list", "job", "--json", "--limit", "100"})).Size(), 3u)
        << "a bad file adds nothing";
    std::filesystem::remove(file);
    expect_error({"add", "jobs", "--file", file}, 2, "cannot read");
}

TEST_F(Queuerctl, ListPaginatesWithoutGapsOrDuplicates) {
    migrate();
    std::set<std::string> added;
    for (int i = 0; i < 7; ++i) added.insert(add("echo", "[" + std::to_string(i) + "]"));
    std::vector<int64_t> ids;
    std::set<std::string> seen;
    int64_t last = 0;
    for (int page = 0; page < 5; ++page) {
        auto d = parse(ok({"list", "job", "--json", "-l", "3", "-i", std::to_string(last)}));
        ASSERT_TRUE(d.IsArray());
        EXPECT_LE(d.Size(), 3u);
        if (d.Empty()) break;
        for (const auto& j : d.GetArray()) {
            ids.push_back(j["id"].GetInt64());
            EXPECT_TRUE(seen.insert(j["rid"].GetString()).second) << "duplicate";
        }
        last = ids.back();
    }
    EXPECT_EQ(seen, added);
    ASSERT_EQ(ids.size(), 7u);
    for (size_t i = 1; i < ids.size(); ++i) EXPECT_EQ(ids[i], ids[i - 1] - 1) << "gap or order";
    // Long flags too, and a table for people.
    EXPECT_EQ(parse(ok({"list", "job", "--json", "--limit", "2", "--lastId", "3"})).Size(), 2u);
    auto table = ok({"list", "job", "--limit", "2"});
    EXPECT_NE(table.find("Task name"), std::string::npos) << table;
    EXPECT_NE(table.find("Worker RID"), std::string::npos) << table;
    expect_error({"list", "job", "--limit", "0"}, 2, "--limit");
    expect_error({"list", "job", "--lastId", "-1"}, 2, "--lastId");
}

TEST_F(Queuerctl, ListFiltersByStatusAndSearch) {
    migrate();
    auto a = add("alpha-task");
    add("beta-task");
    ok({"cancel", "job", "--rid", a});
    auto queued = parse(ok({"list", "job", "--status", "QUEUED", "--json"}));
    ASSERT_EQ(queued.Size(), 1u);
    EXPECT_EQ(str(queued[0], "task_name"), "beta-task");
    EXPECT_EQ(parse(ok({"list", "job", "--status", "running", "--json"})).Size(), 0u);
    auto cancelled = parse(ok({"list", "jobArchive", "--status", "CANCELLED", "--json"}));
    ASSERT_EQ(cancelled.Size(), 1u);
    EXPECT_EQ(str(cancelled[0], "rid"), a);
    expect_error({"list", "jobArchive", "--status", "QUEUED"}, 2, "--status");

    add("alpha-task");
    auto found = parse(ok({"list", "job", "--search", "ALPHA", "--json"}));
    ASSERT_EQ(found.Size(), 1u);
    EXPECT_EQ(str(found[0], "task_name"), "alpha-task");
    EXPECT_EQ(parse(ok({"list", "job", "--search", "gamma", "--json"})).Size(), 0u);
    EXPECT_EQ(parse(ok({"list", "jobArchive", "--search", "alpha", "--json"})).Size(), 1u);
}

TEST_F(Queuerctl, InvalidJsonIsAUsageError) {
    migrate();
    expect_error({"add", "job", "--task", "echo", "--params", "[1,"}, 2, "--params");
    expect_error({"add", "job", "--task", "echo", "--params", R"({"a":1})"}, 2, "--params");
    expect_error({"add", "job", "--task", "echo", "--keyed", "[1]"}, 2, "--keyed");
    expect_error({"add", "job", "--task", "echo", "--options", "{nope"}, 2, "--options");
    expect_error({"add", "job", "--task", "echo", "--options", R"({"on_error":{"timeout":-5}})"}, 2,
                 "--options");
    expect_error({"add", "job", "--params", "[]"}, 2, "--task");
    EXPECT_EQ(parse(ok({"list", "job", "--json"})).Size(), 0u) << "nothing was added";
}

TEST_F(Queuerctl, UsageErrors) {
    expect_error({"list", "job", "--bogus"}, 2, "--bogus");
    expect_error({"frobnicate"}, 2, "frobnicate");
    expect_error({"list"}, 2, "job, jobArchive, worker, connection");
    expect_error({}, 2, "migrate");
    expect_error({"get", "job", "--rid", "not-a-uuid"}, 2, "not-a-uuid");
    expect_error({"cancel", "job", "-r", "1234"}, 2, "RID");
    expect_error({"get", "job"}, 2, "--rid");
    expect_error({"wait", "job", "--rid", kUnknownRid, "--timeout", "-1"}, 2, "--timeout");
}

TEST_F(Queuerctl, UnreachableDatabase) {
    Env env = {{"QUEUER_DB_HOST", "127.0.0.1"},
               {"QUEUER_DB_PORT", "1"},
               {"QUEUER_DB_PASSWORD", "pw-must-not-show"}};
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"list", "job"}, {"migrate"}, {"add", "job", "--task", "echo"}}) {
        auto r = ctl(args, env);
        EXPECT_EQ(r.code, 2) << describe(r);
        EXPECT_EQ(count_lines(r.err), 1) << describe(r);
        EXPECT_NE(r.err.find("cannot reach the database"), std::string::npos) << describe(r);
        EXPECT_EQ(r.err.find("pw-must-not-show"), std::string::npos) << describe(r);
        EXPECT_EQ(r.out, "");
    }
}

TEST_F(Queuerctl, NotFoundIsExitOne) {
    migrate();
    expect_error({"get", "job", "--rid", kUnknownRid}, 1, "not found");
    expect_error({"get", "jobArchive", "--rid", kUnknownRid}, 1, "not found");
    expect_error({"get", "worker", "--rid", kUnknownRid}, 1, "not found");
    expect_error({"cancel", "job", "--rid", kUnknownRid}, 1, "not found");
    expect_error({"retry", "job", "--rid", kUnknownRid}, 1, "not found");
    expect_error({"wait", "job", "--rid", kUnknownRid, "--timeout", "1"}, 1, "not found");
    expect_error({"stop", "worker", "--rid", kUnknownRid}, 1, "not found");
    expect_error({"cancel", "worker", "--rid", kUnknownRid}, 1, "not found");
}

TEST_F(Queuerctl, MissingSchemaSaysMigrate) {
    expect_error({"list", "job"}, 2, "queuerctl migrate");
}

TEST_F(Queuerctl, CancelMovesTheJobToTheArchive) {
    migrate();
    auto rid = add("echo", R"(["x"])");
    auto d = parse(ok({"cancel", "job", "--rid", rid, "--json"}));
    EXPECT_EQ(str(d, "status"), "CANCELLED");
    auto archived = parse(ok({"get", "jobArchive", "--rid", rid, "--json"}));
    EXPECT_EQ(str(archived, "status"), "CANCELLED");
    expect_error({"get", "job", "--rid", rid}, 1, "get jobArchive");
    expect_error({"cancel", "job", "--rid", rid}, 1, "already ended");
}

TEST_F(Queuerctl, RetryAddsANewJob) {
    migrate();
    auto rid = add("echo", R"([1,"two"])");
    ok({"cancel", "job", "--rid", rid});
    auto d = parse(ok({"retry", "job", "--rid", rid, "--json"}));
    std::string fresh = str(d, "rid");
    EXPECT_NE(fresh, rid);
    EXPECT_EQ(fresh.size(), 36u);
    EXPECT_EQ(str(d, "status"), "QUEUED");
    EXPECT_EQ(str(d, "task_name"), "echo");
    EXPECT_TRUE(d["parameters"] == parse(R"([1,"two"])"));
    EXPECT_EQ(str(parse(ok({"get", "job", "--rid", fresh, "--json"})), "status"), "QUEUED");
}

TEST_F(Queuerctl, WaitOnACancelledJobExitsThree) {
    migrate();
    auto rid = add("echo");
    ok({"cancel", "job", "--rid", rid});
    auto r = ctl({"wait", "job", "--rid", rid, "--json"});
    EXPECT_EQ(r.code, 3) << describe(r);
    EXPECT_EQ(str(parse(r.out), "status"), "CANCELLED");
}

TEST_F(Queuerctl, WaitTimesOutWithExitFour) {
    migrate();
    auto rid = add("nobody-runs-this");
    auto start = std::chrono::steady_clock::now();
    auto r = ctl({"wait", "job", "--rid", rid, "--timeout", "1", "--json"});
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.code, 4) << describe(r);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(count_lines(r.err), 1) << describe(r);
    EXPECT_NE(r.err.find("did not finish"), std::string::npos) << describe(r);
    EXPECT_GE(took, std::chrono::milliseconds(900));
    EXPECT_LT(took, std::chrono::seconds(20));
}

TEST_F(Queuerctl, StopAndCancelWorker) {
    migrate();
    auto cfg = schema_.config();
    queuer::Queuer worker("cli-test-worker", 2, "", cfg);
    std::string rid = worker.worker().rid;
    auto listed = parse(ok({"list", "worker", "--json"}));
    ASSERT_EQ(listed.Size(), 1u);
    EXPECT_EQ(str(listed[0], "rid"), rid);
    EXPECT_EQ(str(parse(ok({"get", "worker", "--rid", rid, "--json"})), "name"), "cli-test-worker");

    auto d = parse(ok({"stop", "worker", "--rid", rid, "--graceful", "--json"}));
    EXPECT_EQ(str(d, "status"), "STOPPING");
    EXPECT_EQ(parse(ok({"list", "worker", "--status", "STOPPING", "--json"})).Size(), 1u);
    EXPECT_EQ(parse(ok({"list", "worker", "--status", "READY", "--json"})).Size(), 0u);
    d = parse(ok({"cancel", "worker", "--rid", rid, "--json"}));
    EXPECT_EQ(str(d, "status"), "STOPPED");
    expect_error({"stop", "worker", "--rid", rid}, 1, "already STOPPED");
}

TEST_F(Queuerctl, ListConnectionIsAJsonArray) {
    migrate();
    auto d = parse(ok({"list", "connection", "--json"}));
    EXPECT_TRUE(d.IsArray());
    auto table = ok({"list", "connection"});
    EXPECT_FALSE(table.empty());
}

TEST_F(Queuerctl, VersionAndHelp) {
    auto v = ok({"version"});
    EXPECT_NE(v.find("queuerctl "), std::string::npos) << v;
    auto d = parse(ok({"version", "--json"}));
    EXPECT_FALSE(str(d, "version").empty());
    for (const auto& args : std::vector<std::vector<std::string>>{{"--help"},
                                                                  {"add", "--help"},
                                                                  {"add", "job", "--help"},
                                                                  {"list", "job", "--help"},
                                                                  {"wait", "job", "--help"},
                                                                  {"stop", "worker", "--help"}}) {
        auto out = ok(args);
        EXPECT_NE(out.find("Examples:"), std::string::npos) << out;
    }
}

TEST_F(Queuerctl, ConfigFile) {
    migrate();
    auto dir = std::filesystem::temp_directory_path();
    auto file = (dir / ("queuerctl-" + schema_.config().schema + ".yaml")).string();
    {
        // The environment (QUEUER_DB_*) still wins over these values.
        std::ofstream f(file);
        f << "database:\n  host: 127.0.0.1\n  schema: " << schema_.config().schema << "\n";
    }
    auto rid = add("echo");
    auto got = parse(ok({"--config", file, "get", "job", "--rid", rid, "--json"}));
    EXPECT_EQ(str(got, "rid"), rid);
    {
        std::ofstream f(file);
        f << "database:\n  hots: x\n";
    }
    expect_error({"--config", file, "list", "job"}, 2, file + ":2: unknown key database.hots");
    std::filesystem::remove(file);
    expect_error({"list", "job", "--config", file}, 2, "cannot read");
}

}  // namespace
