// One database shared with the Go and Python queuer clients (issue 11; the items of
// shared/reference/INTEROP.md). The project cannot ship the reference's code, so these tests play
// the reference's part in SQL, written from BEHAVIOUR.md: its workers register through
// insert_worker/update_worker and claim through update_job_initial, its masters run
// update_stale_workers/update_stale_jobs and update_master, its stale-job pass and lock rule are
// re-enacted as the reference does them, and what queuerd writes is parsed with the other side's
// rules (Python: float seconds, naive ISO times; Go: integer nanoseconds, RFC 3339).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../../core/src/master_sql.hpp"
#include "queuer/app_config.hpp"
#include "queuer/client.hpp"
#include "queuer/crypto.hpp"
#include "queuer/db.hpp"
#include "queuer/error.hpp"
#include "queuer/model.hpp"
#include "queuer/queuer.hpp"
#include "queuer/schema.hpp"
#include "support/test_db.hpp"

using namespace queuer;
using namespace std::chrono_literals;
using queuer::test::TestSchema;

namespace {

const std::string kKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

rapidjson::Document parse(const std::string& text) {
    rapidjson::Document d;
    d.Parse(text.c_str());
    EXPECT_FALSE(d.HasParseError()) << text;
    return d;
}

// ---- the other side's rules for what queuerd writes into options ----

// Python (queuerPy): datetime.fromisoformat on a naive ISO 8601 time (its runner compares it
// with a naive datetime.now(), so an offset fails), microseconds with 6 digits or none.
// Returns the time, taken as UTC (the reference is only correct with Python running in UTC).
std::optional<TimePoint> python_start(const rapidjson::Value& v) {
    if (!v.IsString()) return std::nullopt;
    static const std::regex naive(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?$)");
    std::string s = v.GetString();
    if (!std::regex_match(s, naive)) return std::nullopt;
    return parse_time(s, "python start");
}

// Python: timedelta(seconds=interval) from a JSON number; anything over 999,999,999 days raises
// OverflowError (and breaks get_job/get_jobs for every Python client).
std::optional<double> python_interval_seconds(const rapidjson::Value& v) {
    if (!v.IsNumber()) return std::nullopt;
    double s = v.GetDouble();
    if (s > 999999999.0 * 86400.0) return std::nullopt;
    return s;
}

// Go: time.Time from RFC 3339, which requires an offset (Z or +hh:mm).
std::optional<TimePoint> go_start(const rapidjson::Value& v) {
    if (!v.IsString()) return std::nullopt;
    static const std::regex rfc3339(
        R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$)");
    std::string s = v.GetString();
    if (!std::regex_match(s, rfc3339)) return std::nullopt;
    return parse_time(s, "go start");
}

// Go: time.Duration (int64 nanoseconds); encoding/json refuses 3600.0 for an integer type.
std::optional<int64_t> go_interval_ns(const rapidjson::Value& v, const std::string& text) {
    if (!v.IsInt64() || v.IsDouble()) return std::nullopt;
    if (text.find_first_of(".eE") != std::string::npos) return std::nullopt;
    return v.GetInt64();
}

// The number as written in the JSON text (rapidjson's IsDouble already tells 3600 from 3600.0).
std::string raw_interval_text(const std::string& options_json) {
    auto p = options_json.find("\"interval\"");
    if (p == std::string::npos) return {};
    p = options_json.find(':', p) + 1;
    while (options_json[p] == ' ') ++p;
    auto e = options_json.find_first_of(",}", p);
    return options_json.substr(p, e - p);
}

class Interop : public ::testing::Test {
  protected:
    void SetUp() override {
        c = schema.connect();
        migrate(c, TimescaleMode::Off);
        client = std::make_unique<Client>(schema.config());
    }

    int64_t scalar(const std::string& sql) { return c.exec(sql).i64(0, 0); }
    std::string text(const std::string& sql) {
        auto r = c.exec(sql);
        return r.rows() && !r.is_null(0, 0) ? r.str(0, 0) : std::string();
    }
    std::string options_of(const std::string& rid, const char* table = "job") {
        db::Params p;
        p.add(rid);
        return c.exec(fmt::format("SELECT options::text FROM {} WHERE rid = $1::uuid", table), p)
            .str(0, 0);
    }

    std::string text_of_only_job() {
        auto r = c.exec("SELECT options::text FROM job");
        EXPECT_EQ(r.rows(), 1);
        return r.rows() ? r.str(0, 0) : std::string();
    }

    // A Go/Python worker: registered through insert_worker, started through update_worker
    // (status RUNNING, its tasks), as the references do (BEHAVIOUR.md §7.1).
    std::pair<int64_t, std::string> reference_worker(const std::string& name,
                                                     const std::vector<std::string>& tasks,
                                                     int max_concurrency = 4,
                                                     const std::string& options = "{}") {
        db::Params p;
        p.add(name).add(options).add(max_concurrency);
        auto w = c.exec("SELECT output_id, output_rid FROM insert_worker($1, $2, $3)", p);
        std::string rid = w.str(0, 1);
        db::Params u;
        u.add(name).add(options).add_array(tasks).add_array({}).add(max_concurrency);
        u.add("RUNNING").add(rid);
        c.exec("SELECT * FROM update_worker($1, $2, $3, $4, $5, $6, $7)", u);
        return {w.i64(0, 0), rid};
    }

    // A queuerd worker row, registered the way queuerd registers (core/src/queuer.cpp: a direct
    // INSERT); Queuer itself is used where the engine matters.
    std::pair<int64_t, std::string> queuerd_worker(const std::string& name,
                                                   const std::string& options = "{}",
                                                   const std::string& status = "RUNNING") {
        db::Params p;
        p.add(name).add(options).add(4).add(status);
        auto r = c.exec(
            "INSERT INTO worker (name, options, max_concurrency, status) "
            "VALUES ($1, $2::jsonb, $3::int, $4) RETURNING id, rid",
            p);
        return {r.i64(0, 0), r.str(0, 1)};
    }

    void age_worker(const std::string& rid, const std::string& interval) {
        db::Params p;
        p.add(rid).add(interval);
        c.exec(
            "UPDATE worker SET updated_at = CURRENT_TIMESTAMP - $2::interval WHERE rid = "
            "$1::uuid",
            p);
    }

    // Marks a live job RUNNING for a worker, as a claim does.
    void claim_for(const std::string& job_rid, int64_t worker_id, const std::string& worker_rid) {
        db::Params p;
        p.add(job_rid).add(worker_id).add(worker_rid);
        auto n = c.exec(
                      "UPDATE job SET status = 'RUNNING', worker_id = $2::bigint, worker_rid = "
                      "$3::uuid, started_at = CURRENT_TIMESTAMP, attempts = attempts + 1, "
                      "schedule_count = schedule_count + 1, updated_at = CURRENT_TIMESTAMP "
                      "WHERE rid = $1::uuid",
                      p)
                     .affected();
        ASSERT_EQ(n, 1);
    }

