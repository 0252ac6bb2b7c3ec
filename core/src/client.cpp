// Client: the job store (insert, COPY, select, cancel, delete, readd, wait) and worker/master
// queries. Every value is a bound parameter; hot statements are prepared.
#include "queuer/client.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "job_sql.hpp"
#include "queuer/crypto.hpp"
#include "queuer/error.hpp"
#include "queuer/schema.hpp"
#include "worker_row.hpp"

namespace queuer {

const char* const kJobColumns =
    "id, rid, worker_id, worker_rid, options, task_name, parameters, parameters_keyed, status, "
    "scheduled_at, started_at, schedule_count, attempts, results, error, created_at, updated_at, "
    "parameters_encrypted, parameters_keyed_encrypted, results_encrypted";

namespace {

#define JOB_COLS                                                                                 \
    "id, rid, worker_id, worker_rid, options, task_name, parameters, parameters_keyed, status, " \
    "scheduled_at, started_at, schedule_count, attempts, results, error, created_at, "           \
    "updated_at, parameters_encrypted, parameters_keyed_encrypted, results_encrypted"

const db::Statement kInsertJob{
    "queuer_insert_job",
    "INSERT INTO job (options, task_name, parameters, parameters_keyed, status, scheduled_at, "
    "parameters_encrypted, parameters_keyed_encrypted) "
    "VALUES ($1::jsonb, $2, $3::jsonb, $4::jsonb, $5::varchar, "
    "CASE WHEN $5::varchar = 'SCHEDULED' THEN COALESCE($6::timestamp, CURRENT_TIMESTAMP) END, "
    "$7::bytea, $8::bytea) RETURNING " JOB_COLS};

const db::Statement kSelectJob{"queuer_select_job",
                               "SELECT " JOB_COLS " FROM job WHERE rid = $1::uuid"};
const db::Statement kSelectJobEnded{
    "queuer_select_job_ended",
    "SELECT " JOB_COLS " FROM job_archive WHERE rid = $1::uuid ORDER BY updated_at DESC LIMIT 1"};

#define LIST_WHERE                                                                \
    " WHERE ($1::varchar = '' OR status = $1::varchar)"                           \
    " AND ($2::bigint = 0 OR id < $2::bigint)"                                    \
    " AND ($3::text = '' OR worker_rid = NULLIF($3::text, '')::uuid)"             \
    " AND ($4::text = '' OR rid::text ILIKE $4::text OR task_name ILIKE $4::text" \
    "      OR status ILIKE $4::text OR worker_id::text ILIKE $4::text)"           \
    " ORDER BY id DESC LIMIT $5::int"

const db::Statement kListJobs{"queuer_list_jobs", "SELECT " JOB_COLS " FROM job" LIST_WHERE};
const db::Statement kListJobsEnded{"queuer_list_jobs_ended",
                                   "SELECT " JOB_COLS " FROM job_archive" LIST_WHERE};

const db::Statement kCancelJob{
    "queuer_cancel_job",
    "WITH moved AS (DELETE FROM job WHERE rid = $1::uuid "
    "  AND status IN ('QUEUED', 'SCHEDULED', 'RUNNING') RETURNING *) " QUEUER_ARCHIVE_INSERT(
        "moved", "'CANCELLED'", "started_at", "'[]'", "''", "''") " RETURNING " JOB_COLS};

#define WORKER_COLS QUEUER_WORKER_COLS

std::optional<TimePoint> opt_time(const db::Result& r, int row, int col) {
    if (r.is_null(row, col)) return std::nullopt;
    auto tp = parse_time(r.get(row, col), "timestamp");
    // The Go reference writes 0001-01-01 for "not scheduled".
    if (tp < TimePoint(std::chrono::seconds(0))) return std::nullopt;
    return tp;
}

std::string json_text(const rapidjson::Value& v) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    v.Accept(w);
    return std::string(sb.GetString(), sb.GetSize());
}

std::vector<std::string> parse_pg_array(std::string_view s) {
    std::vector<std::string> out;
    if (s.size() < 2 || s.front() != '{') return out;
    s = s.substr(1, s.size() - 2);
    size_t i = 0;
    while (i < s.size()) {
        std::string item;
        if (s[i] == '"') {
            ++i;
            while (i < s.size() && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < s.size()) ++i;
                item += s[i++];
            }
            ++i;
        } else {
            while (i < s.size() && s[i] != ',') item += s[i++];
        }
        out.push_back(std::move(item));
        if (i < s.size() && s[i] == ',') ++i;
    }
    return out;
}

}  // namespace

