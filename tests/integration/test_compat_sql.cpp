// Migration 3, the reference's SQL function inventory (BEHAVIOUR.md §1.6), against a real
// PostgreSQL with a schema of its own per test: every function is called the way a Go or Python
// queuer client calls it (SELECT * FROM fn($1, ...), result columns read by their output_ names)
// and checked for the reference's behaviour, and for the deviations of docs/compatibility.md.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "queuer/db.hpp"
#include "queuer/error.hpp"
#include "queuer/schema.hpp"
#include "support/test_db.hpp"

using namespace queuer;
using namespace std::chrono_literals;
using queuer::test::TestSchema;

namespace {

// Every function of the inventory.
const std::vector<std::string> kInventory = {"init_job",
                                             "insert_job",
                                             "update_job_initial",
                                             "update_job_final",
                                             "update_job_final_encrypted",
                                             "update_stale_jobs",
                                             "delete_job",
                                             "select_job",
                                             "select_job_from_archive",
                                             "select_all_jobs",
                                             "select_all_jobs_from_archive",
                                             "select_all_jobs_by_worker_rid",
                                             "select_all_jobs_by_search",
                                             "select_all_jobs_from_archive_by_search",
                                             "add_retention_archive",
                                             "remove_retention_archive",
                                             "init_worker",
                                             "insert_worker",
                                             "update_worker",
                                             "update_stale_workers",
                                             "delete_worker",
                                             "delete_stale_workers",
                                             "select_worker",
                                             "select_all_workers",
                                             "select_all_workers_by_search",
                                             "select_all_connections",
                                             "init_master",
                                             "select_master",
                                             "update_master",
                                             "notify_event"};

std::string col(const db::Result& r, int row, const char* name) {
    return r.str(row, r.column(name));
}
bool null_at(const db::Result& r, int row, const char* name) {
    return r.is_null(row, r.column(name));
}
int64_t num(const db::Result& r, int row, const char* name) {
    return r.i64(row, r.column(name));
}

class CompatSql : public ::testing::Test {
  protected:
    void SetUp() override {
        c = schema.connect();
        migrate(c, TimescaleMode::Auto);
    }

    // insert_job as the Go client calls it (unscheduled: Go's year-0001 sentinel).
    db::Result insert_job(const std::string& task, const std::string& status = "QUEUED",
                          const std::optional<std::string>& scheduled_at = std::nullopt,
                          const std::string& options = "{}") {
        db::Params p;
        p.add(options).add(task).add("[1, \"two\"]").add("{\"k\": 3}").add(status);
        p.add(scheduled_at ? *scheduled_at : std::string("0001-01-01 00:00:00"));
        p.add(0);
        return c.exec("SELECT * FROM insert_job($1, $2, $3, $4, $5, $6, $7)", p);
    }

    // insert_worker + update_worker (tasks registered), as the references do; returns id, rid.
    std::pair<int64_t, std::string> add_worker(const std::string& name,
                                               const std::vector<std::string>& tasks,
                                               int max_concurrency,
                                               const std::vector<std::string>& next = {}) {
        db::Params p;
        p.add(name).add("{}").add(max_concurrency);
        auto w = c.exec("SELECT * FROM insert_worker($1, $2, $3)", p);
        EXPECT_EQ(w.rows(), 1);
        EXPECT_EQ(col(w, 0, "output_status"), "READY");
        std::string rid = col(w, 0, "output_rid");
        db::Params u;
        u.add(name)
            .add("{}")
            .add_array(tasks)
            .add_array(next)
            .add(max_concurrency)
            .add("RUNNING")
            .add(rid);
        auto r = c.exec("SELECT * FROM update_worker($1, $2, $3, $4, $5, $6, $7)", u);
        EXPECT_EQ(r.rows(), 1);
        return {num(w, 0, "output_id"), rid};
    }

    db::Result claim(int64_t worker_id) { return claim_on(c, worker_id); }
    static db::Result claim_on(db::Connection& conn, int64_t worker_id) {
        db::Params p;
        p.add(worker_id);
        return conn.exec("SELECT * FROM update_job_initial($1)", p);
    }

    db::Result finish(int64_t id, const std::string& status, const std::string& results,
                      const std::string& error) {
        db::Params p;
        p.add(id).add(status).add(results).add(error);
        return c.exec("SELECT * FROM update_job_final($1, $2, $3, $4)", p);
    }

    int64_t scalar(const std::string& sql) { return c.exec(sql).i64(0, 0); }

    TestSchema schema;
    db::Connection c;
};

}  // namespace

TEST_F(CompatSql, EveryFunctionExistsOnceInTheTestSchemaAndMigratingAgainIsANoOp) {
    for (const auto& f : kInventory) {
        db::Params p;
        p.add(f);
        EXPECT_EQ(c.exec("SELECT count(*) FROM pg_proc WHERE proname = $1 AND pronamespace = "
                         "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
                         p)
                      .i64(0, 0),
                  1)
            << f;
        EXPECT_EQ(c.exec("SELECT count(*) FROM pg_proc WHERE proname = $1 AND pronamespace = "
                         "'public'::regnamespace",
                         p)
                      .i64(0, 0),
                  0)
            << f << " leaked into public";
    }
    auto oids = c.exec(
                     "SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_proc WHERE "
                     "pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = "
                     "current_schema())")
                    .str(0, 0);
    auto again = migrate(c, TimescaleMode::Auto);
    EXPECT_EQ(again.from_version, schema_version());
    EXPECT_EQ(again.to_version, schema_version());
    EXPECT_GE(schema_version(), 3);
    EXPECT_EQ(c.exec("SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_proc WHERE "
                     "pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = "
                     "current_schema())")
                  .str(0, 0),
              oids);
}

