// queuer_bench: the benchmark driver behind scripts/bench (docs/benchmarks.md).
//
//   queuer_bench w1    --single N --copy N --runs R
//   queuer_bench w2    --queuerd PATH --plugin PATH --concurrency C --isolation thread|process
//                      --jobs N --runs R [--scrape-ms MS]   (GET /metrics every MS while draining)
//   queuer_bench w3    --queuerd PATH --plugin PATH --jobs N --interval-ms 5 --runs R --idle-s 10
//   queuer_bench fill  --jobs N          (COPY N noop jobs into QUEUER_DB_SCHEMA; for W4)
//
// Database settings come from QUEUER_DB_* as for queuerd. W1-W3 work in schemas of their own
// (bench_<workload>_<pid>_<run>), created fresh for every run and dropped afterwards. Every result
// is one line of key=value pairs on stdout; progress goes to stderr.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "queuer/client.hpp"
#include "queuer/db.hpp"
#include "queuer/error.hpp"

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// ---- arguments and statistics ----

struct Args {
    std::map<std::string, std::string> kv;
    std::string get(const std::string& k, const std::string& def = "") const {
        auto it = kv.find(k);
        if (it != kv.end()) return it->second;
        if (def.empty()) throw std::runtime_error("missing --" + k);
        return def;
    }
    long num(const std::string& k, long def) const {
        auto it = kv.find(k);
        return it == kv.end() ? def : std::stol(it->second);
    }
};

double quantile(std::vector<double> v, double q) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    // Nearest rank.
    size_t idx = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    idx = std::clamp<size_t>(idx, 1, v.size()) - 1;
    return v[idx];
}
double median(std::vector<double> v) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double vmin(const std::vector<double>& v) {
    return *std::min_element(v.begin(), v.end());
}
double vmax(const std::vector<double>& v) {
    return *std::max_element(v.begin(), v.end());
}

// "median_<what>=... min=... max=..." (prefix "p" gives "p_median_<what>=... p_min=... p_max=...")
std::string stat_line(const char* what, const std::vector<double>& v, int prec = 0,
                      const std::string& prefix = "") {
    return fmt::format("{0}median_{1}={2:.{5}f} {0}min={3:.{5}f} {0}max={4:.{5}f}", prefix, what,
                       median(v), vmin(v), vmax(v), prec);
}

int64_t wall_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
double secs(steady::duration d) {
    return std::chrono::duration<double>(d).count();
}

// ---- /proc ----

long clk_tck() {
    return sysconf(_SC_CLK_TCK);
}

// utime + stime of a process in clock ticks (0 if gone).
int64_t proc_ticks(pid_t pid) {
    std::ifstream f(fmt::format("/proc/{}/stat", pid));
    std::string s((std::istreambuf_iterator<char>(f)), {});
    auto p = s.rfind(')');
    if (p == std::string::npos) return 0;
    std::istringstream in(s.substr(p + 2));
    std::string field;
    int64_t ut = 0, st = 0;
    // Fields after the command: state(3) ... utime(14) stime(15).
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) ut = std::stoll(field);
        if (i == 15) st = std::stoll(field);
    }
    return ut + st;
}

std::string proc_comm(pid_t pid) {
    std::ifstream f(fmt::format("/proc/{}/comm", pid));
    std::string s;
    std::getline(f, s);
    return s;
}

// VmRSS / VmHWM in kB.
std::pair<long, long> proc_rss(pid_t pid) {
    std::ifstream f(fmt::format("/proc/{}/status", pid));
    std::string line;
    long rss = 0, hwm = 0;
    while (std::getline(f, line)) {
        if (line.rfind("VmRSS:", 0) == 0) rss = std::stol(line.substr(6));
        if (line.rfind("VmHWM:", 0) == 0) hwm = std::stol(line.substr(6));
    }
    return {rss, hwm};
}

// Ticks of every local process named "postgres" (the server's backends), by pid.
std::map<pid_t, int64_t> postgres_ticks() {
    std::map<pid_t, int64_t> out;
    DIR* d = opendir("/proc");
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
        if (pid <= 0) continue;
        if (proc_comm(pid) == "postgres") out[pid] = proc_ticks(pid);
    }
    closedir(d);
    return out;
}
int64_t ticks_since(const std::map<pid_t, int64_t>& before, const std::map<pid_t, int64_t>& after) {
    int64_t sum = 0;
    for (auto& [pid, t] : after) {
        auto it = before.find(pid);
        sum += t - (it == before.end() ? 0 : it->second);
    }
    return sum;
}