Worker detail::worker_from_row(const db::Result& r, int i) {
    Worker w;
    w.id = r.i64(i, 0);
    w.rid = r.str(i, 1);
    w.name = r.str(i, 2);
    if (!r.is_null(i, 3)) {
        auto text = r.get(i, 3);
        if (text != "{}" && text != "null") {
            // queuerd keeps host, pid, version and its HTTP address under options.queuerd (a
            // key the Go and Python clients ignore); the rest is the worker's OnError.
            rapidjson::Document d;
            d.Parse(text.data(), text.size());
            if (d.IsObject() && d.HasMember("queuerd")) {
                const auto& q = d["queuerd"];
                if (q.IsObject()) {
                    if (q.HasMember("host") && q["host"].IsString()) w.host = q["host"].GetString();
                    if (q.HasMember("pid") && q["pid"].IsInt64()) w.pid = q["pid"].GetInt64();
                    if (q.HasMember("version") && q["version"].IsString())
                        w.queuerd_version = q["version"].GetString();
                    if (q.HasMember("http") && q["http"].IsString()) w.http = q["http"].GetString();
                }
                d.RemoveMember("queuerd");
            }
            if (d.IsObject() && d.MemberCount() > 0) {
                try {
                    w.options = OnError::from_json(json_text(d));
                } catch (const Error&) {
                }
            }
        }
    }
    w.available_tasks = parse_pg_array(r.get(i, 4));
    w.available_next_interval = parse_pg_array(r.get(i, 5));
    w.current_concurrency = r.is_null(i, 6) ? 0 : r.i32(i, 6);
    w.max_concurrency = r.is_null(i, 7) ? 0 : r.i32(i, 7);
    w.status = r.str(i, 8);
    w.created_at = parse_time(r.get(i, 9), "created_at");
    w.updated_at = parse_time(r.get(i, 10), "updated_at");
    return w;
}

namespace {

Worker row_to_worker(const db::Result& r, int i) {
    return detail::worker_from_row(r, i);
}

std::string like_pattern(std::string_view term) {
    if (term.empty()) return {};
    std::string p = "%";
    for (char c : term) {
        if (c == '%' || c == '_' || c == '\\') p += '\\';
        p += c;
    }
    p += '%';
    return p;
}

void check_limit(int limit, int64_t last_id) {
    if (limit < 1 || limit > 10000)
        throw Error(ErrorKind::Invalid, fmt::format("limit must be 1..10000, not {}", limit));
    if (last_id < 0) throw Error(ErrorKind::Invalid, "lastId cannot be negative");
}

// COPY text format: escape backslash, tab, newline, carriage return.
void copy_field(std::string& out, std::string_view v) {
    for (char c : v) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out += c;
        }
    }
}

}  // namespace

Client::Client(DatabaseConfig cfg, std::string_view encryption_key, bool do_migrate,
               size_t pool_size)
    : cfg_(std::move(cfg)) {
    cfg_.validate();
    if (!encryption_key.empty()) cipher_ = std::make_unique<Cipher>(encryption_key);
    pool_ = std::make_unique<db::Pool>(cfg_, pool_size);
    auto c = pool_->acquire();
    if (do_migrate) migrate(*c, cfg_.timescaledb);
    compat_form(*c);
}

CompatForm Client::compat_form() {
    {
        std::lock_guard<std::mutex> lk(compat_mu_);
        if (compat_ &&
            std::chrono::steady_clock::now() - compat_read_at_ < std::chrono::seconds(30))
            return *compat_;
    }
    auto c = pool_->acquire();
    return compat_form(*c);
}

CompatForm Client::compat_form(db::Connection& c) {
    std::lock_guard<std::mutex> lk(compat_mu_);
    auto now = std::chrono::steady_clock::now();
    if (compat_ && now - compat_read_at_ < std::chrono::seconds(30)) return *compat_;
    try {
        compat_ = read_compat_form(c);
    } catch (const Error&) {
        // A connection error surfaces in the statement that follows; until then the last known
        // form stands (python when none was ever read: the migration's default).
        if (!compat_) compat_ = CompatForm::Python;
    }
    compat_read_at_ = now;
    return *compat_;
}

