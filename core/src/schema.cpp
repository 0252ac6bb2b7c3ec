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

// Result columns and select lists shared by migration 3's functions (BEHAVIOUR.md §1.6: a "full
// job row", a worker row), with the reference's output_ prefix, names and types.
#define QUEUER_COMPAT_JOB_OUT                                                                   \
    "output_id BIGINT, output_rid UUID, output_worker_id BIGINT, output_worker_rid UUID, "      \
    "output_options JSONB, output_task_name VARCHAR(100), output_parameters JSONB, "            \
    "output_parameters_keyed JSONB, output_status VARCHAR(50), output_scheduled_at TIMESTAMP, " \
    "output_started_at TIMESTAMP, output_schedule_count INT, output_attempts INT, "             \
    "output_results JSONB, output_error TEXT, output_created_at TIMESTAMP, "                    \
    "output_updated_at TIMESTAMP"

// Plaintext columns; pgcrypto decryption only when a key is given and the column is sealed.
#define QUEUER_COMPAT_DECRYPT(enc, plain)                 \
    "CASE WHEN octet_length(" enc                         \
    ") > 0 AND COALESCE(input_encryption_key, '') <> '' " \
    "THEN queuer_compat_decrypt(" enc ", " plain ", input_encryption_key) ELSE " plain " END"

#define QUEUER_COMPAT_JOB_SEL \
    "j.id, j.rid, j.worker_id, j.worker_rid, j.options, j.task_name, "                         \
    QUEUER_COMPAT_DECRYPT("j.parameters_encrypted", "j.parameters") ", "                       \
    QUEUER_COMPAT_DECRYPT("j.parameters_keyed_encrypted", "j.parameters_keyed") ", "           \
    "j.status, j.scheduled_at, j.started_at, j.schedule_count, j.attempts, "                   \
    QUEUER_COMPAT_DECRYPT("j.results_encrypted", "j.results") ", "                             \
    "j.error, j.created_at, j.updated_at"

#define QUEUER_COMPAT_WORKER_OUT                                                           \
    "output_id BIGINT, output_rid UUID, output_name VARCHAR(100), output_options JSONB, "  \
    "output_available_tasks VARCHAR[], output_available_next_interval VARCHAR[], "         \
    "output_max_concurrency INT, output_status VARCHAR(50), output_created_at TIMESTAMP, " \
    "output_updated_at TIMESTAMP"

#define QUEUER_COMPAT_WORKER_SEL                                                     \
    "w.id, w.rid, w.name, w.options, w.available_tasks, w.available_next_interval, " \
    "w.max_concurrency, w.status, w.created_at, w.updated_at"

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
    // Migration 3: the reference's SQL function inventory (BEHAVIOUR.md §1.6), so that Go and
    // Python queuer clients sharing this database find every function they call by name and
    // never load their own SQL. Same names, argument names/order/types and output_* result
    // columns as the reference (a reference reload, CREATE OR REPLACE, would then still succeed).
    // Deliberate deviations from the reference (BEHAVIOUR.md §16), each marked "Deviation" below,
    // are listed in docs/compatibility.md.
    {3, "reference SQL functions", R"SQL(
-- Whatever the reference (or an older revision of it) loaded into this schema goes first, every
-- overload, so that no stale overload makes a call ambiguous and no return-type change blocks
-- CREATE OR REPLACE. notify_event (migration 1, used by our triggers) is not touched; functions
-- owned by an extension are left alone.
DO $$
DECLARE
    f RECORD;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig
        FROM pg_proc p
        WHERE p.pronamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema())
          AND p.proname IN ('init_job', 'insert_job', 'update_job_initial', 'update_job_final',
              'update_job_final_encrypted', 'update_stale_jobs', 'delete_job', 'select_job',
              'select_job_from_archive', 'select_all_jobs', 'select_all_jobs_from_archive',
              'select_all_jobs_by_worker_rid', 'select_all_jobs_by_search',
              'select_all_jobs_from_archive_by_search', 'add_retention_archive',
              'remove_retention_archive', 'init_worker', 'insert_worker', 'update_worker',
              'update_stale_workers', 'delete_worker', 'delete_stale_workers', 'select_worker',
              'select_all_workers', 'select_all_workers_by_search', 'select_all_connections',
              'init_master', 'select_master', 'update_master')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                            AND d.deptype = 'e')
    LOOP
        EXECUTE 'DROP FUNCTION ' || f.sig::text;
    END LOOP;
END;
$$;

