// Day-two queries: see queuer/admin.hpp. SQL is built from the filters given (so that the
// planner sees only the conditions that apply and can use job_archive's updated_at index);
// every value is a bound parameter.
#include "queuer/admin.hpp"

#include <fmt/format.h>

#include "job_sql.hpp"
#include "queuer/crypto.hpp"
#include "queuer/error.hpp"
#include "queuer/json.hpp"
#include "queuer/schema.hpp"
#include "worker_row.hpp"

namespace queuer::admin {

namespace {

// Live workers: heartbeat within the master's worker_stale_threshold.
const char* const kStaleSeconds = QUEUER_MASTER_STALE_SECONDS_OR_DEFAULT;

struct Where {
    db::Params params;
    std::vector<std::string> conds;
    int n = 0;
    std::string next() { return fmt::format("${}", ++n); }
    std::string add(std::string_view v) {
        params.add(v);
        return next();
    }
    std::string sql() const {
        if (conds.empty()) return {};
        std::string s = " WHERE ";
        for (size_t i = 0; i < conds.size(); ++i) s += (i ? " AND " : "") + conds[i];
        return s;
    }
};

std::string like_pattern(std::string_view term) {
    std::string p = "%";
    for (char c : term) {
        if (c == '%' || c == '_' || c == '\\') p += '\\';
        p += c;
    }
    return p + "%";
}

void time_cond(Where& w, const TimeBound& b, const char* col, const char* op) {
    if (b.ago_seconds) {
        w.params.add(fmt::format("{}", *b.ago_seconds));
        w.conds.push_back(fmt::format("{} {} LOCALTIMESTAMP - make_interval(secs => {}::float8)",
                                      col, op, w.next()));
    } else if (b.at) {
        w.conds.push_back(fmt::format("{} {} {}::timestamp", col, op, w.add(format_time(*b.at))));
    }
}

Where build(const Filter& f, const char* time_col, const std::vector<std::string>& statuses,
            bool archive) {
    Where w;
    if (!f.task.empty()) w.conds.push_back("task_name = " + w.add(f.task));
    if (!statuses.empty()) {
        w.params.add_array(statuses);
        w.conds.push_back(fmt::format("status = ANY({}::varchar[])", w.next()));
    }
    time_cond(w, f.since, time_col, ">=");
    time_cond(w, f.until, time_col, "<");
    if (!f.error.empty()) {
        if (!archive)
            throw Error(ErrorKind::Invalid, "--error applies to ended jobs (the archive) only");
        w.conds.push_back("error <> '' AND error ILIKE " + w.add(like_pattern(f.error)));
    }
    if (!f.rid.empty()) {
        validate_rid(f.rid, "job rid");
        w.conds.push_back("rid = " + w.add(f.rid) + "::uuid");
    }
    if (!f.search.empty()) {
        std::string p = w.add(like_pattern(f.search));
        w.conds.push_back(
            fmt::format("(parameters::text ILIKE {0} OR parameters_keyed::text ILIKE "
                        "{0} OR error ILIKE {0})",
                        p));
    }
    return w;
}

void check_statuses(const std::vector<std::string>& given,
                    std::initializer_list<std::string_view> allowed, const char* what) {
    for (const auto& s : given) {
        bool ok = false;
        for (auto a : allowed) ok = ok || s == a;
        if (!ok) {
            std::string list;
            for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
            throw Error(ErrorKind::Invalid,
                        fmt::format("status {} does not apply to {} (use {})", s, what, list));
        }
    }
}

std::string fmt_num(double v) {
    return fmt::format("{:.3f}", v);
}

std::string counts_json(const std::map<std::string, int64_t>& m) {
    std::string s = "{";
    bool first = true;
    for (const auto& [k, v] : m) {
        s += fmt::format("{}{}:{}", first ? "" : ",", json::quote(k), v);
        first = false;
    }
    return s + "}";
}

}  // namespace

TimeBound parse_time_bound(std::string_view text, std::string_view what) {
    TimeBound b;
    if (text.empty()) return b;
    bool looks_absolute = text.size() >= 10 && text[4] == '-' && text[7] == '-';
    if (looks_absolute) {
        b.at = parse_time(text, what);
        return b;
    }
    try {
        auto d = parse_duration(text, what);
        if (d.count() < 0) throw Error(ErrorKind::Invalid, "negative");
        b.ago_seconds = static_cast<double>(d.count()) / 1e9;
    } catch (const Error&) {
        throw Error(ErrorKind::Invalid,
                    fmt::format("{} \"{}\" is neither a duration (30m, 2h, 7d) nor a time "
                                "(2026-01-31T12:00:00Z)",
                                what, text));
    }
    return b;
}

std::string check_schema(db::Connection& c) {
    std::string folded = c.schema();
    for (char& ch : folded)
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    db::Params p;
    p.add(folded);
    auto r = c.exec(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), "
        "to_regclass(quote_ident($1) || '.job') IS NOT NULL, current_database()",
        p);
    if (!r.boolean(0, 0))
        return fmt::format("schema \"{}\" does not exist in database {}", folded, r.get(0, 2));
    if (!r.boolean(0, 1))
        return fmt::format("schema \"{}\" in database {} has no queuer tables", folded,
                           r.get(0, 2));
    return {};
}