Client::~Client() = default;

namespace {

// pgcrypto's pgp_sym_encrypt output starts with an OpenPGP symmetric-key session key packet
// (new format, tag 3: 0xC3, a length, version 4). libsodium's output starts with a random nonce.
bool looks_like_pgcrypto(std::string_view bytes) {
    return bytes.size() > 3 && static_cast<unsigned char>(bytes[0]) == 0xC3 &&
           static_cast<unsigned char>(bytes[2]) == 0x04;
}

}  // namespace

Job detail::job_from_row(const db::Result& r, int i, SealedColumns* sealed) {
    Job j;
    j.id = r.i64(i, 0);
    j.rid = r.str(i, 1);
    j.worker_id = r.is_null(i, 2) ? 0 : r.i64(i, 2);
    if (!r.is_null(i, 3)) j.worker_rid = r.str(i, 3);
    if (!r.is_null(i, 4)) {
        j.options_json = r.str(i, 4);
        try {
            j.options = Options::from_json(j.options_json);
        } catch (const Error&) {
            // Written by another client in a shape we do not know: run without options (the
            // text is kept in options_json, shown by Job::to_json, copied by a retry).
        }
    }
    j.task_name = r.str(i, 5);
    auto json_or = [&](int col, const char* fallback) {
        if (r.is_null(i, col)) return std::string(fallback);
        auto v = r.get(i, col);
        return v == "null" ? std::string(fallback) : std::string(v);
    };
    j.parameters = json_or(6, "[]");
    j.parameters_keyed = json_or(7, "{}");
    j.status = r.str(i, 8);
    j.scheduled_at = opt_time(r, i, 9);
    j.started_at = opt_time(r, i, 10);
    j.schedule_count = r.is_null(i, 11) ? 0 : r.i32(i, 11);
    j.attempts = r.is_null(i, 12) ? 0 : r.i32(i, 12);
    j.results = json_or(13, "[]");
    j.error = r.str(i, 14);
    j.created_at = parse_time(r.get(i, 15), "created_at");
    j.updated_at = parse_time(r.get(i, 16), "updated_at");
    if (sealed) {
        auto bytes = [&](int col) {
            if (r.is_null(i, col) || r.get(i, col).size() <= 2) return std::string();
            return bytea_from_text(r.get(i, col));
        };
        sealed->parameters = bytes(17);
        sealed->parameters_keyed = bytes(18);
        sealed->results = bytes(19);
    }
    return j;
}

Job Client::row_to_job(const db::Result& r, int i, Unreadable mode) const {
    detail::SealedColumns s;
    Job j = detail::job_from_row(r, i, &s);
    auto sealed = [&](const std::string& bytes, const char* name) -> std::optional<std::string> {
        if (bytes.empty()) return std::nullopt;
        if (cipher_) {
            try {
                return cipher_->open(bytes, fmt::format("job {}", j.rid));
            } catch (const Error&) {
                // Not ours to read: said below, the same way with or without a key.
            }
        }
        const bool pgcrypto = looks_like_pgcrypto(bytes);
        std::string why;
        if (pgcrypto)
            why = fmt::format(
                "job {}: its {} were encrypted by a Go or Python queuer client (pgcrypto, with "
                "that client's key); queuerd cannot decrypt them, read them with that client",
                j.rid, name);
        else if (!cipher_)
            why = fmt::format(
                "job {}: its {} are encrypted by queuerd; set QUEUER_ENCRYPTION_KEY to read them",
                j.rid, name);
        else
            why =
                fmt::format("job {}: its {} were sealed with another key (or the data was changed)",
                            j.rid, name);
        if (mode == Unreadable::Throw) throw Error(ErrorKind::Crypto, why);
        j.unreadable.push_back(name);
        j.sealed_by = pgcrypto ? "pgcrypto" : "queuerd";
        if (j.unreadable_reason.empty()) j.unreadable_reason = why;
        return std::nullopt;
    };
    auto apply = [&](const std::string& bytes, const char* name, std::string& target,
                     const char* empty) {
        if (auto p = sealed(bytes, name))
            target = *p;
        else if (!bytes.empty())
            target = empty;  // unreadable: never the plaintext column's default in its place
    };
    apply(s.parameters, "parameters", j.parameters, "");
    apply(s.parameters_keyed, "parameters_keyed", j.parameters_keyed, "");
    apply(s.results, "results", j.results, "");
    if (j.unreadable.size() > 1) {
        std::string cols;
        for (const auto& u : j.unreadable) cols += (cols.empty() ? "" : ", ") + u;
        j.unreadable_reason =
            j.sealed_by == "pgcrypto" ? fmt::format(
                                            "job {}: {} encrypted by a Go or Python queuer "
                                            "client (pgcrypto); queuerd cannot decrypt them",
                                            j.rid, cols)
            : cipher_ ? fmt::format("job {}: {} sealed with another key", j.rid, cols)
                      : fmt::format(
                            "job {}: {} encrypted by queuerd; set "
                            "QUEUER_ENCRYPTION_KEY to read them",
                            j.rid, cols);
    }
    return j;
}