    db::Result sweep(double stale_secs, const std::string& own_rid = random_uuid()) {
        db::Params p;
        p.add(fmt::format("{}", stale_secs)).add("3600").add(own_rid);
        return c.exec(detail::kMasterSweep, p);
    }

    // The reference's stale-job pass (BEHAVIOUR.md §8.3) as it runs after the reference's
    // stale-worker pass: every live job of a STOPPED worker gets the new status in place (Go
    // QUEUED, Python CANCELLED). Returns the number of rows it changed.
    int64_t reference_stale_jobs_pass(const std::string& new_status) {
        db::Params p;
        p.add(new_status);
        return c
            .exec(
                "UPDATE job SET status = $1 WHERE status NOT IN ('SUCCEEDED', 'CANCELLED', "
                "'FAILED') AND worker_rid IN (SELECT rid FROM worker WHERE status = 'STOPPED')",
                p)
            .affected();
    }

    db::Result job_row(const std::string& rid) {
        db::Params p;
        p.add(rid);
        return c.exec(
            "SELECT status, worker_id, worker_rid, error, "
            "EXTRACT(EPOCH FROM scheduled_at - updated_at)::float8, attempts, schedule_count "
            "FROM job WHERE rid = $1::uuid",
            p);
    }

    TestSchema schema;
    db::Connection c;
    std::unique_ptr<Client> client;
};

Options with_retries(int max_retries, double delay = 0, RetryBackoff backoff = RetryBackoff::None) {
    Options o;
    o.on_error = OnError{0, max_retries, delay, backoff};
    return o;
}

// ============================================================================================
// Item 1: a job put back in the queue carries no worker.
// ============================================================================================

TEST_F(Interop, MasterRecoveryLeavesNoWorkerSoTheReferenceStalePassLeavesTheJobAlone) {
    auto [wid, wrid] = queuerd_worker("crashed");
    auto j = client->add_job_with_options(with_retries(2), "t");
    claim_for(j.rid, wid, wrid);
    age_worker(wrid, "1 hour");

    auto r = sweep(30);
    EXPECT_EQ(r.i64(0, 0), 1);  // the worker declared stale
    EXPECT_EQ(r.i64(0, 1), 1);  // its job requeued
    auto row = job_row(j.rid);
    ASSERT_EQ(row.rows(), 1);
    EXPECT_EQ(row.str(0, 0), "SCHEDULED");
    EXPECT_EQ(row.i64(0, 1), 0);
    EXPECT_TRUE(row.is_null(0, 2)) << row.str(0, 2);
    EXPECT_NE(row.str(0, 3).find("stopped responding during attempt 1"), std::string::npos);

    // A Python master, then a Go master, runs its stale-job pass: the requeued job is not a
    // stopped worker's any more.
    EXPECT_EQ(reference_stale_jobs_pass("CANCELLED"), 0);
    EXPECT_EQ(reference_stale_jobs_pass("QUEUED"), 0);
    EXPECT_EQ(job_row(j.rid).str(0, 0), "SCHEDULED");
}

// The engine's own requeue (a stop past the grace: action REQUEUE) clears worker_id and
// worker_rid too, so a reference worker's stale-jobs pass never takes the job for a dead
// worker's (INTEROP.md; the engine test StopAfterGraceRequeuesWhatStillRuns checks the status
// and the attempt count of the same requeue).
TEST_F(Interop, EngineRequeueAtShutdownLeavesNoWorker) {
    EngineOptions eo;
    eo.poll_interval = 500ms;
    eo.heartbeat_interval = 200ms;
    auto q = std::make_unique<Queuer>("stopping", 2, "", schema.config(), std::nullopt, eo);
    std::atomic<bool> started{false};
    q->add_task("long", [&](JobContext& ctx) -> std::string {
        started = true;
        while (!ctx.is_cancelled()) std::this_thread::sleep_for(10ms);
        throw std::runtime_error("interrupted");
    });
    q->start();
    auto j = q->add_job("long");
    for (int i = 0; i < 1000 && !started; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(started);
    q->stop(100ms);
    auto back = client->get_job(j.rid);
    EXPECT_EQ(back.status, "QUEUED");
    EXPECT_EQ(back.worker_id, 0);
    EXPECT_EQ(back.worker_rid, "");
    // The worker row is STOPPED now: the reference's pass must not touch the requeued job.
    EXPECT_EQ(reference_stale_jobs_pass("CANCELLED"), 0);
    EXPECT_EQ(client->get_job(j.rid).status, "QUEUED");
}

TEST_F(Interop, QueuerdRegistersItsWorkersAsQueuerdAndTheReferencesAsReferences) {
    auto ref = reference_worker("py", {"t"});
    Queuer q("daemon", 1, "", schema.config());
    db::Params p;
    p.add(q.worker().rid);
    EXPECT_EQ(c.exec("SELECT count(*) FROM queuer_worker_daemon d JOIN worker w ON w.id = "
                     "d.worker_id WHERE w.rid = $1::uuid",
                     p)
                  .i64(0, 0),
              1);
    db::Params r;
    r.add(ref.second);
    EXPECT_EQ(c.exec("SELECT count(*) FROM queuer_worker_daemon d JOIN worker w ON w.id = "
                     "d.worker_id WHERE w.rid = $1::uuid",
                     r)
                  .i64(0, 0),
              0);
}

TEST_F(Interop, ReferenceMasterOnOurFunctionsRecoversJobsInsteadOfCancellingThem) {
    // A queuerd worker died with a job running (retries left); a job requeued by an older
    // queuerd (or a Go master) still names a stopped worker.
    auto [wid, wrid] = queuerd_worker("dead");
    auto running = client->add_job_with_options(with_retries(3, 1), "t");
    claim_for(running.rid, wid, wrid);
    auto queued = client->add_job("t");
    db::Params p;
    p.add(queued.rid).add(wid).add(wrid);
    c.exec("UPDATE job SET worker_id = $2::bigint, worker_rid = $3::uuid WHERE rid = $1::uuid", p);
    age_worker(wrid, "5 minutes");

    // A Python master's pass, through the functions it calls (BEHAVIOUR.md §7.5, §8.3).
    db::Params sw;
    sw.add("STOPPED").add("READY").add("RUNNING");
    sw.add(text("SELECT (CURRENT_TIMESTAMP - INTERVAL '2 minutes')::timestamp::text"));
    EXPECT_EQ(c.exec("SELECT update_stale_workers($1, $2, $3, $4)", sw).i64(0, 0), 1);
    db::Params sj;
    sj.add("CANCELLED").add("SUCCEEDED").add("CANCELLED").add("FAILED").add("STOPPED");
    EXPECT_EQ(c.exec("SELECT update_stale_jobs($1, $2, $3, $4, $5)", sj).i64(0, 0), 2);

    EXPECT_EQ(scalar("SELECT count(*) FROM job WHERE status IN ('CANCELLED', 'SUCCEEDED', "
                     "'FAILED')"),
              0)
        << "nothing left CANCELLED in place";
    auto r = job_row(running.rid);
    EXPECT_EQ(r.str(0, 0), "SCHEDULED");
    EXPECT_TRUE(r.is_null(0, 2));
    auto q = job_row(queued.rid);
    EXPECT_EQ(q.str(0, 0), "QUEUED");
    EXPECT_EQ(q.i64(0, 1), 0);
    EXPECT_TRUE(q.is_null(0, 2));
    // Go's variant of the call does the same.
    db::Params go;
    go.add("QUEUED").add("SUCCEEDED").add("CANCELLED").add("FAILED").add("STOPPED");
    EXPECT_EQ(c.exec("SELECT update_stale_jobs($1, $2, $3, $4, $5)", go).i64(0, 0), 0);
}

TEST_F(Interop, RowsAReferenceMasterLeftCancelledInPlaceAreArchivedByOurMaster) {
    auto j = client->add_job("t");
    db::Params p;
    p.add(j.rid);
    c.exec("UPDATE job SET status = 'CANCELLED' WHERE rid = $1::uuid", p);
    auto r = sweep(30);
    EXPECT_EQ(r.i64(0, 7), 1);
    EXPECT_EQ(scalar("SELECT count(*) FROM job"), 0);
    EXPECT_EQ(client->get_job_ended(j.rid).status, "CANCELLED");
}

// The crash guard of issue 10: a job whose task kills its worker does not kill one worker after
// another.
TEST_F(Interop, CrashGuardRetriesOnceThenFailsOnASecondConsecutiveDeath) {
    auto j = client->add_job_with_options(with_retries(5, 2, RetryBackoff::Exponential), "crash");
    auto first = queuerd_worker("first");
    claim_for(j.rid, first.first, first.second);
    age_worker(first.second, "1 hour");
    auto r1 = sweep(30);
    ASSERT_EQ(r1.i64(0, 1), 1);
    auto requeued = parse(r1.str(0, 4));
    ASSERT_TRUE(requeued.IsArray());
    ASSERT_EQ(requeued.Size(), 1u);
    EXPECT_EQ(std::string(requeued[0]["rid"].GetString()), j.rid);
    EXPECT_EQ(std::string(requeued[0]["task_name"].GetString()), "crash");
    auto row = job_row(j.rid);
    EXPECT_EQ(row.str(0, 0), "SCHEDULED");
    // Attempt 1, exponential backoff from 2 s: 2 s (at least 1 s), in the same statement.
    EXPECT_NEAR(std::stod(row.str(0, 4)), 2.0, 0.001);

    auto second = queuerd_worker("second");
    c.exec("UPDATE job SET scheduled_at = CURRENT_TIMESTAMP - INTERVAL '1 second'");
    claim_for(j.rid, second.first, second.second);
    age_worker(second.second, "1 hour");
    auto r2 = sweep(30);
    EXPECT_EQ(r2.i64(0, 1), 0);
    EXPECT_EQ(r2.i64(0, 2), 1);
    auto failed = parse(r2.str(0, 5));
    ASSERT_EQ(failed.Size(), 1u);
    EXPECT_EQ(std::string(failed[0]["rid"].GetString()), j.rid);
    auto ended = client->get_job_ended(j.rid);
    EXPECT_EQ(ended.status, "FAILED");
    EXPECT_NE(ended.error.find("not retried again"), std::string::npos) << ended.error;
    EXPECT_NE(ended.error.find(second.second), std::string::npos) << ended.error;
    EXPECT_EQ(ended.attempts, 2);
}

TEST_F(Interop, CrashRecoveryUsesTheDeadWorkersDefaultsAndFailsWithoutRetries) {
    // No on_error on the job: the dead worker's own default (worker.options) decides.
    auto with_default = queuerd_worker(
        "defaults", R"({"timeout":0,"max_retries":1,"retry_delay":3,"retry_backoff":"linear"})");
    auto a = client->add_job("t");
    claim_for(a.rid, with_default.first, with_default.second);
    auto bare = queuerd_worker("bare");
    auto b = client->add_job("t");
    claim_for(b.rid, bare.first, bare.second);
    age_worker(with_default.second, "1 hour");
    age_worker(bare.second, "1 hour");
    auto r = sweep(30);
    EXPECT_EQ(r.i64(0, 1), 1);
    EXPECT_EQ(r.i64(0, 2), 1);
    auto row = job_row(a.rid);
    EXPECT_EQ(row.str(0, 0), "SCHEDULED");
    EXPECT_NEAR(std::stod(row.str(0, 4)), 3.0, 0.001);  // linear, attempt 1: 3 s
    EXPECT_EQ(row.i64(0, 6), 0);                        // the claim's schedule_count is given back
    auto failed = client->get_job_ended(b.rid);
    EXPECT_EQ(failed.status, "FAILED");
    EXPECT_NE(failed.error.find("no retries were left"), std::string::npos) << failed.error;
}

// ============================================================================================
// Items 2 and 3: what queuerd writes into options is read right by the clients sharing the
// database; the written form is a per-database setting; retry keeps the writer's form.
// ============================================================================================

Schedule two_day_schedule() {
    Schedule s;
    s.start = parse_time("2030-01-02T03:04:05.123456Z", "t");
    s.max_count = 3;
    s.interval = 48h;
    return s;
}

TEST_F(Interop, PythonFormIsTheDefaultAndPythonReadsItRight) {
    EXPECT_EQ(read_compat_form(c), CompatForm::Python);
    EXPECT_EQ(client->compat_form(), CompatForm::Python);
    Options o = with_retries(2, 1.5);
    o.schedule = two_day_schedule();
    auto single = client->add_job_with_options(o, "t");
    BatchJob b;
    b.task = "t";
    b.options = o;
    auto batch = client->add_jobs({b});
    for (const auto& rid : {single.rid, batch.at(0)}) {
        auto text = options_of(rid);
        auto d = parse(text);
        const auto& s = d["schedule"];
        auto start = python_start(s["start"]);
        ASSERT_TRUE(start) << "Python cannot compare this start with a naive now(): " << text;
        EXPECT_EQ(*start, *o.schedule->start);
        auto secs = python_interval_seconds(s["interval"]);
        ASSERT_TRUE(secs) << "timedelta overflow: " << text;
        EXPECT_DOUBLE_EQ(*secs, 172800.0);
        // And queuerd reads it back as written (not as nanoseconds).
        EXPECT_EQ(client->get_job(rid).options.schedule->interval, 48h);
        EXPECT_DOUBLE_EQ(d["on_error"]["retry_delay"].GetDouble(), 1.5);
    }
}

TEST_F(Interop, GoFormWhenTheDatabaseIsSetForGoAndGoReadsItRight) {
    auto ch = set_compat_form(c, CompatForm::Go);
    EXPECT_EQ(ch.from, CompatForm::Python);
    EXPECT_EQ(read_compat_form(c), CompatForm::Go);
    Client go_client(schema.config());  // reads the setting at construction
    EXPECT_EQ(go_client.compat_form(), CompatForm::Go);
    Options o;
    o.schedule = two_day_schedule();
    auto j = go_client.add_job_with_options(o, "t");
    auto text = options_of(j.rid);
    auto d = parse(text);
    auto start = go_start(d["schedule"]["start"]);
    ASSERT_TRUE(start) << text;
    EXPECT_EQ(*start, *o.schedule->start);
    auto ns = go_interval_ns(d["schedule"]["interval"], raw_interval_text(text));
    ASSERT_TRUE(ns) << text;
    EXPECT_EQ(*ns, 172800LL * 1000000000LL);
    EXPECT_EQ(go_client.get_job(j.rid).options.schedule->interval, 48h);
}

TEST_F(Interop, ChangingTheFormRewritesRowsWrittenInTheOtherOne) {
    // Rows queuerd wrote before migration 7 (Go's form) break Python's listing.
    c.exec(
        "INSERT INTO job (options, task_name, status, scheduled_at) VALUES "
        "('{\"schedule\":{\"start\":\"2030-01-02T03:04:05.5Z\",\"max_count\":2,"
        "\"interval\":172800000000000}}', 'old', 'SCHEDULED', '2030-01-02 03:04:05.5')");
    auto ch = set_compat_form(c, CompatForm::Python);
    EXPECT_EQ(ch.live_converted, 1);
    auto text = text_of_only_job();
    auto d = parse(text);
    ASSERT_TRUE(python_start(d["schedule"]["start"])) << text;
    EXPECT_EQ(*python_start(d["schedule"]["start"]), parse_time("2030-01-02T03:04:05.5Z", "t"));
    ASSERT_TRUE(python_interval_seconds(d["schedule"]["interval"])) << text;
    EXPECT_DOUBLE_EQ(*python_interval_seconds(d["schedule"]["interval"]), 172800.0);
    EXPECT_EQ(set_compat_form(c, CompatForm::Go).live_converted, 1);
    text = text_of_only_job();
    d = parse(text);
    ASSERT_TRUE(go_start(d["schedule"]["start"])) << text;
    ASSERT_TRUE(go_interval_ns(d["schedule"]["interval"], raw_interval_text(text))) << text;
}

TEST_F(Interop, RetryKeepsTheOptionsInTheFormTheyWereWritten) {
    // A job a Python client added and a Python worker ended; then one written in Go's form.
    const std::string py =
        R"({"on_error": {"timeout": 30.0, "max_retries": 3, "retry_delay": 1.0, )"
        R"("retry_backoff": "none"}, "schedule": {"start": "2030-01-02T03:04:05.123456", )"
        R"("interval": 90000.0, "max_count": 2, "next_interval": null}})";
    const std::string go =
        R"({"schedule": {"start": "2030-01-02T03:04:05.123456789+01:00", "interval": )"
        R"(90000000000000, "max_count": 2}})";
    for (const auto& [form, options] : {std::pair{CompatForm::Go, py}, {CompatForm::Python, go}}) {
        set_compat_form(c, form);  // the other form: retry must not rewrite the job
        db::Params p;
        p.add(options);
        auto rid = c.exec(
                        "INSERT INTO job_archive (id, options, task_name, status, scheduled_at) "
                        "VALUES ((SELECT COALESCE(max(id), 0) + 1000 FROM job_archive), "
                        "$1::jsonb, 'py', 'SUCCEEDED', '2030-01-02 03:04:05') RETURNING rid",
                        p)
                       .str(0, 0);
        Client fresh(schema.config());
        auto again = fresh.readd_job_from_archive(rid);
        db::Params q;
        q.add(again.rid).add(options);
        EXPECT_TRUE(
            c.exec("SELECT options = $2::jsonb FROM job WHERE rid = $1::uuid", q).boolean(0, 0))
            << options_of(again.rid) << " vs " << options;
        EXPECT_EQ(again.status, "SCHEDULED");
    }
}

TEST_F(Interop, ReadersAcceptEveryForm) {
    const char* forms[] = {
        // Python
        R"({"schedule":{"start":"2030-01-02T03:04:05","interval":3600.0,"max_count":2,)"
        R"("next_interval":null},"on_error":null})",
        // Go
        R"({"schedule":{"start":"2030-01-02T04:04:05+01:00","interval":3600000000000,)"
        R"("max_count":2}})",
        // queuerd before migration 7
        R"({"schedule":{"start":"2030-01-02T03:04:05.000000Z","max_count":2,)"
        R"("interval":3600000000000}})",
        // PostgreSQL's text form
        R"({"schedule":{"start":"2030-01-02 03:04:05","interval":3600.0,"max_count":2}})",
    };
    for (const char* f : forms) {
        auto o = Options::from_json(f);
        ASSERT_TRUE(o.schedule) << f;
        EXPECT_EQ(o.schedule->interval, 1h) << f;
        EXPECT_EQ(format_time(*o.schedule->start), "2030-01-02T03:04:05.000000Z") << f;
        db::Params p;
        p.add(f);
        EXPECT_EQ(c.exec("SELECT queuer_schedule_start($1::jsonb)::text", p).str(0, 0),
                  "2030-01-02 03:04:05")
            << f;
    }
}

// ============================================================================================
// Item 4: a scheduled job queuerd writes is seen by a reference worker before it is due (the
// reference worker waits for it itself and only polls every 5 minutes).
// ============================================================================================

TEST_F(Interop, ReferenceWorkerClaimsAQueuerdScheduledJobAheadAndWaitsForItsStart) {
    auto [wid, wrid] = reference_worker("py", {"later"});
    Options o;
    Schedule s;
    s.start = now() + 3min;
    o.schedule = s;
    auto j = client->add_job_with_options(o, "later");
    ASSERT_EQ(j.status, "SCHEDULED");

    // The insert's notification wakes the reference worker: it claims.
    db::Params p;
    p.add(wid);
    auto r = c.exec("SELECT * FROM update_job_initial($1)", p);
    ASSERT_EQ(r.rows(), 1) << "a reference worker would only see it at its next 5-minute poll";
    EXPECT_EQ(r.str(0, r.column("output_rid")), j.rid);
    EXPECT_EQ(r.str(0, r.column("output_worker_rid")), wrid);
    // What it then waits for: options.schedule.start, by Python's rules, equal to the due time.
    auto d = parse(r.str(0, r.column("output_options")));
    auto start = python_start(d["schedule"]["start"]);
    ASSERT_TRUE(start) << r.str(0, r.column("output_options"));
    EXPECT_EQ(*start, *s.start);
    EXPECT_EQ(parse_time(r.str(0, r.column("output_scheduled_at")), "scheduled_at"), *s.start);
}

TEST_F(Interop, ReferenceWorkerDoesNotTakeRetriesOrLaterRunsBeforeTheyAreDue) {
    auto [wid, wrid] = reference_worker("py", {"t"});
    (void)wrid;
    // A retry (SCHEDULED after a delay, no start) and a later run of a periodic job (its start is
    // the first run's): the reference worker would run them at once, so they wait until due.
    auto retry = client->add_job("t");
    auto later = client->add_job("t");
    db::Params p;
    p.add(retry.rid).add(later.rid);
    c.exec(
        "UPDATE job SET status = 'SCHEDULED', scheduled_at = CURRENT_TIMESTAMP + INTERVAL '2 "
        "minutes' WHERE rid IN ($1::uuid, $2::uuid)",
        p);
    db::Params q;
    q.add(later.rid).add(
        R"({"schedule":{"start":"2020-01-01T00:00:00","interval":60.0,"max_count":5}})");
    c.exec("UPDATE job SET options = $2::jsonb WHERE rid = $1::uuid", q);
    db::Params w;
    w.add(wid);
    EXPECT_EQ(c.exec("SELECT * FROM update_job_initial($1)", w).rows(), 0);
    c.exec("UPDATE job SET scheduled_at = CURRENT_TIMESTAMP - INTERVAL '1 second'");
    EXPECT_EQ(c.exec("SELECT * FROM update_job_initial($1)", w).rows(), 2);
}

// ============================================================================================
// Item 5: encryption across clients.
// ============================================================================================

TEST_F(Interop, RowsEncryptedByAReferenceClientNeverBreakAListingOrAWait) {
    if (!test::ensure_pgcrypto(c)) GTEST_SKIP() << "no pgcrypto on this server";
    auto plain = client->add_job("t", 1);
    auto sealed = client->add_job("t", 2);
    client->cancel_job(plain.rid);
    // A Python worker with QUEUER_ENCRYPTION_KEY ends the job (BEHAVIOUR.md §11).
    db::Params p;
    p.add(sealed.id).add("SUCCEEDED").add("[42]").add("").add("the python key");
    ASSERT_EQ(c.exec("SELECT * FROM update_job_final_encrypted($1, $2, $3, $4, $5)", p).rows(), 1);
    ASSERT_GT(scalar("SELECT octet_length(results_encrypted) FROM job_archive WHERE results = "
                     "'[]' AND status = 'SUCCEEDED'"),
              0);

    Client keyed(schema.config(), kKey);
    for (Client* cl : {client.get(), &keyed}) {
        auto all = cl->get_jobs_ended();
        ASSERT_EQ(all.size(), 2u);
        for (const auto& j : all) {
            if (j.rid == plain.rid) {
                EXPECT_TRUE(j.readable());
                EXPECT_EQ(j.status, "CANCELLED");
                continue;
            }
            EXPECT_EQ(j.status, "SUCCEEDED");
            ASSERT_EQ(j.unreadable, std::vector<std::string>{"results"});
            EXPECT_EQ(j.sealed_by, "pgcrypto");
            auto d = parse(j.to_json());
            EXPECT_TRUE(d["results"].IsNull());
            ASSERT_TRUE(d.HasMember("unreadable"));
            EXPECT_EQ(std::string(d["unreadable"]["encrypted_by"].GetString()), "pgcrypto");
            EXPECT_EQ(std::string(d["unreadable"]["columns"][0].GetString()), "results");
            EXPECT_EQ(std::string(d["status"].GetString()), "SUCCEEDED");
            // Parameters were never encrypted by the reference: still readable.
            EXPECT_EQ(parse(j.parameters)[0].GetInt(), 2);
        }
        EXPECT_EQ(cl->get_job_ended(sealed.rid).sealed_by, "pgcrypto");
        auto waited = cl->wait_for_job_finished(sealed.rid, 5s);
        ASSERT_TRUE(waited);
        EXPECT_EQ(waited->status, "SUCCEEDED");
        EXPECT_FALSE(waited->readable());
        JobQuery q;
        q.search = "t";
        EXPECT_EQ(cl->get_jobs_ended(q).size(), 2u);
    }
    // Retrying it needs only its parameters, which are plain: it is re-added (a job whose
    // parameters are unreadable is refused, below).
    auto again = client->readd_job_from_archive(sealed.rid);
    EXPECT_EQ(parse(again.parameters)[0].GetInt(), 2);
    EXPECT_TRUE(again.readable());
}

TEST_F(Interop, QueuerdSealedJobsStayOutOfReferenceWorkersHands) {
    Client enc(schema.config(), kKey);
    auto sealed = enc.add_job("t", "secret");
    auto plain = client->add_job("t", "open");
    auto [wid, wrid] = reference_worker("py", {"t"}, 10);
    (void)wrid;
    db::Params w;
    w.add(wid);
    auto r = c.exec("SELECT output_rid FROM update_job_initial($1)", w);
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.str(0, 0), plain.rid);
    EXPECT_EQ(client->get_job(sealed.rid).status, "QUEUED");

    // A reference client reloads its own claim (which knows nothing of the sealed columns; the
    // claim as BEHAVIOUR.md §3.1 describes it): it still never gets the sealed job.
    c.exec(R"SQL(
CREATE OR REPLACE FUNCTION update_job_initial(input_worker_id BIGINT)
RETURNS TABLE (output_id BIGINT, output_rid UUID, output_worker_id BIGINT, output_worker_rid UUID,
    output_options JSONB, output_task_name VARCHAR(100), output_parameters JSONB,
    output_parameters_keyed JSONB, output_status VARCHAR(50), output_scheduled_at TIMESTAMP,
    output_started_at TIMESTAMP, output_schedule_count INT, output_attempts INT,
    output_created_at TIMESTAMP, output_updated_at TIMESTAMP) AS $$
BEGIN
    RETURN QUERY
    WITH running AS (SELECT count(*) AS n FROM job WHERE worker_id = input_worker_id
                     AND status = 'RUNNING'),
    w AS (SELECT wk.* FROM worker wk, running
          WHERE wk.id = input_worker_id AND wk.max_concurrency > running.n FOR UPDATE OF wk),
    ids AS (SELECT j.id FROM job j, w
            WHERE j.task_name = ANY(w.available_tasks)
              AND (j.options -> 'schedule' ->> 'next_interval' IS NULL
                   OR j.options -> 'schedule' ->> 'next_interval' = ''
                   OR j.options -> 'schedule' ->> 'next_interval' = ANY(w.available_next_interval))
              AND (j.status = 'QUEUED' OR (j.status = 'SCHEDULED'
                   AND j.scheduled_at <= CURRENT_TIMESTAMP + INTERVAL '10 minutes'))
            ORDER BY j.created_at
            LIMIT (SELECT w.max_concurrency - running.n FROM w, running)
            FOR UPDATE OF j SKIP LOCKED)
    UPDATE job j SET worker_id = w.id, worker_rid = w.rid, status = 'RUNNING',
        started_at = CURRENT_TIMESTAMP, schedule_count = j.schedule_count + 1,
        attempts = j.attempts + 1, updated_at = CURRENT_TIMESTAMP
    FROM ids, w WHERE j.id = ids.id
    RETURNING j.id, j.rid, j.worker_id, j.worker_rid, j.options, j.task_name, j.parameters,
        j.parameters_keyed, j.status, j.scheduled_at, j.started_at, j.schedule_count, j.attempts,
        j.created_at, j.updated_at;
END;
$$ LANGUAGE plpgsql)SQL");
    auto another = client->add_job("t", "open too");
    auto reloaded = c.exec("SELECT output_rid FROM update_job_initial($1)", w);
    ASSERT_EQ(reloaded.rows(), 1) << "the reloaded claim works for plain jobs";
    EXPECT_EQ(reloaded.str(0, 0), another.rid);
    auto back = enc.get_job(sealed.rid);
    EXPECT_EQ(back.status, "QUEUED");
    EXPECT_EQ(back.worker_id, 0);

    // queuerd's engine, with the key, runs it (its claim is its own statement).
    EngineOptions eo;
    eo.poll_interval = 300ms;
    eo.heartbeat_interval = 200ms;
    Queuer q("daemon", 2, kKey, schema.config(), std::nullopt, eo);
    q.add_task("t", [](JobContext& ctx) { return ctx.parameters(); });
    q.start();
    auto done = enc.wait_for_job_finished(sealed.rid, 30s);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, "SUCCEEDED");
    EXPECT_EQ(parse(done->results)[0].GetString(), std::string("secret"));
    q.stop(5s);
}

