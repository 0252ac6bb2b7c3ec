// queuerd: loads the configuration and the plugins, registers the worker, and runs until SIGTERM
// or SIGINT (graceful drain), a stop request from queuerctl, or a fatal error. SIGHUP re-reads
// the configuration and applies what can change live. Talks to systemd with the sd_notify
// protocol (systemd.hpp).
#include "daemon.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <uv.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <thread>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "child_env.hpp"
#include "crash_report.hpp"
#include "file_checks.hpp"
#include "isolation.hpp"
#include "logging.hpp"
#include "ops.hpp"
#include "plugin_host.hpp"
#include "queuer/admin.hpp"
#include "queuer/app_config.hpp"
#include "queuer/error.hpp"
#include "queuer/queuer.hpp"
#include "queuer/schema.hpp"
#include "startup.hpp"
#include "systemd.hpp"

namespace queuerd {

namespace {

using namespace std::chrono_literals;

constexpr const char* kVersion = "0.1.0";

// Exit statuses (docs/man/queuerd.8.md, EXIT STATUS; the unit's Restart= rules rely on them).
// 78 (kExitConfig, startup.hpp): a permanent configuration error met at start.
constexpr int kExitOk = 0;          // clean stop: SIGTERM/SIGINT, or an operator's stop
constexpr int kExitInvalid = 1;     // invalid configuration or usage
constexpr int kExitUnwritten = 74;  // EX_IOERR: job outcomes could not be written at shutdown
constexpr int kExitStale = 75;      // EX_TEMPFAIL: the master declared this worker stale

// Refuses (or, with --allow-insecure-permissions, warns about) a configuration file, plugin or
// secret file that users other than root and queuerd's own could change, or (secrets) read.
void check_trusted_files(const queuer::AppConfig& cfg, bool allow_insecure,
                         const std::function<void(const std::string&)>& warn) {
    auto check = [&](const std::string& path, FileKind kind) {
        auto why = insecure_file(path, kind);
        if (!why) return;
        std::string msg = fmt::format("{} {}: {}", to_string(kind), path, *why);
        if (allow_insecure) {
            warn(msg + " (allowed by --allow-insecure-permissions)");
            return;
        }
        throw queuer::Error(
            queuer::ErrorKind::Config,
            fmt::format("{}; queuerd refuses files that other users could {} (fix the owner or "
                        "mode, or start queuerd with --allow-insecure-permissions to only warn)",
                        msg, kind == FileKind::Secret ? "read or change" : "change"));
    };
    if (!cfg.source.empty()) check(cfg.source, FileKind::Config);
    for (const auto& p : cfg.plugins) check(p.path, FileKind::Plugin);
    for (const auto& f : cfg.secret_files) check(f, FileKind::Secret);
    for (const auto& name : cfg.worker.task_environment)
        if (secret_variable(name))
            warn(
                fmt::format("worker.task_environment: {} is never passed to tasks (it holds "
                            "queuerd's own secrets or settings)",
                            name));
}

// Loads the configured plugins in order; a refusal names the entry as FILE:LINE.
std::unique_ptr<PluginHost> load_plugins(const queuer::AppConfig& cfg) {
    auto host = std::make_unique<PluginHost>();
    for (const auto& p : cfg.plugins) {
        try {
            host->load(p.path);
        } catch (const queuer::Error& e) {
            if (p.where.empty()) throw;
            throw queuer::Error(e.kind(), fmt::format("{}: {}", p.where, e.what()));
        }
    }
    return host;
}

// Ends queuerd with one line and an exit status (thrown out of run()).
struct StartupError {
    int code;
    std::string message;
};

queuer::AppConfig load(const std::string& path) {
    auto cfg = path.empty() ? queuer::load_app_config() : queuer::load_app_config(path);
    cfg.database.application_name = "queuerd";
    return cfg;
}

std::atomic<bool> g_early_stop{false};
void early_signal(int) {
    g_early_stop = true;
}

// Everything the running daemon holds, owned by the main thread's loop.
struct Daemon {
    std::string config_path;
    queuer::AppConfig cfg;
    std::unique_ptr<PluginHost> plugins;
    std::unique_ptr<ProcessPool> processes;
    std::unique_ptr<queuer::Queuer> worker;
    std::unique_ptr<Ops> ops;