Job Client::insert_one(db::Connection& c, std::string_view task, std::string_view parameters,
                       std::string_view parameters_keyed, std::optional<Options> options,
                       const std::string* raw_options) {
    validate_task_name(task);
    std::string params = json::compact_array(parameters.empty() ? "[]" : parameters, "parameters");
    std::string keyed = json::compact_object(parameters_keyed.empty() ? "{}" : parameters_keyed,
                                             "parameters_keyed");
    Options opts = options.value_or(Options{});
    if (!raw_options && !opts.on_error && default_on_error_) opts.on_error = default_on_error_;
    opts.validate();

    db::Params p;
    if (raw_options)
        p.add(*raw_options);
    else
        p.add(opts.to_json(compat_form(c)));
    p.add(task);
    if (cipher_) {
        p.add("[]").add("{}");
    } else {
        p.add(params).add(keyed);
    }
    if (opts.schedule) {
        p.add(status::scheduled);
        if (opts.schedule->start)
            p.add(format_time(*opts.schedule->start));
        else
            p.add_null();
    } else {
        p.add(status::queued).add_null();
    }
    if (cipher_) {
        p.add(bytea_to_text(cipher_->seal(params))).add(bytea_to_text(cipher_->seal(keyed)));
    } else {
        p.add("").add("");
    }
    auto r = c.exec(kInsertJob, p);
    return row_to_job(r, 0);
}

Job Client::add_job_json(std::string_view task, std::string_view parameters,
                         std::string_view parameters_keyed, std::optional<Options> options) {
    auto c = pool_->acquire();
    return insert_one(*c, task, parameters, parameters_keyed, std::move(options));
}

Job Client::add_job_json_tx(db::Connection& tx, std::string_view task, std::string_view parameters,
                            std::string_view parameters_keyed, std::optional<Options> options) {
    return insert_one(tx, task, parameters, parameters_keyed, std::move(options));
}

std::vector<std::string> Client::add_jobs(const std::vector<BatchJob>& jobs) {
    std::vector<std::string> rids;
    if (jobs.empty()) return rids;
    rids.reserve(jobs.size());
    std::string data;
    data.reserve(jobs.size() * 96);
    auto ts = now();
    const CompatForm form = compat_form();
    for (size_t i = 0; i < jobs.size(); ++i) {
        const auto& b = jobs[i];
        auto where = [&](const Error& e) {
            return Error(e.kind(),
                         fmt::format("batch job {} (task \"{}\"): {}", i + 1, b.task, e.what()));
        };
        std::string params, keyed, opts_json;
        bool scheduled = false;
        std::string scheduled_at;
        try {
            validate_task_name(b.task);
            params = json::compact_array(b.parameters.empty() ? "[]" : b.parameters, "parameters");
            keyed = json::compact_object(b.parameters_keyed.empty() ? "{}" : b.parameters_keyed,
                                         "parameters_keyed");
            Options opts = b.options.value_or(Options{});
            if (!opts.on_error && default_on_error_) opts.on_error = default_on_error_;
            opts.validate();
            opts_json = opts.to_json(form);
            if (opts.schedule) {
                scheduled = true;
                scheduled_at = format_time(opts.schedule->start.value_or(ts));
            }
        } catch (const Error& e) {
            throw where(e);
        }
        std::string rid = random_uuid();
        // rid, options, task_name, parameters, parameters_keyed, status, scheduled_at, enc, enc
        copy_field(data, rid);
        data += '\t';
        copy_field(data, opts_json);
        data += '\t';
        copy_field(data, b.task);
        data += '\t';
        if (cipher_) {
            data += "[]\t{}\t";
        } else {
            copy_field(data, params);
            data += '\t';
            copy_field(data, keyed);
            data += '\t';
        }
        data += scheduled ? "SCHEDULED\t" : "QUEUED\t";
        if (scheduled)
            data += scheduled_at;
        else
            data += "\\N";
        data += '\t';
        if (cipher_) {
            copy_field(data, bytea_to_text(cipher_->seal(params)));
            data += '\t';
            copy_field(data, bytea_to_text(cipher_->seal(keyed)));
        } else {
            data += "\\\\x\t\\\\x";
        }
        data += '\n';
        rids.push_back(std::move(rid));
    }
    auto c = pool_->acquire();
    c->copy_in(
        "COPY job (rid, options, task_name, parameters, parameters_keyed, status, scheduled_at, "
        "parameters_encrypted, parameters_keyed_encrypted) FROM STDIN",
        data);
    return rids;
}

