// queuerctl: inspect and control a queuerd job queue from the shell (docs/queuerctl.md).
// Exit codes: 0 ok, 1 the operation failed (not found, not possible now, database refused),
// 2 usage / configuration / database unreachable, 3 waited job FAILED or CANCELLED,
// 4 wait timed out.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "output.hpp"
#include "queuer/admin.hpp"
#include "queuer/app_config.hpp"
#include "queuer/client.hpp"
#include "queuer/error.hpp"
#include "queuer/http.hpp"
#include "queuer/json.hpp"
#include "queuer/model.hpp"
#include "queuer/schema.hpp"
#include "web/console.hpp"

#ifndef QUEUER_VERSION
#define QUEUER_VERSION "0.0.0"
#endif

namespace queuerctl {
namespace {

using queuer::Error;
using queuer::ErrorKind;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitJobFailed = 3;
constexpr int kExitTimeout = 4;

// An error that ends the program with one line on stderr: "queuerctl: WHAT — WHAT TO DO".
struct Exit {
    int code;
    std::string what;
    std::string todo;
};

[[noreturn]] void usage(std::string what, std::string todo) {
    throw Exit{kExitUsage, std::move(what), std::move(todo)};
}

std::string flatten(std::string_view s) {
    std::string out;
    bool space = false;
    for (char c : s) {
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            space = true;
            continue;
        }
        if (space && !out.empty()) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

void print_exit(const Exit& e) {
    std::string line = "queuerctl: " + flatten(e.what);
    if (!e.todo.empty()) line += " \u2014 " + flatten(e.todo);
    line += '\n';
    std::fputs(line.c_str(), stderr);
}

struct Globals {
    bool json = false;
    bool verbose = false;
    std::string config;
};

struct Args {
    std::string rid;
    std::string task;
    std::string params = "[]";
    std::string keyed = "{}";
    std::string options;
    std::string file;
    std::string status;
    std::string search;
    int64_t last_id = 0;
    int limit = 10;
    double timeout = 0;
    bool graceful = false;
    // day two
    std::string since, until, error;
    bool strict = false;
    bool dry_run = false;
    bool all = false;
    std::string compat;  // migrate --compat python|go
    // web
    std::string listen = "127.0.0.1:8080";
    bool read_only = false;
};

class Ctl {
  public:
    explicit Ctl(Globals g) : g_(std::move(g)) {
        style_.color = !g_.json && ::isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr;
    }

    const Globals& globals() const { return g_; }
    const queuer::AppConfig& config() {
        if (!cfg_) {
            cfg_ = g_.config.empty() ? queuer::load_app_config()
                                     : queuer::load_app_config(g_.config, false);
            cfg_->database.application_name = "queuerctl";
        }
        return *cfg_;
    }

    void verbose(const std::string& msg) const {
        if (g_.verbose) std::fprintf(stderr, "queuerctl: %s\n", msg.c_str());
    }

    // The database, with the queuer schema checked: only `migrate` creates a schema, every
    // other verb against a missing one exits 2 naming it.
    queuer::Client& client() {
        if (!client_) {
            const auto& cfg = config();
            verbose(fmt::format(
                "database {}{}", cfg.database.describe(),
                cfg.source.empty() ? " (from the environment)" : " (from " + cfg.source + ")"));
            if (!cfg.encryption_key.empty())
                verbose("encryption on, key from " + cfg.encryption_key_source);
            // Two connections: some calls look a row up again while holding one.
            client_ = std::make_unique<queuer::Client>(cfg.database, cfg.encryption_key, false, 2);
            std::string missing;
            {
                auto c = client_->pool().acquire();
                missing = queuer::admin::check_schema(*c);
            }
            if (!missing.empty())
                throw Exit{kExitUsage, missing,
                           "check QUEUER_DB_SCHEMA (or database.schema); 'queuerctl migrate' "
                           "creates the schema, queuerd creates it at start"};
        }
        return *client_;
    }
    // A connection of the client's pool (after the schema check).
    queuer::db::Pool::Lease conn() { return client().pool().acquire(); }

    void out(const std::string& s) const { std::fputs(s.c_str(), stdout); }
    void json(const std::string& s) const { out(s + "\n"); }
    template <class T>
    void json_array(const std::vector<T>& items) const {
        std::string s = "[";
        for (size_t i = 0; i < items.size(); ++i) s += (i ? "," : "") + items[i].to_json();
        json(s + "]");
    }
    const Style& style() const { return style_; }
    void kv(const KeyValues& kv) const { print_kv(stdout, kv, style_); }

  private:
    Globals g_;
    Style style_;
    std::optional<queuer::AppConfig> cfg_;
    std::unique_ptr<queuer::Client> client_;
};

// ---- argument checks (before any database work) ----

void check_rid(const std::string& rid, const char* what) {
    if (rid.empty()) usage("--rid is required", fmt::format("give the {} RID with --rid", what));
    try {
        queuer::validate_rid(rid, "--rid");
    } catch (const Error&) {
        usage(fmt::format("invalid {} RID {}: not a UUID", what, queuer::json::quote(rid)),
              "pass a RID like 0b6f7c1e-1f53-4b8e-9b1a-6a2c1d2e3f40");
    }
}

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string check_status(const std::string& s, std::initializer_list<const char*> allowed,
                         const char* what) {
    if (s.empty()) return s;
    std::string u = upper(s);
    std::string list;
    for (const char* a : allowed) {
        if (u == a) return u;
        list += (list.empty() ? "" : ", ") + std::string(a);
    }
    usage(fmt::format("--status {} is not a status of {}", s, what), "use one of " + list);
}

void check_json(const std::string& text, const char* flag, bool array) {
    try {
        if (array)
            queuer::json::require_array(text, flag);
        else
            queuer::json::require_object(text, flag);
    } catch (const Error& e) {
        usage(e.what(),
              array ? fmt::format("pass a JSON array, e.g. {} '[1,\"a\"]'", flag)
                    : fmt::format("pass a JSON object, e.g. {} '{{\"key\":\"value\"}}'", flag));
    }
}

// ---- verbs ----

int cmd_version(Ctl& ctl) {
    if (ctl.globals().json)
        ctl.json(fmt::format("{{\"version\":\"{}\",\"schema_version\":{}}}", QUEUER_VERSION,
                             queuer::schema_version()));
    else
        ctl.out(fmt::format("queuerctl {} (schema version {})\n", QUEUER_VERSION,
                            queuer::schema_version()));
    return kExitOk;
}

int cmd_migrate(Ctl& ctl, const Args& a) {
    std::optional<queuer::CompatForm> want;
    if (!a.compat.empty()) {
        try {
            want = queuer::parse_compat_form(a.compat, "--compat");
        } catch (const Error& e) {
            usage(e.what(), "use --compat python (queuerPy shares the database) or --compat go");
        }
    }
    const auto& cfg = ctl.config();
    ctl.verbose("database " + cfg.database.describe());
    cfg.database.validate();
    auto conn = queuer::db::Connection::open(cfg.database);
    auto r = queuer::migrate(conn, cfg.database.timescaledb);
    queuer::CompatChange ch;
    if (want) {
        ch = queuer::set_compat_form(conn, *want);
    } else {
        ch.from = ch.to = queuer::read_compat_form(conn);
    }
    if (ctl.globals().json) {
        ctl.json(
            fmt::format("{{\"schema\":{},\"from_version\":{},\"to_version\":{},\"timescaledb\":{},"
                        "\"compat\":\"{}\",\"previous_compat\":\"{}\",\"converted_live\":{},"
                        "\"converted_archived\":{}}}",
                        queuer::json::quote(cfg.database.schema), r.from_version, r.to_version,
                        r.timescaledb ? "true" : "false", queuer::to_string(ch.to),
                        queuer::to_string(ch.from), ch.live_converted, ch.archived_converted));
        return kExitOk;
    }
    if (r.from_version == r.to_version) {
        ctl.out(fmt::format("schema {}: already at version {}{}\n", cfg.database.schema,
                            r.to_version, r.timescaledb ? " (TimescaleDB)" : ""));
    } else {
        ctl.out(fmt::format("schema {}: version {} -> {}{}\n", cfg.database.schema, r.from_version,
                            r.to_version, r.timescaledb ? " (TimescaleDB)" : ""));
    }
    if (want && ch.from != ch.to)
        ctl.out(fmt::format("options are now written for {} clients (was {})\n",
                            queuer::to_string(ch.to), queuer::to_string(ch.from)));
    else
        ctl.out(fmt::format("options are written for {} clients\n", queuer::to_string(ch.to)));
    if (ch.live_converted || ch.archived_converted)
        ctl.out(fmt::format("rewrote the schedule of {} live and {} archived jobs in that form\n",
                            ch.live_converted, ch.archived_converted));
    return kExitOk;
}

// A job for a task that no live worker offers waits until one does: say so on stderr (exit 0),
// or refuse with --strict (exit 1, nothing added).
void check_offered(Ctl& ctl, const std::vector<std::string>& tasks, bool strict) {
    std::vector<std::string> missing;
    {
        auto c = ctl.conn();
        for (const auto& t : tasks)
            if (!queuer::admin::task_offered(*c, t)) missing.push_back(t);
    }
    if (missing.empty()) return;
    std::string names;
    for (const auto& t : missing) names += (names.empty() ? "\"" : ", \"") + t + "\"";
    std::string what =
        fmt::format("no live worker offers task{} {}", missing.size() == 1 ? "" : "s", names);
    if (strict)
        throw Exit{kExitFailed, what + "; nothing was added",
                   "start a worker with that task (queuerctl list worker shows what each offers), "
                   "or leave out --strict"};
    std::fputs(fmt::format("queuerctl: warning: {}; the job waits until one does\n", what).c_str(),
               stderr);
}

queuer::TimeBound time_flag(const std::string& text, const char* flag) {
    try {
        return queuer::admin::parse_time_bound(text, flag);
    } catch (const Error& e) {
        usage(e.what(), "e.g. --since 1h, --since 30m, --until 2026-01-31T12:00:00Z");
    }
}

std::vector<std::string> status_list(const std::string& text,
                                     std::initializer_list<const char*> allowed, const char* what) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size() && !text.empty()) {
        size_t comma = text.find(',', start);
        std::string one =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!one.empty()) out.push_back(check_status(one, allowed, what));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

int cmd_add_job(Ctl& ctl, const Args& a) {
    if (a.task.empty()) usage("--task is required", "name the task, e.g. --task echo");
    try {
        queuer::validate_task_name(a.task, "--task");
    } catch (const Error& e) {
        usage(e.what(), "task names are 1 to 100 characters");
    }
    check_json(a.params, "--params", true);
    check_json(a.keyed, "--keyed", false);
    std::optional<queuer::Options> opts;
    if (!a.options.empty()) {
        check_json(a.options, "--options", false);
        try {
            opts = queuer::Options::from_json(a.options);
            opts->validate();
        } catch (const Error& e) {
            usage(fmt::format("--options: {}", e.what()),
                  "see docs/queuerctl.md for on_error and schedule");
        }
    }
    check_offered(ctl, {a.task}, a.strict);
    auto job = ctl.client().add_job_json(a.task, a.params, a.keyed, opts);
    if (ctl.globals().json) {
        ctl.json(job.to_json());
    } else {
        ctl.out(fmt::format("Added job {}\n", job.rid));
        ctl.kv(job_kv(job));
    }
    return kExitOk;
}

int cmd_add_jobs(Ctl& ctl, const Args& a) {
    if (a.file.empty()) usage("--file is required", "give a file with one JSON job per line");
    std::ifstream file_in;
    std::istream* in = &std::cin;
    if (a.file != "-") {
        file_in.open(a.file);
        if (!file_in)
            usage(fmt::format("cannot read {}: {}", a.file, std::strerror(errno)),
                  "check the --file path");
        in = &file_in;
    }
    std::vector<queuer::BatchJob> jobs;
    std::string line;
    int n = 0;
    while (std::getline(*in, line)) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
            auto b = queuer::BatchJob::from_json(line);
            queuer::validate_task_name(b.task, "task");
            if (b.options) b.options->validate();
            jobs.push_back(std::move(b));
        } catch (const Error& e) {
            usage(fmt::format("{}:{}: {}", a.file == "-" ? "stdin" : a.file, n, e.what()),
                  "each line must be a JSON object with task, parameters, parameters_keyed, "
                  "options");
        }
    }
    if (in->bad()) usage(fmt::format("cannot read {}", a.file), "check the --file path");
    {
        std::vector<std::string> tasks;
        for (const auto& j : jobs)
            if (std::find(tasks.begin(), tasks.end(), j.task) == tasks.end())
                tasks.push_back(j.task);
        check_offered(ctl, tasks, a.strict);
    }
    auto rids = ctl.client().add_jobs(jobs);
    if (ctl.globals().json) {
        std::string s = fmt::format("{{\"count\":{},\"rids\":[", rids.size());
        for (size_t i = 0; i < rids.size(); ++i) s += (i ? "," : "") + queuer::json::quote(rids[i]);
        ctl.json(s + "]}");
    } else {
        ctl.out(fmt::format("Added {} job{}\n", rids.size(), rids.size() == 1 ? "" : "s"));
        for (const auto& r : rids) ctl.out(r + "\n");
    }
    return kExitOk;
}

