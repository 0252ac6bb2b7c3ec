// Schema migrations against a real PostgreSQL: idempotence, concurrent start-up, the reference's
// tables/columns/defaults, notify triggers and payload, TimescaleDB modes.
#include <gtest/gtest.h>
#include <poll.h>
#include <rapidjson/document.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "queuer/db.hpp"
#include "queuer/error.hpp"
#include "queuer/schema.hpp"
#include "support/test_db.hpp"

using namespace queuer;
using queuer::test::TestSchema;

namespace {

struct Column {
    std::string name;
    std::string type;
    std::string default_expr;  // as pg_get_expr prints it; "" = no default
    bool identity = false;
};

bool operator==(const Column& a, const Column& b) {
    return a.name == b.name && a.type == b.type && a.default_expr == b.default_expr &&
           a.identity == b.identity;
}

std::ostream& operator<<(std::ostream& os, const Column& c) {
    return os << c.name << " " << c.type << (c.identity ? " IDENTITY" : "")
              << (c.default_expr.empty() ? "" : " DEFAULT " + c.default_expr);
}

// Columns of `table` in the test schema, in ordinal order, from information_schema.
std::vector<Column> columns_of(db::Connection& c, const std::string& table) {
    db::Params p;
    p.add(table);
    auto r = c.exec(
        "SELECT column_name, "
        " CASE WHEN data_type = 'ARRAY' THEN udt_name "
        "      WHEN character_maximum_length IS NOT NULL "
        "        THEN data_type || '(' || character_maximum_length || ')' "
        "      ELSE data_type END, "
        " COALESCE(column_default, ''), is_identity = 'YES' "
        "FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        p);
    std::vector<Column> out;
    for (int i = 0; i < r.rows(); ++i)
        out.push_back({r.str(i, 0), r.str(i, 1), r.str(i, 2), r.boolean(i, 3)});
    return out;
}

const char* const kTs = "timestamp without time zone";

// BEHAVIOUR.md §1.2
std::vector<Column> job_columns(bool archive) {
    return {
        {"id", "bigint", "", !archive},
        {"rid", "uuid", "gen_random_uuid()"},
        {"worker_id", "bigint", "0"},
        {"worker_rid", "uuid", ""},
        {"options", "jsonb", "'{}'::jsonb"},
        {"task_name", "character varying(100)", "''::character varying"},
        {"parameters", "jsonb", "'[]'::jsonb"},
        {"parameters_encrypted", "bytea", "'\\x'::bytea"},
        {"parameters_keyed", "jsonb", "'{}'::jsonb"},
        {"parameters_keyed_encrypted", "bytea", "'\\x'::bytea"},
        {"status", "character varying(50)", "'QUEUED'::character varying"},
        {"scheduled_at", kTs, ""},
        {"started_at", kTs, ""},
        {"schedule_count", "integer", "0"},
        {"attempts", "integer", "0"},
        {"results", "jsonb", "'[]'::jsonb"},
        {"results_encrypted", "bytea", "'\\x'::bytea"},
        {"error", "text", "''::text"},
        {"created_at", kTs, "CURRENT_TIMESTAMP"},
        {"updated_at", kTs, "CURRENT_TIMESTAMP"},
    };
}

bool table_exists(db::Connection& c, const std::string& name) {
    db::Params p;
    p.add(name);
    return c.exec(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = $1",
                p)
               .rows() > 0;
}

bool timescale_available(db::Connection& c) {
    return c.exec("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").rows() > 0;
}

// Waits up to `timeout` for a notification on `c` whose payload mentions `rid`.
std::optional<db::Notification> wait_notification(db::Connection& c, const std::string& rid,
                                                  std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        for (auto& n : c.drain_notifications())
            if (n.payload.find(rid) != std::string::npos) return n;
        pollfd pfd{c.socket(), POLLIN, 0};
        ::poll(&pfd, 1, 100);
    }
    return std::nullopt;
}

}  // namespace