// Busy ticks of the whole machine (all CPUs) from /proc/stat.
int64_t machine_busy_ticks() {
    std::ifstream f("/proc/stat");
    std::string cpu;
    f >> cpu;
    int64_t v, total = 0, idle = 0;
    for (int i = 0; i < 8 && f >> v; ++i) {
        total += v;
        if (i == 3 || i == 4) idle += v;  // idle, iowait
    }
    return total - idle;
}

// ---- database helpers ----

queuer::DatabaseConfig base_cfg() {
    auto cfg = queuer::DatabaseConfig::from_env();
    cfg.application_name = "queuer_bench";
    cfg.statement_timeout_ms = 600000;
    return cfg;
}

void drop_schema(const std::string& schema) {
    auto cfg = base_cfg();
    auto c = queuer::db::Connection::open(cfg);
    c.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", queuer::db::quote_ident(schema)));
}

void fill(queuer::Client& cl, long n) {
    const long chunk = 100000;
    for (long done = 0; done < n; done += chunk) {
        long k = std::min(chunk, n - done);
        std::vector<queuer::BatchJob> jobs(static_cast<size_t>(k));
        for (auto& j : jobs) j.task = "noop";
        cl.add_jobs(jobs);
    }
}

int64_t scalar(queuer::db::Connection& c, const std::string& sql) {
    auto r = c.exec(sql);
    return r.is_null(0, 0) ? 0 : r.i64(0, 0);
}

// pg_stat_statements, when the server preloads it (scripts/bench arranges that for its own
// throwaway cluster). Best effort: false when unavailable.
bool pgss_reset(queuer::db::Connection& c) {
    try {
        c.exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public");
        c.exec("SELECT public.pg_stat_statements_reset()");
        return true;
    } catch (const queuer::Error&) {
        return false;
    }
}

std::string classify(const std::string& q) {
    if (q.find("picked AS") != std::string::npos) return "claim";
    if (q.find("moved AS") != std::string::npos) return "finish";
    if (q.find("MIN(scheduled_at)") != std::string::npos) return "next_due";
    if (q.find("UPDATE worker") != std::string::npos) return "heartbeat";
    if (q.find("master") != std::string::npos) return "master";
    return "other";
}

// ---- the daemon ----

struct DaemonConf {
    std::string queuerd, plugin, dir;
    int concurrency = 8;
    std::string isolation = "thread";
    long scrape_ms = 0;  // > 0: http.listen on, /metrics scraped this often during W2
};

std::string write_config(const DaemonConf& d, const std::string& name) {
    std::string path = d.dir + "/" + name + ".yaml";
    std::ofstream f(path);
    f << "worker:\n  name: " << name << "\n  max_concurrency: " << d.concurrency
      << "\n  isolation: " << d.isolation << "\n  shutdown_grace: 5s\n"
      << "plugins:\n  - path: " << d.plugin << "\nlogging:\n  level: info\n";
    if (d.scrape_ms > 0) f << "http:\n  listen: 127.0.0.1:0\n";
    return path;
}

// ---- /metrics scraper (the cost of being scraped, docs/benchmarks.md) ----

// One GET /metrics on 127.0.0.1:port; the body size, or -1 on failure.
long scrape_once(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    long got = -1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if (::send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof req - 1)) {
            std::string raw;
            char buf[65536];
            ssize_t n;
            while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
                raw.append(buf, static_cast<size_t>(n));
            if (raw.rfind("HTTP/1.1 200", 0) == 0) got = static_cast<long>(raw.size());
        }
    }
    ::close(fd);
    return got;
}