TEST_F(Interop, SealedJobsWithoutTheKeyAreMarkedAndCannotBeRetriedWithEmptyParameters) {
    Client enc(schema.config(), kKey);
    auto j = enc.add_job("t", "secret");
    enc.cancel_job(j.rid);
    auto seen = client->get_job_ended(j.rid);  // no key here: marked, not an error
    EXPECT_EQ(seen.status, "CANCELLED");
    EXPECT_EQ(seen.sealed_by, "queuerd");
    EXPECT_EQ(seen.unreadable, (std::vector<std::string>{"parameters", "parameters_keyed"}));
    EXPECT_NE(seen.unreadable_reason.find("QUEUER_ENCRYPTION_KEY"), std::string::npos);
    auto d = parse(seen.to_json());
    EXPECT_TRUE(d["parameters"].IsNull());
    EXPECT_TRUE(d["parameters_keyed"].IsNull());
    try {
        client->readd_job_from_archive(j.rid);
        FAIL() << "re-added a job whose parameters it cannot read";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Crypto);
    }
    EXPECT_EQ(scalar("SELECT count(*) FROM job"), 0);
    // With the key it is retried, sealed again.
    auto again = enc.readd_job_from_archive(j.rid);
    EXPECT_EQ(parse(enc.get_job(again.rid).parameters)[0].GetString(), std::string("secret"));
}

