-- W4 (docs/benchmarks.md): the daemon's state changes for one batch as raw SQL, for pgbench
-- -M prepared. Statement 1 is queuerd's claim (engine_sql.hpp kClaim: same WHERE, ORDER BY,
-- LIMIT, FOR UPDATE SKIP LOCKED and UPDATE, with the claim connection's planner settings); it
-- hands the claimed ids and claim tokens to statement 2 through gset instead of returning the
-- rows. Statement 2 is queuerd's finish for jobs that end (kFinishArchive, verbatim but for the
-- parameters): every claimed job moves to job_archive as SUCCEEDED, one statement per batch.
-- Each pgbench client is its own worker (worker_rid derived from client_id; its worker row is
-- inserted RUNNING by the driver). The table is pre-filled; nothing is re-inserted, so
-- jobs/s = tps x batch while jobs remain.
-- The batch size comes from the command line: pgbench -D batch=100 -f claim_finish.sql
\set wid :client_id + 1
SET enable_seqscan = off;
SET enable_bitmapscan = off;
WITH picked AS (
 SELECT id FROM job
 WHERE status IN ('QUEUED', 'SCHEDULED')
   AND (scheduled_at IS NULL OR scheduled_at <= CURRENT_TIMESTAMP)
   AND task_name = ANY('{noop}'::varchar[])
   AND COALESCE(options -> 'schedule' ->> 'next_interval', '') = ANY('{""}'::varchar[])
   AND EXISTS (SELECT 1 FROM worker w
               WHERE w.rid = ('00000000-0000-0000-0000-' || lpad(:wid::text, 12, '0'))::uuid
                 AND w.status = 'RUNNING')
 ORDER BY created_at, id LIMIT :batch::int FOR UPDATE SKIP LOCKED),
claimed AS (
 UPDATE job j SET status = 'RUNNING', worker_id = :wid::bigint,
  worker_rid = ('00000000-0000-0000-0000-' || lpad(:wid::text, 12, '0'))::uuid,
  started_at = CURRENT_TIMESTAMP, schedule_count = j.schedule_count + 1,
  attempts = j.attempts + 1, updated_at = CURRENT_TIMESTAMP
 FROM picked WHERE j.id = picked.id RETURNING j.id, j.started_at::text AS token)
SELECT COALESCE(array_agg(id), '{}') AS ids, COALESCE(array_agg(token), '{}') AS tokens,
 count(*) AS n FROM claimed
\gset
WITH input AS (
 SELECT * FROM unnest(:ids::bigint[], :tokens::text[],
  array_fill('SUCCEEDED'::text, ARRAY[:n::int]), array_fill('[]'::text, ARRAY[:n::int]),
  array_fill(''::text, ARRAY[:n::int]), array_fill(''::text, ARRAY[:n::int]),
  array_fill(''::text, ARRAY[:n::int]), array_fill(''::text, ARRAY[:n::int]))
  AS t(id, token, status, results, sealed, error, started, next_at)),
moved AS (
 DELETE FROM job j USING input i WHERE j.id = i.id
  AND j.worker_rid = ('00000000-0000-0000-0000-' || lpad(:wid::text, 12, '0'))::uuid
  AND j.status = 'RUNNING' AND j.started_at = i.token::timestamp
 RETURNING j.*, i.status AS new_status, i.results AS new_results, i.sealed AS new_sealed,
  i.error AS new_error, i.started AS new_started, i.next_at AS new_next_at),
archived AS (
 INSERT INTO job_archive (id, rid, worker_id, worker_rid, options, task_name, parameters,
  parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, status, scheduled_at,
  started_at, schedule_count, attempts, results, results_encrypted, error, created_at,
  updated_at)
 SELECT id, rid, worker_id, worker_rid, options, task_name, parameters,
  parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, new_status,
  scheduled_at, COALESCE(NULLIF(new_started, '')::timestamp, started_at), schedule_count,
  attempts, new_results::jsonb, decode(new_sealed, 'hex'), new_error, created_at,
  CURRENT_TIMESTAMP FROM moved RETURNING id),
nexts AS (
 INSERT INTO job (options, task_name, parameters, parameters_encrypted, parameters_keyed,
  parameters_keyed_encrypted, status, scheduled_at, schedule_count)
 SELECT options, task_name, parameters, parameters_encrypted, parameters_keyed,
  parameters_keyed_encrypted, 'SCHEDULED', new_next_at::timestamp, schedule_count
 FROM moved WHERE new_next_at <> '' RETURNING id)
SELECT count(*) AS changed FROM archived;
