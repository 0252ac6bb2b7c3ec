// SQL of the worker engine. One statement per batch on every hot path: a claim takes many jobs,
// a finish writes every outcome gathered since the last one. Each statement names the columns it
// reads; results are read by column name (ClaimColumns in engine_claim.cpp).
#pragma once

#include "job_sql.hpp"
#include "queuer/db.hpp"
#include "worker_row.hpp"

namespace queuer::detail {

// $1 task names, $2 next-interval names ('' for "none"), $3 limit, $4 worker id, $5 worker rid.
// Due jobs of these tasks, in creation order, never a row another worker holds; they become
// RUNNING for this worker, and only while its own row is RUNNING (a worker the master declared
// dead, or one asked to stop, claims nothing). started_at is the claim's time: it identifies this
// claim of the row (the finish matches it), and the finish replaces it with the time the task
// really started.
inline const db::Statement kClaim{
    "queuer_claim",
    "WITH picked AS ("
    " SELECT id FROM job"
    " WHERE status IN ('QUEUED', 'SCHEDULED')"
    "   AND (scheduled_at IS NULL OR scheduled_at <= CURRENT_TIMESTAMP)"
    "   AND task_name = ANY($1::varchar[])"
    "   AND COALESCE(options -> 'schedule' ->> 'next_interval', '') = ANY($2::varchar[])"
    "   AND EXISTS (SELECT 1 FROM worker w WHERE w.rid = $5::uuid AND w.status = 'RUNNING')"
    " ORDER BY created_at, id LIMIT $3::int FOR UPDATE SKIP LOCKED)"
    " UPDATE job j SET status = 'RUNNING', worker_id = $4::bigint, worker_rid = $5::uuid,"
    "  started_at = CURRENT_TIMESTAMP, schedule_count = j.schedule_count + 1,"
    "  attempts = j.attempts + 1, updated_at = CURRENT_TIMESTAMP"
    " FROM picked WHERE j.id = picked.id"
    " RETURNING j.id, j.rid, j.task_name, j.options, j.parameters, j.parameters_keyed,"
    "  j.parameters_encrypted, j.parameters_keyed_encrypted, j.scheduled_at, j.started_at,"
    "  j.schedule_count, j.attempts, j.created_at"};

// Seconds until the next job this worker could run becomes due (NULL when none is waiting).
inline const db::Statement kNextDue{
    "queuer_next_due",
    "SELECT EXTRACT(EPOCH FROM (MIN(scheduled_at) - CURRENT_TIMESTAMP)) FROM job"
    " WHERE status IN ('QUEUED', 'SCHEDULED') AND scheduled_at > CURRENT_TIMESTAMP"
    "   AND task_name = ANY($1::varchar[])"
    "   AND COALESCE(options -> 'schedule' ->> 'next_interval', '') = ANY($2::varchar[])"};

// The outcomes of a batch that end jobs (SUCCEEDED | FAILED | CANCELLED), one statement: the
// rows move to job_archive, and a schedule's next run is inserted. Arrays, one element per run:
// $1 id, $2 claim token (the claim's started_at), $3 status, $4 results JSON, $5 sealed results
// (hex, '' when not encrypted), $6 error, $7 real start ('' = never started), $8 next run of a
// schedule ('' = none); $9 worker rid. Only the claim it names is touched (this worker, RUNNING,
// same token), so a job cancelled or recovered meanwhile is never written over, and writing a
// batch again after a lost reply changes nothing. The join runs from the input to the job's
// primary key (one index lookup per run). Returns how many jobs it archived.
inline const db::Statement kFinishArchive{
    "queuer_finish_archive",
    "WITH input AS ("
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],"
    "  $6::text[], $7::text[], $8::text[])"
    "  AS t(id, token, status, results, sealed, error, started, next_at)),"
    " moved AS ("
    " DELETE FROM job j USING input i WHERE j.id = i.id"
    "  AND j.worker_rid = $9::uuid AND j.status = 'RUNNING' AND j.started_at = i.token::timestamp"
    " RETURNING j.*, i.status AS new_status, i.results AS new_results, i.sealed AS new_sealed,"
    "  i.error AS new_error, i.started AS new_started, i.next_at AS new_next_at),"
    " archived AS (" QUEUER_ARCHIVE_INSERT(
        "moved", "new_status", "COALESCE(NULLIF(new_started, '')::timestamp, started_at)",
        "new_results::jsonb", "decode(new_sealed, 'hex')", "new_error") " RETURNING id),"
    " nexts AS ("
    " INSERT INTO job (options, task_name, parameters, parameters_encrypted, parameters_keyed,"
    "  parameters_keyed_encrypted, status, scheduled_at, schedule_count)"
    " SELECT options, task_name, parameters, parameters_encrypted, parameters_keyed,"
    "  parameters_keyed_encrypted, 'SCHEDULED', new_next_at::timestamp, schedule_count"
    " FROM moved WHERE new_next_at <> '' RETURNING id)"
    " SELECT count(*) AS changed FROM archived"};