// ============================================================================================
// Items 6 and 7: master election and stale detection next to reference workers.
// ============================================================================================

db::Result take_master(db::Connection& c, int64_t id, const std::string& rid,
                       double lock_timeout_s) {
    db::Params p;
    p.add(id).add(rid).add(MasterSettings{}.to_json()).add(fmt::format("{}", lock_timeout_s));
    return c.exec(detail::kTakeMaster, p);
}

// The reference's update_master (BEHAVIOUR.md §8.1), whatever function the schema holds.
int64_t reference_lock_rule(db::Connection& c, int64_t id, const std::string& rid, int minutes) {
    db::Params p;
    p.add(id).add(rid).add(minutes);
    return c
        .exec(
            "UPDATE master SET worker_id = $1::bigint, worker_rid = $2::uuid, updated_at = "
            "CURRENT_TIMESTAMP WHERE id = 1 AND (updated_at < CURRENT_TIMESTAMP - "
            "make_interval(mins => $3::int) OR worker_id = $1::bigint OR worker_id = 0)",
            p)
        .affected();
}

TEST_F(Interop, QueuerdNeverTakesTheLockOfALiveReferenceMaster) {
    auto py = reference_worker("py-master", {"t"});
    // Python's master poll takes the free lock through update_master (lock 5 minutes).
    db::Params m;
    m.add(py.first)
        .add(py.second)
        .add(R"({"retention_archive":30,"master_poll_interval":30.0,)"
             R"("lock_timeout_minutes":5})")
        .add(5);
    ASSERT_EQ(c.exec("SELECT * FROM update_master($1, $2, $3, $4)", m).rows(), 1);
    // Its renewals carry the start of a transaction that has been open a while, and so does
    // its heartbeat: the lock looks 90 s old, the worker 50 s.
    c.exec("UPDATE master SET updated_at = CURRENT_TIMESTAMP - INTERVAL '90 seconds'");
    age_worker(py.second, "50 seconds");

    auto qd = queuerd_worker("daemon");
    EXPECT_EQ(take_master(c, qd.first, qd.second, 60).rows(), 0)
        << "queuerd would run its master pass next to the Python master";
    EXPECT_EQ(text("SELECT worker_rid::text FROM master"), py.second);
    // Another reference worker calling update_master with a 1-minute lock: not taken either.
    auto other = reference_worker("py-2", {"t"});
    db::Params o;
    o.add(other.first).add(other.second).add("{}").add(1);
    EXPECT_EQ(c.exec("SELECT * FROM update_master($1, $2, $3, $4)", o).rows(), 0);

    // Once the Python worker is dead by its own standard (no heartbeat for 2 minutes), queuerd
    // takes over.
    age_worker(py.second, "3 minutes");
    EXPECT_EQ(take_master(c, qd.first, qd.second, 60).rows(), 1);
    EXPECT_EQ(text("SELECT worker_rid::text FROM master"), qd.second);
}

