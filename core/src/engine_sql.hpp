// SQL of the worker engine. One statement per batch on every hot path: a claim takes up to the
// free slots, a finish writes every completion gathered since the last one.
#pragma once

#include "queuer/db.hpp"

namespace queuer::detail {

#define QUEUER_J_COLS                                                                            \
    "j.id, j.rid, j.worker_id, j.worker_rid, j.options, j.task_name, j.parameters, "             \
    "j.parameters_keyed, j.status, j.scheduled_at, j.started_at, j.schedule_count, j.attempts, " \
    "j.results, j.error, j.created_at, j.updated_at, j.parameters_encrypted, "                   \
    "j.parameters_keyed_encrypted, j.results_encrypted"

// The claim, shared by kClaim and kFinish; its arguments are the placeholders to use.
// picked: due jobs of these tasks and next-interval functions, in creation order, skipping rows
// another worker holds. The UPDATE marks them RUNNING for this worker.
#define QUEUER_CLAIM_PICKED(TASKS, NIFS, LIMIT)                                  \
    "picked AS ("                                                                \
    " SELECT id FROM job"                                                        \
    " WHERE status IN ('QUEUED', 'SCHEDULED')"                                   \
    "   AND (scheduled_at IS NULL OR scheduled_at <= CURRENT_TIMESTAMP)"         \
    "   AND task_name = ANY(" TASKS                                              \
    "::varchar[])"                                                               \
    "   AND COALESCE(options -> 'schedule' ->> 'next_interval', '') = ANY(" NIFS \
    "::varchar[])"                                                               \
    " ORDER BY created_at, id LIMIT " LIMIT "::int FOR UPDATE SKIP LOCKED)"
#define QUEUER_CLAIM_UPDATE(WORKER_ID, WORKER_RID)                        \
    " UPDATE job j SET status = 'RUNNING', worker_id = " WORKER_ID        \
    "::bigint,"                                                           \
    "  worker_rid = " WORKER_RID                                          \
    "::uuid, started_at = CURRENT_TIMESTAMP,"                             \
    "  schedule_count = j.schedule_count + 1, attempts = j.attempts + 1," \
    "  updated_at = CURRENT_TIMESTAMP FROM picked WHERE j.id = picked.id RETURNING " QUEUER_J_COLS

// $1 task names, $2 next-interval names (with '' for "none"), $3 limit, $4 worker id,
// $5 worker rid. Only due jobs; creation order; never a row another worker holds.
inline const db::Statement kClaim{
    "queuer_claim", "WITH " QUEUER_CLAIM_PICKED("$1", "$2", "$3") QUEUER_CLAIM_UPDATE("$4", "$5")};

// Seconds until the next job this worker could run becomes due (NULL when none is waiting).
inline const db::Statement kNextDue{
    "queuer_next_due",
    "SELECT EXTRACT(EPOCH FROM (MIN(scheduled_at) - CURRENT_TIMESTAMP)) FROM job"
    " WHERE status IN ('QUEUED', 'SCHEDULED') AND scheduled_at > CURRENT_TIMESTAMP"
    "   AND task_name = ANY($1::varchar[])"
    "   AND COALESCE(options -> 'schedule' ->> 'next_interval', '') = ANY($2::varchar[])"};

// Every completion of a batch in one statement. Arrays, one element per completion:
// $1 id, $2 action (SUCCEEDED | FAILED | CANCELLED | RETRY | REQUEUE), $3 results JSON, $4 error,
// $5 retry delay ms, $6 sealed results (hex, '' when not encrypted); $7 worker rid;
// $8/$9 next periodic runs (job id, scheduled_at). Only rows this worker still holds as RUNNING
// are touched, so a cancelled job or one recovered by the master is never written over.
inline const db::Statement kFinish{
    "queuer_finish",
    "WITH input AS ("
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],"
    "  $6::text[]) AS t(id, action, results, error, delay_ms, sealed)),"
    " requeued AS ("
    " UPDATE job j SET"
    "  status = CASE WHEN i.action = 'RETRY' THEN 'SCHEDULED' ELSE 'QUEUED' END,"
    "  scheduled_at = CASE WHEN i.action = 'RETRY'"
    "   THEN CURRENT_TIMESTAMP + make_interval(secs => i.delay_ms / 1000.0)"
    "   ELSE j.scheduled_at END,"
    "  attempts = CASE WHEN i.action = 'REQUEUE' THEN GREATEST(j.attempts - 1, 0)"
    "   ELSE j.attempts END,"
    "  schedule_count = CASE WHEN i.action = 'RETRY' OR i.action = 'REQUEUE'"
    "   THEN GREATEST(j.schedule_count - 1, 0) ELSE j.schedule_count END,"
    "  error = i.error, updated_at = CURRENT_TIMESTAMP"
    " FROM input i WHERE j.id = ANY($1::bigint[]) AND i.action IN ('RETRY', 'REQUEUE')"
    "  AND j.id = i.id"
    "  AND j.worker_rid = $7::uuid AND j.status = 'RUNNING' RETURNING j.id),"
    " moved AS ("
    " DELETE FROM job j USING input i WHERE j.id = ANY($1::bigint[])"
    "  AND i.action IN ('SUCCEEDED', 'FAILED', 'CANCELLED') AND j.id = i.id"
    "  AND j.worker_rid = $7::uuid AND j.status = 'RUNNING'"
    " RETURNING j.*, i.action AS new_status, i.results AS new_results, i.error AS new_error,"
    "  i.sealed AS new_sealed),"
    " archived AS ("
    " INSERT INTO job_archive (id, rid, worker_id, worker_rid, options, task_name, parameters,"
    "  parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, status, scheduled_at,"
    "  started_at, schedule_count, attempts, results, results_encrypted, error, created_at,"
    "  updated_at)"
    " SELECT id, rid, worker_id, worker_rid, options, task_name, parameters,"
    "  parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, new_status,"
    "  scheduled_at, started_at, schedule_count, attempts, new_results::jsonb,"
    "  decode(new_sealed, 'hex'), new_error, created_at, CURRENT_TIMESTAMP FROM moved"
    " RETURNING id),"
    " nexts AS ("
    " INSERT INTO job (options, task_name, parameters, parameters_encrypted, parameters_keyed,"
    "  parameters_keyed_encrypted, status, scheduled_at, schedule_count)"
    " SELECT m.options, m.task_name, m.parameters, m.parameters_encrypted, m.parameters_keyed,"
    "  m.parameters_keyed_encrypted, 'SCHEDULED', n.next_at, m.schedule_count"
    " FROM moved m JOIN unnest($8::bigint[], $9::timestamp[]) AS n(id, next_at) ON n.id = m.id"
    " RETURNING id),"
    // The slots these completions free are refilled in the same round trip: the claim of
    // kClaim with $10 task names, $11 next-interval names, $12 limit, $13 worker id. It sees
    // the statement's snapshot, so it never takes a row the CTEs above are changing.
    " " QUEUER_CLAIM_PICKED("$10", "$11", "$12") ","
    " claimed AS (" QUEUER_CLAIM_UPDATE("$13", "$7") ")"
    " SELECT * FROM claimed"};  // data-modifying CTEs run to completion, read or not

inline const db::Statement kHeartbeat{
    "queuer_heartbeat",
    "UPDATE worker SET updated_at = CURRENT_TIMESTAMP, current_concurrency = $2::int"
    " WHERE rid = $1::uuid RETURNING status"};

}  // namespace queuer::detail