MasterInfo master_info(db::Connection& c) {
    MasterInfo mi;
    auto m = c.exec(
        "SELECT COALESCE(m.worker_rid::text, ''), COALESCE(w.name, ''), "
        "EXTRACT(EPOCH FROM (LOCALTIMESTAMP - m.updated_at))::float8, "
        "COALESCE(CASE WHEN jsonb_typeof(m.settings -> 'master_lock_timeout') = 'number' "
        "  THEN NULLIF((m.settings ->> 'master_lock_timeout')::float8, 0) / 1e9 END, 300), "
        "COALESCE(m.settings::text, '') "
        "FROM master m LEFT JOIN worker w ON w.rid = m.worker_rid WHERE m.id = 1");
    if (m.rows() == 0) return mi;
    try {
        mi.settings = MasterSettings::from_json(m.get(0, 4));
    } catch (const Error&) {
        // Another client's shape: the defaults.
    }
    if (!m.get(0, 0).empty()) {
        mi.worker_rid = m.str(0, 0);
        mi.worker_name = m.str(0, 1);
        mi.renewed_seconds_ago = std::stod(m.str(0, 2));
        mi.expired = mi.renewed_seconds_ago > std::stod(m.str(0, 3));
    }
    return mi;
}

Status status(db::Connection& c) {
    Status s;
    s.schema = c.schema();
    s.expected_version = schema_version();
    try {
        s.schema_version =
            c.exec("SELECT COALESCE(MAX(version), 0) FROM queuer_schema_version").i32(0, 0);
    } catch (const Error& e) {
        if (e.sqlstate() != "42P01") throw;  // a schema made by the Go/Python clients
    }
    s.master = master_info(c);
    auto ws = c.exec("SELECT status, count(*) FROM worker GROUP BY status");
    for (int i = 0; i < ws.rows(); ++i) s.workers_by_status[ws.str(i, 0)] = ws.i64(i, 1);
    auto lw = c.exec("SELECT " QUEUER_WORKER_COLS
                     " FROM worker WHERE status <> 'STOPPED' ORDER BY id DESC LIMIT 100");
    for (int i = 0; i < lw.rows(); ++i) s.live_workers.push_back(detail::worker_from_row(lw, i));
    for (const char* st : {"QUEUED", "SCHEDULED", "RUNNING"}) s.jobs[st] = 0;
    auto js = c.exec(
        "SELECT status, count(*), COALESCE(GREATEST(0, EXTRACT(EPOCH FROM LOCALTIMESTAMP - "
        "min(CASE WHEN status = 'SCHEDULED' THEN scheduled_at "
        "         WHEN status = 'QUEUED' THEN created_at END)))::float8, 0) "
        "FROM job GROUP BY status");
    for (int i = 0; i < js.rows(); ++i) {
        s.jobs[js.str(i, 0)] = js.i64(i, 1);
        s.oldest_waiting_seconds = std::max(s.oldest_waiting_seconds, std::stod(js.str(i, 2)));
    }
    for (const char* st : {"SUCCEEDED", "FAILED", "CANCELLED"}) s.ended_1h[st] = 0;
    auto es = c.exec(
        "SELECT status, count(*) FROM job_archive "
        "WHERE updated_at >= LOCALTIMESTAMP - interval '1 hour' GROUP BY status");
    for (int i = 0; i < es.rows(); ++i) s.ended_1h[es.str(i, 0)] = es.i64(i, 1);
    return s;
}