TEST(Schema, FirstMigrationCreatesEverythingSecondIsANoOp) {
    TestSchema s;
    auto c = s.connect();
    auto first = migrate(c, TimescaleMode::Off);
    EXPECT_EQ(first.from_version, 0);
    EXPECT_EQ(first.to_version, schema_version());
    EXPECT_FALSE(first.timescaledb);
    for (const char* t : {"job", "job_archive", "worker", "master", "queuer_schema_version"})
        EXPECT_TRUE(table_exists(c, t)) << t;

    auto applied_before = c.exec(
        "SELECT version, applied_at::text FROM queuer_schema_version "
        "ORDER BY version");
    auto second = migrate(c, TimescaleMode::Off);
    EXPECT_EQ(second.from_version, schema_version());
    EXPECT_EQ(second.to_version, schema_version());
    auto applied_after = c.exec(
        "SELECT version, applied_at::text FROM queuer_schema_version "
        "ORDER BY version");
    ASSERT_EQ(applied_after.rows(), applied_before.rows());
    for (int i = 0; i < applied_after.rows(); ++i) {
        EXPECT_EQ(applied_after.str(i, 0), applied_before.str(i, 0));
        EXPECT_EQ(applied_after.str(i, 1), applied_before.str(i, 1));
    }
    // The master row exists once.
    EXPECT_EQ(c.exec("SELECT count(*) FROM master").i64(0, 0), 1);
}

TEST(Schema, MigrationKeepsExistingJobs) {
    TestSchema s;
    auto c = s.connect();
    migrate(c, TimescaleMode::Auto);
    c.exec("INSERT INTO job (task_name) VALUES ('survivor')");
    migrate(c, TimescaleMode::Auto);
    EXPECT_EQ(c.exec("SELECT count(*) FROM job WHERE task_name = 'survivor'").i64(0, 0), 1);
}

TEST(Schema, TenConcurrentMigrationsOnAFreshSchemaAllSucceed) {
    TestSchema s;
    constexpr int kThreads = 10;
    std::atomic<int> ok{0};
    std::vector<std::string> errors(kThreads);
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&, i] {
            try {
                auto c = db::Connection::open(s.config());
                while (!go.load()) std::this_thread::yield();
                auto r = migrate(c, TimescaleMode::Auto);
                if (r.to_version == schema_version())
                    ++ok;
                else
                    errors[i] = "ended at version " + std::to_string(r.to_version);
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    }
    go = true;
    for (auto& t : threads) t.join();
    for (int i = 0; i < kThreads; ++i) EXPECT_EQ(errors[i], "") << "thread " << i;
    EXPECT_EQ(ok.load(), kThreads);

    auto c = s.connect();
    auto r = c.exec(
        "SELECT version, count(*) FROM queuer_schema_version GROUP BY version "
        "ORDER BY version");
    ASSERT_EQ(r.rows(), schema_version());
    for (int i = 0; i < r.rows(); ++i) {
        EXPECT_EQ(r.i32(i, 0), i + 1);
        EXPECT_EQ(r.i64(i, 1), 1) << "version " << r.i32(i, 0) << " recorded more than once";
    }
    EXPECT_EQ(c.exec("SELECT count(*) FROM master").i64(0, 0), 1);
}

TEST(Schema, JobTableHasTheReferenceColumns) {
    TestSchema s;
    auto c = s.connect();
    migrate(c, TimescaleMode::Off);
    EXPECT_EQ(columns_of(c, "job"), job_columns(false));
    // No NOT NULL apart from the primary key.
    auto nn = c.exec(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'job' "
        "AND is_nullable = 'NO'");
    ASSERT_EQ(nn.rows(), 1);
    EXPECT_EQ(nn.str(0, 0), "id");
    // rid is unique in job.
    c.exec("INSERT INTO job (rid) VALUES ('0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11')");
    EXPECT_THROW(c.exec("INSERT INTO job (rid) VALUES ('0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11')"),
                 Error);
}

TEST(Schema, JobDefaultsAreTheReferences) {
    TestSchema s;
    auto c = s.connect();
    migrate(c, TimescaleMode::Off);
    auto r = c.exec(
        "INSERT INTO job DEFAULT VALUES RETURNING status, worker_id, options::text, "
        "task_name, parameters::text, parameters_keyed::text, results::text, error, "
        "schedule_count, attempts, length(parameters_encrypted), rid IS NOT NULL, "
        "created_at IS NOT NULL");
    EXPECT_EQ(r.str(0, 0), "QUEUED");
    EXPECT_EQ(r.i64(0, 1), 0);
    EXPECT_EQ(r.str(0, 2), "{}");
    EXPECT_EQ(r.str(0, 3), "");
    EXPECT_EQ(r.str(0, 4), "[]");
    EXPECT_EQ(r.str(0, 5), "{}");
    EXPECT_EQ(r.str(0, 6), "[]");
    EXPECT_EQ(r.str(0, 7), "");
    EXPECT_EQ(r.i32(0, 8), 0);
    EXPECT_EQ(r.i32(0, 9), 0);
    EXPECT_EQ(r.i32(0, 10), 0);
    EXPECT_TRUE(r.boolean(0, 11));
    EXPECT_TRUE(r.boolean(0, 12));
}