// Scrapes every `every_ms` from the moment the daemon's log names its port until stopped.
struct Scraper {
    std::atomic<bool> stop{false};
    std::atomic<long> scrapes{0}, errors{0};
    std::thread t;
    void start(const std::string& log, long every_ms) {
        t = std::thread([this, log, every_ms] {
            int port = 0;
            auto until = steady::now() + 30s;
            while (!stop && port == 0 && steady::now() < until) {
                std::ifstream f(log);
                std::string text((std::istreambuf_iterator<char>(f)), {});
                auto at = text.find("http: listening on 127.0.0.1:");
                if (at != std::string::npos)
                    port =
                        std::atoi(text.c_str() + at + std::strlen("http: listening on 127.0.0.1:"));
                else
                    std::this_thread::sleep_for(5ms);
            }
            if (port == 0) {
                ++errors;
                return;
            }
            while (!stop) {
                auto next = steady::now() + std::chrono::milliseconds(every_ms);
                if (scrape_once(port) > 0)
                    ++scrapes;
                else
                    ++errors;
                while (!stop && steady::now() < next) std::this_thread::sleep_for(5ms);
            }
        });
    }
    void finish() {
        stop = true;
        if (t.joinable()) t.join();
    }
};

pid_t spawn_daemon(const DaemonConf& d, const std::string& config, const std::string& schema,
                   const std::string& log) {
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        setenv("QUEUER_DB_SCHEMA", schema.c_str(), 1);
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(d.queuerd.c_str(), "queuerd", "--config", config.c_str(), (char*)nullptr);
        _exit(127);
    }
    return pid;
}

bool alive(pid_t pid) {
    int st;
    return waitpid(pid, &st, WNOHANG) == 0;
}

void stop_daemon(pid_t pid) {
    kill(pid, SIGTERM);
    auto until = steady::now() + 20s;
    while (steady::now() < until) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return;
        std::this_thread::sleep_for(10ms);
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
}

void wait_ready(queuer::db::Connection& c, pid_t pid, const std::string& log) {
    auto until = steady::now() + 30s;
    while (steady::now() < until) {
        if (!alive(pid)) throw std::runtime_error("queuerd exited at start; see " + log);
        if (scalar(c, "SELECT count(*) FROM worker WHERE status IN ('READY', 'RUNNING')") > 0)
            return;
        std::this_thread::sleep_for(5ms);
    }
    throw std::runtime_error("queuerd did not register within 30 s; see " + log);
}

// The config file lives in a temporary directory; relative paths would resolve against it.
std::string absolute(const std::string& path) {
    char buf[PATH_MAX];
    if (!realpath(path.c_str(), buf)) throw std::runtime_error("not found: " + path);
    return buf;
}

std::string make_dir() {
    char tmpl[] = "/tmp/queuer-bench.XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    return tmpl;
}

// ---- W1: enqueue ----

int w1(const Args& a) {
    long single = a.num("single", 20000), copy = a.num("copy", 100000), runs = a.num("runs", 3);
    std::string schema = fmt::format("bench_w1_{}", getpid());
    auto cfg = base_cfg();
    cfg.schema = schema;
    std::vector<double> single_rate, copy_rate;
    double rtt_us = 0;
    {
        queuer::Client cl(cfg, {}, true, 1);
        auto c = queuer::db::Connection::open(cfg);
        // The round trip a single add_job cannot beat: a prepared SELECT 1.
        const queuer::db::Statement one{"bench_select_1", "SELECT 1"};
        queuer::db::Params none;
        for (int i = 0; i < 200; ++i) c.exec(one, none);
        auto t0 = steady::now();
        const int n_rtt = 5000;
        for (int i = 0; i < n_rtt; ++i) c.exec(one, none);
        rtt_us = secs(steady::now() - t0) * 1e6 / n_rtt;
        for (long r = 0; r < runs; ++r) {
            c.exec("TRUNCATE job");
            auto s0 = steady::now();
            for (long i = 0; i < single; ++i) cl.add_job_json("noop", "[]", "{}", std::nullopt);
            single_rate.push_back(static_cast<double>(single) / secs(steady::now() - s0));
            c.exec("TRUNCATE job");
            std::vector<queuer::BatchJob> jobs(static_cast<size_t>(copy));
            for (auto& j : jobs) j.task = "noop";
            auto c0 = steady::now();
            cl.add_jobs(jobs);
            copy_rate.push_back(static_cast<double>(copy) / secs(steady::now() - c0));
            fmt::print(stderr, "W1 run {}: single {:.0f}/s copy {:.0f}/s\n", r + 1,
                       single_rate.back(), copy_rate.back());
        }
    }
    drop_schema(schema);
    fmt::print(
        "workload=W1 mode=single jobs={} runs={} {} us_per_job={:.1f} rtt_select1_us={:.1f}\n",
        single, runs, stat_line("jobs_per_s", single_rate), 1e6 / median(single_rate), rtt_us);
    fmt::print("workload=W1 mode=copy jobs={} runs={} {}\n", copy, runs,
               stat_line("jobs_per_s", copy_rate));
    return 0;
}