std::string Status::to_json() const {
    std::string master_json = "null";
    if (!master.worker_rid.empty())
        master_json = fmt::format(
            "{{\"worker_rid\":{},\"worker_name\":{},\"renewed_s_ago\":{},\"expired\":{}}}",
            json::quote(master.worker_rid), json::quote(master.worker_name),
            fmt_num(master.renewed_seconds_ago), master.expired ? "true" : "false");
    std::string workers = "[";
    for (size_t i = 0; i < live_workers.size(); ++i)
        workers += (i ? "," : "") + live_workers[i].to_json();
    workers += "]";
    return fmt::format(
        "{{\"schema\":{},\"schema_version\":{},\"expected_schema_version\":{},\"master\":{},"
        "\"workers_by_status\":{},\"live_workers\":{},\"jobs\":{},\"oldest_waiting_s\":{},"
        "\"ended_last_hour\":{}}}",
        json::quote(schema), schema_version, expected_version, master_json,
        counts_json(workers_by_status), workers, counts_json(jobs), fmt_num(oldest_waiting_seconds),
        counts_json(ended_1h));
}

std::vector<LiveStat> live_stats(db::Connection& c) {
    auto r = c.exec(
        "SELECT task_name, status, count(*), COALESCE(GREATEST(0, EXTRACT(EPOCH FROM "
        "LOCALTIMESTAMP - min(CASE WHEN status = 'RUNNING' THEN COALESCE(started_at, updated_at) "
        "                          WHEN status = 'SCHEDULED' THEN scheduled_at "
        "                          ELSE created_at END)))::float8, 0) "
        "FROM job GROUP BY task_name, status ORDER BY task_name, status");
    std::vector<LiveStat> out;
    for (int i = 0; i < r.rows(); ++i)
        out.push_back({r.str(i, 0), r.str(i, 1), r.i64(i, 2), std::stod(r.str(i, 3))});
    return out;
}

Stats stats(db::Connection& c, std::chrono::seconds since) {
    Stats s;
    s.since_s = since.count();
    s.live = live_stats(c);
    db::Params p;
    p.add(since.count());
    auto r = c.exec(
        "SELECT task_name, status, count(*) FROM job_archive "
        "WHERE updated_at >= LOCALTIMESTAMP - make_interval(secs => $1::float8) "
        "GROUP BY task_name, status ORDER BY task_name, status",
        p);
    for (int i = 0; i < r.rows(); ++i) s.ended.push_back({r.str(i, 0), r.str(i, 1), r.i64(i, 2)});
    return s;
}

std::string Stats::to_json() const {
    std::string out = "{\"live\":[";
    for (size_t i = 0; i < live.size(); ++i)
        out +=
            fmt::format("{}{{\"task_name\":{},\"status\":{},\"count\":{},\"oldest_age_s\":{}}}",
                        i ? "," : "", json::quote(live[i].task_name), json::quote(live[i].status),
                        live[i].count, fmt_num(live[i].oldest_age_s));
    out += "],\"ended\":[";
    for (size_t i = 0; i < ended.size(); ++i)
        out += fmt::format("{}{{\"task_name\":{},\"status\":{},\"count\":{}}}", i ? "," : "",
                           json::quote(ended[i].task_name), json::quote(ended[i].status),
                           ended[i].count);
    out += fmt::format("],\"since_s\":{}}}", since_s);
    return out;
}

bool task_offered(db::Connection& c, std::string_view task) {
    db::Params p;
    p.add(task);
    auto r = c.exec(fmt::format("SELECT EXISTS (SELECT 1 FROM worker WHERE status IN ('READY', "
                                "'RUNNING') AND $1::varchar = ANY(available_tasks) AND "
                                "updated_at >= LOCALTIMESTAMP - make_interval(secs => {}))",
                                kStaleSeconds),
                    p);
    return r.boolean(0, 0);
}