-- What add_retention_archive/remove_retention_archive asked for when TimescaleDB does not do it
-- (see there). One row at most.
CREATE TABLE IF NOT EXISTS queuer_compat_retention (
    id INTEGER PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    retention_days INT,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

-- The schema pgcrypto lives in, or NULL when it is not installed. Looked up at call time: the
-- extension may have been installed (or dropped) after this migration, in any schema.
CREATE OR REPLACE FUNCTION queuer_compat_pgcrypto_schema()
RETURNS TEXT AS $$
    SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pgcrypto'
$$ LANGUAGE sql STABLE;

-- pgp_sym_decrypt(data, key)::jsonb when pgcrypto is installed and the data decrypts; otherwise
-- the plaintext column. Deviation: the reference fails the whole query on a row it cannot
-- decrypt (wrong key, or a row sealed client-side by queuerd with libsodium); here such a row
-- reads as its plaintext column.
CREATE OR REPLACE FUNCTION queuer_compat_decrypt(input_data BYTEA, input_plain JSONB,
                                                 input_encryption_key TEXT)
RETURNS JSONB AS $$
DECLARE
    ns TEXT;
    plain JSONB;
BEGIN
    IF input_data IS NULL OR octet_length(input_data) = 0
       OR COALESCE(input_encryption_key, '') = '' THEN
        RETURN input_plain;
    END IF;
    ns := queuer_compat_pgcrypto_schema();
    IF ns IS NULL THEN
        RETURN input_plain;
    END IF;
    BEGIN
        EXECUTE format('SELECT %I.pgp_sym_decrypt($1, $2)::jsonb', ns)
            INTO plain USING input_data, input_encryption_key;
        RETURN plain;
    EXCEPTION WHEN OTHERS THEN
        RETURN input_plain;
    END;
END;
$$ LANGUAGE plpgsql STABLE;

-- An ILIKE pattern matching `term` as a literal substring. Deviation: the reference does not
-- escape, so % and _ in a search term were wildcards.
CREATE OR REPLACE FUNCTION queuer_compat_like(term TEXT)
RETURNS TEXT AS $$
    SELECT '%' || replace(replace(replace(COALESCE(term, ''), '\', '\\'), '%', '\%'), '_', '\_')
        || '%'
$$ LANGUAGE sql IMMUTABLE;

------------------------------------------------------------------------------------------------
-- Job functions
------------------------------------------------------------------------------------------------

-- The tables, triggers and indexes are migration 1's; this never drops or recreates anything.
-- TimescaleDB is decided by queuerd's migration (database.timescaledb), not by the argument.
-- Like the reference it makes sure pgcrypto exists (best effort, for the *_encrypted functions).
CREATE OR REPLACE FUNCTION init_job(input_enable_timescaledb BOOLEAN DEFAULT TRUE)
RETURNS VOID AS $$
BEGIN
    IF queuer_compat_pgcrypto_schema() IS NULL
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pgcrypto;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'init_job: pgcrypto not created: %', SQLERRM;
        END;
    END IF;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION insert_job(
    input_options JSONB,
    input_task_name VARCHAR(100),
    input_parameters JSONB,
    input_parameters_keyed JSONB,
    input_status VARCHAR(50),
    input_scheduled_at TIMESTAMP,
    input_schedule_count INT
)
RETURNS TABLE (
    output_id BIGINT, output_rid UUID, output_worker_id BIGINT, output_worker_rid UUID,
    output_options JSONB, output_task_name VARCHAR(100), output_parameters JSONB,
    output_parameters_keyed JSONB, output_status VARCHAR(50), output_scheduled_at TIMESTAMP,
    output_schedule_count INT, output_attempts INT, output_created_at TIMESTAMP,
    output_updated_at TIMESTAMP
) AS $$
BEGIN
    RETURN QUERY
    INSERT INTO job AS j (options, task_name, parameters, parameters_keyed, status, scheduled_at,
                          schedule_count)
    VALUES (input_options, input_task_name, input_parameters, input_parameters_keyed,
            input_status, input_scheduled_at, input_schedule_count)
    RETURNING j.id, j.rid, j.worker_id, j.worker_rid, j.options, j.task_name, j.parameters,
              j.parameters_keyed, j.status, j.scheduled_at, j.schedule_count, j.attempts,
              j.created_at, j.updated_at;
END;
$$ LANGUAGE plpgsql;

-- Claims up to the worker's free slots. Deviations (BEHAVIOUR.md §16 items 1, 3, 4):
-- * the worker row is locked first and the RUNNING count taken afterwards, in a statement of
--   its own (a fresh snapshot under READ COMMITTED), so claims of one worker that queued on the
--   lock see each other's rows and never claim more than max_concurrency in total;
-- * only due jobs: QUEUED or SCHEDULED with scheduled_at NULL or <= now (no 10-minute
--   look-ahead; this also applies to QUEUED rows with a future scheduled_at, as our engine);
-- * ordered by (created_at, id).
CREATE OR REPLACE FUNCTION update_job_initial(input_worker_id BIGINT)
RETURNS TABLE (
    output_id BIGINT, output_rid UUID, output_worker_id BIGINT, output_worker_rid UUID,
    output_options JSONB, output_task_name VARCHAR(100), output_parameters JSONB,
    output_parameters_keyed JSONB, output_status VARCHAR(50), output_scheduled_at TIMESTAMP,
    output_started_at TIMESTAMP, output_schedule_count INT, output_attempts INT,
    output_created_at TIMESTAMP, output_updated_at TIMESTAMP
) AS $$
DECLARE
    w_rid UUID;
    w_tasks VARCHAR[];
    w_next VARCHAR[];
    w_max INT;
    w_running BIGINT;
BEGIN
    SELECT w.rid, w.available_tasks, w.available_next_interval, w.max_concurrency
    INTO w_rid, w_tasks, w_next, w_max
    FROM worker w WHERE w.id = input_worker_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT count(*) INTO w_running FROM job j
    WHERE j.worker_id = input_worker_id AND j.status = 'RUNNING';
    IF COALESCE(w_max, 0) <= w_running THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT c.id FROM job c
        WHERE c.status IN ('QUEUED', 'SCHEDULED')
          AND (c.scheduled_at IS NULL OR c.scheduled_at <= CURRENT_TIMESTAMP)
          AND c.task_name = ANY(COALESCE(w_tasks, ARRAY[]::VARCHAR[]))
          AND (COALESCE(c.options -> 'schedule' ->> 'next_interval', '') = ''
               OR c.options -> 'schedule' ->> 'next_interval'
                  = ANY(COALESCE(w_next, ARRAY[]::VARCHAR[])))
        ORDER BY c.created_at, c.id
        LIMIT (w_max - w_running)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE job j SET
        worker_id = input_worker_id,
        worker_rid = w_rid,
        status = 'RUNNING',
        started_at = CURRENT_TIMESTAMP,
        schedule_count = j.schedule_count + 1,
        attempts = j.attempts + 1,
        updated_at = CURRENT_TIMESTAMP
    FROM picked
    WHERE j.id = picked.id
    RETURNING j.id, j.rid, j.worker_id, j.worker_rid, j.options, j.task_name, j.parameters,
              j.parameters_keyed, j.status, j.scheduled_at, j.started_at, j.schedule_count,
              j.attempts, j.created_at, j.updated_at;
END;
$$ LANGUAGE plpgsql;

-- Moves the job to the archive in one statement with the given final status, results and
-- error, as the reference: by id only, whoever calls first wins, a later call gets no row.
CREATE OR REPLACE FUNCTION update_job_final(
    input_id BIGINT,
    input_status VARCHAR(50),
    input_results JSONB,
    input_error TEXT
)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_JOB_OUT R"SQL(
) AS $$
BEGIN
    RETURN QUERY
    WITH moved AS (
        DELETE FROM job WHERE job.id = input_id RETURNING job.*
    )
    INSERT INTO job_archive AS a (id, rid, worker_id, worker_rid, options, task_name, parameters,
        parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, status, scheduled_at,
        started_at, schedule_count, attempts, results, error, created_at, updated_at)
    SELECT m.id, m.rid, m.worker_id, m.worker_rid, m.options, m.task_name, m.parameters,
        m.parameters_encrypted, m.parameters_keyed, m.parameters_keyed_encrypted, input_status,
        m.scheduled_at, m.started_at, m.schedule_count, m.attempts, input_results, input_error,
        m.created_at, CURRENT_TIMESTAMP
    FROM moved m
    RETURNING a.id, a.rid, a.worker_id, a.worker_rid, a.options, a.task_name, a.parameters,
              a.parameters_keyed, a.status, a.scheduled_at, a.started_at, a.schedule_count,
              a.attempts, a.results, a.error, a.created_at, a.updated_at;
END;
$$ LANGUAGE plpgsql;

-- As update_job_final, with the reference's server-side encryption: results are stored as
-- pgcrypto pgp_sym_encrypt(results, key) in results_encrypted (results left at '[]') and
-- returned as the plaintext input cast to JSONB. Deviation: when pgcrypto is not installed or
-- the key is empty, the results are stored in plaintext in results (the key is ignored).
-- queuerd itself never calls this: it seals results client-side with libsodium.
CREATE OR REPLACE FUNCTION update_job_final_encrypted(
    input_id BIGINT,
    input_status VARCHAR(50),
    input_results TEXT,
    input_error TEXT,
    input_encryption_key TEXT
)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_JOB_OUT R"SQL(
) AS $$
DECLARE
    ns TEXT;
    sealed BYTEA := ''::BYTEA;
    plain JSONB := input_results::JSONB;
BEGIN
    ns := queuer_compat_pgcrypto_schema();
    IF ns IS NOT NULL AND COALESCE(input_encryption_key, '') <> '' THEN
        EXECUTE format('SELECT %I.pgp_sym_encrypt($1, $2)', ns)
            INTO sealed USING input_results, input_encryption_key;
        plain := '[]'::JSONB;
    END IF;
    RETURN QUERY
    WITH moved AS (
        DELETE FROM job WHERE job.id = input_id RETURNING job.*
    )
    INSERT INTO job_archive AS a (id, rid, worker_id, worker_rid, options, task_name, parameters,
        parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, status, scheduled_at,
        started_at, schedule_count, attempts, results, results_encrypted, error, created_at,
        updated_at)
    SELECT m.id, m.rid, m.worker_id, m.worker_rid, m.options, m.task_name, m.parameters,
        m.parameters_encrypted, m.parameters_keyed, m.parameters_keyed_encrypted, input_status,
        m.scheduled_at, m.started_at, m.schedule_count, m.attempts, plain, sealed, input_error,
        m.created_at, CURRENT_TIMESTAMP
    FROM moved m
    RETURNING a.id, a.rid, a.worker_id, a.worker_rid, a.options, a.task_name, a.parameters,
              a.parameters_keyed, a.status, a.scheduled_at, a.started_at, a.schedule_count,
              a.attempts, input_results::JSONB, a.error, a.created_at, a.updated_at;
END;
$$ LANGUAGE plpgsql;

-- As the reference: every live row of a worker in worker_status (the master passes STOPPED)
-- whose status is none of the three excluded ones gets new_status, in place. Returns the count.
CREATE OR REPLACE FUNCTION update_stale_jobs(
    input_new_status VARCHAR(50),
    input_excluded_status1 VARCHAR(50),
    input_excluded_status2 VARCHAR(50),
    input_excluded_status3 VARCHAR(50),
    input_worker_status VARCHAR(50)
)
RETURNS INT AS $$
DECLARE
    affected INT;
BEGIN
    UPDATE job j SET status = input_new_status
    WHERE j.status NOT IN (input_excluded_status1, input_excluded_status2, input_excluded_status3)
      AND j.worker_rid IN (SELECT w.rid FROM worker w WHERE w.status = input_worker_status);
    GET DIAGNOSTICS affected = ROW_COUNT;
    RETURN affected;
END;
$$ LANGUAGE plpgsql;

-- Deletes an ended job: job_archive only, as the reference (live jobs must be cancelled first).
CREATE OR REPLACE FUNCTION delete_job(input_rid UUID)
RETURNS VOID AS $$
BEGIN
    DELETE FROM job_archive WHERE job_archive.rid = input_rid;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION select_job(input_encryption_key TEXT, input_rid UUID)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_JOB_OUT R"SQL(
) AS $$
BEGIN
    RETURN QUERY
    SELECT )SQL" QUEUER_COMPAT_JOB_SEL R"SQL( FROM job j WHERE j.rid = input_rid;
END;
$$ LANGUAGE plpgsql STABLE;

-- The archive's rid is not unique (its key is (id, updated_at)); the newest row wins.
CREATE OR REPLACE FUNCTION select_job_from_archive(input_encryption_key TEXT, input_rid UUID)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_JOB_OUT R"SQL(
) AS $$
BEGIN
    RETURN QUERY
    SELECT )SQL" QUEUER_COMPAT_JOB_SEL R"SQL( FROM job_archive j WHERE j.rid = input_rid
    ORDER BY j.updated_at DESC LIMIT 1;
END;
$$ LANGUAGE plpgsql STABLE;

-- Lists, newest first. Deviation (BEHAVIOUR.md §16 item 37): keyset pagination by id, as
-- queuerd's own client: last_id <= 0 starts at the newest row, otherwise rows with id < last_id
-- (an id that no longer exists still pages correctly; rows sharing a created_at are not skipped).
CREATE OR REPLACE FUNCTION select_all_jobs(input_encryption_key TEXT, input_last_id INT,
                                           input_entries INT)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_JOB_OUT R"SQL(
) AS $$
BEGIN
    RETURN QUERY
    SELECT )SQL" QUEUER_COMPAT_JOB_SEL R"SQL( FROM job j
    WHERE (COALESCE(input_last_id, 0) <= 0 OR j.id < input_last_id)
    ORDER BY j.id DESC LIMIT input_entries;
END;
$$ LANGUAGE plpgsql STABLE;

CREATE OR REPLACE FUNCTION select_all_jobs_from_archive(input_encryption_key TEXT,
                                                        input_last_id INT, input_entries INT)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_JOB_OUT R"SQL(
) AS $$
BEGIN
    RETURN QUERY
    SELECT )SQL" QUEUER_COMPAT_JOB_SEL R"SQL( FROM job_archive j
    WHERE (COALESCE(input_last_id, 0) <= 0 OR j.id < input_last_id)
    ORDER BY j.id DESC LIMIT input_entries;
END;
$$ LANGUAGE plpgsql STABLE;

CREATE OR REPLACE FUNCTION select_all_jobs_by_worker_rid(input_encryption_key TEXT,
    input_worker_rid UUID, input_last_id INT, input_entries INT)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_JOB_OUT R"SQL(
) AS $$
BEGIN
    RETURN QUERY
    SELECT )SQL" QUEUER_COMPAT_JOB_SEL R"SQL( FROM job j
    WHERE j.worker_rid = input_worker_rid
      AND (COALESCE(input_last_id, 0) <= 0 OR j.id < input_last_id)
    ORDER BY j.id DESC LIMIT input_entries;
END;
$$ LANGUAGE plpgsql STABLE;

-- Case-insensitive literal substring of rid, worker_id, task_name or status (see
-- queuer_compat_like for the escaping).
CREATE OR REPLACE FUNCTION select_all_jobs_by_search(input_encryption_key TEXT,
    input_search TEXT, input_last_id INT, input_entries INT)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_JOB_OUT R"SQL(
) AS $$
DECLARE
    pattern TEXT := queuer_compat_like(input_search);