int cmd_get(Ctl& ctl, const std::string& noun, const Args& a) {
    bool worker = noun == "worker";
    check_rid(a.rid, worker ? "worker" : "job");
    auto& c = ctl.client();
    if (worker) {
        auto w = c.get_worker(a.rid);
        if (ctl.globals().json)
            ctl.json(w.to_json());
        else
            ctl.kv(worker_kv(w));
        return kExitOk;
    }
    queuer::Job job;
    if (noun == "job") {
        try {
            job = c.get_job(a.rid);
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NotFound) throw;
            std::optional<queuer::Job> ended;
            try {
                ended = c.get_job_ended(a.rid);
            } catch (const Error&) {
            }
            if (ended)
                throw Exit{kExitFailed,
                           fmt::format("job {} has ended ({}) and is in the archive", a.rid,
                                       ended->status),
                           fmt::format("use 'queuerctl get jobArchive --rid {}'", a.rid)};
            throw;
        }
    } else {
        job = c.get_job_ended(a.rid);
    }
    if (ctl.globals().json)
        ctl.json(job.to_json());
    else
        ctl.kv(job_kv(job));
    return kExitOk;
}

void next_page_hint(Ctl& ctl, size_t shown, const Args& a, int64_t last_id) {
    if (shown > 0 && static_cast<int>(shown) == a.limit)
        ctl.out(ctl.style().dim(
            fmt::format("(more may follow: --lastId {} --limit {})\n", last_id, a.limit)));
}