int64_t retry_jobs(db::Connection& c, const Filter& f, bool dry_run,
                   std::vector<std::string>* new_rids) {
    check_statuses(f.statuses, {"SUCCEEDED", "FAILED", "CANCELLED"}, "retry (ended jobs)");
    auto statuses = f.statuses.empty() ? std::vector<std::string>{"FAILED"} : f.statuses;
    Where w = build(f, "updated_at", statuses, true);
    if (dry_run) return c.exec("SELECT count(*) FROM job_archive" + w.sql(), w.params).i64(0, 0);
    // New jobs, QUEUED now, with the archived task, parameters (sealed ones as they are) and
    // options; one statement, in the order the jobs were first added.
    auto r = c.exec(
        "INSERT INTO job (options, task_name, parameters, parameters_keyed, "
        "parameters_encrypted, parameters_keyed_encrypted) "
        "SELECT options, task_name, parameters, parameters_keyed, parameters_encrypted, "
        "parameters_keyed_encrypted FROM job_archive" +
            w.sql() + " ORDER BY id" + (new_rids ? " RETURNING rid" : ""),
        w.params);
    if (new_rids)
        for (int i = 0; i < r.rows(); ++i) new_rids->push_back(r.str(i, 0));
    return r.affected();
}

int64_t cancel_jobs(db::Connection& c, const Filter& f, bool dry_run) {
    check_statuses(f.statuses, {"QUEUED", "SCHEDULED", "RUNNING"}, "cancel (live jobs)");
    auto statuses = f.statuses.empty() ? std::vector<std::string>{"QUEUED", "SCHEDULED", "RUNNING"}
                                       : f.statuses;
    Where w = build(f, "created_at", statuses, false);
    if (dry_run) return c.exec("SELECT count(*) FROM job" + w.sql(), w.params).i64(0, 0);
    auto r = c.exec("WITH moved AS (DELETE FROM job" + w.sql() +
                        " RETURNING *) " QUEUER_ARCHIVE_INSERT("moved", "'CANCELLED'", "started_at",
                                                               "'[]'", "''", "''"),
                    w.params);
    return r.affected();
}

int64_t delete_jobs(db::Connection& c, const Filter& f, bool dry_run, bool all) {
    check_statuses(f.statuses, {"SUCCEEDED", "FAILED", "CANCELLED"}, "delete (ended jobs)");
    if (f.empty() && !all)
        throw Error(ErrorKind::Invalid,
                    "delete jobs without a filter would empty the whole archive; give --status, "
                    "--task, --since, --until or --error (or --all)");
    Where w = build(f, "updated_at", f.statuses, true);
    if (dry_run) return c.exec("SELECT count(*) FROM job_archive" + w.sql(), w.params).i64(0, 0);
    return c.exec("DELETE FROM job_archive" + w.sql(), w.params).affected();
}

// ---- the web console's reads ----

namespace {

// How long after a FAILED or CANCELLED job ended its task may still add children that the
// detail page looks for (see job_detail).
constexpr auto kChildrenMargin = std::chrono::minutes(10);

// The columns read_row() reads, in order.
#define QUEUER_JOB_ROW_COLS                                                                \
    "id, rid, task_name, status, COALESCE(worker_rid::text, ''), created_at, updated_at, " \
    "scheduled_at, started_at, COALESCE(attempts, 0), left(COALESCE(error, ''), 300), "    \
    "COALESCE(octet_length(parameters_encrypted), 0) > 0"

std::optional<TimePoint> opt_time(const db::Result& r, int row, int col) {
    if (r.is_null(row, col)) return std::nullopt;
    auto tp = parse_time(r.get(row, col), "timestamp");
    // The Go reference writes 0001-01-01 for "not scheduled".
    if (tp < TimePoint(std::chrono::seconds(0))) return std::nullopt;
    return tp;
}

JobRow read_row(const db::Result& r, int i) {
    JobRow j;
    j.id = r.i64(i, 0);
    j.rid = r.str(i, 1);
    j.task_name = r.str(i, 2);
    j.status = r.str(i, 3);
    j.worker_rid = r.str(i, 4);
    j.created_at = parse_time(r.get(i, 5), "created_at");
    j.updated_at = parse_time(r.get(i, 6), "updated_at");
    j.scheduled_at = opt_time(r, i, 7);
    j.started_at = opt_time(r, i, 8);
    j.attempts = r.i32(i, 9);
    j.error = r.str(i, 10);
    j.sealed = r.boolean(i, 11);
    return j;
}

}  // namespace