TEST_F(Interop, NeverTwoMastersWithTheReferenceLockRules) {
    // queuerd is master and renews every pass; a Go master with a sub-minute lock (truncated to 0
    // minutes, BEHAVIOUR.md §16.22) takes the lock through update_master; queuerd steps down at
    // its next pass (no row back), and does not take it back while the Go worker lives. A Go
    // master never steps down by itself, so at every step exactly one worker believes it is
    // master.
    auto qd = queuerd_worker("daemon");
    auto go = reference_worker("go", {"t"});
    bool qd_master = take_master(c, qd.first, qd.second, 60).rows() == 1;
    ASSERT_TRUE(qd_master);
    // A Python/Go master with its 5-minute lock cannot take a lock queuerd renewed.
    EXPECT_EQ(reference_lock_rule(c, go.first, go.second, 5), 0);
    db::Params m;
    m.add(go.first).add(go.second).add("{}").add(0);
    bool go_master = c.exec("SELECT * FROM update_master($1, $2, $3, $4)", m).rows() == 1;
    ASSERT_TRUE(go_master);
    qd_master = take_master(c, qd.first, qd.second, 60).rows() == 1;
    EXPECT_FALSE(qd_master);
    EXPECT_TRUE(go_master && !qd_master);
    c.exec("UPDATE master SET updated_at = CURRENT_TIMESTAMP - INTERVAL '10 minutes'");
    EXPECT_EQ(take_master(c, qd.first, qd.second, 60).rows(), 0);
    // The Go worker stops for good: its row goes STOPPED and stale; queuerd takes over.
    db::Params st;
    st.add(go.second);
    c.exec(
        "UPDATE worker SET status = 'STOPPED', updated_at = CURRENT_TIMESTAMP - INTERVAL '5 "
        "minutes' WHERE rid = $1::uuid",
        st);
    EXPECT_EQ(take_master(c, qd.first, qd.second, 60).rows(), 1);
}