TEST(Schema, JobArchiveCopiesJobWithoutIdentityAndWithCompositeKey) {
    TestSchema s;
    auto c = s.connect();
    migrate(c, TimescaleMode::Off);
    EXPECT_EQ(columns_of(c, "job_archive"), job_columns(true));
    auto pk = c.exec(
        "SELECT a.attname FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = 'job_archive'::regclass AND i.indisprimary ORDER BY a.attname");
    ASSERT_EQ(pk.rows(), 2);
    EXPECT_EQ(pk.str(0, 0), "id");
    EXPECT_EQ(pk.str(1, 0), "updated_at");
    // id keeps the value it had in job (no identity), rid is not unique in the archive.
    c.exec(
        "INSERT INTO job_archive (id, rid, updated_at) VALUES "
        "(7, '0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11', '2026-01-01'), "
        "(8, '0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11', '2026-01-02')");
    EXPECT_EQ(c.exec("SELECT count(*) FROM job_archive").i64(0, 0), 2);
}

TEST(Schema, WorkerTableHasTheReferenceColumns) {
    TestSchema s;
    auto c = s.connect();
    migrate(c, TimescaleMode::Off);
    std::vector<Column> expected = {
        {"id", "bigint", "", true},
        {"rid", "uuid", "gen_random_uuid()"},
        {"name", "character varying(100)", "''::character varying"},
        {"options", "jsonb", "'{}'::jsonb"},
        {"available_tasks", "_varchar", "ARRAY[]::character varying[]"},
        {"available_next_interval", "_varchar", "ARRAY[]::character varying[]"},
        {"current_concurrency", "integer", "0"},
        {"max_concurrency", "integer", "1"},
        {"status", "character varying(50)", "'READY'::character varying"},
        {"created_at", kTs, "CURRENT_TIMESTAMP"},
        {"updated_at", kTs, "CURRENT_TIMESTAMP"},
    };
    EXPECT_EQ(columns_of(c, "worker"), expected);
    auto r = c.exec(
        "INSERT INTO worker DEFAULT VALUES RETURNING status, max_concurrency, "
        "cardinality(available_tasks)");
    EXPECT_EQ(r.str(0, 0), "READY");
    EXPECT_EQ(r.i32(0, 1), 1);
    EXPECT_EQ(r.i32(0, 2), 0);
}

TEST(Schema, MasterTableHasTheReferenceColumnsAndOneRow) {
    TestSchema s;
    auto c = s.connect();
    migrate(c, TimescaleMode::Off);
    std::vector<Column> expected = {
        {"id", "integer", "1"},
        {"worker_id", "bigint", "0"},
        {"worker_rid", "uuid", ""},
        {"settings", "jsonb", "'{}'::jsonb"},
        {"created_at", kTs, "CURRENT_TIMESTAMP"},
        {"updated_at", kTs, "CURRENT_TIMESTAMP"},
    };
    EXPECT_EQ(columns_of(c, "master"), expected);
    auto r = c.exec("SELECT id, worker_id, worker_rid IS NULL, settings::text FROM master");
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.i32(0, 0), 1);
    EXPECT_EQ(r.i64(0, 1), 0);
    EXPECT_TRUE(r.boolean(0, 2));
    EXPECT_EQ(r.str(0, 3), "{}");
}