BEGIN
    RETURN QUERY
    SELECT )SQL" QUEUER_COMPAT_JOB_SEL R"SQL( FROM job j
    WHERE (j.rid::text ILIKE pattern OR j.worker_id::text ILIKE pattern
           OR j.task_name ILIKE pattern OR j.status ILIKE pattern)
      AND (COALESCE(input_last_id, 0) <= 0 OR j.id < input_last_id)
    ORDER BY j.id DESC LIMIT input_entries;
END;
$$ LANGUAGE plpgsql STABLE;

CREATE OR REPLACE FUNCTION select_all_jobs_from_archive_by_search(input_encryption_key TEXT,
    input_search TEXT, input_last_id INT, input_entries INT)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_JOB_OUT R"SQL(
) AS $$
DECLARE
    pattern TEXT := queuer_compat_like(input_search);
BEGIN
    RETURN QUERY
    SELECT )SQL" QUEUER_COMPAT_JOB_SEL R"SQL( FROM job_archive j
    WHERE (j.rid::text ILIKE pattern OR j.worker_id::text ILIKE pattern
           OR j.task_name ILIKE pattern OR j.status ILIKE pattern)
      AND (COALESCE(input_last_id, 0) <= 0 OR j.id < input_last_id)
    ORDER BY j.id DESC LIMIT input_entries;
END;
$$ LANGUAGE plpgsql STABLE;

-- The TimescaleDB schema when it is installed and job_archive is a hypertable, else NULL.
CREATE OR REPLACE FUNCTION queuer_compat_timescale_schema()
RETURNS TEXT AS $$
DECLARE
    ns TEXT;
    is_hypertable BOOLEAN := FALSE;
BEGIN
    SELECT n.nspname::text INTO ns FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'timescaledb';
    IF ns IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables'
            ' WHERE hypertable_schema = current_schema() AND hypertable_name = ''job_archive'')'
        INTO is_hypertable;
    IF is_hypertable THEN
        RETURN ns;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql STABLE;

-- With TimescaleDB (requested and job_archive a hypertable): a retention policy dropping chunks
-- older than retention_days days, replacing any existing one (the reference errors when one
-- exists). Deviation (BEHAVIOUR.md §8.4, §16 item 24): without TimescaleDB the reference's
-- per-insert cleanup trigger is NOT installed; the request is only recorded in
-- queuer_compat_retention. queuerd's master deletes expired archive rows itself, in bounded
-- batches on a timer, according to its own master settings.
CREATE OR REPLACE FUNCTION add_retention_archive(input_retention_days INT,
                                                 input_enable_timescaledb BOOLEAN DEFAULT TRUE)
RETURNS VOID AS $$
DECLARE
    ns TEXT;
BEGIN
    IF COALESCE(input_enable_timescaledb, TRUE) THEN
        ns := queuer_compat_timescale_schema();
    END IF;
    IF ns IS NOT NULL THEN
        EXECUTE format('SELECT %I.remove_retention_policy(%L::regclass, if_exists => TRUE)',
                       ns, 'job_archive');
        EXECUTE format('SELECT %I.add_retention_policy(%L::regclass, $1)', ns, 'job_archive')
            USING make_interval(days => input_retention_days);
    END IF;
    INSERT INTO queuer_compat_retention (id, retention_days, updated_at)
    VALUES (1, input_retention_days, CURRENT_TIMESTAMP)
    ON CONFLICT (id) DO UPDATE SET retention_days = EXCLUDED.retention_days,
                                   updated_at = EXCLUDED.updated_at;
END;
$$ LANGUAGE plpgsql;

-- Removes the TimescaleDB policy (if any); without TimescaleDB only clears the recorded
-- setting. Never fails when nothing was set.
CREATE OR REPLACE FUNCTION remove_retention_archive(input_enable_timescaledb BOOLEAN DEFAULT TRUE)
RETURNS VOID AS $$
DECLARE
    ns TEXT;
BEGIN
    IF COALESCE(input_enable_timescaledb, TRUE) THEN
        ns := queuer_compat_timescale_schema();
    END IF;
    IF ns IS NOT NULL THEN
        EXECUTE format('SELECT %I.remove_retention_policy(%L::regclass, if_exists => TRUE)',
                       ns, 'job_archive');
    END IF;
    INSERT INTO queuer_compat_retention (id, retention_days, updated_at)
    VALUES (1, NULL, CURRENT_TIMESTAMP)
    ON CONFLICT (id) DO UPDATE SET retention_days = NULL, updated_at = EXCLUDED.updated_at;
END;
$$ LANGUAGE plpgsql;

------------------------------------------------------------------------------------------------
-- Worker functions
------------------------------------------------------------------------------------------------

-- The worker table is migration 1's: nothing to create.
CREATE OR REPLACE FUNCTION init_worker()
RETURNS VOID AS $$
BEGIN
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION insert_worker(
    input_name VARCHAR(100),
    input_options JSONB,
    input_max_concurrency INT
)
RETURNS TABLE (
    output_id BIGINT, output_rid UUID, output_name VARCHAR(100), output_options JSONB,
    output_max_concurrency INT, output_status VARCHAR(50), output_created_at TIMESTAMP,
    output_updated_at TIMESTAMP
) AS $$
BEGIN
    RETURN QUERY
    INSERT INTO worker AS w (name, options, max_concurrency)
    VALUES (input_name, input_options, input_max_concurrency)
    RETURNING w.id, w.rid, w.name, w.options, w.max_concurrency, w.status, w.created_at,
              w.updated_at;
END;
$$ LANGUAGE plpgsql;

-- Overwrites name, options, both lists, max_concurrency and status, and refreshes updated_at
-- (the reference's heartbeat). Deviation (BEHAVIOUR.md §16 item 21): a worker that is STOPPING
-- or STOPPED is never written back to READY or RUNNING (it keeps its status; the other columns
-- are written), so a heartbeat or task registration racing with a stop request cannot undo it.
CREATE OR REPLACE FUNCTION update_worker(
    input_name VARCHAR(100),
    input_options JSONB,
    input_available_tasks VARCHAR[],
    input_available_next_interval VARCHAR[],
    input_max_concurrency INT,
    input_status VARCHAR(50),
    input_rid UUID
)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_WORKER_OUT R"SQL(
) AS $$
BEGIN
    RETURN QUERY
    UPDATE worker w SET
        name = input_name,
        options = input_options,
        available_tasks = input_available_tasks,
        available_next_interval = input_available_next_interval,
        max_concurrency = input_max_concurrency,
        status = CASE WHEN w.status IN ('STOPPING', 'STOPPED')
                       AND input_status IN ('READY', 'RUNNING')
                      THEN w.status ELSE input_status END,
        updated_at = CURRENT_TIMESTAMP
    WHERE w.rid = input_rid
    RETURNING )SQL" QUEUER_COMPAT_WORKER_SEL R"SQL(;
END;
$$ LANGUAGE plpgsql;

-- Workers in status1 or status2 whose updated_at is older than the cutoff get new_status.
CREATE OR REPLACE FUNCTION update_stale_workers(
    input_new_status VARCHAR(50),
    input_status1 VARCHAR(50),
    input_status2 VARCHAR(50),
    input_cutoff_time TIMESTAMP
)
RETURNS INT AS $$
DECLARE
    affected INT;
BEGIN
    UPDATE worker w SET status = input_new_status
    WHERE w.status IN (input_status1, input_status2) AND w.updated_at < input_cutoff_time;
    GET DIAGNOSTICS affected = ROW_COUNT;
    RETURN affected;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION delete_worker(input_rid UUID)
RETURNS VOID AS $$
BEGIN
    DELETE FROM worker WHERE worker.rid = input_rid;
END;
$$ LANGUAGE plpgsql;

-- STOPPED workers whose updated_at is older than the cutoff are deleted.
CREATE OR REPLACE FUNCTION delete_stale_workers(input_cutoff_time TIMESTAMP)
RETURNS INT AS $$
DECLARE
    affected INT;
BEGIN
    DELETE FROM worker w WHERE w.status = 'STOPPED' AND w.updated_at < input_cutoff_time;
    GET DIAGNOSTICS affected = ROW_COUNT;
    RETURN affected;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION select_worker(input_rid UUID)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_WORKER_OUT R"SQL(
) AS $$
BEGIN
    RETURN QUERY
    SELECT )SQL" QUEUER_COMPAT_WORKER_SEL R"SQL( FROM worker w WHERE w.rid = input_rid;
END;
$$ LANGUAGE plpgsql STABLE;

-- Newest first, keyset by id (see select_all_jobs).
CREATE OR REPLACE FUNCTION select_all_workers(input_last_id INT, input_entries INT)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_WORKER_OUT R"SQL(
) AS $$
BEGIN
    RETURN QUERY
    SELECT )SQL" QUEUER_COMPAT_WORKER_SEL R"SQL( FROM worker w
    WHERE (COALESCE(input_last_id, 0) <= 0 OR w.id < input_last_id)
    ORDER BY w.id DESC LIMIT input_entries;
END;
$$ LANGUAGE plpgsql STABLE;

-- Literal, case-insensitive substring of name, the comma-joined available_tasks, or status.
CREATE OR REPLACE FUNCTION select_all_workers_by_search(input_search TEXT, input_last_id INT,
                                                        input_entries INT)
RETURNS TABLE (
)SQL" QUEUER_COMPAT_WORKER_OUT R"SQL(
) AS $$
DECLARE
    pattern TEXT := queuer_compat_like(input_search);
BEGIN
    RETURN QUERY
    SELECT )SQL" QUEUER_COMPAT_WORKER_SEL R"SQL( FROM worker w
    WHERE (w.name ILIKE pattern OR array_to_string(w.available_tasks, ',') ILIKE pattern
           OR w.status ILIKE pattern)
      AND (COALESCE(input_last_id, 0) <= 0 OR w.id < input_last_id)
    ORDER BY w.id DESC LIMIT input_entries;
END;
$$ LANGUAGE plpgsql STABLE;

-- Sessions whose application_name is 'queuer' (the reference's and queuerd's default).
CREATE OR REPLACE FUNCTION select_all_connections()
RETURNS TABLE (
    output_pid INT, output_datname NAME, output_usename NAME, output_application_name TEXT,
    output_query TEXT, output_state TEXT
) AS $$
BEGIN
    RETURN QUERY
    SELECT a.pid, a.datname, a.usename, a.application_name, a.query, a.state
    FROM pg_stat_activity a WHERE a.application_name = 'queuer';
END;
$$ LANGUAGE plpgsql STABLE;

------------------------------------------------------------------------------------------------
-- Master functions
------------------------------------------------------------------------------------------------

-- The master table is migration 1's; only the single row is ensured (idempotent).
CREATE OR REPLACE FUNCTION init_master()
RETURNS VOID AS $$
BEGIN
    INSERT INTO master (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION select_master()
RETURNS TABLE (
    output_id INTEGER, output_worker_id BIGINT, output_worker_rid UUID, output_settings JSONB,
    output_created_at TIMESTAMP, output_updated_at TIMESTAMP
) AS $$
BEGIN
    RETURN QUERY
    SELECT m.id, m.worker_id, m.worker_rid, m.settings, m.created_at, m.updated_at
    FROM master m WHERE m.id = 1;
END;
$$ LANGUAGE plpgsql STABLE;

-- Takes or renews the master lock as the reference: row 1 is taken when its updated_at is older
-- than lock_timeout_minutes minutes, or it is held by the caller's worker id, or by nobody
-- (worker_id 0). Returns the row as it was BEFORE (the first master sees worker_id 0); no row =
-- not master. The same row is used by queuerd's own master election.
CREATE OR REPLACE FUNCTION update_master(
    input_worker_id BIGINT,
    input_worker_rid UUID,
    input_settings JSONB,
    input_lock_timeout_minutes INT
)
RETURNS TABLE (
    output_id INTEGER, output_worker_id BIGINT, output_worker_rid UUID, output_settings JSONB,
    output_created_at TIMESTAMP, output_updated_at TIMESTAMP
) AS $$
BEGIN
    RETURN QUERY
    WITH previous AS (
        SELECT m.id, m.worker_id, m.worker_rid, m.settings, m.created_at, m.updated_at
        FROM master m
        WHERE m.id = 1
          AND (m.updated_at < CURRENT_TIMESTAMP
                              - make_interval(mins => COALESCE(input_lock_timeout_minutes, 0))
               OR m.worker_id = input_worker_id
               OR COALESCE(m.worker_id, 0) = 0)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE master u SET
        worker_id = input_worker_id,
        worker_rid = input_worker_rid,
        settings = input_settings,
        updated_at = CURRENT_TIMESTAMP
    FROM previous p
    WHERE u.id = p.id
    RETURNING p.id, p.worker_id, p.worker_rid, p.settings, p.created_at, p.updated_at;
END;
$$ LANGUAGE plpgsql;
)SQL"},
    {4, "in-place claims: fewer indexes on job", R"SQL(
-- A claim changes status, worker ids, counters and timestamps. When no index covers those
-- columns PostgreSQL updates the row in place (HOT) and writes no index entry at all; the
-- partial claim index (its predicate reads status) and the worker_rid / parent_rid indexes
-- prevented that. The claim reads (created_at, id) in order and skips the few RUNNING rows.
-- get_jobs_by_worker_rid and the master's sweep scan the (small) live table instead.
DROP INDEX IF EXISTS idx_job_claim;
DROP INDEX IF EXISTS idx_job_worker_rid;
DROP INDEX IF EXISTS idx_job_parent_rid;
CREATE INDEX IF NOT EXISTS idx_job_queue ON job (created_at, id);
-- Room on each page for the new row versions of in-place updates.
ALTER TABLE job SET (fillfactor = 80);
)SQL"},
    {5, "statement-level notifications", R"SQL(
-- Same channels and payloads as the reference's row triggers, fired once per statement:
-- * job, INSERT: one notification per status per statement (the first row of each). Listeners
--   only need to know that there is work; a COPY of 100,000 jobs sends one message, not
--   100,000, and does not wake every worker 100,000 times (reference BUG 2).
-- * job, UPDATE and job_archive, INSERT: one notification per row, as before (waiters and
--   update listeners need each rid), without a PL/pgSQL call per row.
CREATE OR REPLACE FUNCTION notify_job_inserted() RETURNS TRIGGER AS $$
BEGIN
    PERFORM pg_notify('job', json_build_object('id', f.id, 'rid', f.rid, 'status', f.status)::text)
    FROM (SELECT DISTINCT ON (status) id, rid, status FROM new_rows ORDER BY status, id) f;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION notify_rows() RETURNS TRIGGER AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0],
                      json_build_object('id', id, 'rid', rid, 'status', status)::text)
    FROM new_rows;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS job_notify_event ON job;
DROP TRIGGER IF EXISTS job_archive_notify_event ON job_archive;
CREATE TRIGGER job_notify_event AFTER INSERT ON job
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_job_inserted();
CREATE TRIGGER job_notify_update AFTER UPDATE ON job
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_rows('job');
CREATE TRIGGER job_archive_notify_event AFTER INSERT ON job_archive
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION notify_rows('job_archive');
)SQL"},
    {6, "faster drain: statement-level claim notifications, room for in-place claims, BRIN", R"SQL(
-- A claim UPDATEs many rows at once. Like inserts (migration 5), updates now send one
-- notification per status per statement: workers only need to hear that there is work (QUEUED,
-- SCHEDULED) and update listeners that something changed; one message per claimed row cost the
-- server a pg_notify call per job and every listener a wake-up per job.
CREATE OR REPLACE FUNCTION notify_job_statuses() RETURNS TRIGGER AS $$
BEGIN
    PERFORM pg_notify('job', json_build_object('id', f.id, 'rid', f.rid, 'status', f.status)::text)
    FROM (SELECT DISTINCT ON (status) id, rid, status FROM new_rows ORDER BY status, id) f;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS job_notify_event ON job;
DROP TRIGGER IF EXISTS job_notify_update ON job;
CREATE TRIGGER job_notify_event AFTER INSERT ON job
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_job_statuses();
CREATE TRIGGER job_notify_update AFTER UPDATE ON job
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_job_statuses();
-- A claim updates every row of a page within moments; each new row version must fit on the same
-- page for the update to stay in place (HOT, no index entries). Half of each page is kept free.
ALTER TABLE job SET (fillfactor = 50);
-- The archive's time index serves retention and time filters; rows arrive in time order, so a
-- BRIN index does that for a fraction of a B-tree's cost per archived job.
DROP INDEX IF EXISTS idx_job_archive_updated_at;
CREATE INDEX IF NOT EXISTS idx_job_archive_updated_at_brin ON job_archive USING brin (updated_at);
)SQL"},
    // Migration 7: one database with the Go and Python queuer clients (docs/compatibility.md,
    // "Sharing the database"). Fixes what a mixed cluster lost or misread; each function keeps
    // the reference's exact signature, so that a reference client reloading its own SQL still
    // succeeds (CREATE OR REPLACE), and the reference's calls keep working unchanged.
    {7, "interop with the Go and Python clients", R"SQL(
-- Settings of this database shared by every queuerd and queuerctl on it. 'compat' is the form
-- in which durations and times are written into job options: 'python' (float seconds, naive
-- ISO timestamps in UTC; the default, as the seed) or 'go' (integer nanoseconds, RFC 3339).
-- Set by `queuerctl migrate --compat python|go`.
CREATE TABLE IF NOT EXISTS queuer_settings (
    name VARCHAR(100) PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO queuer_settings (name, value) VALUES ('compat', 'python') ON CONFLICT (name) DO NOTHING;

-- The reference names these arguments enable_timescaledb (not input_...): PostgreSQL refuses a
-- CREATE OR REPLACE that renames an argument, so a reference reloading its job SQL failed.
DROP FUNCTION IF EXISTS init_job(BOOLEAN);
DROP FUNCTION IF EXISTS add_retention_archive(INT, BOOLEAN);
DROP FUNCTION IF EXISTS remove_retention_archive(BOOLEAN);

CREATE FUNCTION init_job(enable_timescaledb BOOLEAN DEFAULT TRUE)
RETURNS VOID AS $$
BEGIN
    IF queuer_compat_pgcrypto_schema() IS NULL
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pgcrypto;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'init_job: pgcrypto not created: %', SQLERRM;
        END;
    END IF;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION add_retention_archive(input_retention_days INT,
                                      enable_timescaledb BOOLEAN DEFAULT TRUE)
RETURNS VOID AS $$
DECLARE
    ns TEXT;
BEGIN
    IF COALESCE(enable_timescaledb, TRUE) THEN
        ns := queuer_compat_timescale_schema();
    END IF;
    IF ns IS NOT NULL THEN
        EXECUTE format('SELECT %I.remove_retention_policy(%L::regclass, if_exists => TRUE)',
                       ns, 'job_archive');
        EXECUTE format('SELECT %I.add_retention_policy(%L::regclass, $1)', ns, 'job_archive')
            USING make_interval(days => input_retention_days);
    END IF;
    INSERT INTO queuer_compat_retention (id, retention_days, updated_at)
    VALUES (1, input_retention_days, CURRENT_TIMESTAMP)
    ON CONFLICT (id) DO UPDATE SET retention_days = EXCLUDED.retention_days,
                                   updated_at = EXCLUDED.updated_at;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION remove_retention_archive(enable_timescaledb BOOLEAN DEFAULT TRUE)
RETURNS VOID AS $$
DECLARE
    ns TEXT;
BEGIN
    IF COALESCE(enable_timescaledb, TRUE) THEN
        ns := queuer_compat_timescale_schema();
    END IF;
    IF ns IS NOT NULL THEN
        EXECUTE format('SELECT %I.remove_retention_policy(%L::regclass, if_exists => TRUE)',
                       ns, 'job_archive');
    END IF;
    INSERT INTO queuer_compat_retention (id, retention_days, updated_at)
    VALUES (1, NULL, CURRENT_TIMESTAMP)
    ON CONFLICT (id) DO UPDATE SET retention_days = NULL, updated_at = EXCLUDED.updated_at;
END;
$$ LANGUAGE plpgsql;

-- Workers registered by queuerd. queuerd inserts its worker row directly; the Go and Python
-- clients register through insert_worker() (ours, or their own after a reload: same name), so
-- the trigger below tells them apart. A worker not listed here is judged by the reference's
-- rules: its heartbeat comes every 30 s and its timestamps are the start of a transaction that
-- may have been open for a while, and as a master it never steps down. Workers registered
-- before this migration are not listed (the cautious side).
CREATE TABLE IF NOT EXISTS queuer_worker_daemon (
    worker_id BIGINT PRIMARY KEY REFERENCES worker (id) ON DELETE CASCADE
);

CREATE OR REPLACE FUNCTION queuer_mark_daemon_worker() RETURNS TRIGGER AS $$
DECLARE
    ctx TEXT;
BEGIN
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    IF ctx !~ 'insert_worker(\(|")' THEN
        -- The worker table's own schema, whatever the inserting session's search_path.
        EXECUTE format('INSERT INTO %I.queuer_worker_daemon (worker_id) VALUES ($1) '
                       'ON CONFLICT DO NOTHING', TG_TABLE_SCHEMA) USING NEW.id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS worker_mark_daemon ON worker;
CREATE TRIGGER worker_mark_daemon AFTER INSERT ON worker
    FOR EACH ROW EXECUTE FUNCTION queuer_mark_daemon_worker();

-- How long a worker may go without a heartbeat before it counts as dead: the given threshold
-- for queuerd's workers; for a Go/Python worker never less than the reference's own 2 minutes
-- (its heartbeat is 30 s apart and may lag another 30 s or more), and 1 hour while STOPPING
-- (a reference worker does not heartbeat at all while it drains its jobs).
CREATE OR REPLACE FUNCTION queuer_stale_after(input_worker_id BIGINT, input_status VARCHAR(50),
                                              input_threshold INTERVAL)
RETURNS INTERVAL AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM queuer_worker_daemon d WHERE d.worker_id = input_worker_id)
            THEN input_threshold
        WHEN input_status = 'STOPPING' THEN GREATEST(input_threshold, INTERVAL '1 hour')
        ELSE GREATEST(input_threshold, INTERVAL '2 minutes')
    END
$$ LANGUAGE sql STABLE;

-- True while a master lock holder is a live Go/Python worker. Those masters never step down (a
-- failed renewal is ignored), so taking the lock from one would make two masters: the lock of
-- such a holder only passes once its worker is dead by the reference's own standard.
CREATE OR REPLACE FUNCTION queuer_reference_master_alive(input_worker_rid UUID)
RETURNS BOOLEAN AS $$
    SELECT EXISTS (
        SELECT 1 FROM worker w
        WHERE w.rid = input_worker_rid
          AND NOT EXISTS (SELECT 1 FROM queuer_worker_daemon d WHERE d.worker_id = w.id)
          AND w.updated_at >= CURRENT_TIMESTAMP
                              - queuer_stale_after(w.id, w.status, INTERVAL '0 seconds'))
$$ LANGUAGE sql STABLE;

-- options.schedule.start as a UTC timestamp, in any form a client writes: RFC 3339 with Z or an
-- offset (Go, queuerd before migration 7), naive ISO 8601 (Python; taken as UTC), PostgreSQL's
-- 'YYYY-MM-DD HH:MM:SS'. NULL when absent or unreadable.
CREATE OR REPLACE FUNCTION queuer_schedule_start(input_options JSONB)
RETURNS TIMESTAMP AS $$
DECLARE
    t TEXT;
BEGIN
    IF jsonb_typeof(input_options) IS DISTINCT FROM 'object'
       OR jsonb_typeof(input_options -> 'schedule') IS DISTINCT FROM 'object' THEN
        RETURN NULL;
    END IF;
    t := input_options -> 'schedule' ->> 'start';
    IF t IS NULL OR t !~ '^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([zZ]|[+-]\d{2}(:?\d{2})?)?)?$' THEN
        RETURN NULL;
    END IF;
    IF t ~ '[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([zZ]|[+-]\d{2}(:?\d{2})?)$' THEN
        RETURN t::timestamptz AT TIME ZONE 'UTC';
    END IF;
    RETURN t::timestamp;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END;
$$ LANGUAGE plpgsql STABLE;

-- The options with schedule.start and schedule.interval in the given form ('python': naive ISO
-- start in UTC, interval float seconds; 'go': RFC 3339 start in UTC, interval integer
-- nanoseconds). An integer interval is read as nanoseconds, any other JSON number as seconds.
-- Used by `queuerctl migrate --compat` to convert rows written in the other form.
CREATE OR REPLACE FUNCTION queuer_options_in_form(input_options JSONB, input_form TEXT)
RETURNS JSONB AS $$
DECLARE
    s JSONB;
    st TIMESTAMP;
    iv JSONB;
    ns NUMERIC;
    secs NUMERIC;
BEGIN
    IF jsonb_typeof(input_options) IS DISTINCT FROM 'object'
       OR jsonb_typeof(input_options -> 'schedule') IS DISTINCT FROM 'object'
       OR input_form NOT IN ('python', 'go') THEN
        RETURN input_options;
    END IF;
    s := input_options -> 'schedule';
    st := queuer_schedule_start(input_options);
    IF st IS NOT NULL THEN
        s := jsonb_set(s, '{start}', to_jsonb(
            to_char(st, 'YYYY-MM-DD"T"HH24:MI:SS') ||
            CASE WHEN input_form = 'go' THEN '.' || to_char(st, 'US') || 'Z'
                 WHEN to_char(st, 'US') <> '000000' THEN '.' || to_char(st, 'US')
                 ELSE '' END));
    END IF;
    iv := s -> 'interval';
    IF jsonb_typeof(iv) = 'number' THEN
        IF iv::text ~ '[.eE]' THEN
            ns := (iv::text)::numeric * 1000000000;
        ELSE
            ns := (iv::text)::numeric;
        END IF;
        IF input_form = 'go' THEN
            s := jsonb_set(s, '{interval}', to_jsonb(round(ns)::bigint));
        ELSE
            secs := trim_scale(round(ns / 1000000000, 9));
            s := jsonb_set(s, '{interval}', CASE WHEN scale(secs) = 0
                THEN (secs::text || '.0')::jsonb ELSE secs::text::jsonb END);
        END IF;
    END IF;
    RETURN jsonb_set(input_options, '{schedule}', s);
EXCEPTION WHEN OTHERS THEN
    RETURN input_options;
END;
$$ LANGUAGE plpgsql STABLE;

-- The reference's claim, as migration 3 had it, with two changes:
-- * A job due within the next 10 minutes is claimed early, as the reference's workers expect
--   (they wait for it themselves and only poll every 5 minutes), but only when the worker will
--   actually wait until it is due: the reference's worker waits for options.schedule.start, so
--   the start must not lie before scheduled_at. Retries and recovered jobs (SCHEDULED with a
--   delay, no start) and the later runs of a periodic job (start = the first run) are claimed
--   when due, as by queuerd's engine.
-- * A job whose parameters queuerd sealed (parameters_encrypted / parameters_keyed_encrypted)
--   is never claimed here: the reference reads only the plaintext columns and would run it
--   without its parameters. Only a queuerd worker with the key runs it.
CREATE OR REPLACE FUNCTION update_job_initial(input_worker_id BIGINT)
RETURNS TABLE (
    output_id BIGINT, output_rid UUID, output_worker_id BIGINT, output_worker_rid UUID,
    output_options JSONB, output_task_name VARCHAR(100), output_parameters JSONB,
    output_parameters_keyed JSONB, output_status VARCHAR(50), output_scheduled_at TIMESTAMP,
    output_started_at TIMESTAMP, output_schedule_count INT, output_attempts INT,
    output_created_at TIMESTAMP, output_updated_at TIMESTAMP
) AS $$
DECLARE
    w_rid UUID;
    w_tasks VARCHAR[];
    w_next VARCHAR[];
    w_max INT;
    w_running BIGINT;
BEGIN
    SELECT w.rid, w.available_tasks, w.available_next_interval, w.max_concurrency
    INTO w_rid, w_tasks, w_next, w_max
    FROM worker w WHERE w.id = input_worker_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT count(*) INTO w_running FROM job j
    WHERE j.worker_id = input_worker_id AND j.status = 'RUNNING';
    IF COALESCE(w_max, 0) <= w_running THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT c.id FROM job c
        WHERE c.status IN ('QUEUED', 'SCHEDULED')
          AND c.task_name = ANY(COALESCE(w_tasks, ARRAY[]::VARCHAR[]))
          AND (COALESCE(c.options -> 'schedule' ->> 'next_interval', '') = ''
               OR c.options -> 'schedule' ->> 'next_interval'
                  = ANY(COALESCE(w_next, ARRAY[]::VARCHAR[])))
          AND COALESCE(octet_length(c.parameters_encrypted), 0) = 0
          AND COALESCE(octet_length(c.parameters_keyed_encrypted), 0) = 0
          AND (c.scheduled_at IS NULL OR c.scheduled_at <= CURRENT_TIMESTAMP
               OR (c.scheduled_at <= CURRENT_TIMESTAMP + INTERVAL '10 minutes'
                   AND queuer_schedule_start(c.options)
                       >= c.scheduled_at - INTERVAL '1 second'))
        ORDER BY c.created_at, c.id
        LIMIT (w_max - w_running)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE job j SET
        worker_id = input_worker_id,
        worker_rid = w_rid,
        status = 'RUNNING',
        started_at = CURRENT_TIMESTAMP,
        schedule_count = j.schedule_count + 1,
        attempts = j.attempts + 1,
        updated_at = CURRENT_TIMESTAMP
    FROM picked
    WHERE j.id = picked.id
    RETURNING j.id, j.rid, j.worker_id, j.worker_rid, j.options, j.task_name, j.parameters,
              j.parameters_keyed, j.status, j.scheduled_at, j.started_at, j.schedule_count,
              j.attempts, j.created_at, j.updated_at;
END;
$$ LANGUAGE plpgsql;

-- The same protection when a reference client has reloaded its own update_job_initial (which
-- knows nothing of the sealed columns): a claim made from inside a function of that name never
-- takes a job whose parameters are sealed; the row is left as it was. queuerd's engine claims
-- with its own statement and is not affected.
CREATE OR REPLACE FUNCTION queuer_guard_sealed_claim() RETURNS TRIGGER AS $$
DECLARE
    ctx TEXT;
BEGIN
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    IF ctx ~ 'update_job_initial(\(|")' THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS job_guard_sealed_claim ON job;
CREATE TRIGGER job_guard_sealed_claim BEFORE UPDATE ON job FOR EACH ROW
    WHEN (NEW.status = 'RUNNING' AND OLD.status IS DISTINCT FROM 'RUNNING'
          AND (octet_length(OLD.parameters_encrypted) > 0
               OR octet_length(OLD.parameters_keyed_encrypted) > 0))
    EXECUTE FUNCTION queuer_guard_sealed_claim();

-- Recovers RUNNING jobs whose worker died (the ids given; rows another session holds are
-- skipped). A crash counts as an attempt. The job goes back to the queue, with no worker, when it
-- has retries left (max_retries of its options.on_error, else of its dead worker's default
-- on_error in worker.options): SCHEDULED at now + its retry delay for this attempt (retry_delay
-- with its backoff, at least 1 s; never before a scheduled_at it already had). When it died in
-- its previous attempt too (its error says so) it is not retried again: a job that crashes its
-- worker would otherwise kill one worker after another. Without retries left, or on a second
-- consecutive death, it is archived FAILED with the reason.
CREATE OR REPLACE FUNCTION queuer_recover_jobs(input_ids BIGINT[])
RETURNS TABLE (out_id BIGINT, out_rid UUID, out_task_name VARCHAR(100), out_worker_rid UUID,
               out_attempt INT, out_outcome TEXT, out_error TEXT, out_due_at TIMESTAMP) AS $$
BEGIN
    IF input_ids IS NULL OR cardinality(input_ids) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH cand AS (
        SELECT j.id, j.worker_rid AS wrid, GREATEST(j.attempts, 1) AS n, j.scheduled_at AS old_due,
               COALESCE(j.error, '') ~ '^the worker .* stopped responding during attempt [0-9]+'
                   AS again,
               COALESCE(
                   CASE WHEN jsonb_typeof(j.options -> 'on_error') = 'object'
                        THEN j.options -> 'on_error' END,
                   CASE WHEN jsonb_typeof(w.options) = 'object' AND w.options ? 'max_retries'
                        THEN w.options END,
                   '{}'::JSONB) AS oe
        FROM job j LEFT JOIN worker w ON w.rid = j.worker_rid
        WHERE j.id = ANY(input_ids) AND j.status = 'RUNNING'
        FOR UPDATE OF j SKIP LOCKED
    ),
    parsed AS (
        SELECT c.*,
               CASE WHEN jsonb_typeof(c.oe -> 'max_retries') = 'number'
                    THEN LEAST(GREATEST(floor((c.oe ->> 'max_retries')::NUMERIC), 0), 1000000)::INT
                    ELSE 0 END AS max_retries,
               CASE WHEN jsonb_typeof(c.oe -> 'retry_delay') = 'number'
                    THEN GREATEST((c.oe ->> 'retry_delay')::DOUBLE PRECISION, 0)
                    ELSE 0 END AS d,
               COALESCE(c.oe ->> 'retry_backoff', 'none') AS backoff,
               'the worker ' || COALESCE(c.wrid::TEXT, '(unknown)')
                   || ' stopped responding during attempt ' || GREATEST(c.n, 1) AS msg
        FROM cand c
    ),
    decided AS (
        SELECT p.*,
               (p.n <= p.max_retries AND NOT p.again) AS retry,
               GREATEST(1.0, LEAST(31536000.0, CASE p.backoff
                   WHEN 'linear' THEN p.d * p.n
                   WHEN 'exponential' THEN p.d * power(2::DOUBLE PRECISION, LEAST(p.n - 1, 40))
                   ELSE p.d END)) AS delay_s
        FROM parsed p
    ),
    requeued AS (
        UPDATE job j SET
            status = 'SCHEDULED',
            scheduled_at = GREATEST(COALESCE(d.old_due, '-infinity'::TIMESTAMP),
                                    LOCALTIMESTAMP + make_interval(secs => d.delay_s)),
            worker_id = 0,
            worker_rid = NULL,
            schedule_count = GREATEST(j.schedule_count - 1, 0),
            error = d.msg,
            updated_at = CURRENT_TIMESTAMP
        FROM decided d
        WHERE j.id = d.id AND d.retry
        RETURNING j.id, j.rid, j.task_name, d.wrid, d.n, j.error, j.scheduled_at
    ),
    failed AS (
        DELETE FROM job j USING decided d
        WHERE j.id = d.id AND NOT d.retry
        RETURNING j.*, d.wrid, d.n,
                  d.msg || CASE WHEN d.again
                      THEN '; the previous attempt ended the same way, so it is not retried again'
                      ELSE ' and no retries were left' END AS reason
    ),
    archived AS (
        INSERT INTO job_archive (id, rid, worker_id, worker_rid, options, task_name, parameters,
            parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, status,
            scheduled_at, started_at, schedule_count, attempts, results, results_encrypted, error,
            created_at, updated_at)
        SELECT f.id, f.rid, f.worker_id, f.worker_rid, f.options, f.task_name, f.parameters,
            f.parameters_encrypted, f.parameters_keyed, f.parameters_keyed_encrypted, 'FAILED',
            f.scheduled_at, f.started_at, f.schedule_count, f.attempts, '[]', '', f.reason,
            f.created_at, CURRENT_TIMESTAMP
        FROM failed f
        RETURNING id
    )
    SELECT r.id, r.rid, r.task_name, r.wrid, r.n, 'requeued'::TEXT, r.error, r.scheduled_at
    FROM requeued r
    UNION ALL
    SELECT f.id, f.rid, f.task_name, f.wrid, f.n, 'failed'::TEXT, f.reason, NULL::TIMESTAMP
    FROM failed f JOIN archived a ON a.id = f.id;
END;
$$ LANGUAGE plpgsql;

-- One pass of queuerd's master (kMasterSweep in core/src/master_sql.hpp), one round trip:
-- 1. workers without a heartbeat for their stale time (queuer_stale_after with the given
--    threshold) become STOPPED; never the caller itself;
-- 2. RUNNING jobs of workers that are dead (gone, just declared stale, or STOPPED/FAILED for
--    their stale time) are recovered by queuer_recover_jobs;
-- 3. rows with an ended status left in the live table (a Go/Python master's update_stale_jobs
--    of an older revision sets CANCELLED in place) are archived as they are, so that waiters see
--    them; at most 1,000 per pass;
-- 4. workers STOPPED for longer than the delete threshold are deleted.
-- Returns one row: counts, and JSON arrays (the first 20 of each) naming what was done.
CREATE OR REPLACE FUNCTION queuer_master_sweep(input_stale_secs DOUBLE PRECISION,
                                               input_delete_secs DOUBLE PRECISION,
                                               input_own_rid UUID)
RETURNS TABLE (stale_workers BIGINT, requeued_jobs BIGINT, failed_jobs BIGINT,
               deleted_workers BIGINT, requeued JSONB, failed JSONB, stale JSONB,
               archived_leftovers BIGINT) AS $$
DECLARE
    threshold INTERVAL := make_interval(secs => GREATEST(COALESCE(input_stale_secs, 0), 0));
    stale_rids UUID[];
    stale_list JSONB;
    dead_ids BIGINT[];
    ended_ids BIGINT[];
    n_requeued BIGINT := 0;
    n_failed BIGINT := 0;
    requeued_list JSONB := '[]';
    failed_list JSONB := '[]';
    n_deleted BIGINT := 0;
    n_leftovers BIGINT := 0;
BEGIN
    WITH s AS (
        UPDATE worker w SET status = 'STOPPED', updated_at = CURRENT_TIMESTAMP
        WHERE w.status IN ('READY', 'RUNNING', 'STOPPING')
          AND w.rid IS DISTINCT FROM input_own_rid
          AND w.updated_at < CURRENT_TIMESTAMP - queuer_stale_after(w.id, w.status, threshold)
        RETURNING w.rid, w.name
    )
    SELECT array_agg(s.rid),
           COALESCE((SELECT jsonb_agg(jsonb_build_object('rid', x.rid, 'name', x.name))
                     FROM (SELECT * FROM s LIMIT 20) x), '[]')
    INTO stale_rids, stale_list FROM s;

    SELECT array_agg(j.id) FILTER (WHERE j.status = 'RUNNING' AND (w.id IS NULL
               OR w.rid = ANY(COALESCE(stale_rids, ARRAY[]::UUID[]))
               OR (w.status IN ('STOPPED', 'FAILED') AND w.updated_at
                   < CURRENT_TIMESTAMP - queuer_stale_after(w.id, w.status, threshold)))),
           (array_agg(j.id) FILTER (WHERE j.status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')))[1:1000]
    INTO dead_ids, ended_ids
    FROM job j LEFT JOIN worker w ON w.rid = j.worker_rid
    WHERE j.status NOT IN ('QUEUED', 'SCHEDULED');

    WITH recovered AS (SELECT * FROM queuer_recover_jobs(dead_ids))
    SELECT count(*) FILTER (WHERE r.out_outcome = 'requeued'),
           count(*) FILTER (WHERE r.out_outcome = 'failed'),
           COALESCE((SELECT jsonb_agg(x.j) FROM (
               SELECT jsonb_build_object('rid', q.out_rid, 'task_name', q.out_task_name,
                   'worker_rid', q.out_worker_rid, 'attempt', q.out_attempt,
                   'scheduled_at', q.out_due_at) AS j
               FROM recovered q WHERE q.out_outcome = 'requeued' LIMIT 20) x), '[]'),
           COALESCE((SELECT jsonb_agg(x.j) FROM (
               SELECT jsonb_build_object('rid', q.out_rid, 'task_name', q.out_task_name,
                   'worker_rid', q.out_worker_rid, 'attempt', q.out_attempt,
                   'error', q.out_error) AS j
               FROM recovered q WHERE q.out_outcome = 'failed' LIMIT 20) x), '[]')
    INTO n_requeued, n_failed, requeued_list, failed_list
    FROM recovered r;

    IF ended_ids IS NOT NULL THEN
        WITH moved AS (
            DELETE FROM job j
            WHERE j.id IN (SELECT l.id FROM job l WHERE l.id = ANY(ended_ids)
                             AND l.status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
                           FOR UPDATE SKIP LOCKED)
            RETURNING j.*
        ), ins AS (
            INSERT INTO job_archive (id, rid, worker_id, worker_rid, options, task_name,
                parameters, parameters_encrypted, parameters_keyed, parameters_keyed_encrypted,
                status, scheduled_at, started_at, schedule_count, attempts, results,
                results_encrypted, error, created_at, updated_at)
            SELECT m.id, m.rid, m.worker_id, m.worker_rid, m.options, m.task_name, m.parameters,
                m.parameters_encrypted, m.parameters_keyed, m.parameters_keyed_encrypted,
                m.status, m.scheduled_at, m.started_at, m.schedule_count, m.attempts, m.results,
                m.results_encrypted, m.error, m.created_at, CURRENT_TIMESTAMP
            FROM moved m
            RETURNING 1
        )
        SELECT count(*) INTO n_leftovers FROM ins;
    END IF;

    WITH d AS (
        DELETE FROM worker w WHERE w.status = 'STOPPED'
          AND w.updated_at < CURRENT_TIMESTAMP
                             - make_interval(secs => GREATEST(COALESCE(input_delete_secs, 0), 0))
        RETURNING 1
    )
    SELECT count(*) INTO n_deleted FROM d;

    RETURN QUERY SELECT COALESCE(cardinality(stale_rids), 0)::BIGINT, n_requeued, n_failed,
                        n_deleted, requeued_list, failed_list, COALESCE(stale_list, '[]'),
                        n_leftovers;
END;
$$ LANGUAGE plpgsql;

-- Called by a Go or Python master each pass (with 'QUEUED' or 'CANCELLED', the three ended
-- statuses and 'STOPPED'). The reference sets every live job of a stopped worker to the new
-- status in place: Go requeues it still naming its old worker, Python leaves it CANCELLED in the
-- live table where no waiter ever sees it. Here, whatever new status is asked for:
-- * a job of such a worker that is not RUNNING (it is in the queue) forgets the worker;
-- * a RUNNING job of a worker in that status for 2 minutes (the reference's own stale time; a
--   live worker told to stop ends or hands back its jobs itself before that) is recovered as by
--   queuerd's master (queuer_recover_jobs: retried while retries are left, else FAILED).
-- Returns the number of jobs changed.
CREATE OR REPLACE FUNCTION update_stale_jobs(
    input_new_status VARCHAR(50),
    input_excluded_status1 VARCHAR(50),
    input_excluded_status2 VARCHAR(50),
    input_excluded_status3 VARCHAR(50),
    input_worker_status VARCHAR(50)
)
RETURNS INT AS $$
DECLARE
    affected INT := 0;
    recovered INT := 0;
    ids BIGINT[];
BEGIN
    UPDATE job j SET worker_id = 0, worker_rid = NULL
    WHERE j.status NOT IN (input_excluded_status1, input_excluded_status2, input_excluded_status3,
                           'RUNNING')
      AND j.worker_rid IN (SELECT w.rid FROM worker w WHERE w.status = input_worker_status);
    GET DIAGNOSTICS affected = ROW_COUNT;
    IF 'RUNNING' NOT IN (input_excluded_status1, input_excluded_status2,
                         input_excluded_status3) THEN
        SELECT array_agg(j.id) INTO ids
        FROM job j JOIN worker w ON w.rid = j.worker_rid
        WHERE j.status = 'RUNNING' AND w.status = input_worker_status
          AND w.updated_at < CURRENT_TIMESTAMP - INTERVAL '2 minutes';
        SELECT count(*) INTO recovered FROM queuer_recover_jobs(ids);
    END IF;
    RETURN affected + recovered;
END;
$$ LANGUAGE plpgsql;

-- The reference's lock rule (taken when expired by lock_timeout_minutes, held by the caller, or
-- by nobody; returns the row as it was before), except that the lock of a live Go/Python master
-- never passes to another worker: such a master does not step down when its renewal fails, so
-- two masters would run side by side (queuer_reference_master_alive).
CREATE OR REPLACE FUNCTION update_master(
    input_worker_id BIGINT,
    input_worker_rid UUID,
    input_settings JSONB,
    input_lock_timeout_minutes INT
)
RETURNS TABLE (
    output_id INTEGER, output_worker_id BIGINT, output_worker_rid UUID, output_settings JSONB,
    output_created_at TIMESTAMP, output_updated_at TIMESTAMP
) AS $$
BEGIN
    RETURN QUERY
    WITH previous AS (
        SELECT m.id, m.worker_id, m.worker_rid, m.settings, m.created_at, m.updated_at
        FROM master m
        WHERE m.id = 1
          AND (m.worker_id = input_worker_id
               OR COALESCE(m.worker_id, 0) = 0
               OR (m.updated_at < CURRENT_TIMESTAMP
                                  - make_interval(mins => COALESCE(input_lock_timeout_minutes, 0))
                   AND NOT queuer_reference_master_alive(m.worker_rid)))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE master u SET
        worker_id = input_worker_id,
        worker_rid = input_worker_rid,
        settings = input_settings,
        updated_at = CURRENT_TIMESTAMP
    FROM previous p
    WHERE u.id = p.id
    RETURNING p.id, p.worker_id, p.worker_rid, p.settings, p.created_at, p.updated_at;
END;
$$ LANGUAGE plpgsql;
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
        c.exec(
            "SELECT create_hypertable('job_archive', by_range('updated_at'), "
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

int schema_version() {
    return kMigrations[std::size(kMigrations) - 1].version;
}

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

CompatForm read_compat_form(db::Connection& c) {
    // to_regclass first: a missing table must not abort a transaction the caller is in.
    if (!c.exec("SELECT to_regclass('queuer_settings') IS NOT NULL").boolean(0, 0))
        return CompatForm::Python;
    auto v = c.exec("SELECT value FROM queuer_settings WHERE name = 'compat'");
    if (v.rows() == 0 || v.is_null(0, 0)) return CompatForm::Python;
    try {
        return parse_compat_form(v.get(0, 0), "queuer_settings.compat");
    } catch (const Error&) {
        return CompatForm::Python;
    }
}

CompatChange set_compat_form(db::Connection& c, CompatForm form) {
    CompatChange ch;
    ch.to = form;
    db::Transaction tx(c);
    if (c.exec("SELECT to_regclass('queuer_settings') IS NULL").boolean(0, 0))
        throw Error(
            ErrorKind::Database,
            "this schema has no queuer_settings table (migration 7); run queuerctl migrate");
    auto cur = c.exec("SELECT value FROM queuer_settings WHERE name = 'compat' FOR UPDATE");
    if (cur.rows() > 0) {
        try {
            ch.from = parse_compat_form(cur.get(0, 0), "queuer_settings.compat");
        } catch (const Error&) {
        }
    }
    db::Params p;
    p.add(to_string(form));
    c.exec(
        "INSERT INTO queuer_settings (name, value, updated_at) VALUES ('compat', $1, "
        "CURRENT_TIMESTAMP) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, "
        "updated_at = EXCLUDED.updated_at",
        p);
    for (const char* table : {"job", "job_archive"}) {
        auto n = c.exec(fmt::format("UPDATE {} SET options = queuer_options_in_form(options, $1) "
                                    "WHERE jsonb_typeof(options -> 'schedule') = 'object' "
                                    "AND queuer_options_in_form(options, $1) IS DISTINCT FROM "
                                    "options",
                                    table),
                        p)
                     .affected();
        (std::string_view(table) == "job" ? ch.live_converted : ch.archived_converted) = n;
    }
    tx.commit();
    return ch;
}

}  // namespace queuer