    uv_loop_t* loop = uv_default_loop();
    uv_signal_t sigterm{}, sigint{}, sighup{};
    uv_timer_t status_timer{};
    uv_async_t remote_stop{}, stop_done{};
    std::thread stopper;
    bool stopping = false;
    uint64_t watchdog_usec = 0;

    void begin_stop(std::chrono::milliseconds grace, const char* why) {
        if (stopping) return;
        stopping = true;
        if (ops) ops->set_stopping();
        spdlog::info("{}: stopping (grace {} ms, {} jobs running)", why, grace.count(),
                     worker->running_jobs());
        systemd::notify("STOPPING=1\nSTATUS=stopping: draining running jobs");
        stopper = std::thread([this, grace] {
            worker->stop(grace);
            uv_async_send(&stop_done);
        });
    }

    void reload() {
        if (config_path.empty()) {
            spdlog::info("SIGHUP: no configuration file to re-read");
            return;
        }
        queuer::AppConfig next;
        try {
            next = load(config_path);
        } catch (const std::exception& e) {
            spdlog::error("SIGHUP: keeping the running configuration: {}", e.what());
            return;
        }
        set_log_level(next.log_level);
        try {
            if (next.worker.max_concurrency != cfg.worker.max_concurrency) {
                worker->set_max_concurrency(next.worker.max_concurrency);
                spdlog::info("SIGHUP: max_concurrency {} -> {}", cfg.worker.max_concurrency,
                             next.worker.max_concurrency);
            }
            if (!(next.worker.on_error == cfg.worker.on_error)) {
                worker->set_worker_on_error(next.worker.on_error);
                annotate();  // the worker row's options were rewritten
                spdlog::info("SIGHUP: worker on_error updated");
            }
        } catch (const std::exception& e) {
            spdlog::error("SIGHUP: could not apply the new settings: {}", e.what());
        }
        auto needs_restart = [&](const char* what, bool changed) {
            if (changed) spdlog::warn("SIGHUP: {} changed; restart queuerd to apply it", what);
        };
        needs_restart("worker.name", next.worker.name != cfg.worker.name);
        needs_restart("worker.isolation", next.worker.isolation != cfg.worker.isolation);
        needs_restart("worker.heartbeat_interval",
                      next.worker.heartbeat_interval != cfg.worker.heartbeat_interval);
        needs_restart("worker.poll_interval",
                      next.worker.poll_interval != cfg.worker.poll_interval);
        needs_restart("database", next.database.describe() != cfg.database.describe() ||
                                      next.database.password != cfg.database.password);
        std::vector<std::string> a, b;
        for (const auto& p : cfg.plugins) a.push_back(p.path);
        for (const auto& p : next.plugins) b.push_back(p.path);
        needs_restart("plugins", a != b);
        needs_restart("encryption key", next.encryption_key != cfg.encryption_key);
        needs_restart("logging.format", next.log_format != cfg.log_format);
        needs_restart("http.listen", next.http_listen != cfg.http_listen);
        auto grace = next.worker.shutdown_grace;
        auto mc = next.worker.max_concurrency;
        auto oe = next.worker.on_error;
        cfg.worker.shutdown_grace = grace;
        cfg.worker.max_concurrency = mc;
        cfg.worker.on_error = oe;
        cfg.log_level = next.log_level;
    }

    // Records host, pid, version and the HTTP address in the worker row (options.queuerd), for
    // `queuerctl list worker` and the web console.
    void annotate() {
        queuer::admin::WorkerAnnotation a;
        char host[256] = {};
        if (::gethostname(host, sizeof host - 1) == 0) a.host = host;
        a.pid = ::getpid();
        a.version = kVersion;
        a.http = ops->http_address();
        try {
            auto c = worker->pool().acquire();
            queuer::admin::annotate_worker(*c, worker->worker().rid, a);
        } catch (const std::exception& e) {
            spdlog::warn("could not record host and pid in the worker row: {}", e.what());
        }
    }

