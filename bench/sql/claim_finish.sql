-- W4 (docs/benchmarks.md): the daemon's state changes for one batch as raw SQL, for pgbench
-- -M prepared. Statement 1 is queuerd's claim (engine_sql.hpp kClaim: same WHERE, ORDER BY,
-- LIMIT, FOR UPDATE SKIP LOCKED and UPDATE); it hands the claimed ids to statement 2 through
-- gset instead of returning the rows. Statement 2 is queuerd's finish (kFinish, verbatim but
-- for the parameters): every claimed job moves to job_archive as SUCCEEDED, one statement per
-- batch. Each pgbench client is its own worker (worker_rid derived from client_id). The table is
-- pre-filled; nothing is re-inserted, so jobs/s = tps x batch while jobs remain.
-- The batch size comes from the command line: pgbench -D batch=100 -f claim_finish.sql
\set wid :client_id + 1
WITH picked AS (
 SELECT id FROM job
 WHERE status IN ('QUEUED', 'SCHEDULED')
   AND (scheduled_at IS NULL OR scheduled_at <= CURRENT_TIMESTAMP)
   AND task_name = ANY('{noop}'::varchar[])
   AND COALESCE(options -> 'schedule' ->> 'next_interval', '') = ANY('{""}'::varchar[])
 ORDER BY created_at, id LIMIT :batch::int FOR UPDATE SKIP LOCKED),
claimed AS (
 UPDATE job j SET status = 'RUNNING', worker_id = :wid::bigint,
  worker_rid = ('00000000-0000-0000-0000-' || lpad(:wid::text, 12, '0'))::uuid,
  started_at = CURRENT_TIMESTAMP, schedule_count = j.schedule_count + 1,
  attempts = j.attempts + 1, updated_at = CURRENT_TIMESTAMP
 FROM picked WHERE j.id = picked.id RETURNING j.id)
SELECT COALESCE(array_agg(id), '{}') AS ids, count(*) AS n FROM claimed
\gset
WITH input AS (
 SELECT * FROM unnest(:ids::bigint[], array_fill('SUCCEEDED'::text, ARRAY[:n::int]),
  array_fill('[]'::text, ARRAY[:n::int]), array_fill(''::text, ARRAY[:n::int]),
  array_fill(0::bigint, ARRAY[:n::int]), array_fill(''::text, ARRAY[:n::int]))
  AS t(id, action, results, error, delay_ms, sealed)),
requeued AS (
 UPDATE job j SET
  status = CASE WHEN i.action = 'RETRY' THEN 'SCHEDULED' ELSE 'QUEUED' END,
  scheduled_at = CASE WHEN i.action = 'RETRY'
   THEN CURRENT_TIMESTAMP + make_interval(secs => i.delay_ms / 1000.0)
   ELSE j.scheduled_at END,
  attempts = CASE WHEN i.action = 'REQUEUE' THEN GREATEST(j.attempts - 1, 0)
   ELSE j.attempts END,
  schedule_count = CASE WHEN i.action = 'RETRY' OR i.action = 'REQUEUE'
   THEN GREATEST(j.schedule_count - 1, 0) ELSE j.schedule_count END,
  error = i.error, updated_at = CURRENT_TIMESTAMP
 FROM input i WHERE i.action IN ('RETRY', 'REQUEUE') AND j.id = i.id
  AND j.worker_rid = ('00000000-0000-0000-0000-' || lpad(:wid::text, 12, '0'))::uuid
  AND j.status = 'RUNNING' RETURNING j.id),
moved AS (
 DELETE FROM job j USING input i WHERE i.action IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
  AND j.id = i.id
  AND j.worker_rid = ('00000000-0000-0000-0000-' || lpad(:wid::text, 12, '0'))::uuid
  AND j.status = 'RUNNING'
 RETURNING j.*, i.action AS new_status, i.results AS new_results, i.error AS new_error,
  i.sealed AS new_sealed),
archived AS (
 INSERT INTO job_archive (id, rid, worker_id, worker_rid, options, task_name, parameters,
  parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, status, scheduled_at,
  started_at, schedule_count, attempts, results, results_encrypted, error, created_at,
  updated_at)
 SELECT id, rid, worker_id, worker_rid, options, task_name, parameters,
  parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, new_status,
  scheduled_at, started_at, schedule_count, attempts, new_results::jsonb,
  decode(new_sealed, 'hex'), new_error, created_at, CURRENT_TIMESTAMP FROM moved
 RETURNING id),
nexts AS (
 INSERT INTO job (options, task_name, parameters, parameters_encrypted, parameters_keyed,
  parameters_keyed_encrypted, status, scheduled_at, schedule_count)
 SELECT m.options, m.task_name, m.parameters, m.parameters_encrypted, m.parameters_keyed,
  m.parameters_keyed_encrypted, 'SCHEDULED', n.next_at, m.schedule_count
 FROM moved m JOIN unnest('{}'::bigint[], '{}'::timestamp[]) AS n(id, next_at) ON n.id = m.id
 RETURNING id)
SELECT (SELECT count(*) FROM requeued), (SELECT count(*) FROM archived),
 (SELECT count(*) FROM nexts);
