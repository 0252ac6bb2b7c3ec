// SQL of the master's pass (master election, stale workers and their jobs, worker deletion,
// archive retention). Kept apart from the job hot path (engine_sql.hpp).
#pragma once

#include "queuer/db.hpp"

namespace queuer::detail {

// Takes or renews the master lock: row 1 is ours when we hold it, nobody does, its holder's
// lock has expired, or its holder is no longer a live worker. $1 worker id, $2 worker rid,
// $3 settings, $4 lock timeout in seconds. A row back means we are master.
inline const db::Statement kTakeMaster{
    "queuer_take_master",
    "UPDATE master m SET worker_id = $1::bigint, worker_rid = $2::uuid, settings = $3::jsonb,"
    " updated_at = CURRENT_TIMESTAMP"
    " WHERE m.id = 1 AND (m.worker_rid = $2::uuid OR m.worker_id = 0 OR m.worker_rid IS NULL"
    "  OR m.updated_at < CURRENT_TIMESTAMP - make_interval(secs => $4::double precision)"
    "  OR NOT EXISTS (SELECT 1 FROM worker w WHERE w.rid = m.worker_rid"
    "   AND w.status IN ('READY', 'RUNNING', 'STOPPING')))"
    " RETURNING m.id"};

inline const db::Statement kReleaseMaster{
    "queuer_release_master",
    "UPDATE master SET worker_id = 0, worker_rid = NULL, updated_at = CURRENT_TIMESTAMP"
    " WHERE id = 1 AND worker_rid = $1::uuid"};

// One master pass, one statement: mark workers without a heartbeat for $1 seconds STOPPED,
// recover the RUNNING jobs of dead workers (back to the queue while retries remain, a crash
// counting as an attempt; otherwise archived FAILED with the reason), delete workers STOPPED for
// more than $2 seconds. $3 is the master's own rid (never declared stale by itself).
inline const db::Statement kMasterSweep{
    "queuer_master_sweep",
    "WITH stale AS ("
    " UPDATE worker SET status = 'STOPPED', updated_at = CURRENT_TIMESTAMP"
    " WHERE status IN ('READY', 'RUNNING', 'STOPPING') AND rid <> $3::uuid"
    "  AND updated_at < CURRENT_TIMESTAMP - make_interval(secs => $1::double precision)"
    " RETURNING rid),"
    " dead AS ("
    " SELECT j.id, j.attempts,"
    "  COALESCE(floor((j.options -> 'on_error' ->> 'max_retries')::numeric)::int, 0) AS max_retries"
    " FROM job j LEFT JOIN worker w ON w.rid = j.worker_rid"
    " WHERE j.status = 'RUNNING' AND (w.rid IS NULL OR w.rid IN (SELECT rid FROM stale)"
    "  OR (w.status = 'STOPPED'"
    "   AND w.updated_at < CURRENT_TIMESTAMP - make_interval(secs => $1::double precision)))"
    " FOR UPDATE OF j SKIP LOCKED),"
    " requeued AS ("
    " UPDATE job j SET status = 'QUEUED', updated_at = CURRENT_TIMESTAMP,"
    "  error = 'the worker ' || COALESCE(j.worker_rid::text, '?') ||"
    "   ' stopped responding during attempt ' || j.attempts"
    " FROM dead d WHERE j.id = d.id AND d.attempts <= d.max_retries RETURNING j.id),"
    " failed AS ("
    " DELETE FROM job j USING dead d WHERE j.id = d.id AND d.attempts > d.max_retries"
    " RETURNING j.*),"
    " archived AS ("
    " INSERT INTO job_archive (id, rid, worker_id, worker_rid, options, task_name, parameters,"
    "  parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, status, scheduled_at,"
    "  started_at, schedule_count, attempts, results, results_encrypted, error, created_at,"
    "  updated_at)"
    " SELECT id, rid, worker_id, worker_rid, options, task_name, parameters,"
    "  parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, 'FAILED',"
    "  scheduled_at, started_at, schedule_count, attempts, '[]', '',"
    "  'the worker ' || COALESCE(worker_rid::text, '?') || ' stopped responding during attempt '"
    "   || attempts || ' and no retries were left', created_at, CURRENT_TIMESTAMP FROM failed"
    " RETURNING id),"
    " deleted AS ("
    " DELETE FROM worker WHERE status = 'STOPPED'"
    "  AND updated_at < CURRENT_TIMESTAMP - make_interval(secs => $2::double precision)"
    " RETURNING id)"
    " SELECT (SELECT count(*) FROM stale), (SELECT count(*) FROM requeued),"
    "  (SELECT count(*) FROM archived), (SELECT count(*) FROM deleted)"};

// Retention without TimescaleDB: at most 5,000 expired archive rows per statement.
inline const db::Statement kRetentionBatch{
    "queuer_retention_batch",
    "DELETE FROM job_archive WHERE (id, updated_at) IN (SELECT id, updated_at FROM job_archive"
    " WHERE updated_at < CURRENT_TIMESTAMP - make_interval(secs => $1::double precision)"
    " LIMIT 5000)"};

}  // namespace queuer::detail
