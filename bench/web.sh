#!/usr/bin/env bash
# The web console's targets (issue 14), measured, not asserted: server time of each page's first
# view with LIVE live jobs and ARCHIVE archived rows, and the resident memory of an idle
# `queuerctl web`. Run by `QUEUER_BENCH_ONLY=web scripts/bench`, or by hand:
#
#   bench/web.sh QUEUERCTL [LIVE [ARCHIVE [RUNS]]]      (database from QUEUER_DB_* and PG*)
#   QUEUER_WEB_BENCH_SCENARIOS="hot" bench/web.sh ...    (one of the two scenarios below)
#
# Two schemas are filled with SQL (the archive's notify trigger is disabled while filling):
#   spread   ARCHIVE rows ended over the last 7 days (about LIVE/7/24 an hour), LIVE live jobs;
#   hot      the same, but every archived row ended within the last hour (the overview's worst
#            case: its chart and per-task counts read the whole last hour).
# Each page is fetched RUNS times, 1.1 s apart (the overview is cached for 1 s: every fetch here
# computes it). "server" is the console's own Server-Timing (request in, response built); "total"
# is curl's time to the last byte. Prints key=value lines; EXPLAIN of the list queries on stderr.
set -euo pipefail
QUEUERCTL=${1:?usage: bench/web.sh QUEUERCTL [LIVE [ARCHIVE [RUNS]]]}
LIVE=${2:-100000}
ARCHIVE=${3:-1000000}
RUNS=${4:-5}

log() { printf '==> %s\n' "$*" >&2; }
export PGHOST=${PGHOST:-${QUEUER_DB_HOST:-localhost}} PGPORT=${PGPORT:-${QUEUER_DB_PORT:-5432}}
export PGUSER=${PGUSER:-${QUEUER_DB_USERNAME:-postgres}} PGDATABASE=${PGDATABASE:-${QUEUER_DB_DATABASE:-postgres}}
export PGPASSWORD=${PGPASSWORD:-${QUEUER_DB_PASSWORD:-}}

stats() { sort -g | awk '{a[NR]=$1} END {m = NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f\n", m, a[1], a[NR]}'; }