int cmd_list(Ctl& ctl, const std::string& noun, Args a) {
    if (noun == "job") {
        a.status = check_status(a.status, {"QUEUED", "SCHEDULED", "RUNNING"}, "live jobs");
    } else if (noun == "jobArchive") {
        a.status =
            check_status(a.status, {"SUCCEEDED", "FAILED", "CANCELLED"}, "ended (archived) jobs");
    } else if (noun == "worker") {
        a.status = check_status(a.status, {"READY", "RUNNING", "STOPPING", "STOPPED", "FAILED"},
                                "workers");
    }
    bool jobs = noun == "job" || noun == "jobArchive";
    if (!jobs && (!a.since.empty() || !a.until.empty() || !a.error.empty()))
        usage(fmt::format("--since, --until and --error apply to job and jobArchive, not {}", noun),
              "leave them out");
    if (noun == "job" && !a.error.empty())
        usage("--error searches the error text of ended jobs",
              "use 'queuerctl list jobArchive --error TEXT'");
    queuer::JobQuery q;
    if (jobs) {
        q.since = time_flag(a.since, "--since");
        q.until = time_flag(a.until, "--until");
        q.error = a.error;
    }
    auto& c = ctl.client();
    if (jobs) {
        q.status = a.status;
        q.search = a.search;
        q.last_id = a.last_id;
        q.limit = a.limit;
        auto jobs = noun == "job" ? c.get_jobs(q) : c.get_jobs_ended(q);
        if (ctl.globals().json) return ctl.json_array(jobs), kExitOk;
        if (jobs.empty()) {
            ctl.out(noun == "job" ? "No jobs found.\n" : "No archived jobs found.\n");
            return kExitOk;
        }
        job_table(jobs).print(stdout, ctl.style());
        next_page_hint(ctl, jobs.size(), a, jobs.back().id);
        return kExitOk;
    }
    if (noun == "worker") {
        std::vector<queuer::Worker> out;
        int64_t cursor = a.last_id;
        // The status filter is applied here, page by page, so pagination stays exact.
        const int page = a.status.empty() ? a.limit : 500;
        for (;;) {
            auto ws = c.get_workers(cursor, page, a.search);
            for (auto& w : ws) {
                if (static_cast<int>(out.size()) >= a.limit) break;
                if (a.status.empty() || w.status == a.status) out.push_back(std::move(w));
            }
            if (static_cast<int>(out.size()) >= a.limit || static_cast<int>(ws.size()) < page)
                break;
            cursor = ws.back().id;
        }
        std::string master_rid;
        try {
            master_rid = c.get_master().worker_rid;
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NotFound) throw;
        }
        if (ctl.globals().json) {
            // The worker JSON plus "is_master".
            std::string s = "[";
            for (size_t i = 0; i < out.size(); ++i) {
                std::string w = out[i].to_json();
                w.pop_back();
                w +=
                    fmt::format(",\"is_master\":{}}}",
                                !master_rid.empty() && out[i].rid == master_rid ? "true" : "false");
                s += (i ? "," : "") + w;
            }
            ctl.json(s + "]");
            return kExitOk;
        }
        if (out.empty()) {
            ctl.out("No workers found.\n");
            return kExitOk;
        }
        worker_table(out, master_rid).print(stdout, ctl.style());
        next_page_hint(ctl, out.size(), a, out.back().id);
        return kExitOk;
    }
    // connection: by backend pid, highest first; --lastId N shows pids below N, --limit caps
    // the page; --status matches the state, --search the application name, user or query.
    auto conns = c.get_connections();
    std::sort(
        conns.begin(), conns.end(),
        [](const queuer::Connection& x, const queuer::Connection& y) { return x.pid > y.pid; });
    std::vector<queuer::Connection> out;
    auto lower = [](std::string s) {
        for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return s;
    };
    std::string term = lower(a.search);
    for (auto& x : conns) {
        if (static_cast<int>(out.size()) >= a.limit) break;
        if (a.last_id > 0 && x.pid >= a.last_id) continue;
        if (!a.status.empty() && lower(x.state) != lower(a.status)) continue;
        if (!term.empty() && lower(x.application_name).find(term) == std::string::npos &&
            lower(x.username).find(term) == std::string::npos &&
            lower(x.query).find(term) == std::string::npos)
            continue;
        out.push_back(std::move(x));
    }
    if (ctl.globals().json) return ctl.json_array(out), kExitOk;
    if (out.empty()) {
        ctl.out("No connections found.\n");
        return kExitOk;
    }
    connection_table(out).print(stdout, ctl.style());
    next_page_hint(ctl, out.size(), a, out.back().pid);
    return kExitOk;
}