TEST(Schema, NotifyTriggersExist) {
    TestSchema s;
    auto c = s.connect();
    migrate(c, TimescaleMode::Off);
    auto r = c.exec(
        "SELECT event_object_table, trigger_name, string_agg(event_manipulation, ',' "
        "  ORDER BY event_manipulation), action_timing, action_orientation "
        "FROM information_schema.triggers WHERE trigger_schema = current_schema() "
        "AND trigger_name LIKE '%notify%' GROUP BY 1, 2, 4, 5 ORDER BY 1, 2");
    // The reference's trigger names and channels, fired once per statement (migrations 5, 6).
    ASSERT_EQ(r.rows(), 3);
    EXPECT_EQ(r.str(0, 0), "job");
    EXPECT_EQ(r.str(0, 1), "job_notify_event");
    EXPECT_EQ(r.str(0, 2), "INSERT");
    EXPECT_EQ(r.str(0, 3), "AFTER");
    EXPECT_EQ(r.str(0, 4), "STATEMENT");
    EXPECT_EQ(r.str(1, 0), "job");
    EXPECT_EQ(r.str(1, 1), "job_notify_update");
    EXPECT_EQ(r.str(1, 2), "UPDATE");
    EXPECT_EQ(r.str(2, 0), "job_archive");
    EXPECT_EQ(r.str(2, 1), "job_archive_notify_event");
    EXPECT_EQ(r.str(2, 2), "INSERT");
    // Migration 7's guards: sealed jobs out of a reloaded reference claim, queuerd's workers
    // told apart from the references'.
    auto g = c.exec(
        "SELECT string_agg(event_object_table || '.' || trigger_name, ',' ORDER BY trigger_name) "
        "FROM information_schema.triggers WHERE trigger_schema = current_schema() "
        "AND trigger_name NOT LIKE '%notify%'");
    EXPECT_EQ(g.str(0, 0), "job.job_guard_sealed_claim,worker.worker_mark_daemon");
}

TEST(Schema, BatchInsertSendsOneNotificationPerStatusNotPerRow) {
    TestSchema s;
    auto c = s.connect();
    migrate(c, TimescaleMode::Off);
    auto listener = s.connect();
    listener.listen("job");
    c.exec("INSERT INTO job (task_name) SELECT 'bulk' FROM generate_series(1, 500)");
    c.exec("INSERT INTO job (task_name, status) VALUES ('a', 'SCHEDULED'), ('b', 'QUEUED')");
    c.exec("UPDATE job SET status = 'RUNNING' WHERE task_name IN ('a', 'b')");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto notes = listener.drain_notifications();
    // Channels are database-wide: count only notifications about this schema's rows (tests in
    // other schemas run at the same time).
    auto ours = [&](const std::string& payload) {
        auto r = c.exec("SELECT rid::text FROM job");
        for (int i = 0; i < r.rows(); ++i)
            if (payload.find(r.str(i, 0)) != std::string::npos) return true;
        return false;
    };
    int queued = 0, scheduled = 0, running = 0;
    for (const auto& n : notes) {
        EXPECT_EQ(n.channel, "job");
        EXPECT_NE(n.payload.find("\"rid\""), std::string::npos) << n.payload;
        if (!ours(n.payload)) continue;
        if (n.payload.find("QUEUED") != std::string::npos) ++queued;
        if (n.payload.find("SCHEDULED") != std::string::npos) ++scheduled;
        if (n.payload.find("RUNNING") != std::string::npos) ++running;
    }
    EXPECT_EQ(queued, 2);  // one per INSERT statement, not 501
    EXPECT_EQ(scheduled, 1);
    EXPECT_EQ(running, 1);  // updates too: one per status per statement (migration 6)
}

TEST(Schema, InsertNotifiesChannelJobWithTheReferencePayload) {
    TestSchema s;
    auto c = s.connect();
    migrate(c, TimescaleMode::Off);
    auto listener = s.connect();
    listener.listen("job");
    auto r = c.exec("INSERT INTO job (task_name) VALUES ('n') RETURNING id, rid");
    const int64_t id = r.i64(0, 0);
    const std::string rid = r.str(0, 1);

    auto note = wait_notification(listener, rid, std::chrono::seconds(10));
    ASSERT_TRUE(note) << "no notification on channel job";
    EXPECT_EQ(note->channel, "job");
    rapidjson::Document d;
    d.Parse(note->payload.c_str());
    ASSERT_TRUE(d.IsObject()) << note->payload;
    EXPECT_EQ(d.MemberCount(), 3u) << note->payload;
    ASSERT_TRUE(d.HasMember("id") && d["id"].IsInt64()) << note->payload;
    EXPECT_EQ(d["id"].GetInt64(), id);
    ASSERT_TRUE(d.HasMember("rid") && d["rid"].IsString());
    EXPECT_EQ(std::string(d["rid"].GetString()), rid);
    ASSERT_TRUE(d.HasMember("status") && d["status"].IsString());
    EXPECT_STREQ(d["status"].GetString(), "QUEUED");
}