TEST_F(Interop, HealthyReferenceWorkersAreNeverMarkedStale) {
    auto py = reference_worker("py", {"t"});
    auto draining = reference_worker("py-draining", {"t"});
    auto qd = queuerd_worker("daemon");
    // A healthy Python worker's heartbeat may look 90 s old; so may a dead queuerd worker's.
    age_worker(py.second, "90 seconds");
    age_worker(qd.second, "90 seconds");
    db::Params s;
    s.add(draining.second);
    c.exec("UPDATE worker SET status = 'STOPPING' WHERE rid = $1::uuid", s);
    age_worker(draining.second, "10 minutes");  // a reference worker does not heartbeat while
                                                // it drains its jobs
    auto r = sweep(30);
    EXPECT_EQ(r.i64(0, 0), 1);
    auto status = [&](const std::string& rid) {
        db::Params p;
        p.add(rid);
        return c.exec("SELECT status FROM worker WHERE rid = $1::uuid", p).str(0, 0);
    };
    EXPECT_EQ(status(py.second), "RUNNING");
    EXPECT_EQ(status(draining.second), "STOPPING");
    EXPECT_EQ(status(qd.second), "STOPPED");
    // Dead by the reference's own standard: 2 minutes (1 hour while STOPPING).
    age_worker(py.second, "3 minutes");
    age_worker(draining.second, "2 hours");
    EXPECT_EQ(sweep(30).i64(0, 0), 2);
    EXPECT_EQ(status(py.second), "STOPPED");
    EXPECT_EQ(status(draining.second), "STOPPED");
}