int cmd_wait(Ctl& ctl, const Args& a) {
    check_rid(a.rid, "job");
    auto& c = ctl.client();
    std::optional<queuer::Job> live;
    try {
        live = c.get_job(a.rid);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NotFound) throw;
    }
    if (!live) {
        try {
            c.get_job_ended(a.rid);
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NotFound) throw;
            throw Error(ErrorKind::NotFound, fmt::format("job not found: {}", a.rid));
        }
    }
    auto timeout = a.timeout > 0 ? std::chrono::milliseconds(static_cast<int64_t>(a.timeout * 1000))
                                 : std::chrono::milliseconds(std::chrono::hours(24 * 365 * 10));
    if (a.timeout > 0) ctl.verbose(fmt::format("waiting up to {} s for job {}", a.timeout, a.rid));
    auto job = c.wait_for_job_finished(a.rid, timeout);
    if (!job) {
        std::string status = live ? live->status : "unknown";
        try {
            status = c.get_job(a.rid).status;
        } catch (const Error&) {
        }
        throw Exit{
            kExitTimeout,
            fmt::format("job {} did not finish within {} s (status {})", a.rid, a.timeout, status),
            live ? fmt::format("check that a worker runs task \"{}\", or wait longer",
                               live->task_name)
                 : "wait longer"};
    }
    if (ctl.globals().json)
        ctl.json(job->to_json());
    else
        ctl.kv(job_kv(*job));
    return job->status == queuer::status::succeeded ? kExitOk : kExitJobFailed;
}

int cmd_cancel_job(Ctl& ctl, const Args& a) {
    check_rid(a.rid, "job");
    auto job = ctl.client().cancel_job(a.rid);
    if (ctl.globals().json) {
        ctl.json(job.to_json());
    } else {
        ctl.out(fmt::format("Cancelled job {}\n", job.rid));
        ctl.kv(job_kv(job));
    }
    return kExitOk;
}

int cmd_stop_worker(Ctl& ctl, const Args& a, bool graceful) {
    check_rid(a.rid, "worker");
    auto w = ctl.client().stop_worker(a.rid, graceful);
    if (ctl.globals().json) {
        ctl.json(w.to_json());
        return kExitOk;
    }
    if (graceful)
        ctl.out(
            fmt::format("Stopping worker {} gracefully: it takes no new jobs and stops once "
                        "its running jobs have finished.\n",
                        w.rid));
    else
        ctl.out(fmt::format("Stopping worker {} now: its running jobs are cancelled.\n", w.rid));
    ctl.kv(worker_kv(w));
    return kExitOk;
}

int cmd_retry_job(Ctl& ctl, const Args& a) {
    check_rid(a.rid, "job");
    auto job = ctl.client().readd_job_from_archive(a.rid);
    if (ctl.globals().json) {
        ctl.json(job.to_json());
    } else {
        ctl.out(fmt::format("Re-added job {} as {}\n", a.rid, job.rid));
        ctl.kv(job_kv(job));
    }
    return kExitOk;
}

// ---- day two: status, stats, bulk actions ----

std::string counts_line(const std::map<std::string, int64_t>& m) {
    std::string s;
    for (const auto& [k, v] : m) s += (s.empty() ? "" : ", ") + fmt::format("{} {}", k, v);
    return s.empty() ? "-" : s;
}

std::string seconds_text(double s) {
    if (s < 120) return fmt::format("{:.0f} s", s);
    if (s < 7200) return fmt::format("{:.0f} min", s / 60);
    if (s < 172800) return fmt::format("{:.1f} h", s / 3600);
    return fmt::format("{:.1f} d", s / 86400);
}

int cmd_status(Ctl& ctl) {
    auto c = ctl.conn();
    auto st = queuer::admin::status(*c);
    if (ctl.globals().json) {
        ctl.json(st.to_json());
        return kExitOk;
    }
    std::string master = "none";
    if (!st.master.worker_rid.empty())
        master = fmt::format("{} ({}), renewed {} ago{}",
                             st.master.worker_name.empty() ? "?" : st.master.worker_name,
                             st.master.worker_rid, seconds_text(st.master.renewed_seconds_ago),
                             st.master.expired ? " - EXPIRED, no worker holds the role" : "");
    int64_t live = 0;
    for (const auto& w : st.live_workers)
        if (w.status == "RUNNING" || w.status == "READY") ++live;
    KeyValues kv = {
        {"Schema", fmt::format("{} (version {}; this queuerctl knows {})", st.schema,
                               st.schema_version, st.expected_version)},
        {"Master", master},
        {"Workers", counts_line(st.workers_by_status)},
        {"Jobs", counts_line(st.jobs) + (st.oldest_waiting_seconds > 0
                                             ? fmt::format(" (oldest waiting {})",
                                                           seconds_text(st.oldest_waiting_seconds))
                                             : "")},
        {"Ended, last hour", counts_line(st.ended_1h)},
    };
    ctl.kv(kv);
    if (!st.live_workers.empty()) {
        ctl.out("\n");
        worker_table(st.live_workers, st.master.worker_rid).print(stdout, ctl.style());
    }
    (void)live;
    return kExitOk;
}