TEST_F(CompatSql, MigrationReplacesFunctionsTheReferenceLoadedBefore) {
    // A database a Go client initialised first: its functions are there (here a stand-in with
    // the reference's older, un-prefixed result columns and an extra overload) before queuerd's
    // migration 3 runs.
    TestSchema other;
    auto o = other.connect();
    o.exec("CREATE SCHEMA IF NOT EXISTS " + db::quote_ident(other.config().schema));
    o.exec(
        "CREATE FUNCTION select_master() RETURNS TABLE (id INTEGER) AS $$ SELECT 1 $$ "
        "LANGUAGE sql");
    o.exec(
        "CREATE FUNCTION select_all_jobs(TEXT, BIGINT, INT) RETURNS INT AS $$ SELECT 1 $$ "
        "LANGUAGE sql");
    migrate(o, TimescaleMode::Off);
    auto m = o.exec("SELECT * FROM select_master()");
    ASSERT_EQ(m.rows(), 1);
    EXPECT_EQ(num(m, 0, "output_worker_id"), 0);
    EXPECT_EQ(o.exec("SELECT count(*) FROM pg_proc WHERE proname = 'select_all_jobs' AND "
                     "pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = "
                     "current_schema())")
                  .i64(0, 0),
              1);
    EXPECT_EQ(o.exec("SELECT * FROM select_all_jobs('', 0, 10)").rows(), 0);
}

TEST_F(CompatSql, InitFunctionsAreIdempotentAndKeepData) {
    insert_job("keep");
    c.exec("SELECT init_job(TRUE)");
    c.exec("SELECT init_job(FALSE)");
    c.exec("SELECT init_job()");
    c.exec("SELECT init_worker()");
    c.exec("SELECT init_master()");
    c.exec("SELECT init_master()");
    EXPECT_EQ(scalar("SELECT count(*) FROM job WHERE task_name = 'keep'"), 1);
    EXPECT_EQ(scalar("SELECT count(*) FROM master"), 1);
}

TEST_F(CompatSql, InsertJobReturnsAQueuedRow) {
    auto r = insert_job("task.A");
    ASSERT_EQ(r.rows(), 1);
    EXPECT_GT(num(r, 0, "output_id"), 0);
    EXPECT_EQ(col(r, 0, "output_rid").size(), 36u);
    EXPECT_EQ(num(r, 0, "output_worker_id"), 0);
    EXPECT_TRUE(null_at(r, 0, "output_worker_rid"));
    EXPECT_EQ(col(r, 0, "output_options"), "{}");
    EXPECT_EQ(col(r, 0, "output_task_name"), "task.A");
    EXPECT_EQ(col(r, 0, "output_parameters"), "[1, \"two\"]");
    EXPECT_EQ(col(r, 0, "output_parameters_keyed"), "{\"k\": 3}");
    EXPECT_EQ(col(r, 0, "output_status"), "QUEUED");
    EXPECT_EQ(col(r, 0, "output_scheduled_at"), "0001-01-01 00:00:00");
    EXPECT_EQ(num(r, 0, "output_schedule_count"), 0);
    EXPECT_EQ(num(r, 0, "output_attempts"), 0);
    EXPECT_FALSE(null_at(r, 0, "output_created_at"));
    EXPECT_FALSE(null_at(r, 0, "output_updated_at"));
    // "full job row minus started_at, results, error"
    EXPECT_THROW(r.column("output_results"), Error);
    EXPECT_THROW(r.column("output_started_at"), Error);

    // Python passes NULL options and a NULL scheduled_at.
    db::Params p;
    p.add_null().add("py").add("[]").add("{}").add("QUEUED").add_null().add(0);
    auto py = c.exec("SELECT * FROM insert_job($1, $2, $3, $4, $5, $6, $7)", p);
    ASSERT_EQ(py.rows(), 1);
    EXPECT_TRUE(null_at(py, 0, "output_options"));
    EXPECT_TRUE(null_at(py, 0, "output_scheduled_at"));
}

TEST_F(CompatSql, ClaimTakesOnlyTheWorkersTasksUpToItsFreeSlotsInCreationOrder) {
    auto [wid, wrid] = add_worker("w", {"a"}, 3);
    std::vector<int64_t> a_ids;
    for (int i = 0; i < 5; ++i) a_ids.push_back(num(insert_job("a"), 0, "output_id"));
    insert_job("b");
    insert_job("b");

    auto r = claim(wid);
    ASSERT_EQ(r.rows(), 3);
    std::set<int64_t> got;
    for (int i = 0; i < r.rows(); ++i) {
        got.insert(num(r, i, "output_id"));
        EXPECT_EQ(col(r, i, "output_task_name"), "a");
        EXPECT_EQ(col(r, i, "output_status"), "RUNNING");
        EXPECT_EQ(num(r, i, "output_worker_id"), wid);
        EXPECT_EQ(col(r, i, "output_worker_rid"), wrid);
        EXPECT_EQ(num(r, i, "output_attempts"), 1);
        EXPECT_EQ(num(r, i, "output_schedule_count"), 1);
        EXPECT_FALSE(null_at(r, i, "output_started_at"));
        EXPECT_EQ(col(r, i, "output_parameters_keyed"), "{\"k\": 3}");
    }
    // "full job row minus results, error"
    EXPECT_THROW(r.column("output_results"), Error);
    EXPECT_EQ(got, (std::set<int64_t>{a_ids[0], a_ids[1], a_ids[2]}));  // (created_at, id)

    EXPECT_EQ(claim(wid).rows(), 0);  // full
    EXPECT_EQ(scalar("SELECT count(*) FROM job WHERE status = 'RUNNING'"), 3);
    EXPECT_EQ(scalar("SELECT count(*) FROM job WHERE task_name = 'b' AND status = 'QUEUED'"), 2);

    // A finished job frees a slot.
    finish(a_ids[0], "SUCCEEDED", "[]", "");
    auto more = claim(wid);
    ASSERT_EQ(more.rows(), 1);
    EXPECT_EQ(num(more, 0, "output_id"), a_ids[3]);

    // An unknown worker claims nothing.
    EXPECT_EQ(claim(wid + 1000).rows(), 0);
}