// ---- W2: drain ----

struct DrainResult {
    double jobs_per_s = 0;       // daemon start to last archive notification
    double span_jobs_per_s = 0;  // first claim to last finish, by the server's timestamps
    double startup_ms = 0;       // daemon start to the first claim
    long rss_kb = 0, hwm_kb = 0;
    double daemon_cpu_s = 0, server_cpu_s = 0, machine_cpu_s = 0, wall_s = 0;
    double wal_bytes_per_job = 0;
    long scrapes = 0, scrape_errors = 0;
    std::vector<std::string> statements;
};

DrainResult drain_once(const DaemonConf& d, long n, const std::string& schema, bool profile) {
    DrainResult out;
    auto cfg = base_cfg();
    cfg.schema = schema;
    {
        queuer::Client cl(cfg, {}, true, 1);
        fill(cl, n);
    }
    auto c = queuer::db::Connection::open(cfg);
    c.exec("VACUUM ANALYZE job");
    auto lc = queuer::db::Connection::open(cfg);
    lc.listen("job_archive");
    bool pgss = profile && pgss_reset(c);
    std::string lsn0 = std::string(c.exec("SELECT pg_current_wal_lsn()::text").get(0, 0));
    std::string config = write_config(d, schema);
    std::string log = d.dir + "/" + schema + ".log";

    auto pg0 = postgres_ticks();
    int64_t m0 = machine_busy_ticks();
    int64_t spawn_us = wall_us();
    auto t0 = steady::now();
    pid_t pid = spawn_daemon(d, config, schema, log);
    Scraper scraper;
    if (d.scrape_ms > 0) scraper.start(log, d.scrape_ms);
    long archived = 0;
    auto deadline = t0 + 600s;
    while (archived < n) {
        pollfd p{lc.socket(), POLLIN, 0};
        ::poll(&p, 1, 20);
        archived += static_cast<long>(lc.drain_notifications().size());
        if (steady::now() > deadline) {
            scraper.finish();
            stop_daemon(pid);
            throw std::runtime_error(fmt::format("W2 timed out after {} of {} jobs", archived, n));
        }
        if (archived < n && !alive(pid)) {
            scraper.finish();
            throw std::runtime_error("queuerd exited; see " + log);
        }
    }
    auto t1 = steady::now();
    scraper.finish();
    out.scrapes = scraper.scrapes;
    out.scrape_errors = scraper.errors;
    int64_t dticks = proc_ticks(pid);
    auto pg1 = postgres_ticks();
    int64_t m1 = machine_busy_ticks();
    auto [rss, hwm] = proc_rss(pid);
    std::string lsn1 = std::string(c.exec("SELECT pg_current_wal_lsn()::text").get(0, 0));

    out.wall_s = secs(t1 - t0);
    out.jobs_per_s = static_cast<double>(n) / out.wall_s;
    out.rss_kb = rss;
    out.hwm_kb = hwm;
    double tck = static_cast<double>(clk_tck());
    out.daemon_cpu_s = static_cast<double>(dticks) / tck;
    out.server_cpu_s = static_cast<double>(ticks_since(pg0, pg1)) / tck;
    out.machine_cpu_s = static_cast<double>(m1 - m0) / tck;
    queuer::db::Params lp;
    lp.add(lsn1).add(lsn0);
    out.wal_bytes_per_job =
        static_cast<double>(
            c.exec("SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint", lp).i64(0, 0)) /
        static_cast<double>(n);
    auto left = scalar(c, "SELECT count(*) FROM job");
    auto ok = scalar(c, "SELECT count(*) FROM job_archive WHERE status = 'SUCCEEDED'");
    if (left != 0 || ok != n)
        throw std::runtime_error(
            fmt::format("W2: {} jobs left, {} of {} archived SUCCEEDED", left, ok, n));
    auto r = c.exec(
        "SELECT (EXTRACT(EPOCH FROM min(started_at)) * 1000000)::bigint,"
        " (EXTRACT(EPOCH FROM max(updated_at) - min(started_at)) * 1000000)::bigint"
        " FROM job_archive");
    double span_s = static_cast<double>(r.i64(0, 1)) / 1e6;
    out.span_jobs_per_s = span_s > 0 ? static_cast<double>(n) / span_s : 0;
    out.startup_ms = static_cast<double>(r.i64(0, 0) - spawn_us) / 1e3;
    if (pgss) {
        auto s = c.exec(
            "SELECT query, calls, total_exec_time, rows FROM public.pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " ORDER BY total_exec_time DESC LIMIT 12");
        std::map<std::string, std::tuple<int64_t, double, int64_t>> by;
        for (int i = 0; i < s.rows(); ++i) {
            auto k = classify(s.str(i, 0));
            auto& [calls, ms, rows] = by[k];
            calls += s.i64(i, 1);
            ms += std::stod(s.str(i, 2));
            rows += s.i64(i, 3);
        }
        for (auto& [k, v] : by) {
            auto [calls, ms, rows] = v;
            if (k == "other") continue;  // the driver's own statements
            out.statements.push_back(fmt::format(
                "stmt={} calls={} rows={} total_ms={:.0f} mean_ms={:.3f} rows_per_call={:.2f} "
                "server_us_per_job={:.1f}",
                k, calls, rows, ms, calls ? ms / static_cast<double>(calls) : 0,
                calls ? static_cast<double>(rows) / static_cast<double>(calls) : 0,
                ms * 1000 / static_cast<double>(n)));
        }
    }
    stop_daemon(pid);
    return out;
}

int w2(const Args& a) {
    DaemonConf d;
    d.queuerd = absolute(a.get("queuerd"));
    d.plugin = absolute(a.get("plugin"));
    d.concurrency = static_cast<int>(a.num("concurrency", 8));
    d.isolation = a.get("isolation", "thread");
    d.scrape_ms = a.num("scrape-ms", 0);
    d.dir = make_dir();
    long n = a.num("jobs", 50000), runs = a.num("runs", 3);
    bool profile = a.num("profile", 1) != 0;
    std::vector<double> rate, span, startup, hwm, dcpu, scpu, mcpu, wal;
    long scrapes = 0, scrape_errors = 0;
    DrainResult last;
    for (long r = 0; r < runs; ++r) {
        std::string schema = fmt::format("bench_w2_{}_{}", getpid(), r);
        try {
            last = drain_once(d, n, schema, profile && r == runs - 1);
        } catch (...) {
            drop_schema(schema);
            throw;
        }
        drop_schema(schema);
        rate.push_back(last.jobs_per_s);
        span.push_back(last.span_jobs_per_s);
        startup.push_back(last.startup_ms);
        hwm.push_back(static_cast<double>(last.hwm_kb) / 1024);
        dcpu.push_back(last.daemon_cpu_s * 1e6 / static_cast<double>(n));
        scpu.push_back(last.server_cpu_s * 1e6 / static_cast<double>(n));
        mcpu.push_back(last.machine_cpu_s * 1e6 / static_cast<double>(n));
        wal.push_back(last.wal_bytes_per_job);
        scrapes += last.scrapes;
        scrape_errors += last.scrape_errors;
        if (d.scrape_ms > 0 && (last.scrapes == 0 || last.scrape_errors > 0))
            throw std::runtime_error(
                fmt::format("W2 scrape: {} scrapes, {} failed", last.scrapes, last.scrape_errors));
        fmt::print(stderr, "W2 {} c={} run {}: {:.0f} jobs/s ({:.2f} s), hwm {} kB\n", d.isolation,
                   d.concurrency, r + 1, last.jobs_per_s, last.wall_s, last.hwm_kb);
    }
    std::string head = fmt::format("workload=W2 isolation={} concurrency={} jobs={} runs={}",
                                   d.isolation, d.concurrency, n, runs);
    if (d.scrape_ms > 0)
        head += fmt::format(" scrape_ms={} scrapes={} scrape_errors={}", d.scrape_ms, scrapes,
                            scrape_errors);
    fmt::print("{} {} {} startup_ms={:.0f}\n", head, stat_line("jobs_per_s", rate),
               stat_line("jobs_per_s", span, 0, "span_"), median(startup));
    fmt::print("{} memory=1 median_rss_hwm_mb={:.1f} max_rss_hwm_mb={:.1f}\n", head, median(hwm),
               vmax(hwm));
    fmt::print(
        "{} cpu=1 median_daemon_cpu_us_per_job={:.1f} median_server_cpu_us_per_job={:.1f}"
        " median_machine_cpu_us_per_job={:.1f} median_wal_bytes_per_job={:.0f}\n",
        head, median(dcpu), median(scpu), median(mcpu), median(wal));
    for (auto& s : last.statements) fmt::print("{} profile=1 {}\n", head, s);
    std::filesystem::remove_all(d.dir);  // kept on failure: the daemon's log is there
    return 0;
}

// ---- W3: latency, idle cost ----

int w3(const Args& a) {
    DaemonConf d;
    d.queuerd = absolute(a.get("queuerd"));
    d.plugin = absolute(a.get("plugin"));
    d.concurrency = static_cast<int>(a.num("concurrency", 8));
    d.isolation = a.get("isolation", "thread");
    d.scrape_ms = a.num("scrape-ms", 0);
    d.dir = make_dir();
    long n = a.num("jobs", 300), runs = a.num("runs", 3);
    long interval_us = a.num("interval-us", a.num("interval-ms", 5) * 1000);
    long idle_s = a.num("idle-s", 10);
    std::string schema = fmt::format("bench_w3_{}", getpid());
    auto cfg = base_cfg();
    cfg.schema = schema;
    std::vector<double> p50s, p95s, p99s, all_start, all_end, all_client;
    long idle_rss = 0, idle_hwm = 0, after_rss = 0;
    double idle_cpu_pct = 0;
    try {
        queuer::Client cl(cfg, {}, true, 1);
        auto c = queuer::db::Connection::open(cfg);
        std::string config = write_config(d, schema);
        std::string log = d.dir + "/" + schema + ".log";
        pid_t pid = spawn_daemon(d, config, schema, log);
        try {
            wait_ready(c, pid, log);
            std::this_thread::sleep_for(2s);  // start-up work (master election, first poll) done
            int64_t t0 = proc_ticks(pid);
            auto w0 = steady::now();
            std::this_thread::sleep_for(std::chrono::seconds(idle_s));
            int64_t t1 = proc_ticks(pid);
            idle_cpu_pct = static_cast<double>(t1 - t0) / static_cast<double>(clk_tck()) /
                           secs(steady::now() - w0) * 100;
            std::tie(idle_rss, idle_hwm) = proc_rss(pid);
            for (long r = 0; r < runs; ++r) {
                c.exec("TRUNCATE job_archive");
                std::vector<std::pair<std::string, int64_t>> sent;
                sent.reserve(static_cast<size_t>(n));
                auto start = steady::now();
                for (long i = 0; i < n; ++i) {
                    std::this_thread::sleep_until(start +
                                                  std::chrono::microseconds(interval_us * i));
                    auto job = cl.add_job_json("noop", "[]", "{}", std::nullopt);
                    sent.emplace_back(job.rid, wall_us());  // the INSERT has committed
                }
                auto until = steady::now() + 30s;
                while (scalar(c, "SELECT count(*) FROM job_archive") < n) {
                    if (steady::now() > until) throw std::runtime_error("W3: jobs did not finish");
                    std::this_thread::sleep_for(20ms);
                }
                auto res = c.exec(
                    "SELECT rid::text, (EXTRACT(EPOCH FROM started_at) * 1000000)::bigint,"
                    " (EXTRACT(EPOCH FROM updated_at) * 1000000)::bigint,"
                    " (EXTRACT(EPOCH FROM created_at) * 1000000)::bigint FROM job_archive");
                std::map<std::string, std::tuple<int64_t, int64_t, int64_t>> at;
                for (int i = 0; i < res.rows(); ++i)
                    at[res.str(i, 0)] = {res.i64(i, 1), res.i64(i, 2), res.i64(i, 3)};
                std::vector<double> lat;
                for (auto& [rid, t] : sent) {
                    auto& [s, e, created] = at.at(rid);
                    // Server clock: the claim's transaction start minus the INSERT's transaction
                    // start (an upper bound: it includes the INSERT's own execution and commit).
                    lat.push_back(static_cast<double>(s - created) / 1e3);
                    all_start.push_back(lat.back());
                    all_client.push_back(static_cast<double>(s - t) / 1e3);
                    all_end.push_back(static_cast<double>(e - created) / 1e3);
                }
                p50s.push_back(quantile(lat, 0.5));
                p95s.push_back(quantile(lat, 0.95));
                p99s.push_back(quantile(lat, 0.99));
                fmt::print(stderr, "W3 run {}: p50 {:.3f} ms p99 {:.3f} ms\n", r + 1, p50s.back(),
                           p99s.back());
            }
            after_rss = proc_rss(pid).first;
        } catch (...) {
            stop_daemon(pid);
            throw;
        }
        stop_daemon(pid);
    } catch (...) {
        drop_schema(schema);
        throw;
    }
    drop_schema(schema);
    std::filesystem::remove_all(d.dir);
    fmt::print(
        "workload=W3 measure=insert_tx_to_claim_tx jobs={} runs={} interval_ms={:.1f} isolation={} "
        "concurrency={}"
        " p50_ms={:.3f} p95_ms={:.3f} p99_ms={:.3f} max_ms={:.3f} min_ms={:.3f}"
        " run_p50_ms_min={:.3f} run_p50_ms_max={:.3f} run_p99_ms_min={:.3f}"
        " run_p99_ms_max={:.3f}\n",
        n * runs, runs, static_cast<double>(interval_us) / 1000, d.isolation, d.concurrency,
        quantile(all_start, 0.5), quantile(all_start, 0.95), quantile(all_start, 0.99),
        vmax(all_start), vmin(all_start), vmin(p50s), vmax(p50s), vmin(p99s), vmax(p99s));
    fmt::print(
        "workload=W3 measure=insert_to_finish_tx p50_ms={:.3f} p95_ms={:.3f}"
        " p99_ms={:.3f}\n",
        quantile(all_end, 0.5), quantile(all_end, 0.95), quantile(all_end, 0.99));
    fmt::print(
        "workload=W3 measure=client_commit_clock_to_claim_tx p50_ms={:.3f} p95_ms={:.3f}"
        " p99_ms={:.3f} min_ms={:.3f}\n",
        quantile(all_client, 0.5), quantile(all_client, 0.95), quantile(all_client, 0.99),
        vmin(all_client));
    fmt::print(
        "workload=idle isolation={} concurrency={} seconds={} cpu_pct={:.3f} rss_mb={:.1f}"
        " rss_hwm_mb={:.1f} rss_after_w3_mb={:.1f}\n",
        d.isolation, d.concurrency, idle_s, idle_cpu_pct, static_cast<double>(idle_rss) / 1024,
        static_cast<double>(idle_hwm) / 1024, static_cast<double>(after_rss) / 1024);
    return 0;
}

int fill_cmd(const Args& a) {
    long n = a.num("jobs", 100000);
    auto cfg = base_cfg();
    queuer::Client cl(cfg, {}, true, 1);
    auto t0 = steady::now();
    fill(cl, n);
    fmt::print(stderr, "filled {} jobs into schema {} in {:.2f} s\n", n, cfg.schema,
               secs(steady::now() - t0));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        fmt::print(stderr, "usage: queuer_bench w1|w2|w3|fill [--key value]...\n");
        return 2;
    }
    std::string cmd = argv[1];
    Args a;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k.rfind("--", 0) != 0) {
            fmt::print(stderr, "expected --key value, got {}\n", k);
            return 2;
        }
        a.kv[k.substr(2)] = argv[i + 1];
    }
    signal(SIGPIPE, SIG_IGN);
    try {
        if (cmd == "w1") return w1(a);
        if (cmd == "w2") return w2(a);
        if (cmd == "w3") return w3(a);
        if (cmd == "fill") return fill_cmd(a);
        fmt::print(stderr, "unknown workload {}\n", cmd);
        return 2;
    } catch (const std::exception& e) {
        fmt::print(stderr, "queuer_bench {}: {}\n", cmd, e.what());
        return 1;
    }
}