JobPage list_jobs(db::Connection& c, bool archive, const Filter& f, int64_t before_id, int limit) {
    if (limit < 1 || limit > 1000)
        throw Error(ErrorKind::Invalid, fmt::format("limit must be 1..1000, not {}", limit));
    if (before_id < 0) throw Error(ErrorKind::Invalid, "before id cannot be negative");
    if (archive)
        check_statuses(f.statuses, {"SUCCEEDED", "FAILED", "CANCELLED"}, "ended jobs");
    else
        check_statuses(f.statuses, {"QUEUED", "SCHEDULED", "RUNNING"}, "live jobs");
    Where w = build(f, archive ? "updated_at" : "created_at", f.statuses, archive);
    if (before_id > 0) w.conds.push_back("id < " + w.add(std::to_string(before_id)) + "::bigint");
    auto r =
        c.exec(fmt::format("SELECT " QUEUER_JOB_ROW_COLS " FROM {}{} ORDER BY id DESC LIMIT {}",
                           archive ? "job_archive" : "job", w.sql(), limit + 1),
               w.params);
    JobPage page;
    for (int i = 0; i < r.rows() && i < limit; ++i) page.rows.push_back(read_row(r, i));
    page.more = r.rows() > limit;
    return page;
}

std::vector<JobRow> newest_jobs(db::Connection& c, int limit) {
    db::Params p;
    p.add(limit);
    auto r = c.exec("SELECT " QUEUER_JOB_ROW_COLS " FROM job ORDER BY id DESC LIMIT $1::int", p);
    std::vector<JobRow> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_row(r, i));
    return out;
}