TEST_F(Interop, SettingsThatCannotBeSafeAreRefusedAtStart) {
    char tmpl[] = "/tmp/queuer-interop-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    auto load = [&](const std::string& extra) -> std::string {
        std::string path = dir + "/c.yaml";
        std::ofstream(path) << "worker:\n  name: w\n  max_concurrency: 1\n" << extra;
        try {
            load_app_config(path, true);
            return "";
        } catch (const Error& e) {
            return e.what();
        }
    };
    EXPECT_EQ(load(""), "");
    auto e = load("master:\n  master_lock_timeout: 15s\n  master_poll_interval: 10s\n");
    EXPECT_NE(e.find("master.master_lock_timeout"), std::string::npos) << e;
    EXPECT_NE(e.find("two masters"), std::string::npos) << e;
    e = load("  heartbeat_interval: 90s\nmaster:\n  worker_stale_threshold: 10m\n");
    EXPECT_NE(e.find("worker.heartbeat_interval"), std::string::npos) << e;
    EXPECT_NE(e.find("2 minutes"), std::string::npos) << e;
    EXPECT_EQ(load("  heartbeat_interval: 60s\nmaster:\n  worker_stale_threshold: 10m\n"), "");
    std::remove((dir + "/c.yaml").c_str());
    ::rmdir(dir.c_str());
}

// ============================================================================================
// Item 8: a reference client reloading its own SQL on a queuerd schema succeeds.
// ============================================================================================

#define JOB_ROW                                                                                 \
    "output_id bigint, output_rid uuid, output_worker_id bigint, output_worker_rid uuid, "      \
    "output_options jsonb, output_task_name varchar(100), output_parameters jsonb, "            \
    "output_parameters_keyed jsonb, output_status varchar(50), output_scheduled_at timestamp, " \
    "output_started_at timestamp, output_schedule_count int, output_attempts int, "             \
    "output_results jsonb, output_error text, output_created_at timestamp, "                    \
    "output_updated_at timestamp"
#define WORKER_ROW                                                                         \
    "output_id bigint, output_rid uuid, output_name varchar(100), output_options jsonb, "  \
    "output_available_tasks varchar[], output_available_next_interval varchar[], "         \
    "output_max_concurrency int, output_status varchar(50), output_created_at timestamp, " \
    "output_updated_at timestamp"
#define MASTER_ROW                                                                         \
    "output_id integer, output_worker_id bigint, output_worker_rid uuid, output_settings " \
    "jsonb, output_created_at timestamp, output_updated_at timestamp"

struct RefFunction {
    const char* name;
    const char* args;
    const char* returns;
};

