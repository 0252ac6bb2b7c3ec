// SQL of the master's pass (master election, stale workers and their jobs, worker deletion,
// archive retention). Kept apart from the job hot path (engine_sql.hpp).
#pragma once

#include "queuer/db.hpp"

namespace queuer::detail {

// Takes or renews the master lock: row 1 is ours when we hold it, nobody does, or its holder's
// lock has expired or its holder is no longer a live worker -- unless the holder is a live Go or
// Python worker (queuer_reference_master_alive, migration 7): those masters never step down, so
// taking their lock would make two masters. $1 worker id, $2 worker rid, $3 settings, $4 lock
// timeout in seconds. A row back means we are master.
inline const db::Statement kTakeMaster{
    "queuer_take_master",
    "UPDATE master m SET worker_id = $1::bigint, worker_rid = $2::uuid, settings = $3::jsonb,"
    " updated_at = CURRENT_TIMESTAMP"
    " WHERE m.id = 1 AND (m.worker_rid = $2::uuid OR m.worker_id = 0 OR m.worker_rid IS NULL"
    "  OR (NOT queuer_reference_master_alive(m.worker_rid)"
    "   AND (m.updated_at < CURRENT_TIMESTAMP - make_interval(secs => $4::double precision)"
    "    OR NOT EXISTS (SELECT 1 FROM worker w WHERE w.rid = m.worker_rid"
    "     AND w.status IN ('READY', 'RUNNING', 'STOPPING')))))"
    " RETURNING m.id"};

inline const db::Statement kReleaseMaster{
    "queuer_release_master",
    "UPDATE master SET worker_id = 0, worker_rid = NULL, updated_at = CURRENT_TIMESTAMP"
    " WHERE id = 1 AND worker_rid = $1::uuid"};

// One master pass, one statement (queuer_master_sweep, migration 7): mark workers without a
// heartbeat STOPPED (queuerd's workers after $1 seconds; Go/Python workers never before the
// reference's own 2 minutes, or 1 hour while they drain in STOPPING), recover the RUNNING jobs of
// dead workers (back to the queue as SCHEDULED after their retry delay, with no worker, while
// retries remain and the previous attempt did not die the same way; otherwise archived FAILED
// with the reason), archive ended rows a reference master left in the live table, delete workers
// STOPPED for more than $2 seconds. $3 is the master's own rid (never declared stale by itself).
// One row:
//   0 stale_workers BIGINT   workers marked STOPPED
//   1 requeued_jobs BIGINT   jobs put back in the queue
//   2 failed_jobs BIGINT     jobs archived FAILED (no retries left, or died twice in a row)
//   3 deleted_workers BIGINT
//   4 requeued JSONB  the first 20: [{"rid","task_name","worker_rid","attempt","scheduled_at"}]
//   5 failed JSONB    the first 20: [{"rid","task_name","worker_rid","attempt","error"}]
//   6 stale JSONB     the first 20: [{"rid","name"}]
//   7 archived_leftovers BIGINT  ended rows found in job and archived as they were
inline const db::Statement kMasterSweep{
    "queuer_master_sweep",
    "SELECT stale_workers, requeued_jobs, failed_jobs, deleted_workers, requeued, failed, stale,"
    " archived_leftovers FROM queuer_master_sweep($1::double precision, $2::double precision,"
    " $3::uuid)"};

// Retention without TimescaleDB: at most 5,000 expired archive rows per statement.
inline const db::Statement kRetentionBatch{
    "queuer_retention_batch",
    "DELETE FROM job_archive WHERE (id, updated_at) IN (SELECT id, updated_at FROM job_archive"
    " WHERE updated_at < CURRENT_TIMESTAMP - make_interval(secs => $1::double precision)"
    " LIMIT 5000)"};

}  // namespace queuer::detail