int cmd_stats(Ctl& ctl, const Args& a) {
    std::chrono::seconds since{3600};
    if (!a.since.empty()) {
        auto b = time_flag(a.since, "--since");
        if (!b.ago_seconds)
            usage("stats --since takes a duration", "e.g. --since 1h, --since 24h, --since 7d");
        since = std::chrono::seconds(static_cast<int64_t>(*b.ago_seconds));
        if (since.count() <= 0) usage("stats --since must be at least 1s", "e.g. --since 1h");
    }
    auto c = ctl.conn();
    auto st = queuer::admin::stats(*c, since);
    if (ctl.globals().json) {
        ctl.json(st.to_json());
        return kExitOk;
    }
    ctl.out(ctl.style().bold("Live jobs") + "\n");
    if (st.live.empty()) {
        ctl.out("(none)\n");
    } else {
        Table t({"Task name", "Status", "Count", "Oldest"});
        t.set_status_column(1);
        for (const auto& l : st.live)
            t.add({cut(one_line(l.task_name), 40), l.status, std::to_string(l.count),
                   seconds_text(l.oldest_age_s)});
        t.print(stdout, ctl.style());
    }
    ctl.out("\n" +
            ctl.style().bold(fmt::format("Ended in the last {}",
                                         seconds_text(static_cast<double>(st.since_s)))) +
            "\n");
    if (st.ended.empty()) {
        ctl.out("(none)\n");
    } else {
        Table t({"Task name", "Status", "Count"});
        t.set_status_column(1);
        for (const auto& e : st.ended)
            t.add({cut(one_line(e.task_name), 40), e.status, std::to_string(e.count)});
        t.print(stdout, ctl.style());
    }
    return kExitOk;
}

enum class Bulk { Retry, Cancel, Delete };

int cmd_bulk(Ctl& ctl, const Args& a, Bulk what) {
    queuer::admin::Filter f;
    f.task = a.task;
    if (!f.task.empty()) {
        try {
            queuer::validate_task_name(f.task, "--task");
        } catch (const Error& e) {
            usage(e.what(), "task names are 1 to 100 characters");
        }
    }
    if (what == Bulk::Cancel)
        f.statuses = status_list(a.status, {"QUEUED", "SCHEDULED", "RUNNING"}, "live jobs");
    else
        f.statuses =
            status_list(a.status, {"SUCCEEDED", "FAILED", "CANCELLED"}, "ended (archived) jobs");
    f.since = time_flag(a.since, "--since");
    f.until = time_flag(a.until, "--until");
    f.error = a.error;
    if (what == Bulk::Cancel && !f.error.empty())
        usage("--error searches the error text of ended jobs", "leave it out for cancel jobs");
    if (what == Bulk::Delete && f.empty() && !a.all)
        usage("delete jobs needs a filter (--status, --task, --since, --until, --error)",
              "or --all to empty the whole archive");
    const char* verb = what == Bulk::Retry ? "retry" : what == Bulk::Cancel ? "cancel" : "delete";
    auto c = ctl.conn();
    int64_t n = 0;
    switch (what) {
        case Bulk::Retry:
            n = queuer::admin::retry_jobs(*c, f, a.dry_run);
            break;
        case Bulk::Cancel:
            n = queuer::admin::cancel_jobs(*c, f, a.dry_run);
            break;
        case Bulk::Delete:
            n = queuer::admin::delete_jobs(*c, f, a.dry_run, a.all);
            break;
    }
    if (ctl.globals().json) {
        ctl.json(fmt::format("{{\"action\":\"{}\",\"count\":{},\"dry_run\":{}}}", verb, n,
                             a.dry_run ? "true" : "false"));
        return kExitOk;
    }
    const char* done = what == Bulk::Retry    ? "Re-queued"
                       : what == Bulk::Cancel ? "Cancelled"
                                              : "Deleted";
    if (a.dry_run)
        ctl.out(fmt::format("Would {} {} job{} (dry run, nothing changed)\n", verb, n,
                            n == 1 ? "" : "s"));
    else
        ctl.out(fmt::format("{} {} job{}\n", done, n, n == 1 ? "" : "s"));
    return kExitOk;
}

int cmd_delete_job(Ctl& ctl, const Args& a) {
    check_rid(a.rid, "job");
    auto& c = ctl.client();
    c.get_job_ended(a.rid);  // NotFound (exit 1) for a RID that is not in the archive
    c.delete_job(a.rid);
    if (ctl.globals().json)
        ctl.json(fmt::format("{{\"rid\":{},\"deleted\":true}}", queuer::json::quote(a.rid)));
    else
        ctl.out(fmt::format("Deleted job {} from the archive\n", a.rid));
    return kExitOk;
}

// ---- the web console ----

int cmd_web(Ctl& ctl, const Args& a) {
    queuerctl::web::Options o;
    o.listen = a.listen;
    o.read_only = a.read_only;
    try {
        queuer::http::split_host_port(a.listen, "--listen");
    } catch (const Error& e) {
        usage(e.what(), "e.g. --listen 127.0.0.1:8080, --listen [::1]:8080 or --listen :8080");
    }
    const auto& cfg = ctl.config();
    ctl.verbose(
        fmt::format("database {}{}", cfg.database.describe(),
                    cfg.source.empty() ? " (from the environment)" : " (from " + cfg.source + ")"));
    if (!cfg.encryption_key.empty())
        ctl.verbose("encrypted values are shown decrypted (key from " + cfg.encryption_key_source +
                    ")");
    try {
        return queuerctl::web::serve(cfg, o, QUEUER_VERSION);
    } catch (const Error& e) {
        if (std::string_view(e.what()).rfind("--listen", 0) == 0)
            throw Exit{kExitUsage, e.what(), "choose another --listen address or port"};
        if (std::string_view(e.what()).rfind("QUEUERD_WEB_TOKEN", 0) == 0)
            throw Exit{kExitUsage, e.what(), "or unset it to have a token generated"};
        throw;
    }
}

// ---- errors from the library ----