// The reference's function signatures (BEHAVIOUR.md §1.6, with the argument names its SQL files
// use: input_<name>, except enable_timescaledb).
const RefFunction kReference[] = {
    {"init_job", "enable_timescaledb BOOLEAN DEFAULT TRUE", "VOID"},
    {"insert_job",
     "input_options JSONB, input_task_name VARCHAR(100), input_parameters JSONB, "
     "input_parameters_keyed JSONB, input_status VARCHAR(50), input_scheduled_at TIMESTAMP, "
     "input_schedule_count INT",
     "TABLE (output_id bigint, output_rid uuid, output_worker_id bigint, output_worker_rid uuid, "
     "output_options jsonb, output_task_name varchar(100), output_parameters jsonb, "
     "output_parameters_keyed jsonb, output_status varchar(50), output_scheduled_at timestamp, "
     "output_schedule_count int, output_attempts int, output_created_at timestamp, "
     "output_updated_at timestamp)"},
    {"update_job_initial", "input_worker_id BIGINT",
     "TABLE (output_id bigint, output_rid uuid, output_worker_id bigint, output_worker_rid uuid, "
     "output_options jsonb, output_task_name varchar(100), output_parameters jsonb, "
     "output_parameters_keyed jsonb, output_status varchar(50), output_scheduled_at timestamp, "
     "output_started_at timestamp, output_schedule_count int, output_attempts int, "
     "output_created_at timestamp, output_updated_at timestamp)"},
    {"update_job_final",
     "input_id BIGINT, input_status VARCHAR(50), input_results JSONB, input_error TEXT",
     "TABLE (" JOB_ROW ")"},
    {"update_job_final_encrypted",
     "input_id BIGINT, input_status VARCHAR(50), input_results TEXT, input_error TEXT, "
     "input_encryption_key TEXT",
     "TABLE (" JOB_ROW ")"},
    {"update_stale_jobs",
     "input_new_status VARCHAR(50), input_excluded_status1 VARCHAR(50), input_excluded_status2 "
     "VARCHAR(50), input_excluded_status3 VARCHAR(50), input_worker_status VARCHAR(50)",
     "INT"},
    {"select_job", "input_encryption_key TEXT, input_rid UUID", "TABLE (" JOB_ROW ")"},
    {"select_job_from_archive", "input_encryption_key TEXT, input_rid UUID", "TABLE (" JOB_ROW ")"},
    {"select_all_jobs", "input_encryption_key TEXT, input_last_id INT, input_entries INT",
     "TABLE (" JOB_ROW ")"},
    {"select_all_jobs_from_archive",
     "input_encryption_key TEXT, input_last_id INT, input_entries INT", "TABLE (" JOB_ROW ")"},
    {"select_all_jobs_by_worker_rid",
     "input_encryption_key TEXT, input_worker_rid UUID, input_last_id INT, input_entries INT",
     "TABLE (" JOB_ROW ")"},
    {"select_all_jobs_by_search",
     "input_encryption_key TEXT, input_search TEXT, input_last_id INT, input_entries INT",
     "TABLE (" JOB_ROW ")"},
    {"select_all_jobs_from_archive_by_search",
     "input_encryption_key TEXT, input_search TEXT, input_last_id INT, input_entries INT",
     "TABLE (" JOB_ROW ")"},
    {"add_retention_archive", "input_retention_days INT, enable_timescaledb BOOLEAN DEFAULT TRUE",
     "VOID"},
    {"remove_retention_archive", "enable_timescaledb BOOLEAN DEFAULT TRUE", "VOID"},
    {"delete_job", "input_rid UUID", "VOID"},
    {"init_worker", "", "VOID"},
    {"insert_worker", "input_name VARCHAR(100), input_options JSONB, input_max_concurrency INT",
     "TABLE (output_id bigint, output_rid uuid, output_name varchar(100), output_options jsonb, "
     "output_max_concurrency int, output_status varchar(50), output_created_at timestamp, "
     "output_updated_at timestamp)"},
    {"update_worker",
     "input_name VARCHAR(100), input_options JSONB, input_available_tasks VARCHAR[], "
     "input_available_next_interval VARCHAR[], input_max_concurrency INT, input_status "
     "VARCHAR(50), input_rid UUID",
     "TABLE (" WORKER_ROW ")"},
    {"update_stale_workers",
     "input_new_status VARCHAR(50), input_status1 VARCHAR(50), input_status2 VARCHAR(50), "
     "input_cutoff_time TIMESTAMP",
     "INT"},
    {"delete_worker", "input_rid UUID", "VOID"},
    {"delete_stale_workers", "input_cutoff_time TIMESTAMP", "INT"},
    {"select_worker", "input_rid UUID", "TABLE (" WORKER_ROW ")"},
    {"select_all_workers", "input_last_id INT, input_entries INT", "TABLE (" WORKER_ROW ")"},
    {"select_all_workers_by_search", "input_search TEXT, input_last_id INT, input_entries INT",
     "TABLE (" WORKER_ROW ")"},
    {"select_all_connections", "",
     "TABLE (output_pid int, output_datname name, output_usename name, output_application_name "
     "text, output_query text, output_state text)"},
    {"init_master", "", "VOID"},
    {"select_master", "", "TABLE (" MASTER_ROW ")"},
    {"update_master",
     "input_worker_id BIGINT, input_worker_rid UUID, input_settings JSONB, "
     "input_lock_timeout_minutes INT",
     "TABLE (" MASTER_ROW ")"},
    {"notify_event", "", "TRIGGER"},
};

TEST_F(Interop, ReferenceClientReloadingItsOwnSqlSucceeds) {
    // Every function, CREATE OR REPLACE with the reference's signature, as a reference client
    // reloading its SQL files does; the bodies are stand-ins. Rolled back afterwards.
    db::Transaction tx(c);
    for (const auto& f : kReference) {
        std::string body = std::string(f.returns) == "INT"       ? "BEGIN RETURN 0; END;"
                           : std::string(f.returns) == "TRIGGER" ? "BEGIN RETURN NEW; END;"
                                                                 : "BEGIN END;";
        std::string sql =
            fmt::format("CREATE OR REPLACE FUNCTION {}({}) RETURNS {} AS $$ {} $$ LANGUAGE plpgsql",
                        f.name, f.args, f.returns, body);
        c.exec("SAVEPOINT reload");
        try {
            c.exec(sql);
            c.exec("RELEASE SAVEPOINT reload");
        } catch (const Error& e) {
            c.exec("ROLLBACK TO SAVEPOINT reload");
            ADD_FAILURE() << f.name << ": " << e.what();
        }
    }
    // Every function of the inventory exists exactly once (no overload a reload would add).
    for (const auto& f : kReference) {
        db::Params p;
        p.add(f.name);
        EXPECT_EQ(c.exec("SELECT count(*) FROM pg_proc WHERE proname = $1 AND pronamespace = "
                         "current_schema()::regnamespace",
                         p)
                      .i64(0, 0),
                  1)
            << f.name;
    }
}

// ============================================================================================
// Item 9: every remaining difference is documented, with its reason.
// ============================================================================================

TEST(InteropDocs, CompatibilityTableNamesEveryRemainingDifferenceWithAReason) {
    std::string here = __FILE__;
    std::string root = here.substr(0, here.rfind("/tests/"));
    std::ifstream f(root + "/docs/compatibility.md");
    ASSERT_TRUE(f) << root + "/docs/compatibility.md";
    std::stringstream ss;
    ss << f.rdbuf();
    std::string doc = ss.str();
    auto start = doc.find("## Differences that remain");
    ASSERT_NE(start, std::string::npos);
    auto end = doc.find("\n## ", start + 5);
    std::string section = doc.substr(start, end - start);
    // Each topic of INTEROP.md item 9 and of issue 10's engine, in a table row of three cells
    // (topic | the reference | queuerd and why).
    for (const char* topic :
         {"attempts", "scheduled_at", "repeat", "max_count", "results", "notification",
          "missed runs", "master.settings", "encrypt", "STOPPING"}) {
        bool found = false;
        std::istringstream lines(section);
        for (std::string line; std::getline(lines, line);) {
            if (line.rfind("| ", 0) != 0 || line.find(topic) == std::string::npos) continue;
            int cells = 0;
            for (char ch : line) cells += ch == '|';
            if (cells >= 4 && line.size() > 80) found = true;
        }
        EXPECT_TRUE(found) << "no row about \"" << topic << "\" with a reason";
    }
}

}  // namespace