TEST(Schema, ArchiveInsertNotifiesChannelJobArchive) {
    TestSchema s;
    auto c = s.connect();
    migrate(c, TimescaleMode::Off);
    auto listener = s.connect();
    listener.listen("job_archive");
    const std::string rid = "5d0c1f0e-0000-4000-8000-00000000abcd";
    db::Params p;
    p.add(rid);
    c.exec("INSERT INTO job_archive (id, rid, status) VALUES (99, $1::uuid, 'SUCCEEDED')", p);
    auto note = wait_notification(listener, rid, std::chrono::seconds(10));
    ASSERT_TRUE(note);
    EXPECT_EQ(note->channel, "job_archive");
    rapidjson::Document d;
    d.Parse(note->payload.c_str());
    ASSERT_TRUE(d.IsObject());
    EXPECT_EQ(d["id"].GetInt64(), 99);
    EXPECT_STREQ(d["status"].GetString(), "SUCCEEDED");
}

TEST(Schema, NotificationIsDeliveredOnlyAtCommit) {
    TestSchema s;
    auto c = s.connect();
    migrate(c, TimescaleMode::Off);
    auto listener = s.connect();
    listener.listen("job");
    std::string rid;
    {
        db::Transaction tx(c);
        rid = c.exec("INSERT INTO job DEFAULT VALUES RETURNING rid").str(0, 0);
        EXPECT_FALSE(wait_notification(listener, rid, std::chrono::milliseconds(300)));
        // rolled back here
    }
    EXPECT_FALSE(wait_notification(listener, rid, std::chrono::milliseconds(300)));
}

TEST(Schema, TimescaleAutoWithoutTheExtensionGivesAPlainArchive) {
    TestSchema s;
    auto c = s.connect();
    if (timescale_available(c)) GTEST_SKIP() << "timescaledb is installed on this server";
    auto report = migrate(c, TimescaleMode::Auto);
    EXPECT_FALSE(report.timescaledb);
    auto r = c.exec("SELECT relkind FROM pg_class WHERE oid = 'job_archive'::regclass");
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.str(0, 0), "r");
    EXPECT_EQ(c.exec("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").rows(), 0);
}

TEST(Schema, TimescaleTrueWithoutTheExtensionIsAClearConfigError) {
    TestSchema s;
    auto c = s.connect();
    if (timescale_available(c)) GTEST_SKIP() << "timescaledb is installed on this server";
    try {
        migrate(c, TimescaleMode::On);
        FAIL() << "expected Error(Config)";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Config);
        EXPECT_NE(std::string(e.what()).find("timescaledb"), std::string::npos) << e.what();
    }
    // Nothing half-done is left behind, and the connection is usable.
    EXPECT_TRUE(c.ok());
    EXPECT_FALSE(table_exists(c, "queuer_schema_version"));
    EXPECT_FALSE(table_exists(c, "job"));
    auto report = migrate(c, TimescaleMode::Off);
    EXPECT_EQ(report.to_version, schema_version());
}

TEST(Schema, MixedCaseSchemaNameWorks) {
    // search_path=<schema> folds an unquoted name to lower case; the migration must agree.
    DatabaseConfig cfg = queuer::test::fresh_config();
    cfg.schema = "Mixed_" + cfg.schema;
    std::string folded = cfg.schema;
    for (char& ch : folded) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    struct Drop {
        DatabaseConfig cfg;
        std::string name;
        ~Drop() {
            try {
                auto c = db::Connection::open(cfg);
                c.exec("DROP SCHEMA IF EXISTS " + db::quote_ident(name) + " CASCADE");
            } catch (...) {
            }
        }
    } drop{cfg, folded};
    auto c = db::Connection::open(cfg);
    auto report = migrate(c, TimescaleMode::Off);
    EXPECT_EQ(report.to_version, schema_version());
    c.exec("INSERT INTO job (task_name) VALUES ('mixed')");
    EXPECT_EQ(c.exec("SELECT current_schema()").str(0, 0), folded);
    EXPECT_EQ(c.exec("SELECT count(*) FROM job").i64(0, 0), 1);
}