Job Client::get_job(std::string_view rid) {
    validate_rid(rid);
    auto c = pool_->acquire();
    db::Params p;
    p.add(rid);
    auto r = c->exec(kSelectJob, p);
    if (r.rows() == 0) throw Error(ErrorKind::NotFound, fmt::format("job not found: {}", rid));
    return row_to_job(r, 0, Unreadable::Mark);
}

Job Client::get_job_ended(std::string_view rid) {
    validate_rid(rid);
    auto c = pool_->acquire();
    db::Params p;
    p.add(rid);
    auto r = c->exec(kSelectJobEnded, p);
    if (r.rows() == 0)
        throw Error(ErrorKind::NotFound, fmt::format("ended job not found: {}", rid));
    return row_to_job(r, 0, Unreadable::Mark);
}

std::vector<Job> Client::select_jobs(bool archive, const JobQuery& q) {
    check_limit(q.limit, q.last_id);
    if (!q.worker_rid.empty()) validate_rid(q.worker_rid, "worker rid");
    auto c = pool_->acquire();
    db::Params p;
    p.add(q.status).add(q.last_id).add(q.worker_rid).add(like_pattern(q.search)).add(q.limit);
    db::Result r;
    if (!q.since.set() && !q.until.set() && q.error.empty()) {
        r = c->exec(archive ? kListJobsEnded : kListJobs, p);
    } else {
        // The operator's filters: the same conditions plus a time window and the error text,
        // planned with the values (the archive's updated_at index serves the window).
        const char* col = archive ? "updated_at" : "created_at";
        std::string sql = std::string("SELECT " JOB_COLS " FROM ") +
                          (archive ? "job_archive" : "job") +
                          " WHERE ($1::varchar = '' OR status = $1::varchar)"
                          " AND ($2::bigint = 0 OR id < $2::bigint)"
                          " AND ($3::text = '' OR worker_rid = NULLIF($3::text, '')::uuid)"
                          " AND ($4::text = '' OR rid::text ILIKE $4::text OR task_name ILIKE "
                          "$4::text OR status ILIKE $4::text OR worker_id::text ILIKE $4::text)";
        int n = 5;
        auto bound = [&](const TimeBound& b, const char* op) {
            if (b.ago_seconds) {
                p.add(fmt::format("{}", *b.ago_seconds));
                sql += fmt::format(" AND {} {} LOCALTIMESTAMP - make_interval(secs => ${}::float8)",
                                   col, op, ++n);
            } else if (b.at) {
                p.add(format_time(*b.at));
                sql += fmt::format(" AND {} {} ${}::timestamp", col, op, ++n);
            }
        };
        bound(q.since, ">=");
        bound(q.until, "<");
        if (!q.error.empty()) {
            p.add(like_pattern(q.error));
            sql += fmt::format(" AND error <> '' AND error ILIKE ${}::text", ++n);
        }
        sql += " ORDER BY id DESC LIMIT $5::int";
        r = c->exec(sql, p);
    }
    std::vector<Job> out;
    out.reserve(r.rows());
    for (int i = 0; i < r.rows(); ++i) out.push_back(row_to_job(r, i, Unreadable::Mark));
    return out;
}

std::vector<Job> Client::get_jobs(const JobQuery& q) {
    return select_jobs(false, q);
}
std::vector<Job> Client::get_jobs_ended(const JobQuery& q) {
    return select_jobs(true, q);
}