std::optional<JobDetail> job_detail(db::Connection& c, std::string_view rid, const Cipher* cipher) {
    validate_rid(rid, "job rid");
    db::Params p;
    p.add(rid);
    JobDetail d;
    const std::string cols =
        std::string(kJobColumns) + ", COALESCE(options ->> 'parent_rid', ''), LOCALTIMESTAMP";
    auto r = c.exec("SELECT " + cols + " FROM job WHERE rid = $1::uuid", p);
    if (r.rows() == 0) {
        r = c.exec("SELECT " + cols +
                       " FROM job_archive WHERE rid = $1::uuid ORDER BY updated_at DESC LIMIT 1",
                   p);
        if (r.rows() == 0) return std::nullopt;
        d.archived = true;
    }
    detail::SealedColumns sealed;
    d.job = detail::job_from_row(r, 0, &sealed);
    d.options_json = r.is_null(0, 4) ? "" : r.str(0, 4);
    d.parent_rid = r.str(0, 20);
    d.queried_at = r.str(0, 21);
    d.parameters_sealed = !sealed.parameters.empty();
    d.keyed_sealed = !sealed.parameters_keyed.empty();
    d.results_sealed = !sealed.results.empty();
    if (sealed.any()) {
        if (!cipher) {
            d.seal_problem = "encrypted; the console has no key (QUEUER_ENCRYPTION_KEY)";
        } else {
            try {
                std::string what = fmt::format("job {}", d.job.rid);
                std::string params =
                    d.parameters_sealed ? cipher->open(sealed.parameters, what) : d.job.parameters;
                std::string keyed = d.keyed_sealed ? cipher->open(sealed.parameters_keyed, what)
                                                   : d.job.parameters_keyed;
                std::string results =
                    d.results_sealed ? cipher->open(sealed.results, what) : d.job.results;
                d.job.parameters = std::move(params);
                d.job.parameters_keyed = std::move(keyed);
                d.job.results = std::move(results);
                d.opened = true;
            } catch (const Error&) {
                d.seal_problem = "encrypted with another key: the console's key does not open it";
            }
        }
        if (!d.opened) {
            if (d.parameters_sealed) d.job.parameters.clear();
            if (d.keyed_sealed) d.job.parameters_keyed.clear();
            if (d.results_sealed) d.job.results.clear();
        }
    }

    bool parent_ok = !d.parent_rid.empty();
    try {
        if (parent_ok) validate_rid(d.parent_rid);
    } catch (const Error&) {
        parent_ok = false;
    }
    if (parent_ok) {
        db::Params pp;
        pp.add(d.parent_rid);
        auto pr = c.exec("(SELECT " QUEUER_JOB_ROW_COLS
                         " FROM job WHERE rid = $1::uuid) UNION ALL "
                         "(SELECT " QUEUER_JOB_ROW_COLS
                         " FROM job_archive WHERE rid = $1::uuid "
                         "ORDER BY updated_at DESC LIMIT 1) LIMIT 1",
                         pp);
        if (pr.rows() > 0) d.parent = read_row(pr, 0);
    }
    // Children: added after this job (higher ids: the primary key), and in the archive ended
    // after this job was created (the updated_at index). A job that SUCCEEDED added its children
    // before its task returned, so before it ended: every child's id is below that of any job
    // created after it ended, and one such job (from an index) bounds the scan. A job that
    // FAILED or was CANCELLED may have had a task that ran on after a timeout or a cancel: the
    // bound is taken kChildrenMargin later (children added after that are not looked for; the
    // page says so).
    std::string below;
    if (d.archived) {
        TimePoint after = d.job.updated_at;
        if (d.job.status != "SUCCEEDED") {
            after += kChildrenMargin;
            d.children_until = after;
        }
        db::Params bp;
        bp.add(format_time(after));
        auto b = c.exec(
            "SELECT min(id) FROM ("
            "(SELECT id FROM job WHERE created_at > $1::timestamp ORDER BY created_at LIMIT 1) "
            "UNION ALL "
            "(SELECT id FROM job_archive WHERE updated_at > $1::timestamp AND updated_at <= "
            "$1::timestamp + interval '1 minute' AND created_at > $1::timestamp "
            "ORDER BY updated_at LIMIT 1)) x",
            bp);
        if (b.rows() > 0 && !b.is_null(0, 0)) below = b.str(0, 0);
    }
    db::Params cp;
    cp.add(d.job.rid).add(d.job.id).add(format_time(d.job.created_at));
    if (below.empty())
        cp.add_null();
    else
        cp.add(below);
    auto cr = c.exec(
        "SELECT * FROM ("
        "(SELECT " QUEUER_JOB_ROW_COLS
        " FROM job WHERE id > $2::bigint AND ($4::bigint IS NULL OR id < $4::bigint) "
        "AND options ->> 'parent_rid' = $1::text ORDER BY id LIMIT 101) UNION ALL "
        "(SELECT " QUEUER_JOB_ROW_COLS
        " FROM job_archive WHERE id > $2::bigint AND updated_at >= $3::timestamp "
        "AND ($4::bigint IS NULL OR id < $4::bigint) "
        "AND options ->> 'parent_rid' = $1::text ORDER BY id LIMIT 101)) x ORDER BY id LIMIT 101",
        cp);
    for (int i = 0; i < cr.rows() && i < 100; ++i) d.children.push_back(read_row(cr, i));
    d.more_children = cr.rows() > 100;
    return d;
}

EndedMinutes ended_per_minute(db::Connection& c, std::chrono::seconds lookback) {
    if (lookback.count() < 0 || lookback > std::chrono::hours(24))
        throw Error(ErrorKind::Invalid,
                    fmt::format("lookback must be 0..86400 s, not {}", lookback.count()));
    EndedMinutes out;
    db::Params p;
    p.add(static_cast<int64_t>(lookback.count()));
    auto t = c.exec(
        "SELECT LOCALTIMESTAMP, date_trunc('minute', LOCALTIMESTAMP - make_interval(secs => "
        "$1::float8))",
        p);
    out.now = parse_time(t.get(0, 0), "now");
    out.from = parse_time(t.get(0, 1), "from");
    db::Params q;
    q.add(t.str(0, 1));
    auto r = c.exec(
        "SELECT date_trunc('minute', updated_at), task_name, status, count(*) FROM job_archive "
        "WHERE updated_at >= $1::timestamp GROUP BY 1, 2, 3",
        q);
    out.rows.reserve(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i)
        out.rows.push_back(
            {parse_time(r.get(i, 0), "minute"), r.str(i, 1), r.str(i, 2), r.i64(i, 3)});
    return out;
}