    // Every few seconds: the watchdog (only while the engine loop turns) and the STATUS line.
    void tick() {
        if (watchdog_usec && worker->loop_healthy(std::chrono::milliseconds(watchdog_usec / 2000)))
            systemd::notify("WATCHDOG=1");
        if (stopping) return;
        int64_t q = ops->queued_total();  // cached; refreshed on the depth thread
        std::string status =
            q < 0 ? fmt::format("STATUS=running {}/{} jobs; waiting for the database",
                                worker->running_jobs(), worker->max_concurrency())
                  : fmt::format("STATUS=running {}/{} jobs, {} queued", worker->running_jobs(),
                                worker->max_concurrency(), q);
        systemd::notify(status);
    }
};

// Creates or upgrades the schema (PRODUCT capability 11: queuerd creates it at start), saying
// so loudly when it did not exist: a mistyped database.schema / QUEUER_DB_SCHEMA shows at once.
void prepare_schema(const queuer::AppConfig& cfg) {
    auto c = queuer::db::Connection::open(cfg.database);
    auto r = queuer::migrate(c, cfg.database.timescaledb);
    if (r.from_version == 0)
        spdlog::warn(
            "schema \"{}\" had no queuer tables: created them (version {}); if this is not a new "
            "installation, check database.schema / QUEUER_DB_SCHEMA",
            cfg.database.schema, r.to_version);
    else if (r.from_version != r.to_version)
        spdlog::info("schema \"{}\" upgraded from version {} to {}", cfg.database.schema,
                     r.from_version, r.to_version);
}

std::unique_ptr<queuer::Queuer> connect_worker(const queuer::AppConfig& cfg, Ops& ops) {
    queuer::EngineOptions eo;
    eo.heartbeat_interval = cfg.worker.heartbeat_interval;
    eo.poll_interval = cfg.worker.poll_interval;
    eo.prefetch = cfg.worker.prefetch;
    eo.max_result_bytes = cfg.worker.max_result_bytes;
    eo.spool_dir = cfg.worker.spool_dir;
    eo.observer = ops.observer();
    // Every queuerd takes part in the master election (master: section, or its defaults).
    eo.master = cfg.master;
    if (cfg.master.master_lock_timeout <= cfg.master.master_poll_interval)
        spdlog::warn(
            "master.master_lock_timeout should be well above master_poll_interval, or "
            "the master loses its lock between two renewals");
    if (cfg.worker.heartbeat_interval * 2 > cfg.master.worker_stale_threshold)
        spdlog::warn(
            "worker.heartbeat_interval must stay well under "
            "master.worker_stale_threshold, or live workers are declared dead");
    auto delay = 1s;
    int attempts = 0;
    auto first_failure = std::chrono::steady_clock::now();
    auto last_log = first_failure;
    for (;;) {
        try {
            ++attempts;
            prepare_schema(cfg);
            return std::make_unique<queuer::Queuer>(cfg.worker.name, cfg.worker.max_concurrency,
                                                    cfg.encryption_key, cfg.database,
                                                    cfg.worker.on_error, eo);
        } catch (const queuer::Error& e) {
            if (auto why = permanent_reason(e))
                throw StartupError{
                    kExitConfig, fmt::format("cannot start ({}, not retried): {}", *why, e.what())};
            if (e.kind() != queuer::ErrorKind::Connection) throw;
            // The first failure at once, then a reminder every minute (not every attempt).
            auto now = std::chrono::steady_clock::now();
            if (attempts == 1) {
                spdlog::error("{}; retrying until it answers", e.what());
                last_log = now;
            } else if (now - last_log >= 60s) {
                spdlog::error(
                    "still waiting for the database ({} attempts in {} s): {}", attempts,
                    std::chrono::duration_cast<std::chrono::seconds>(now - first_failure).count(),
                    e.what());
                last_log = now;
            }
            ops.set_phase("waiting for the database");
            systemd::notify("STATUS=waiting for the database");
        }
        for (auto waited = 0ms; waited < delay; waited += 100ms) {
            if (g_early_stop) return nullptr;
            std::this_thread::sleep_for(100ms);
        }
        delay = std::min(delay * 2, std::chrono::seconds(30));
    }
}

int run(const std::string& config_path, bool allow_insecure) {
    Daemon d;
    d.config_path = config_path;
    d.cfg = load(config_path);
    setup_logging(d.cfg.log_level, d.cfg.log_format);
    crash::install(syslog_prefix_on_stderr());
    check_trusted_files(d.cfg, allow_insecure, [](const std::string& m) { spdlog::warn("{}", m); });
    spdlog::info("queuerd {} starting: worker {}, max concurrency {}, {} isolation, database {}",
                 kVersion, d.cfg.worker.name, d.cfg.worker.max_concurrency,
                 queuer::to_string(d.cfg.worker.isolation), d.cfg.database.describe());
    auto ops_db = d.cfg.database;
    ops_db.application_name = "queuerd-metrics";
    d.ops = std::make_unique<Ops>(ops_db, kVersion);
    if (!d.cfg.http_listen.empty()) {
        try {
            d.ops->start_http(d.cfg.http_listen);
        } catch (const queuer::Error& e) {
            throw StartupError{kExitConfig, e.what()};
        }
        spdlog::info("http: listening on {} (/metrics, /healthz, /readyz)", d.ops->http_address());
    }
    std::vector<std::string> paths;
    for (const auto& p : d.cfg.plugins) paths.push_back(p.path);
    d.plugins = load_plugins(d.cfg);
    for (const auto& info : d.plugins->plugins())
        spdlog::info("plugin {} ({}): tasks {}; next-interval functions {}", info.path, info.name,
                     fmt::join(info.tasks, ", "), fmt::join(info.next_interval_funcs, ", "));
    if (d.cfg.worker.isolation == queuer::Isolation::Process) {
        IsolationOptions io;
        io.runner_path = default_runner_path();
        io.plugin_paths = paths;
        io.task_environment = d.cfg.worker.task_environment;
        d.processes = std::make_unique<ProcessPool>(io);
        d.processes->prestart(1);  // fail fast when the runner or a plugin cannot start
    }

    std::signal(SIGTERM, early_signal);
    std::signal(SIGINT, early_signal);
    d.ops->set_phase("connecting to the database");
    d.worker = connect_worker(d.cfg, *d.ops);
    if (!d.worker) {
        spdlog::info("stopped before the database answered");
        return 0;
    }
    if (d.processes)
        d.processes->register_into(*d.plugins, *d.worker);
    else
        d.plugins->register_into(*d.worker);
    set_log_worker(d.worker->worker().rid);
    d.annotate();
    d.ops->set_phase("starting the worker");

    uv_async_init(d.loop, &d.remote_stop, [](uv_async_t* h) {
        auto* dd = static_cast<Daemon*>(h->data);
        dd->begin_stop(dd->cfg.worker.shutdown_grace, "stop requested through the database");
    });
    d.remote_stop.data = &d;
    uv_async_init(d.loop, &d.stop_done, [](uv_async_t* h) {
        auto* dd = static_cast<Daemon*>(h->data);
        uv_walk(
            dd->loop,
            [](uv_handle_t* x, void*) {
                if (!uv_is_closing(x)) uv_close(x, nullptr);
            },
            nullptr);
    });
    d.stop_done.data = &d;
    // The engine calls this on its own loop thread: hand over to ours.
    d.worker->on_stopped([&d] { uv_async_send(&d.remote_stop); });

    for (auto* s : {&d.sigterm, &d.sigint, &d.sighup}) {
        uv_signal_init(d.loop, s);
        s->data = &d;
    }
    uv_signal_start(
        &d.sigterm,
        [](uv_signal_t* s, int) {
            auto* dd = static_cast<Daemon*>(s->data);
            dd->begin_stop(dd->cfg.worker.shutdown_grace, "SIGTERM");
        },
        SIGTERM);
    uv_signal_start(
        &d.sigint,
        [](uv_signal_t* s, int) {
            auto* dd = static_cast<Daemon*>(s->data);
            dd->begin_stop(dd->cfg.worker.shutdown_grace, "SIGINT");
        },
        SIGINT);
    uv_signal_start(
        &d.sighup, [](uv_signal_t* s, int) { static_cast<Daemon*>(s->data)->reload(); }, SIGHUP);
    if (g_early_stop) {
        spdlog::info("stopped during start-up");
        d.worker->stop();
        d.ops->stop();
        return 0;
    }

    d.worker->start();
    d.ops->attach(d.worker.get());
    d.watchdog_usec = systemd::watchdog_usec();
    uv_timer_init(d.loop, &d.status_timer);
    d.status_timer.data = &d;
    uint64_t every = 5000;
    if (d.watchdog_usec)
        every = std::max<uint64_t>(500, std::min<uint64_t>(every, d.watchdog_usec / 3000));
    uv_timer_start(
        &d.status_timer, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->tick(); }, 0, every);
    systemd::notify("READY=1\nSTATUS=running");
    spdlog::info("ready: worker {} listening", d.worker->worker().rid);