TEST_F(CompatSql, ClaimTakesOnlyDueJobsAndKnownNextIntervalFunctions) {
    auto [wid, wrid] = add_worker("w", {"s"}, 10, {"nextFn"});
    (void)wrid;
    auto due =
        num(insert_job("s", "SCHEDULED", std::string("2000-01-01 00:00:00")), 0, "output_id");
    // Five minutes ahead: the reference claims it (10-minute look-ahead), we do not.
    insert_job(
        "s", "SCHEDULED",
        c.exec("SELECT (CURRENT_TIMESTAMP + INTERVAL '5 minutes')::timestamp::text").str(0, 0));
    auto known =
        num(insert_job("s", "QUEUED", std::nullopt, R"({"schedule": {"next_interval": "nextFn"}})"),
            0, "output_id");
    insert_job("s", "QUEUED", std::nullopt, R"({"schedule": {"next_interval": "otherFn"}})");
    auto empty_next =
        num(insert_job("s", "QUEUED", std::nullopt, R"({"schedule": {"next_interval": ""}})"), 0,
            "output_id");

    auto r = claim(wid);
    std::set<int64_t> got;
    for (int i = 0; i < r.rows(); ++i) got.insert(num(r, i, "output_id"));
    EXPECT_EQ(got, (std::set<int64_t>{due, known, empty_next}));
    EXPECT_EQ(scalar("SELECT count(*) FROM job WHERE status = 'SCHEDULED'"), 1);
    EXPECT_EQ(scalar("SELECT count(*) FROM job WHERE status = 'QUEUED'"), 1);
}