Exit classify(const Error& e, const Globals& g) {
    std::string msg = e.what();
    switch (e.kind()) {
        case ErrorKind::Connection:
            return {kExitUsage, "cannot reach the database: " + msg,
                    g.config.empty() ? "check QUEUER_DB_HOST, QUEUER_DB_PORT and the server"
                                     : "check the database section of " + g.config +
                                           " (and QUEUER_DB_*) and the server"};
        case ErrorKind::Config:
            return {kExitUsage, msg, "fix the configuration"};
        case ErrorKind::NotFound:
            return {kExitFailed, msg, "check the RID, e.g. with 'queuerctl list'"};
        case ErrorKind::Crypto:
            return {kExitFailed, msg, "set QUEUER_ENCRYPTION_KEY (or encryption.key_file)"};
        case ErrorKind::Timeout:
            return {kExitTimeout, msg, ""};
        case ErrorKind::Database:
            if (e.sqlstate() == "42P01" || e.sqlstate() == "3F000" || e.sqlstate() == "42883")
                return {kExitFailed, "the queuer tables are missing: " + msg,
                        "run 'queuerctl migrate' (or start queuerd) against this schema"};
            return {kExitFailed, "the database refused: " + msg, "see the message"};
        default:
            return {kExitFailed, msg, "nothing was changed"};
    }
}

std::string command_path(CLI::App* app) {
    std::string path = app->get_name();
    CLI::App* cur = app;
    for (;;) {
        auto subs = cur->get_subcommands();
        if (subs.empty()) break;
        cur = subs.front();
        path += " " + cur->get_name();
    }
    return path;
}

CLI::App* deepest(CLI::App* app) {
    CLI::App* cur = app;
    for (;;) {
        auto subs = cur->get_subcommands();
        if (subs.empty()) return cur;
        cur = subs.front();
    }
}

const std::string kGlobalHint =
    "Global options (anywhere on the line): --json, --config FILE, -v/--verbose; exit codes and "
    "the environment: queuerctl --help";

const char* kRootFooter = R"(Examples:
  queuerctl migrate
  queuerctl add job --task echo --params '[1,"a"]' --json
  queuerctl get job --rid 0b6f7c1e-1f53-4b8e-9b1a-6a2c1d2e3f40
  queuerctl list jobArchive --status FAILED --limit 20
  queuerctl wait job --rid 0b6f7c1e-1f53-4b8e-9b1a-6a2c1d2e3f40 --timeout 30
  queuerctl --config /etc/queuerd/queuerd.yaml list worker
  queuerctl status
  queuerctl stats --since 24h
  queuerctl list jobArchive --status FAILED --since 1h --error timeout
  queuerctl retry jobs --status FAILED --since 1h --dry-run
  queuerctl web --listen 127.0.0.1:8080

Database settings come from QUEUER_DB_HOST, QUEUER_DB_PORT, QUEUER_DB_DATABASE,
QUEUER_DB_USERNAME, QUEUER_DB_PASSWORD, QUEUER_DB_SCHEMA (or --config FILE, which they
override); QUEUER_ENCRYPTION_KEY reads encrypted jobs; QUEUERD_WEB_TOKEN is the token of
queuerctl web.
Exit codes: 0 ok, 1 failed (e.g. not found; add job --strict for a task no live worker
offers), 2 usage error, database unreachable or schema missing, 3 waited job FAILED/CANCELLED,
4 wait timed out.)";

}  // namespace