// The outcomes of a batch that put jobs back in the queue: RETRY (SCHEDULED after $5 ms, the
// attempt counted) and REQUEUE (QUEUED at once, the attempt not counted). They carry no worker
// (worker_id 0, worker_rid NULL). $1 id, $2 claim token, $3 action, $4 error, $5 delay ms,
// $6 real start ('' = never started); $7 worker rid. Same matching as kFinishArchive.
inline const db::Statement kFinishRequeue{
    "queuer_finish_requeue",
    "WITH input AS ("
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],"
    "  $6::text[]) AS t(id, token, action, error, delay_ms, started))"
    " UPDATE job j SET"
    "  status = CASE WHEN i.action = 'RETRY' THEN 'SCHEDULED' ELSE 'QUEUED' END,"
    "  scheduled_at = CASE WHEN i.action = 'RETRY'"
    "   THEN CURRENT_TIMESTAMP + make_interval(secs => i.delay_ms / 1000.0)"
    "   ELSE j.scheduled_at END,"
    "  attempts = CASE WHEN i.action = 'REQUEUE' THEN GREATEST(j.attempts - 1, 0)"
    "   ELSE j.attempts END,"
    "  schedule_count = GREATEST(j.schedule_count - 1, 0),"
    "  started_at = CASE WHEN i.action = 'REQUEUE' THEN NULL"
    "   ELSE COALESCE(NULLIF(i.started, '')::timestamp, j.started_at) END,"
    "  worker_id = 0, worker_rid = NULL, error = i.error, updated_at = CURRENT_TIMESTAMP"
    " FROM input i WHERE j.id = i.id"
    "  AND j.worker_rid = $7::uuid AND j.status = 'RUNNING' AND j.started_at = i.token::timestamp"
    " RETURNING j.id"};

// $1 worker rid, $2 current concurrency. Returns the worker's status (STOPPING / STOPPED set
// from elsewhere are obeyed) and the threshold by which the master judges staleness
// (worker_row.hpp): with it, a worker told it is STOPPED tells "the master took me for dead"
// from "an operator stopped me".
inline const db::Statement kHeartbeat{
    "queuer_heartbeat",
    "UPDATE worker SET updated_at = CURRENT_TIMESTAMP, current_concurrency = $2::int"
    " WHERE rid = $1::uuid RETURNING status, " QUEUER_MASTER_STALE_SECONDS " AS stale_seconds"};

// Reconciliation: the rows the database says this worker holds ($1 worker rid).
inline const db::Statement kHeld{"queuer_held",
                                 "SELECT id, started_at::text AS token FROM job WHERE worker_rid = "
                                 "$1::uuid AND status = 'RUNNING'"};

// Puts rows back that this worker holds in the database but does not run (a claim whose reply
// was lost): QUEUED, no worker, the attempt not counted. $1 ids, $2 tokens, $3 worker rid.
inline const db::Statement kPutBack{
    "queuer_put_back",
    "UPDATE job j SET status = 'QUEUED', worker_id = 0, worker_rid = NULL, started_at = NULL,"
    "  attempts = GREATEST(j.attempts - 1, 0), schedule_count = GREATEST(j.schedule_count - 1, 0),"
    "  updated_at = CURRENT_TIMESTAMP"
    " FROM unnest($1::bigint[], $2::text[]) AS s(id, token)"
    " WHERE j.id = ANY($1::bigint[]) AND j.id = s.id AND j.worker_rid = $3::uuid"
    "  AND j.status = 'RUNNING' AND j.started_at = s.token::timestamp"
    " RETURNING j.id, j.rid"};

// $1 worker rid. At the end of stop().
inline const db::Statement kWorkerStopped{
    "queuer_worker_stopped",
    "UPDATE worker SET status = 'STOPPED', current_concurrency = 0,"
    " updated_at = CURRENT_TIMESTAMP WHERE rid = $1::uuid"};

}  // namespace queuer::detail