Activity summarize_activity(const std::vector<MinuteCount>& rows, TimePoint now, int minutes) {
    if (minutes < 1 || minutes > 1440)
        throw Error(ErrorKind::Invalid, fmt::format("minutes must be 1..1440, not {}", minutes));
    Activity a;
    a.minutes = minutes;
    a.now = now;
    auto this_minute = std::chrono::floor<std::chrono::minutes>(now);
    a.first_minute = this_minute - std::chrono::minutes(minutes - 1);
    a.per_minute.assign(static_cast<size_t>(minutes), {0, 0, 0});
    std::map<std::pair<std::string, std::string>, int64_t> per_task;
    for (const auto& m : rows) {
        if (m.minute < a.first_minute) continue;
        auto k =
            std::chrono::duration_cast<std::chrono::minutes>(m.minute - a.first_minute).count();
        // A clock a little ahead of ours: the current minute.
        if (k >= minutes) k = minutes - 1;
        per_task[{m.task_name, m.status}] += m.count;
        size_t s = m.status == "SUCCEEDED"   ? 0
                   : m.status == "FAILED"    ? 1
                   : m.status == "CANCELLED" ? 2
                                             : 3;
        if (s < 3) a.per_minute[static_cast<size_t>(k)][s] += m.count;
    }
    for (const auto& [key, n] : per_task) a.ended.push_back({key.first, key.second, n});
    return a;
}

Activity activity(db::Connection& c, int minutes) {
    if (minutes < 1 || minutes > 1440)
        throw Error(ErrorKind::Invalid, fmt::format("minutes must be 1..1440, not {}", minutes));
    auto em = ended_per_minute(c, std::chrono::minutes(minutes - 1));
    return summarize_activity(em.rows, em.now, minutes);
}

std::vector<WorkerRow> list_workers(db::Connection& c, int ended_limit) {
    if (ended_limit < 0 || ended_limit > 1000)
        throw Error(ErrorKind::Invalid,
                    fmt::format("ended_limit must be 0..1000, not {}", ended_limit));
    db::Params p;
    p.add(ended_limit);
    auto r = c.exec(
        fmt::format(
            "WITH r AS (SELECT worker_id, count(*) AS n FROM job WHERE status = 'RUNNING' "
            "           GROUP BY worker_id), "
            "w AS ((SELECT * FROM worker WHERE status IN ('READY', 'RUNNING', 'STOPPING') "
            "       ORDER BY id DESC LIMIT 1000) UNION ALL "
            "      (SELECT * FROM worker WHERE status NOT IN ('READY', 'RUNNING', 'STOPPING') "
            "       ORDER BY id DESC LIMIT $1::int)) "
            "SELECT " QUEUER_WORKER_COLS ", COALESCE(r.n, 0), GREATEST(0, EXTRACT(EPOCH FROM "
            "LOCALTIMESTAMP - updated_at))::float8, "
            "status IN ('READY', 'RUNNING', 'STOPPING') AND "
            "  updated_at < LOCALTIMESTAMP - make_interval(secs => {}) "
            "FROM w LEFT JOIN r ON r.worker_id = w.id "
            "ORDER BY status IN ('READY', 'RUNNING', 'STOPPING') DESC, id DESC",
            kStaleSeconds),
        p);
    std::vector<WorkerRow> out;
    for (int i = 0; i < r.rows(); ++i) {
        WorkerRow w;
        w.worker = detail::worker_from_row(r, i);
        w.running_jobs = r.i64(i, 11);
        w.heartbeat_age_s = std::stod(r.str(i, 12));
        w.stale = r.boolean(i, 13);
        out.push_back(std::move(w));
    }
    return out;
}

void annotate_worker(db::Connection& c, std::string_view worker_rid, const WorkerAnnotation& a) {
    std::string info =
        fmt::format("{{\"host\":{},\"pid\":{},\"version\":{},\"http\":{}}}", json::quote(a.host),
                    a.pid, json::quote(a.version), json::quote(a.http));
    db::Params p;
    p.add(worker_rid).add(info);
    c.exec(
        "UPDATE worker SET options = (CASE WHEN jsonb_typeof(options) = 'object' THEN options "
        "ELSE '{}'::jsonb END) || jsonb_build_object('queuerd', $2::jsonb) "
        "WHERE rid = $1::uuid",
        p);
}

}  // namespace queuer::admin