int run(int argc, char** argv) {
    Globals g;
    Args a;
    CLI::App app{"queuerctl: inspect and control the queuerd job queue", "queuerctl"};
    app.footer(kRootFooter);
    app.fallthrough();
    app.require_subcommand(1);
    app.add_flag("--json", g.json, "Print only JSON on stdout");
    app.add_option("--config", g.config, "queuerd YAML file to take the database settings from")
        ->type_name("FILE");
    app.add_flag("-v,--verbose", g.verbose, "Say on stderr what is being done");
    app.set_version_flag("-V,--version", fmt::format("queuerctl {} (schema version {})",
                                                     QUEUER_VERSION, queuer::schema_version()));

    std::vector<std::pair<CLI::App*, std::function<int(Ctl&)>>> leaves;
    auto leaf = [&](CLI::App* parent, const std::string& name, const std::string& desc,
                    const std::string& footer, std::function<int(Ctl&)> fn) {
        auto* s = parent->add_subcommand(name, desc);
        s->fallthrough();
        s->footer((footer.empty() ? "" : "Examples:\n" + footer + "\n") + kGlobalHint);
        leaves.emplace_back(s, std::move(fn));
        return s;
    };
    auto verb = [&](const std::string& name, const std::string& desc, const std::string& footer) {
        auto* s = app.add_subcommand(name, desc);
        s->fallthrough();
        s->require_subcommand(1);
        s->footer((footer.empty() ? "" : "Examples:\n" + footer + "\n") + kGlobalHint);
        return s;
    };
    auto rid_opt = [&](CLI::App* s, const char* what) {
        s->add_option("-r,--rid", a.rid, fmt::format("{} RID (UUID)", what))->type_name("RID");
    };
    auto page_opts = [&](CLI::App* s) {
        s->add_option("--status", a.status, "Only this status")->type_name("S");
        s->add_option("--search", a.search, "Case-insensitive text to look for")->type_name("TEXT");
        s->add_option("-i,--lastId", a.last_id, "Only ids below this one (0 = from the newest)")
            ->check(CLI::NonNegativeNumber)
            ->type_name("N");
        s->add_option("-l,--limit", a.limit, "At most this many rows (1..10000, default 10)")
            ->check(CLI::Range(1, 10000))
            ->type_name("N");
    };

    auto* migrate = leaf(&app, "migrate", "Create or upgrade the schema",
                         "  queuerctl migrate\n  queuerctl migrate --compat go\n",
                         [&](Ctl& c) { return cmd_migrate(c, a); });
    migrate
        ->add_option("--compat", a.compat,
                     "Write job options for these clients: python (queuerPy: float seconds, "
                     "naive times; the default) or go (integer nanoseconds, RFC 3339); stored in "
                     "the database for every queuerd and queuerctl on it")
        ->type_name("python|go");
    leaf(&app, "version", "Print the version", "  queuerctl version --json\n",
         [&](Ctl& c) { return cmd_version(c); });

    auto* add = verb("add", "Add jobs",
                     "  queuerctl add job --task echo --params '[1,\"a\"]' --keyed "
                     "'{\"n\":2}'\n  queuerctl add jobs --file jobs.jsonl\n");
    auto* add_job = leaf(add, "job", "Add one job and print it",
                         "  queuerctl add job --task echo --params '[1,\"a\"]'\n"
                         "  queuerctl add job --task sleep --params '[500]' --options "
                         "'{\"on_error\":{\"timeout\":5,\"max_retries\":2,\"retry_delay\":1,"
                         "\"retry_backoff\":\"linear\"}}'\n",
                         [&](Ctl& c) { return cmd_add_job(c, a); });
    add_job->add_option("--task", a.task, "Task name")->type_name("NAME");
    add_job->add_option("--params", a.params, "Positional parameters, a JSON array")
        ->type_name("JSON_ARRAY");
    add_job->add_option("--keyed", a.keyed, "Keyed parameters, a JSON object")
        ->type_name("JSON_OBJECT");
    add_job->add_option("--options", a.options, "Job options (on_error, schedule), a JSON object")
        ->type_name("JSON_OBJECT");
    add_job->add_flag("--strict", a.strict,
                      "Fail (exit 1, nothing added) when no live worker offers the task");
    auto* add_jobs = leaf(add, "jobs", "Add many jobs in one COPY; prints the count and the RIDs",
                          "  printf '%s\\n' '{\"task\":\"echo\",\"parameters\":[1]}' > jobs.jsonl\n"
                          "  queuerctl add jobs --file jobs.jsonl --json\n"
                          "  generate-jobs | queuerctl add jobs --file -\n",
                          [&](Ctl& c) { return cmd_add_jobs(c, a); });
    add_jobs
        ->add_option("-f,--file", a.file,
                     "One JSON object per line: task, parameters, parameters_keyed, options "
                     "(- = stdin)")
        ->type_name("FILE");
    add_jobs->add_flag("--strict", a.strict,
                       "Fail (exit 1, nothing added) when no live worker offers a task");

    auto* get = verb("get", "Show one job, archived job or worker",
                     "  queuerctl get job --rid RID\n  queuerctl get jobArchive -r RID --json\n");
    rid_opt(get, "Job or worker");
    for (const char* noun : {"job", "jobArchive", "worker"}) {
        std::string n = noun;
        const char* desc = n == "job"          ? "Show a queued, scheduled or running job"
                           : n == "jobArchive" ? "Show an ended job from the archive"
                                               : "Show a worker";
        auto* s = leaf(get, n, desc, fmt::format("  queuerctl get {} --rid RID\n", n),
                       [&, n](Ctl& c) { return cmd_get(c, n, a); });
        rid_opt(s, n == "worker" ? "Worker" : "Job");
    }

    auto* list = verb("list", "List jobs, archived jobs, workers or connections",
                      "  queuerctl list job --limit 20\n"
                      "  queuerctl list job --lastId 120 --limit 20   # the next page\n"
                      "  queuerctl list jobArchive --status FAILED --search echo\n");
    page_opts(list);
    for (const char* noun : {"job", "jobArchive", "worker", "connection"}) {
        std::string n = noun;
        const char* desc = n == "job"          ? "Queued, scheduled and running jobs, newest first"
                           : n == "jobArchive" ? "Ended jobs, newest first"
                           : n == "worker"     ? "Workers, newest first"
                                               : "Database connections, highest pid first";
        std::string ex = fmt::format("  queuerctl list {} --limit 5 --json\n", n);
        if (n == "jobArchive")
            ex += "  queuerctl list jobArchive --status FAILED --since 1h --error timeout\n";
        auto* s = leaf(list, n, desc, ex, [&, n](Ctl& c) { return cmd_list(c, n, a); });
        page_opts(s);
        if (n == "job" || n == "jobArchive") {
            s->add_option("--since", a.since,
                          n == "job" ? "Only jobs created since then: a duration ago (1h, 30m) "
                                       "or a time (2026-01-31T12:00:00Z)"
                                     : "Only jobs that ended since then: a duration ago (1h, "
                                       "30m) or a time (2026-01-31T12:00:00Z)")
                ->type_name("WHEN");
            s->add_option("--until", a.until, "Only jobs before then (same forms as --since)")
                ->type_name("WHEN");
        }
        if (n == "jobArchive")
            s->add_option("--error", a.error, "Only jobs whose error text contains this")
                ->type_name("TEXT");
    }

    auto* wait =
        verb("wait", "Wait for a job to end", "  queuerctl wait job --rid RID --timeout 30\n");
    rid_opt(wait, "Job");
    auto* wait_job = leaf(wait, "job",
                          "Wait until the job has ended and print it (exit 0 SUCCEEDED, 3 FAILED "
                          "or CANCELLED, 4 timed out)",
                          "  queuerctl wait job --rid RID --timeout 30 --json\n",
                          [&](Ctl& c) { return cmd_wait(c, a); });
    rid_opt(wait_job, "Job");
    wait_job->add_option("--timeout", a.timeout, "Give up after this many seconds (default: never)")
        ->check(CLI::PositiveNumber)
        ->type_name("SECONDS");

    auto* cancel = verb("cancel", "Cancel a job, or stop a worker at once",
                        "  queuerctl cancel job --rid RID\n  queuerctl cancel worker --rid RID\n");
    rid_opt(cancel, "Job or worker");
    rid_opt(
        leaf(cancel, "job", "Cancel a queued, scheduled or running job",
             "  queuerctl cancel job --rid RID\n", [&](Ctl& c) { return cmd_cancel_job(c, a); }),
        "Job");
    rid_opt(leaf(cancel, "worker", "Stop a worker immediately (its running jobs are cancelled)",
                 "  queuerctl cancel worker --rid RID\n",
                 [&](Ctl& c) { return cmd_stop_worker(c, a, false); }),
            "Worker");

    auto* stop = verb("stop", "Stop a worker", "  queuerctl stop worker --rid RID --graceful\n");
    rid_opt(stop, "Worker");
    auto* stop_worker =
        leaf(stop, "worker", "Stop a worker: immediately, or --graceful to let running jobs finish",
             "  queuerctl stop worker --rid RID\n  queuerctl stop worker --rid RID --graceful\n",
             [&](Ctl& c) { return cmd_stop_worker(c, a, a.graceful); });
    rid_opt(stop_worker, "Worker");
    stop_worker->add_flag("-g,--graceful", a.graceful, "Let running jobs finish first");

    auto* retry = verb("retry", "Run ended jobs again",
                       "  queuerctl retry job --rid RID\n"
                       "  queuerctl retry jobs --status FAILED --since 1h --dry-run\n");
    rid_opt(retry, "Job");
    rid_opt(leaf(retry, "job", "Add a new job with an archived job's task, parameters and options",
                 "  queuerctl retry job --rid RID --json\n",
                 [&](Ctl& c) { return cmd_retry_job(c, a); }),
            "Job");

    // Bulk actions: one statement each; --dry-run counts and changes nothing.
    auto bulk_opts = [&](CLI::App* s, bool archive) {
        s->add_option("--task", a.task, "Only jobs of this task")->type_name("NAME");
        s->add_option("--status", a.status,
                      archive ? "Only these statuses (SUCCEEDED, FAILED, CANCELLED; comma-"
                                "separated)"
                              : "Only these statuses (QUEUED, SCHEDULED, RUNNING; comma-separated)")
            ->type_name("S[,S]");
        s->add_option("--since", a.since,
                      archive ? "Only jobs that ended since then: a duration ago (1h, 30m, 7d) "
                                "or a time (2026-01-31T12:00:00Z)"
                              : "Only jobs created since then: a duration ago or a time")
            ->type_name("WHEN");
        s->add_option("--until", a.until, "Only jobs before then (same forms as --since)")
            ->type_name("WHEN");
        if (archive)
            s->add_option("--error", a.error, "Only jobs whose error text contains this")
                ->type_name("TEXT");
        s->add_flag("--dry-run", a.dry_run, "Count the jobs it would change; change nothing");
    };
    auto* retry_jobs = leaf(retry, "jobs",
                            "Queue ended jobs again as new jobs (default: FAILED ones), in one "
                            "statement; prints the count",
                            "  queuerctl retry jobs --task resize --since 2h --dry-run\n"
                            "  queuerctl retry jobs --status FAILED --error timeout\n",
                            [&](Ctl& c) { return cmd_bulk(c, a, Bulk::Retry); });
    bulk_opts(retry_jobs, true);

    auto* cancel_jobs = leaf(cancel, "jobs",
                             "Cancel live jobs (default: QUEUED, SCHEDULED and RUNNING) in one "
                             "statement; prints the count",
                             "  queuerctl cancel jobs --task resize --status QUEUED --dry-run\n",
                             [&](Ctl& c) { return cmd_bulk(c, a, Bulk::Cancel); });
    bulk_opts(cancel_jobs, false);

    auto* del = verb("delete", "Delete ended jobs from the archive",
                     "  queuerctl delete job --rid RID\n"
                     "  queuerctl delete jobs --status SUCCEEDED --until 7d --dry-run\n");
    rid_opt(del, "Job");
    rid_opt(
        leaf(del, "job", "Delete one ended job from the archive",
             "  queuerctl delete job --rid RID\n", [&](Ctl& c) { return cmd_delete_job(c, a); }),
        "Job");
    auto* delete_jobs = leaf(del, "jobs",
                             "Delete archived jobs matching the filters (at least one, or --all) "
                             "in one statement; prints the count",
                             "  queuerctl delete jobs --status CANCELLED --dry-run\n"
                             "  queuerctl delete jobs --task old-task --until 30d\n",
                             [&](Ctl& c) { return cmd_bulk(c, a, Bulk::Delete); });
    bulk_opts(delete_jobs, true);
    delete_jobs->add_flag("--all", a.all, "With no filter: delete the whole archive");

    leaf(&app, "status",
         "The queue at a glance: schema version, master, workers, job totals, last hour",
         "  queuerctl status\n  queuerctl status --json\n", [&](Ctl& c) { return cmd_status(c); });
    auto* stats = leaf(&app, "stats",
                       "Jobs per task and status: live ones with the age of the oldest, ended "
                       "ones over --since (default 1h)",
                       "  queuerctl stats\n  queuerctl stats --since 24h --json\n",
                       [&](Ctl& c) { return cmd_stats(c, a); });
    stats->add_option("--since", a.since, "Count ended jobs over this duration (default 1h)")
        ->type_name("DURATION");

    auto* web = leaf(&app, "web",
                     "Serve the web console for the whole cluster (overview, jobs, archive, "
                     "workers; cancel, retry, stop) until interrupted",
                     "  queuerctl web\n"
                     "  queuerctl web --listen 127.0.0.1:9000 --read-only\n"
                     "  QUEUERD_WEB_TOKEN=$(cat /run/secrets/web-token) queuerctl web\n",
                     [&](Ctl& c) { return cmd_web(c, a); });
    web->add_option("--listen", a.listen,
                    "Address to serve on: HOST:PORT, [IPv6]:PORT or :PORT for all interfaces "
                    "(default 127.0.0.1:8080)")
        ->type_name("ADDR");
    web->add_flag("--read-only", a.read_only,
                  "Show no actions and refuse every change (no token needed)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        CLI::App* at = deepest(&app);
        std::string path = command_path(&app);
        std::string what = e.what();
        if (dynamic_cast<const CLI::RequiredError*>(&e) && at->get_require_subcommand_min() > 0 &&
            at->get_subcommands().empty()) {
            std::string names;
            for (auto* s : at->get_subcommands([](const CLI::App*) { return true; }))
                names += (names.empty() ? "" : ", ") + s->get_name();
            auto rest = app.remaining(true);
            what = rest.empty() ? fmt::format("'{}' needs one of: {}", path, names)
                                : fmt::format("unknown command '{}' for '{}' (expected one of: {})",
                                              rest.front(), path, names);
        }
        print_exit(Exit{kExitUsage, what, fmt::format("run '{} --help'", path)});
        return kExitUsage;
    }

    Ctl ctl(g);
    for (auto& [s, fn] : leaves) {
        if (!s->parsed()) continue;
        try {
            return fn(ctl);
        } catch (const Exit& e) {
            print_exit(e);
            return e.code;
        } catch (const Error& e) {
            auto x = classify(e, g);
            print_exit(x);
            return x.code;
        }
    }
    print_exit(Exit{kExitUsage, "no command given", "run 'queuerctl --help'"});
    return kExitUsage;
}

}  // namespace queuerctl

int main(int argc, char** argv) {
    try {
        return queuerctl::run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "queuerctl: %s \u2014 this is a bug, please report it\n", e.what());
        return 1;
    }
}