TEST_F(CompatSql, TwoConcurrentClaimsOfOneWorkerNeverOverClaim) {
    auto [wid, wrid] = add_worker("w", {"a"}, 2);
    (void)wrid;
    for (int i = 0; i < 10; ++i) insert_job("a");

    auto a = schema.connect();
    auto b = schema.connect();
    a.exec("BEGIN");
    EXPECT_EQ(claim_on(a, wid).rows(), 2);  // holds the worker row lock until commit

    int b_pid = static_cast<int>(b.exec("SELECT pg_backend_pid()").i64(0, 0));
    int b_rows = -1;
    std::string b_error;
    std::thread t([&] {
        try {
            b_rows = claim_on(b, wid).rows();
        } catch (const std::exception& e) {
            b_error = e.what();
        }
    });
    // Wait until the second claim is blocked on the lock, then let the first one commit.
    bool waiting = false;
    for (int i = 0; i < 200 && !waiting; ++i) {
        db::Params p;
        p.add(b_pid);
        waiting = c.exec(
                       "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND "
                       "wait_event_type = 'Lock'",
                       p)
                      .rows() > 0;
        if (!waiting) std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(waiting) << "the second claim never waited for the worker row";
    a.exec("COMMIT");
    t.join();
    EXPECT_EQ(b_error, "");
    EXPECT_EQ(b_rows, 0) << "the second claim over-claimed";
    EXPECT_EQ(scalar("SELECT count(*) FROM job WHERE status = 'RUNNING'"), 2);

    // Many claims at once from many connections: still exactly max_concurrency.
    std::vector<std::thread> ts;
    std::atomic<int> total{0};
    for (int i = 0; i < 6; ++i)
        ts.emplace_back([&] {
            auto conn = schema.connect();
            total += claim_on(conn, wid).rows();
        });
    for (auto& th : ts) th.join();
    EXPECT_EQ(total.load(), 0);
    EXPECT_EQ(scalar("SELECT count(*) FROM job WHERE status = 'RUNNING'"), 2);
}

TEST_F(CompatSql, FinalUpdateMovesTheJobToTheArchiveOnce) {
    auto [wid, wrid] = add_worker("w", {"a"}, 2);
    auto ok_id = num(insert_job("a"), 0, "output_id");
    auto bad_id = num(insert_job("a"), 0, "output_id");
    ASSERT_EQ(claim(wid).rows(), 2);

    auto r = finish(ok_id, "SUCCEEDED", "[42]", "");
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(num(r, 0, "output_id"), ok_id);
    EXPECT_EQ(col(r, 0, "output_status"), "SUCCEEDED");
    EXPECT_EQ(col(r, 0, "output_results"), "[42]");
    EXPECT_EQ(col(r, 0, "output_error"), "");
    EXPECT_EQ(col(r, 0, "output_worker_rid"), wrid);
    EXPECT_EQ(col(r, 0, "output_parameters"), "[1, \"two\"]");
    EXPECT_EQ(col(r, 0, "output_parameters_keyed"), "{\"k\": 3}");
    EXPECT_EQ(num(r, 0, "output_attempts"), 1);
    EXPECT_FALSE(null_at(r, 0, "output_started_at"));
    std::string rid = col(r, 0, "output_rid");

    auto f = finish(bad_id, "FAILED", "null", "error running task: boom");
    ASSERT_EQ(f.rows(), 1);
    EXPECT_EQ(col(f, 0, "output_status"), "FAILED");
    EXPECT_EQ(col(f, 0, "output_error"), "error running task: boom");

    EXPECT_EQ(scalar("SELECT count(*) FROM job"), 0);
    EXPECT_EQ(scalar("SELECT count(*) FROM job_archive"), 2);
    // A second final update for the same id: no row, no error.
    EXPECT_EQ(finish(ok_id, "CANCELLED", "[]", "").rows(), 0);
    EXPECT_EQ(scalar("SELECT count(*) FROM job_archive WHERE status = 'CANCELLED'"), 0);

    db::Params p;
    p.add("").add(rid);
    EXPECT_EQ(c.exec("SELECT * FROM select_job($1, $2)", p).rows(), 0);
    auto a = c.exec("SELECT * FROM select_job_from_archive($1, $2)", p);
    ASSERT_EQ(a.rows(), 1);
    EXPECT_EQ(col(a, 0, "output_status"), "SUCCEEDED");
    EXPECT_EQ(col(a, 0, "output_results"), "[42]");
    EXPECT_EQ(col(a, 0, "output_task_name"), "a");
    EXPECT_EQ(num(a, 0, "output_worker_id"), wid);

    // A queued job can be cancelled the same way (the reference's cancel).
    auto q = insert_job("zzz");
    auto cr = finish(num(q, 0, "output_id"), "CANCELLED", "[]", "");
    ASSERT_EQ(cr.rows(), 1);
    EXPECT_EQ(col(cr, 0, "output_status"), "CANCELLED");
}

TEST_F(CompatSql, SelectJobReadsLiveJobsOnly) {
    auto j = insert_job("a");
    db::Params p;
    p.add("").add(col(j, 0, "output_rid"));
    auto r = c.exec("SELECT * FROM select_job($1, $2)", p);
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(col(r, 0, "output_status"), "QUEUED");
    EXPECT_EQ(col(r, 0, "output_results"), "[]");
    EXPECT_EQ(col(r, 0, "output_error"), "");
    EXPECT_TRUE(null_at(r, 0, "output_started_at"));
    EXPECT_EQ(c.exec("SELECT * FROM select_job_from_archive($1, $2)", p).rows(), 0);
    db::Params unknown;
    unknown.add("").add("00000000-0000-0000-0000-000000000001");
    EXPECT_EQ(c.exec("SELECT * FROM select_job($1, $2)", unknown).rows(), 0);
}

TEST_F(CompatSql, EncryptedFinalUpdateUsesPgcryptoWhenInstalled) {
    auto [wid, wrid] = add_worker("w", {"a"}, 1);
    (void)wrid;
    auto id = num(insert_job("a"), 0, "output_id");
    ASSERT_EQ(claim(wid).rows(), 1);
    bool pgcrypto = test::ensure_pgcrypto(c);

    db::Params p;
    p.add(id).add("SUCCEEDED").add("[\"secret\"]").add("").add("key-1");
    auto r = c.exec("SELECT * FROM update_job_final_encrypted($1, $2, $3, $4, $5)", p);
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(col(r, 0, "output_results"), "[\"secret\"]");  // the plaintext input, as JSONB
    std::string rid = col(r, 0, "output_rid");

    db::Params with_key, no_key, wrong_key;
    with_key.add("key-1").add(rid);
    no_key.add("").add(rid);
    wrong_key.add("key-2").add(rid);
    auto read = [&](const db::Params& q) {
        auto x = c.exec("SELECT * FROM select_job_from_archive($1, $2)", q);
        EXPECT_EQ(x.rows(), 1);
        return x.rows() == 1 ? col(x, 0, "output_results") : std::string();
    };
    if (pgcrypto) {
        EXPECT_GT(scalar("SELECT octet_length(results_encrypted) FROM job_archive"), 0);
        EXPECT_EQ(c.exec("SELECT results::text FROM job_archive").str(0, 0), "[]");
        EXPECT_EQ(read(with_key), "[\"secret\"]");
        EXPECT_EQ(read(no_key), "[]");     // plaintext column, no error
        EXPECT_EQ(read(wrong_key), "[]");  // the reference fails the whole query here
        auto all = c.exec("SELECT * FROM select_all_jobs_from_archive('key-1', 0, 10)");
        ASSERT_EQ(all.rows(), 1);
        EXPECT_EQ(col(all, 0, "output_results"), "[\"secret\"]");
    } else {
        // Without pgcrypto the key is ignored and the results are stored in plaintext.
        EXPECT_EQ(scalar("SELECT octet_length(results_encrypted) FROM job_archive"), 0);
        EXPECT_EQ(read(with_key), "[\"secret\"]");
        EXPECT_EQ(read(no_key), "[\"secret\"]");
    }

    // A row sealed client-side (as queuerd does with libsodium) never breaks a read.
    c.exec("UPDATE job_archive SET results_encrypted = '\\x0102030405'::bytea, results = '[7]'");
    EXPECT_EQ(read(with_key), "[7]");
}

TEST_F(CompatSql, ListsPageByIdNewestFirstWithoutSkippingTies) {
    // One transaction: every row shares created_at (the reference's created_at keyset skips).
    c.exec("BEGIN");
    std::vector<int64_t> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(num(insert_job("a"), 0, "output_id"));
    c.exec("COMMIT");

    std::vector<int64_t> seen;
    int64_t last = 0;
    for (int page = 0; page < 10; ++page) {
        db::Params p;
        p.add("").add(last).add(2);
        auto r = c.exec("SELECT * FROM select_all_jobs($1, $2, $3)", p);
        if (r.rows() == 0) break;
        EXPECT_LE(r.rows(), 2);
        for (int i = 0; i < r.rows(); ++i) seen.push_back(num(r, i, "output_id"));
        last = seen.back();
    }
    EXPECT_EQ(seen, (std::vector<int64_t>{ids[4], ids[3], ids[2], ids[1], ids[0]}));

    // A last id that no longer exists still pages (the reference returns an empty page).
    finish(ids[2], "CANCELLED", "[]", "");
    db::Params p;
    p.add("").add(ids[2]).add(10);
    auto r = c.exec("SELECT * FROM select_all_jobs($1, $2, $3)", p);
    ASSERT_EQ(r.rows(), 2);
    EXPECT_EQ(num(r, 0, "output_id"), ids[1]);

    // Archive and by-worker variants page the same way.
    finish(ids[0], "SUCCEEDED", "[]", "");
    auto ar = c.exec("SELECT * FROM select_all_jobs_from_archive('', 0, 10)");
    ASSERT_EQ(ar.rows(), 2);
    EXPECT_EQ(num(ar, 0, "output_id"), ids[2]);
    EXPECT_EQ(num(ar, 1, "output_id"), ids[0]);
    db::Params ap;
    ap.add("").add(ids[2]).add(10);
    auto ar2 = c.exec("SELECT * FROM select_all_jobs_from_archive($1, $2, $3)", ap);
    ASSERT_EQ(ar2.rows(), 1);
    EXPECT_EQ(num(ar2, 0, "output_id"), ids[0]);

    auto [wid, wrid] = add_worker("w", {"a"}, 2);
    ASSERT_EQ(claim(wid).rows(), 2);
    insert_job("a");
    db::Params bw;
    bw.add("").add(wrid).add(0).add(1);
    auto b1 = c.exec("SELECT * FROM select_all_jobs_by_worker_rid($1, $2, $3, $4)", bw);
    ASSERT_EQ(b1.rows(), 1);
    EXPECT_EQ(num(b1, 0, "output_id"), ids[3]);  // the claim took ids[1] and ids[3]
    db::Params bw2;
    bw2.add("").add(wrid).add(ids[3]).add(10);
    auto b2 = c.exec("SELECT * FROM select_all_jobs_by_worker_rid($1, $2, $3, $4)", bw2);
    ASSERT_EQ(b2.rows(), 1);
    EXPECT_EQ(num(b2, 0, "output_id"), ids[1]);
}

TEST_F(CompatSql, SearchMatchesLiterallyCaseInsensitive) {
    for (const char* t : {"a_c", "abc", "50%off", "50xoff", "back\\slash", "backxslash"})
        insert_job(t);
    auto search = [&](const std::string& term) {
        db::Params p;
        p.add("").add(term).add(0).add(100);
        auto r = c.exec("SELECT * FROM select_all_jobs_by_search($1, $2, $3, $4)", p);
        std::set<std::string> out;
        for (int i = 0; i < r.rows(); ++i) out.insert(col(r, i, "output_task_name"));
        return out;
    };
    EXPECT_EQ(search("_"), (std::set<std::string>{"a_c"}));
    EXPECT_EQ(search("A_C"), (std::set<std::string>{"a_c"}));
    EXPECT_EQ(search("%"), (std::set<std::string>{"50%off"}));
    EXPECT_EQ(search("\\"), (std::set<std::string>{"back\\slash"}));
    // (no hexadecimal letter: rids are searched too)
    EXPECT_EQ(search("K"), (std::set<std::string>{"back\\slash", "backxslash"}));
    EXPECT_EQ(search("queued").size(), 6u);  // status
    EXPECT_EQ(search("nothing-like-this").size(), 0u);
    EXPECT_EQ(search("").size(), 6u);

    auto first = c.exec("SELECT * FROM select_all_jobs('', 0, 100)");
    std::string rid = col(first, 0, "output_rid");
    EXPECT_EQ(search(rid.substr(0, 8)).size(), 1u);

    // Archive variant.
    finish(num(first, 0, "output_id"), "SUCCEEDED", "[]", "");
    db::Params p;
    p.add("").add("succ").add(0).add(10);
    EXPECT_EQ(
        c.exec("SELECT * FROM select_all_jobs_from_archive_by_search($1, $2, $3, $4)", p).rows(),
        1);
    db::Params q;
    q.add("").add("%").add(0).add(10);
    EXPECT_EQ(
        c.exec("SELECT * FROM select_all_jobs_from_archive_by_search($1, $2, $3, $4)", q).rows(),
        0);

    // Workers: name, tasks, status.
    for (int i = 0; i < 5; ++i)
        add_worker("Worker" + std::to_string(i), {"task_" + std::to_string(i)}, 1);
    auto wsearch = [&](const std::string& term) {
        db::Params w;
        w.add(term).add(0).add(100);
        return c.exec("SELECT * FROM select_all_workers_by_search($1, $2, $3)", w).rows();
    };
    EXPECT_EQ(wsearch("Worker1"), 1);
    EXPECT_EQ(wsearch("worker"), 5);
    EXPECT_EQ(wsearch("TASK_3"), 1);
    EXPECT_EQ(wsearch("running"), 5);
    EXPECT_EQ(wsearch("k_"), 5);
    EXPECT_EQ(wsearch("%"), 0);
}

TEST_F(CompatSql, WorkerFunctions) {
    auto [wid, wrid] = add_worker("alpha", {"t1", "t2"}, 4, {"nf"});
    db::Params p;
    p.add(wrid);
    auto w = c.exec("SELECT * FROM select_worker($1)", p);
    ASSERT_EQ(w.rows(), 1);
    EXPECT_EQ(num(w, 0, "output_id"), wid);
    EXPECT_EQ(col(w, 0, "output_name"), "alpha");
    EXPECT_EQ(col(w, 0, "output_available_tasks"), "{t1,t2}");
    EXPECT_EQ(col(w, 0, "output_available_next_interval"), "{nf}");
    EXPECT_EQ(num(w, 0, "output_max_concurrency"), 4);
    EXPECT_EQ(col(w, 0, "output_status"), "RUNNING");

    // Unknown rid: no row.
    db::Params u;
    u.add("x").add("{}").add_array({}).add_array({}).add(1).add("RUNNING").add(
        "00000000-0000-0000-0000-000000000001");
    EXPECT_EQ(c.exec("SELECT * FROM update_worker($1, $2, $3, $4, $5, $6, $7)", u).rows(), 0);

    // A stop request is not undone by a racing heartbeat (deviation, §16 item 21)...
    db::Params stop;
    stop.add("alpha")
        .add("{}")
        .add_array({"t1", "t2"})
        .add_array({"nf"})
        .add(4)
        .add("STOPPING")
        .add(wrid);
    auto s = c.exec("SELECT * FROM update_worker($1, $2, $3, $4, $5, $6, $7)", stop);
    ASSERT_EQ(s.rows(), 1);
    EXPECT_EQ(col(s, 0, "output_status"), "STOPPING");
    db::Params beat;
    beat.add("alpha")
        .add("{}")
        .add_array({"t1", "t2", "t3"})
        .add_array({"nf"})
        .add(4)
        .add("RUNNING")
        .add(wrid);
    auto b = c.exec("SELECT * FROM update_worker($1, $2, $3, $4, $5, $6, $7)", beat);
    ASSERT_EQ(b.rows(), 1);
    EXPECT_EQ(col(b, 0, "output_status"), "STOPPING");
    EXPECT_EQ(col(b, 0, "output_available_tasks"), "{t1,t2,t3}");
    // ... while STOPPING -> STOPPED goes through.
    db::Params stopped;
    stopped.add("alpha").add("{}").add_array({}).add_array({}).add(0).add("STOPPED").add(wrid);
    EXPECT_EQ(col(c.exec("SELECT * FROM update_worker($1, $2, $3, $4, $5, $6, $7)", stopped), 0,
                  "output_status"),
              "STOPPED");

    // Listing: newest first, keyset by id.
    auto w2 = add_worker("beta", {}, 1);
    auto w3 = add_worker("gamma", {}, 1);
    auto l = c.exec("SELECT * FROM select_all_workers(0, 2)");
    ASSERT_EQ(l.rows(), 2);
    EXPECT_EQ(num(l, 0, "output_id"), w3.first);
    EXPECT_EQ(num(l, 1, "output_id"), w2.first);
    db::Params next;
    next.add(w2.first).add(10);
    auto l2 = c.exec("SELECT * FROM select_all_workers($1, $2)", next);
    ASSERT_EQ(l2.rows(), 1);
    EXPECT_EQ(num(l2, 0, "output_id"), wid);

    c.exec("SELECT delete_worker($1)", p);
    EXPECT_EQ(c.exec("SELECT * FROM select_worker($1)", p).rows(), 0);
}

TEST_F(CompatSql, StaleWorkersAreMarkedStoppedAndOldStoppedOnesDeleted) {
    // §15 item 50: 10-minute threshold.
    auto age = [&](const std::string& name, const std::string& status, int minutes) {
        auto w = add_worker(name, {}, 1);
        db::Params p;
        p.add(status).add(minutes).add(w.second);
        c.exec(
            "UPDATE worker SET status = $1, updated_at = CURRENT_TIMESTAMP - "
            "make_interval(mins => $2::int) WHERE rid = $3::uuid",
            p);
        return w.second;
    };
    age("stale-ready", "READY", 20);
    age("stale-running", "RUNNING", 20);
    age("stale-stopped", "STOPPED", 20);
    auto fresh_ready = age("fresh-ready", "READY", 1);
    auto fresh_running = age("fresh-running", "RUNNING", 0);
    auto cutoff = c.exec("SELECT (CURRENT_TIMESTAMP - INTERVAL '10 minutes')::text").str(0, 0);
    db::Params p;
    p.add("STOPPED").add("READY").add("RUNNING").add(cutoff);
    EXPECT_EQ(c.exec("SELECT update_stale_workers($1, $2, $3, $4)", p).i64(0, 0), 2);
    EXPECT_EQ(scalar("SELECT count(*) FROM worker WHERE status = 'STOPPED'"), 3);
    db::Params fr;
    fr.add(fresh_ready);
    EXPECT_EQ(col(c.exec("SELECT * FROM select_worker($1)", fr), 0, "output_status"), "READY");
    db::Params fu;
    fu.add(fresh_running);
    EXPECT_EQ(col(c.exec("SELECT * FROM select_worker($1)", fu), 0, "output_status"), "RUNNING");
}

TEST_F(CompatSql, DeleteStaleWorkersDeletesOnlyOldStoppedOnes) {
    // §15 item 51: 15-minute threshold.
    for (auto [status, minutes] : std::vector<std::pair<std::string, int>>{{"STOPPED", 120},
                                                                           {"STOPPED", 30},
                                                                           {"STOPPED", 5},
                                                                           {"STOPPED", 1},
                                                                           {"READY", 120},
                                                                           {"RUNNING", 120}}) {
        auto w = add_worker(status + std::to_string(minutes), {}, 1);
        db::Params p;
        p.add(status).add(minutes).add(w.second);
        c.exec(
            "UPDATE worker SET status = $1, updated_at = CURRENT_TIMESTAMP - "
            "make_interval(mins => $2::int) WHERE rid = $3::uuid",
            p);
    }
    auto cutoff = c.exec("SELECT (CURRENT_TIMESTAMP - INTERVAL '15 minutes')::text").str(0, 0);
    db::Params p;
    p.add(cutoff);
    EXPECT_EQ(c.exec("SELECT delete_stale_workers($1)", p).i64(0, 0), 2);
    std::set<std::string> left;
    auto r = c.exec("SELECT * FROM select_all_workers(0, 100)");
    for (int i = 0; i < r.rows(); ++i) left.insert(col(r, i, "output_name"));
    EXPECT_EQ(left, (std::set<std::string>{"STOPPED5", "STOPPED1", "READY120", "RUNNING120"}));
}

TEST_F(CompatSql, StaleJobsOfStoppedWorkersAreRecoveredNotSetInPlace) {
    // §15 item 52's three cases, with migration 7's semantics: a RUNNING job of a worker STOPPED
    // for 2 minutes is recovered as by queuerd's master (here: retries left -> back in the
    // queue, SCHEDULED, no worker); a SUCCEEDED-status row of that worker unchanged; a RUNNING
    // job of a READY worker unchanged. A worker STOPPED just now still ends its own jobs.
    auto dead = add_worker("dead", {"a"}, 5);
    auto alive = add_worker("alive", {"b"}, 5);
    auto j1 = num(insert_job("a", "QUEUED", std::nullopt,
                             R"({"on_error":{"max_retries":1,"retry_delay":0}})"),
                  0, "output_id");
    auto j2 = num(insert_job("a"), 0, "output_id");
    ASSERT_EQ(claim(dead.first).rows(), 2);
    insert_job("b");
    ASSERT_EQ(claim(alive.first).rows(), 1);
    db::Params s;
    s.add(j2);
    c.exec("UPDATE job SET status = 'SUCCEEDED' WHERE id = $1", s);
    db::Params st;
    st.add(dead.second);
    c.exec("UPDATE worker SET status = 'STOPPED' WHERE rid = $1::uuid", st);

    db::Params p;
    p.add("QUEUED").add("SUCCEEDED").add("CANCELLED").add("FAILED").add("STOPPED");
    EXPECT_EQ(c.exec("SELECT update_stale_jobs($1, $2, $3, $4, $5)", p).i64(0, 0), 0);
    c.exec(
        "UPDATE worker SET updated_at = CURRENT_TIMESTAMP - INTERVAL '3 minutes' "
        "WHERE rid = $1::uuid",
        st);
    EXPECT_EQ(c.exec("SELECT update_stale_jobs($1, $2, $3, $4, $5)", p).i64(0, 0), 1);
    db::Params q;
    q.add(j1);
    auto r = c.exec("SELECT status, worker_id, worker_rid FROM job WHERE id = $1", q);
    EXPECT_EQ(r.str(0, 0), "SCHEDULED");
    EXPECT_EQ(r.i64(0, 1), 0);
    EXPECT_TRUE(r.is_null(0, 2));
    EXPECT_EQ(c.exec("SELECT status FROM job WHERE id = $1", s).str(0, 0), "SUCCEEDED");
    EXPECT_EQ(scalar("SELECT count(*) FROM job WHERE task_name = 'b' AND status = 'RUNNING'"), 1);
}

TEST_F(CompatSql, DeleteJobDeletesFromTheArchiveOnly) {
    auto live = insert_job("a");
    auto ended = insert_job("a");
    auto archived = finish(num(ended, 0, "output_id"), "SUCCEEDED", "[]", "");
    ASSERT_EQ(archived.rows(), 1);
    db::Params l;
    l.add(col(live, 0, "output_rid"));
    c.exec("SELECT delete_job($1)", l);
    EXPECT_EQ(scalar("SELECT count(*) FROM job"), 1);
    db::Params e;
    e.add(col(ended, 0, "output_rid"));
    c.exec("SELECT delete_job($1)", e);
    EXPECT_EQ(scalar("SELECT count(*) FROM job_archive"), 0);
    db::Params k;
    k.add("").add(col(ended, 0, "output_rid"));
    EXPECT_EQ(c.exec("SELECT * FROM select_job_from_archive($1, $2)", k).rows(), 0);
    // Unknown rid: not an error.
    c.exec("SELECT delete_job('00000000-0000-0000-0000-000000000001'::uuid)");
}

TEST_F(CompatSql, UpdateMasterReturnsThePreviousRowOnlyWhenTaken) {
    db::Params first;
    first.add(11)
        .add("11111111-1111-1111-1111-111111111111")
        .add(R"({"master_lock_timeout": 300000000000})")
        .add(5);
    auto r = c.exec("SELECT * FROM update_master($1, $2, $3, $4)", first);
    ASSERT_EQ(r.rows(), 1);  // §15 item 9
    EXPECT_EQ(num(r, 0, "output_id"), 1);
    EXPECT_EQ(num(r, 0, "output_worker_id"), 0);
    EXPECT_TRUE(null_at(r, 0, "output_worker_rid"));
    EXPECT_EQ(col(r, 0, "output_settings"), "{}");

    auto m = c.exec("SELECT * FROM select_master()");
    ASSERT_EQ(m.rows(), 1);
    EXPECT_EQ(num(m, 0, "output_worker_id"), 11);
    EXPECT_EQ(col(m, 0, "output_worker_rid"), "11111111-1111-1111-1111-111111111111");
    EXPECT_EQ(col(m, 0, "output_settings"), R"({"master_lock_timeout": 300000000000})");

    // §15 item 10: a second worker while the lock is fresh gets no row.
    db::Params second;
    second.add(22).add("22222222-2222-2222-2222-222222222222").add("{}").add(5);
    EXPECT_EQ(c.exec("SELECT * FROM update_master($1, $2, $3, $4)", second).rows(), 0);
    EXPECT_EQ(num(c.exec("SELECT * FROM select_master()"), 0, "output_worker_id"), 11);

    // The holder renews (and sees itself as the previous holder).
    auto renew = c.exec("SELECT * FROM update_master($1, $2, $3, $4)", first);
    ASSERT_EQ(renew.rows(), 1);
    EXPECT_EQ(num(renew, 0, "output_worker_id"), 11);

    // Once the lock is older than the timeout the second worker takes it.
    c.exec("UPDATE master SET updated_at = CURRENT_TIMESTAMP - INTERVAL '6 minutes'");
    auto taken = c.exec("SELECT * FROM update_master($1, $2, $3, $4)", second);
    ASSERT_EQ(taken.rows(), 1);
    EXPECT_EQ(num(taken, 0, "output_worker_id"), 11);
    EXPECT_EQ(num(c.exec("SELECT * FROM select_master()"), 0, "output_worker_id"), 22);
}

TEST_F(CompatSql, RetentionWithoutTimescaleIsARecordedNoOpWithoutTrigger) {
    if (c.exec("SELECT queuer_compat_timescale_schema() IS NOT NULL").boolean(0, 0))
        GTEST_SKIP() << "job_archive is a hypertable here: retention is a TimescaleDB policy";
    const std::string triggers =
        "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger "
        "WHERE tgrelid = 'job_archive'::regclass AND NOT tgisinternal";
    EXPECT_EQ(c.exec(triggers).str(0, 0), "job_archive_notify_event");

    c.exec("SELECT add_retention_archive(7, FALSE)");
    c.exec("SELECT add_retention_archive(3)");  // TRUE by default; no TimescaleDB: same no-op
    EXPECT_EQ(c.exec(triggers).str(0, 0), "job_archive_notify_event");
    EXPECT_EQ(c.exec("SELECT to_regclass('job_archive_insert_counter') IS NULL").boolean(0, 0),
              true);
    EXPECT_EQ(scalar("SELECT retention_days FROM queuer_compat_retention"), 3);

    // No per-insert cleanup: an old archive row survives many more archive moves (§15 item 58
    // is the reference's behaviour; queuerd's master does retention instead).
    auto old = insert_job("old");
    finish(num(old, 0, "output_id"), "SUCCEEDED", "[]", "");
    c.exec("UPDATE job_archive SET updated_at = CURRENT_TIMESTAMP - INTERVAL '30 days'");
    for (int i = 0; i < 15; ++i)
        finish(num(insert_job("n"), 0, "output_id"), "SUCCEEDED", "[]", "");
    EXPECT_EQ(scalar("SELECT count(*) FROM job_archive"), 16);

    c.exec("SELECT remove_retention_archive(FALSE)");
    c.exec("SELECT remove_retention_archive()");
    EXPECT_TRUE(c.exec("SELECT retention_days FROM queuer_compat_retention").is_null(0, 0));
    EXPECT_EQ(c.exec(triggers).str(0, 0), "job_archive_notify_event");
}

TEST_F(CompatSql, InsertedJobIsClaimableByOurEngine) {
    // The text of core/src/engine_sql.hpp kClaim (queuerd's own claim), copied.
    const char* kClaim =
        "WITH picked AS ("
        " SELECT id FROM job"
        " WHERE status IN ('QUEUED', 'SCHEDULED')"
        "   AND (scheduled_at IS NULL OR scheduled_at <= CURRENT_TIMESTAMP)"
        "   AND task_name = ANY($1::varchar[])"
        "   AND COALESCE(options -> 'schedule' ->> 'next_interval', '') = ANY($2::varchar[])"
        " ORDER BY created_at, id LIMIT $3::int FOR UPDATE SKIP LOCKED)"
        " UPDATE job j SET status = 'RUNNING', worker_id = $4::bigint, worker_rid = $5::uuid,"
        "  started_at = CURRENT_TIMESTAMP, schedule_count = j.schedule_count + 1,"
        "  attempts = j.attempts + 1, updated_at = CURRENT_TIMESTAMP"
        " FROM picked WHERE j.id = picked.id RETURNING j.id, j.status, j.parameters";
    auto go = insert_job("engine.task");  // Go: year-0001 scheduled_at
    db::Params py_p;
    py_p.add_null().add("engine.task").add("[]").add("{\"x\": 1}").add("QUEUED").add_null().add(0);
    auto py = c.exec("SELECT * FROM insert_job($1, $2, $3, $4, $5, $6, $7)", py_p);  // Python
    auto w = add_worker("engine", {"engine.task"}, 5);
    db::Params p;
    p.add_array({"engine.task"}).add_array({""}).add(10).add(w.first).add(w.second);
    auto r = c.exec(kClaim, p);
    ASSERT_EQ(r.rows(), 2);
    std::set<int64_t> got{r.i64(0, 0), r.i64(1, 0)};
    EXPECT_EQ(got, (std::set<int64_t>{num(go, 0, "output_id"), num(py, 0, "output_id")}));
}

TEST_F(CompatSql, SelectAllConnectionsListsQueuerSessions) {
    auto cfg = schema.config();
    cfg.application_name = "queuer";
    auto q = db::Connection::open(cfg);
    auto r = c.exec("SELECT * FROM select_all_connections()");
    int pid = static_cast<int>(q.exec("SELECT pg_backend_pid()").i64(0, 0));
    bool found = false;
    for (int i = 0; i < r.rows(); ++i) {
        EXPECT_EQ(col(r, i, "output_application_name"), "queuer");
        if (num(r, i, "output_pid") == pid) {
            found = true;
            EXPECT_EQ(col(r, i, "output_datname"), cfg.database);
            EXPECT_FALSE(null_at(r, i, "output_usename"));
            EXPECT_FALSE(null_at(r, i, "output_state"));
            EXPECT_FALSE(null_at(r, i, "output_query"));
        }
    }
    EXPECT_TRUE(found);
}