std::vector<Job> Client::get_jobs_by_worker_rid(std::string_view worker_rid, int64_t last_id,
                                                int limit) {
    JobQuery q;
    q.worker_rid = worker_rid;
    q.last_id = last_id;
    q.limit = limit;
    return select_jobs(false, q);
}

std::vector<Job> Client::get_jobs_by_search(std::string_view search, int64_t last_id, int limit) {
    JobQuery q;
    q.search = search;
    q.last_id = last_id;
    q.limit = limit;
    return select_jobs(false, q);
}

Job Client::cancel_job(std::string_view rid) {
    validate_rid(rid);
    auto c = pool_->acquire();
    db::Params p;
    p.add(rid);
    auto r = c->exec(kCancelJob, p);
    if (r.rows() > 0) return row_to_job(r, 0, Unreadable::Mark);
    auto ended = c->exec(kSelectJobEnded, p);
    if (ended.rows() > 0)
        throw Error(ErrorKind::Invalid,
                    fmt::format("job {} has already ended ({}); only queued, scheduled or "
                                "running jobs can be cancelled",
                                rid, ended.get(0, 8)));
    throw Error(ErrorKind::NotFound, fmt::format("job not found: {}", rid));
}

void Client::delete_job(std::string_view rid) {
    validate_rid(rid);
    auto c = pool_->acquire();
    db::Params p;
    p.add(rid);
    c->exec("DELETE FROM job_archive WHERE rid = $1::uuid", p);
}

Job Client::readd_job_from_archive(std::string_view rid) {
    Job old;
    try {
        old = get_job_ended(rid);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::NotFound)
            throw Error(ErrorKind::NotFound, fmt::format("job not found in archive: {}", rid));
        throw;
    }
    // Its results do not matter here; its parameters do: never re-added without them.
    for (const auto& col : old.unreadable)
        if (col != "results")
            throw Error(ErrorKind::Crypto,
                        fmt::format("cannot retry job {}: {}", old.rid, old.unreadable_reason));
    // The options exactly as they were written (their writer's form: a Python client's job keeps
    // its float seconds and naive start), with the default on_error merged in when it had none.
    std::string raw = old.options_json;
    if (!old.options.on_error && default_on_error_) {
        rapidjson::Document d;
        if (!raw.empty()) d.Parse(raw.c_str());
        if (raw.empty() || d.HasParseError() || !d.IsObject()) {
            Options o = old.options;
            o.on_error = default_on_error_;
            raw = o.to_json(compat_form());
        } else {
            rapidjson::Document e(&d.GetAllocator());
            e.Parse(default_on_error_->to_json().c_str());
            d.RemoveMember("on_error");
            d.AddMember("on_error", e.Move(), d.GetAllocator());
            rapidjson::StringBuffer sb;
            rapidjson::Writer<rapidjson::StringBuffer> w(sb);
            d.Accept(w);
            raw = sb.GetString();
        }
        old.options.on_error = default_on_error_;
    }
    auto c = pool_->acquire();
    return insert_one(*c, old.task_name, old.parameters, old.parameters_keyed, old.options,
                      raw.empty() ? nullptr : &raw);
}

std::optional<Job> Client::wait_for_job_finished(std::string_view rid,
                                                 std::chrono::milliseconds timeout) {
    validate_rid(rid);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    // Subscribe first, then look: a job that ends in between is still seen (reference BUG 28).
    auto c = db::Connection::open(cfg_);
    c.listen("job_archive");
    db::Params p;
    p.add(rid);
    auto lookup = [&]() -> std::optional<Job> {
        auto r = c.exec(kSelectJobEnded, p);
        if (r.rows() > 0) return row_to_job(r, 0, Unreadable::Mark);
        return std::nullopt;
    };
    if (auto j = lookup()) return j;
    for (;;) {
        // Drain before polling: a notification that arrived with a lookup's reply is already
        // in libpq's buffer and would never make the socket readable again.
        bool seen = false;
        for (const auto& note : c.drain_notifications()) {
            rapidjson::Document d;
            d.Parse(note.payload.c_str());
            if (d.IsObject() && d.HasMember("rid") && d["rid"].IsString() &&
                rid == d["rid"].GetString())
                seen = true;
        }
        if (seen) {
            if (auto j = lookup()) return j;
            continue;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return lookup();
        pollfd pfd{c.socket(), POLLIN, 0};
        int n = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 60000)));
        if (n < 0 && errno != EINTR)
            throw Error(ErrorKind::Connection, "waiting for the job: poll failed");
    }
}