    uv_run(d.loop, UV_RUN_DEFAULT);
    if (d.stopper.joinable()) d.stopper.join();
    uv_loop_close(d.loop);
    // No HTTP request may read the worker past this point.
    d.ops->attach(nullptr);
    d.ops->stop();
    // The exit status tells systemd whether to start us again (Restart=on-failure).
    int status = kExitOk;
    const auto cause = d.worker->stop_cause();
    if (size_t unwritten = d.worker->unwritten_jobs(); unwritten > 0) {
        spdlog::error(
            "{} job outcomes could not be written to the database (their rids are logged "
            "above); exiting with status {}",
            unwritten, kExitUnwritten);
        status = kExitUnwritten;
    } else if (cause == queuer::StopCause::Stale) {
        spdlog::warn(
            "the master declared this worker stale (no heartbeat for longer than "
            "master.worker_stale_threshold) and requeued its jobs; exiting with status {} so "
            "that the service manager starts a fresh worker",
            kExitStale);
        status = kExitStale;
    }
    if (d.worker->stuck_tasks() > 0) {
        // A task ignored cancellation and still runs plugin code: unloading the plugins under it
        // would crash. Its job is back in the queue already; leave without unloading.
        spdlog::warn(
            "{} tasks still running after the grace period; exiting without unloading "
            "the plugins",
            d.worker->stuck_tasks());
        spdlog::shutdown();
        std::_Exit(status);
    }
    d.worker.reset();
    d.processes.reset();
    d.plugins.reset();
    if (status == kExitOk) spdlog::info("stopped cleanly ({})", queuer::to_string(cause));
    return status;
}

// The connection options libpq would refuse, checked before any connection (for --check; a
// running queuerd meets them as a permanent error at start).
void check_connection_options(const queuer::DatabaseConfig& db) {
    static const char* const modes[] = {"disable", "allow",     "prefer",
                                        "require", "verify-ca", "verify-full"};
    if (std::find(std::begin(modes), std::end(modes), db.sslmode) == std::end(modes))
        throw queuer::Error(queuer::ErrorKind::Config,
                            fmt::format("database sslmode \"{}\" (QUEUER_DB_SSLMODE or "
                                        "database.sslmode) must be one of disable, allow, prefer, "
                                        "require, verify-ca, verify-full",
                                        db.sslmode));
}

}  // namespace