WEB_PID=""
SCHEMAS=()
cleanup() {
  [ -n "$WEB_PID" ] && kill "$WEB_PID" 2>/dev/null && wait "$WEB_PID" 2>/dev/null || true
  for s in "${SCHEMAS[@]}"; do psql -qc "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# fill SCHEMA SPAN_SECONDS: ARCHIVE rows ended evenly over the last SPAN_SECONDS, then LIVE jobs.
fill() {
  local schema=$1 span=$2
  QUEUER_DB_SCHEMA=$schema "$QUEUERCTL" migrate >/dev/null
  local t0=$SECONDS
  psql -q -v ON_ERROR_STOP=1 <<SQL
SET search_path = $schema;
ALTER TABLE job_archive DISABLE TRIGGER job_archive_notify_event;
INSERT INTO job_archive (id, rid, worker_id, task_name, status, parameters, parameters_keyed,
    options, results, error, created_at, started_at, updated_at, attempts, schedule_count)
SELECT nextval(pg_get_serial_sequence('job', 'id')), gen_random_uuid(), 1, 'task-' || (i % 10),
    CASE WHEN i % 25 = 0 THEN 'FAILED' WHEN i % 100 = 1 THEN 'CANCELLED' ELSE 'SUCCEEDED' END,
    jsonb_build_array('order-' || i, i % 977), '{}', '{}', '[]',
    CASE WHEN i % 25 = 0 THEN 'upstream timeout after 30 s' ELSE '' END,
    t - interval '2 s', t - interval '1 s', t, 1, 1
FROM (SELECT i, LOCALTIMESTAMP - make_interval(secs => ($ARCHIVE - i) * ($span::float8 / $ARCHIVE)) AS t
      FROM generate_series(1, $ARCHIVE) i) x;
ALTER TABLE job_archive ENABLE TRIGGER job_archive_notify_event;
INSERT INTO job (task_name, status, parameters, created_at, updated_at, scheduled_at, started_at,
    worker_id, attempts)
SELECT 'task-' || (i % 10),
    CASE WHEN i % 50 = 0 THEN 'RUNNING' WHEN i % 97 = 0 THEN 'SCHEDULED' ELSE 'QUEUED' END,
    jsonb_build_array('live-' || i, i % 977),
    LOCALTIMESTAMP - make_interval(secs => ($LIVE - i) * 0.01), LOCALTIMESTAMP,
    CASE WHEN i % 97 = 0 THEN LOCALTIMESTAMP + interval '1 hour' END,
    CASE WHEN i % 50 = 0 THEN LOCALTIMESTAMP END, CASE WHEN i % 50 = 0 THEN 1 ELSE 0 END,
    CASE WHEN i % 50 = 0 THEN 1 ELSE 0 END
FROM generate_series(1, $LIVE) i;
VACUUM ANALYZE job;
VACUUM ANALYZE job_archive;
SQL
  log "$schema: $ARCHIVE archived over ${span} s and $LIVE live jobs in $((SECONDS - t0)) s"
}

start_web() {
  local schema=$1 out
  out=$(mktemp)
  QUEUER_DB_SCHEMA=$schema "$QUEUERCTL" web --listen 127.0.0.1:0 --read-only >"$out" 2>&1 &
  WEB_PID=$!
  for _ in $(seq 1 300); do
    URL=$(sed -n 's/.* at \(http:\/\/[^ ]*\/\).*/\1/p' "$out" | head -n1)
    [ -n "$URL" ] && break
    sleep 0.1
  done
  [ -n "$URL" ] || { cat "$out" >&2; echo "queuerctl web did not start" >&2; exit 1; }
  rm -f "$out"
}

stop_web() { kill "$WEB_PID"; wait "$WEB_PID" 2>/dev/null || true; WEB_PID=""; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# page SCENARIO NAME PATH
page() {
  local scenario=$1 name=$2 path=$3 server="" total="" status=""
  for _ in $(seq 1 "$RUNS"); do
    sleep 1.1
    local h
    h=$(curl -s -o /dev/null -D - -w 'total=%{time_total} code=%{http_code}\n' "$URL${path#/}")
    server+="$(echo "$h" | sed -n 's/^Server-Timing: app;dur=\([0-9.]*\).*/\1/p') "
    total+="$(echo "$h" | sed -n 's/^total=\([0-9.]*\).*/\1/p' | awk '{printf "%.2f", $1 * 1000}') "
    status=$(echo "$h" | sed -n 's/.*code=\([0-9]*\).*/\1/p')
  done
  read -r sm smin smax < <(echo "$server" | tr ' ' '\n' | grep . | stats)
  read -r tm _ _ < <(echo "$total" | tr ' ' '\n' | grep . | stats)
  echo "workload=web scenario=$scenario page=$name path=$path status=$status runs=$RUNS" \
    "server_ms_median=$sm server_ms_min=$smin server_ms_max=$smax total_ms_median=$tm"
}

explain() {
  local schema=$1
  log "plans in $schema (EXPLAIN, no ANALYZE):"
  psql -qAt >&2 <<SQL
SET search_path = $schema;
\echo '-- archive, newest page'
EXPLAIN SELECT id FROM job_archive ORDER BY id DESC LIMIT 51;
\echo '-- archive, FAILED in the last hour'
EXPLAIN SELECT id FROM job_archive WHERE status = ANY('{FAILED}'::varchar[]) AND updated_at >= LOCALTIMESTAMP - interval '1 hour' ORDER BY id DESC LIMIT 51;
\echo '-- the overview: the last 60 minutes of the archive'
EXPLAIN SELECT task_name, status, count(*) FROM job_archive WHERE updated_at >= date_trunc('minute', LOCALTIMESTAMP) - interval '59 minutes' GROUP BY 1, 2;
\echo '-- job detail: by rid'
EXPLAIN SELECT id FROM job_archive WHERE rid = gen_random_uuid() ORDER BY updated_at DESC LIMIT 1;
SQL
}

run_scenario() {
  local scenario=$1 span=$2 schema="bench_web_${1}_$$"
  SCHEMAS+=("$schema")
  fill "$schema" "$span"
  explain "$schema"
  start_web "$schema"
  # The very first overview, while the console is still reading the last hour at start.
  local first
  first=$(curl -s -o /dev/null -D - "$URL" | sed -n 's/^Server-Timing: app;dur=\([0-9.]*\).*/\1/p')
  echo "workload=web scenario=$scenario page=overview_at_start server_ms=$first note=waits_for_the_start_up_read_of_the_last_hour"
  sleep 3
  echo "workload=web scenario=$scenario measure=idle_rss_kb value=$(rss_kb "$WEB_PID") note=started_3s_ago_no_request_yet"
  local mid_id old_rid live_rid mid_rid mid_failed_rid
  mid_id=$(psql -Atc "SELECT id FROM $schema.job_archive ORDER BY id OFFSET $((ARCHIVE / 2)) LIMIT 1")
  old_rid=$(psql -Atc "SELECT rid FROM $schema.job_archive ORDER BY id LIMIT 1")
  mid_rid=$(psql -Atc "SELECT rid FROM $schema.job_archive WHERE id >= $mid_id AND status = 'SUCCEEDED' ORDER BY id LIMIT 1")
  mid_failed_rid=$(psql -Atc "SELECT rid FROM $schema.job_archive WHERE id >= $mid_id AND status = 'FAILED' ORDER BY id LIMIT 1")
  live_rid=$(psql -Atc "SELECT rid FROM $schema.job ORDER BY id DESC LIMIT 1")
  page "$scenario" overview /
  page "$scenario" jobs /jobs
  page "$scenario" jobs_task_status "/jobs?task=task-3&status=SCHEDULED"
  page "$scenario" jobs_search_rare "/jobs?search=live-4242%22"
  page "$scenario" archive /archive
  page "$scenario" archive_failed "/archive?status=FAILED"
  page "$scenario" archive_failed_1h "/archive?status=FAILED&since=1h"
  page "$scenario" archive_deep_page "/archive?before=$mid_id"
  page "$scenario" archive_error_task "/archive?task=task-5&error=timeout"
  page "$scenario" archive_search_1h "/archive?search=order-99&since=1h"
  page "$scenario" archive_search_rare_no_window "/archive?search=order-4242%22"
  page "$scenario" job_live "/job/$live_rid"
  page "$scenario" job_archived_mid "/job/$mid_rid"
  page "$scenario" job_archived_mid_failed "/job/$mid_failed_rid"
  page "$scenario" job_archived_oldest "/job/$old_rid"
  page "$scenario" workers /workers
  echo "workload=web scenario=$scenario measure=rss_after_pages_kb value=$(rss_kb "$WEB_PID")"
  sleep 10
  echo "workload=web scenario=$scenario measure=idle_rss_kb_after value=$(rss_kb "$WEB_PID") note=10s_after_the_last_request"
  stop_web
  psql -qc "DROP SCHEMA $schema CASCADE" >/dev/null
}

for s in ${QUEUER_WEB_BENCH_SCENARIOS:-spread hot}; do
  case $s in
    spread) run_scenario spread $((7 * 86400)) ;;
    hot) run_scenario hot 3600 ;;
    *) echo "unknown scenario $s (spread, hot)" >&2; exit 2 ;;
  esac
done