Worker Client::get_worker(std::string_view rid) {
    validate_rid(rid, "worker rid");
    auto c = pool_->acquire();
    db::Params p;
    p.add(rid);
    auto r = c->exec("SELECT " WORKER_COLS " FROM worker WHERE rid = $1::uuid", p);
    if (r.rows() == 0) throw Error(ErrorKind::NotFound, fmt::format("worker not found: {}", rid));
    return row_to_worker(r, 0);
}

std::vector<Worker> Client::get_workers(int64_t last_id, int limit, std::string_view search) {
    check_limit(limit, last_id);
    auto c = pool_->acquire();
    db::Params p;
    p.add(last_id).add(like_pattern(search)).add(limit);
    auto r = c->exec("SELECT " WORKER_COLS
                     " FROM worker WHERE ($1::bigint = 0 OR id < $1::bigint)"
                     " AND ($2::text = '' OR name ILIKE $2::text OR status ILIKE $2::text"
                     "      OR array_to_string(available_tasks, ',') ILIKE $2::text)"
                     " ORDER BY id DESC LIMIT $3::int",
                     p);
    std::vector<Worker> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(row_to_worker(r, i));
    return out;
}

Worker Client::stop_worker(std::string_view rid, bool graceful) {
    validate_rid(rid, "worker rid");
    db::Params p;
    p.add(rid).add(graceful ? worker_status::stopping : worker_status::stopped);
    // Compare-and-set: never turns a STOPPED worker back into STOPPING. The NOTIFY tells the
    // worker at once; its heartbeat is the fallback. The lease ends before get_worker below
    // takes one (a pool of one connection would otherwise wait forever).
    auto r = pool_->acquire()->exec(
        "WITH w AS (UPDATE worker SET status = $2::varchar, "
        "updated_at = CURRENT_TIMESTAMP WHERE rid = $1::uuid AND status <> 'STOPPED' "
        "RETURNING " WORKER_COLS
        "), n AS (SELECT pg_notify('worker', "
        "json_build_object('id', id, 'rid', rid, 'status', status)::text) FROM w) "
        "SELECT w.* FROM w LEFT JOIN n ON true",
        p);
    if (r.rows() > 0) return row_to_worker(r, 0);
    auto w = get_worker(rid);  // throws NotFound
    throw Error(ErrorKind::Invalid, fmt::format("worker {} is already STOPPED", w.rid));
}

Master Client::get_master() {
    auto c = pool_->acquire();
    auto r = c->exec(
        "SELECT id, worker_id, worker_rid, settings, created_at, updated_at FROM master "
        "WHERE id = 1");
    if (r.rows() == 0) throw Error(ErrorKind::NotFound, "master row not found");
    Master m;
    m.id = r.i32(0, 0);
    m.worker_id = r.is_null(0, 1) ? 0 : r.i64(0, 1);
    if (!r.is_null(0, 2)) m.worker_rid = r.str(0, 2);
    m.settings = MasterSettings::from_json(r.is_null(0, 3) ? "" : r.get(0, 3));
    m.created_at = parse_time(r.get(0, 4), "created_at");
    m.updated_at = parse_time(r.get(0, 5), "updated_at");
    return m;
}

std::vector<Connection> Client::get_connections() {
    auto c = pool_->acquire();
    auto r = c->exec(
        "SELECT pid, COALESCE(datname, ''), COALESCE(usename, ''), "
        "COALESCE(application_name, ''), COALESCE(query, ''), COALESCE(state, ''), "
        "(state_change AT TIME ZONE 'UTC') FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY pid");
    std::vector<Connection> out;
    for (int i = 0; i < r.rows(); ++i) {
        Connection x;
        x.pid = r.i32(i, 0);
        x.database = r.str(i, 1);
        x.username = r.str(i, 2);
        x.application_name = r.str(i, 3);
        x.query = r.str(i, 4);
        x.state = r.str(i, 5);
        if (!r.is_null(i, 6)) x.since = parse_time(r.get(i, 6), "state_change");
        out.push_back(std::move(x));
    }
    return out;
}

}  // namespace queuer
