// Schema migrations. Each migration is applied once, in order, inside one transaction that holds
// a database-wide advisory lock; its version is recorded in queuer_schema_version. Tables,
// columns, defaults, status strings, trigger names and notification channels are the
// reference's (docs/compatibility.md); indexes are chosen for our own queries.
#include "queuer/schema.hpp"

#include <fmt/format.h>

#include "queuer/error.hpp"

namespace queuer {

namespace {

struct Migration {
    int version;
    const char* name;
    const char* sql;
};

// Never edit a released migration; append a new one.
const Migration kMigrations[] = {
    {1, "reference tables, notify triggers, indexes", R"SQL(
CREATE TABLE IF NOT EXISTS job (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rid UUID UNIQUE DEFAULT gen_random_uuid(),
    worker_id BIGINT DEFAULT 0,
    worker_rid UUID DEFAULT NULL,
    options JSONB DEFAULT '{}',
    task_name VARCHAR(100) DEFAULT '',
    parameters JSONB DEFAULT '[]',
    parameters_encrypted BYTEA DEFAULT '',
    parameters_keyed JSONB DEFAULT '{}',
    parameters_keyed_encrypted BYTEA DEFAULT '',
    status VARCHAR(50) DEFAULT 'QUEUED',
    scheduled_at TIMESTAMP DEFAULT NULL,
    started_at TIMESTAMP DEFAULT NULL,
    schedule_count INT DEFAULT 0,
    attempts INT DEFAULT 0,
    results JSONB DEFAULT '[]',
    results_encrypted BYTEA DEFAULT '',
    error TEXT DEFAULT '',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS job_archive (
    LIKE job INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (id, updated_at)
);

CREATE TABLE IF NOT EXISTS worker (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rid UUID UNIQUE DEFAULT gen_random_uuid(),
    name VARCHAR(100) DEFAULT '',
    options JSONB DEFAULT '{}',
    available_tasks VARCHAR[] DEFAULT ARRAY[]::VARCHAR[],
    available_next_interval VARCHAR[] DEFAULT ARRAY[]::VARCHAR[],
    current_concurrency INT DEFAULT 0,
    max_concurrency INT DEFAULT 1,
    status VARCHAR(50) DEFAULT 'READY',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS master (
    id INTEGER PRIMARY KEY DEFAULT 1,
    worker_id BIGINT DEFAULT 0,
    worker_rid UUID DEFAULT NULL,
    settings JSONB DEFAULT '{}',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO master (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

-- The reference's trigger function and triggers: channel job / job_archive (worker unused),
-- payload {"id", "rid", "status"}.
CREATE OR REPLACE FUNCTION notify_event() RETURNS TRIGGER AS $$
DECLARE
    data JSON;
    channel TEXT;
BEGIN
    IF TG_TABLE_NAME = 'job' THEN
        channel := 'job';
    ELSIF TG_TABLE_NAME = 'worker' THEN
        channel := 'worker';
    ELSE
        channel := 'job_archive';
    END IF;
    IF TG_OP = 'DELETE' THEN
        data := json_build_object('id', OLD.id, 'rid', OLD.rid, 'status', OLD.status);
        PERFORM pg_notify(channel, data::text);
        RETURN OLD;
    END IF;
    data := json_build_object('id', NEW.id, 'rid', NEW.rid, 'status', NEW.status);
    PERFORM pg_notify(channel, data::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE TRIGGER job_notify_event
    BEFORE INSERT OR UPDATE ON job
    FOR EACH ROW EXECUTE FUNCTION notify_event();
CREATE OR REPLACE TRIGGER job_archive_notify_event
    BEFORE INSERT ON job_archive
    FOR EACH ROW EXECUTE FUNCTION notify_event();

-- Indexes for what our queries read. The claim reads claimable rows in creation order.
CREATE INDEX IF NOT EXISTS idx_job_claim ON job (created_at, id)
    WHERE status IN ('QUEUED', 'SCHEDULED');
CREATE INDEX IF NOT EXISTS idx_job_worker_rid ON job (worker_rid);
CREATE INDEX IF NOT EXISTS idx_job_parent_rid ON job ((options ->> 'parent_rid'));
CREATE INDEX IF NOT EXISTS idx_job_archive_rid ON job_archive (rid);
CREATE INDEX IF NOT EXISTS idx_worker_rid ON worker (rid);
CREATE INDEX IF NOT EXISTS idx_worker_name ON worker (name);
CREATE INDEX IF NOT EXISTS idx_worker_status ON worker (status);
CREATE INDEX IF NOT EXISTS idx_master_worker_id ON master (worker_id);
CREATE INDEX IF NOT EXISTS idx_master_worker_rid ON master (worker_rid);
)SQL"},
    {2, "archive retention index", R"SQL(
-- The master's retention sweep deletes by age; TimescaleDB creates the same index itself.
CREATE INDEX IF NOT EXISTS idx_job_archive_updated_at ON job_archive (updated_at);
)SQL"},
};

constexpr int64_t kMigrationLockKey = 0x7175657565720001;  // "queuer" + 1

bool extension_available(db::Connection& c, const char* name) {
    db::Params p;
    p.add(name);
    return c.exec("SELECT 1 FROM pg_available_extensions WHERE name = $1", p).rows() > 0;
}

bool setup_timescale(db::Connection& c, TimescaleMode mode) {
    if (mode == TimescaleMode::Off) return false;
    if (!extension_available(c, "timescaledb")) {
        if (mode == TimescaleMode::On)
            throw Error(ErrorKind::Config,
                        "database.timescaledb is true but the server has no timescaledb "
                        "extension; install it or set timescaledb: auto");
        return false;
    }
    c.exec("SAVEPOINT queuer_timescale");
    try {
        c.exec("CREATE EXTENSION IF NOT EXISTS timescaledb CASCADE");
        c.exec("SELECT create_hypertable('job_archive', by_range('updated_at'), "
               "if_not_exists => TRUE, migrate_data => TRUE)");
        c.exec("RELEASE SAVEPOINT queuer_timescale");
        return true;
    } catch (const Error& e) {
        c.exec("ROLLBACK TO SAVEPOINT queuer_timescale");
        if (mode == TimescaleMode::On)
            throw Error(ErrorKind::Config,
                        fmt::format("database.timescaledb is true but job_archive could not "
                                    "become a hypertable: {}",
                                    e.what()));
        return false;
    }
}

}  // namespace

int schema_version() { return kMigrations[std::size(kMigrations) - 1].version; }

MigrationReport migrate(db::Connection& c, TimescaleMode timescale) {
    MigrationReport report;
    db::Transaction tx(c);
    db::Params lock;
    lock.add(kMigrationLockKey);
    c.exec("SELECT pg_advisory_xact_lock($1::bigint)", lock);
    // The connection sets search_path=<schema> unquoted, so PostgreSQL folds it to lower case
    // (as the Go reference's DSN does); create the schema under that same folded name, or a
    // mixed-case name would leave search_path pointing at nothing.
    std::string folded = c.schema();
    for (char& ch : folded)
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    c.exec(fmt::format("CREATE SCHEMA IF NOT EXISTS {}", db::quote_ident(folded)));
    c.exec(
        "CREATE TABLE IF NOT EXISTS queuer_schema_version ("
        " version INT PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)");
    auto cur = c.exec("SELECT COALESCE(MAX(version), 0) FROM queuer_schema_version");
    report.from_version = cur.i32(0, 0);
    report.to_version = report.from_version;
    if (report.from_version > schema_version()) {
        throw Error(ErrorKind::Database,
                    fmt::format("the database schema is at version {}, newer than this build "
                                "knows ({}); upgrade queuerd",
                                report.from_version, schema_version()));
    }
    if (report.from_version == 0) {
        // Best effort, as the reference: pgcrypto for its SQL functions, pg_trgm for search.
        for (const char* ext : {"pgcrypto", "pg_trgm"}) {
            if (!extension_available(c, ext)) continue;
            c.exec("SAVEPOINT queuer_ext");
            try {
                c.exec(fmt::format("CREATE EXTENSION IF NOT EXISTS {}", ext));
                c.exec("RELEASE SAVEPOINT queuer_ext");
            } catch (const Error&) {
                c.exec("ROLLBACK TO SAVEPOINT queuer_ext");
            }
        }
    }
    for (const auto& m : kMigrations) {
        if (m.version <= report.from_version) continue;
        try {
            c.exec(m.sql);
        } catch (const Error& e) {
            throw Error(e.kind(),
                        fmt::format("migration {} ({}) failed: {}", m.version, m.name, e.what()),
                        e.sqlstate());
        }
        db::Params p;
        p.add(m.version).add(m.name);
        c.exec("INSERT INTO queuer_schema_version (version, name) VALUES ($1, $2)", p);
        report.to_version = m.version;
    }
    report.timescaledb = setup_timescale(c, timescale);
    tx.commit();
    return report;
}

}  // namespace queuer