int daemon_main(int argc, char** argv) {
    CLI::App app{"queuerd: a job queue daemon on PostgreSQL"};
    std::string config_path;
    bool check = false, version = false, connect = false, allow_insecure = false;
    // No CLI::ExistingFile: the loader reports a missing file itself ("FILE: cannot read the
    // configuration file: ..."), with exit status 1 like every configuration error.
    app.add_option("-c,--config", config_path, "YAML configuration file")->type_name("FILE");
    app.add_flag("--check", check,
                 "Validate the configuration, load the plugins, list their tasks; touch no job");
    app.add_flag("--connect", connect,
                 "With --check: also connect to the database and look at the schema");
    app.add_flag("--allow-insecure-permissions", allow_insecure,
                 "Warn instead of refusing a configuration file, plugin or secret file that "
                 "other users could change (or, for secrets, read)");
    app.add_flag("-V,--version", version, "Print the version");
    app.footer(
        "Without --config everything comes from the environment (QUEUER_DB_*, "
        "QUEUER_ENCRYPTION_KEY).\nExamples:\n  queuerd --config /etc/queuerd/queuerd.yaml\n"
        "  queuerd --config queuerd.yaml --check\n"
        "  queuerd --config queuerd.yaml --check --connect\n"
        "Exit status: 0 clean stop, 1 invalid configuration or usage, 74 job outcomes left "
        "unwritten at shutdown,\n75 declared stale by the master, 78 permanent error at start "
        "(authentication, unknown database,\ninvalid connection option; not retried).");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::cerr << "queuerd: " << e.what() << " (see queuerd --help)\n";
        return kExitInvalid;
    }
    if (version) {
        std::cout << fmt::format("queuerd {} (schema version {}, plugin ABI {}.{})\n", kVersion,
                                 queuer::schema_version(), QUEUER_PLUGIN_ABI_MAJOR,
                                 QUEUER_PLUGIN_ABI_MINOR);
        return 0;
    }
    try {
        if (check) {
            auto cfg = load(config_path);
            check_trusted_files(cfg, allow_insecure, [](const std::string& m) {
                std::cerr << "queuerd: warning: " << m << "\n";
            });
            std::vector<std::string> paths;
            for (const auto& p : cfg.plugins) paths.push_back(p.path);
            auto host = load_plugins(cfg);
            if (cfg.worker.isolation == queuer::Isolation::Process) {
                IsolationOptions io;
                io.runner_path = default_runner_path();
                io.plugin_paths = paths;
                io.task_environment = cfg.worker.task_environment;
                ProcessPool pool(io);
                pool.prestart(1);
            }
            check_connection_options(cfg.database);
            std::string db_line = cfg.database.describe();
            if (connect) {
                // The same connection and schema checks as a start, touching no job.
                try {
                    auto c = queuer::db::Connection::open(cfg.database);
                    auto v = c.exec("SHOW server_version").str(0, 0);
                    std::string schema = queuer::admin::check_schema(c);
                    if (schema.empty()) {
                        int ver = 0;
                        try {
                            ver = c.exec(
                                       "SELECT COALESCE(MAX(version), 0) FROM "
                                       "queuer_schema_version")
                                      .i32(0, 0);
                        } catch (const queuer::Error&) {
                        }
                        schema = fmt::format("schema {} at version {} (this build: {})",
                                             cfg.database.schema, ver, queuer::schema_version());
                    } else {
                        schema += " (queuerd creates it at start)";
                    }
                    db_line +=
                        fmt::format("\ndatabase connection: ok (PostgreSQL {}); {}", v, schema);
                } catch (const queuer::Error& e) {
                    auto why = permanent_reason(e);
                    std::cerr << "queuerd: " << (why ? *why + ": " : std::string()) << e.what()
                              << "\n";
                    return 1;
                }
            }
            std::cout << "configuration: " << (cfg.source.empty() ? "environment" : cfg.source)
                      << " is valid\n"
                      << "worker: " << cfg.worker.name << ", max_concurrency "
                      << cfg.worker.max_concurrency << ", isolation "
                      << queuer::to_string(cfg.worker.isolation) << "\n"
                      << "database: " << db_line << "\n"
                      << "database password: "
                      << (cfg.database.password.empty() ? "none" : "from " + cfg.password_source)
                      << "\n"
                      << "encryption: "
                      << (cfg.encryption_key.empty() ? "off"
                                                     : "on, key from " + cfg.encryption_key_source)
                      << "\n"
                      << host->listing();
            return kExitOk;
        }
        if (connect) {
            std::cerr << "queuerd: --connect goes with --check\n";
            return kExitInvalid;
        }
        return run(config_path, allow_insecure);
    } catch (const StartupError& e) {
        // One line, through the configured log format when logging is set up.
        if (spdlog::default_logger_raw() && spdlog::default_logger_raw()->name() == "queuerd")
            spdlog::critical("{}", e.message);
        else
            std::cerr << "queuerd: " << e.message << "\n";
        systemd::notify("STATUS=failed: " + systemd::one_line(e.message));
        return e.code;
    } catch (const std::exception& e) {
        std::cerr << "queuerd: " << e.what() << "\n";
        systemd::notify("STATUS=failed: " + systemd::one_line(e.what()));
        return kExitInvalid;
    }
}

}  // namespace queuerd
