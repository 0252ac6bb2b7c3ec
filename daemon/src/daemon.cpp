// queuerd: loads the configuration and the plugins, registers the worker, and runs until SIGTERM
// or SIGINT (graceful drain), a stop request from queuerctl, or a fatal error. SIGHUP re-reads
// the configuration and applies what can change live. Talks to systemd with sd_notify.
#include "daemon.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <uv.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <thread>

#include "child_env.hpp"
#include "file_checks.hpp"
#include "isolation.hpp"
#include "plugin_host.hpp"
#include "queuer/app_config.hpp"
#include "queuer/error.hpp"
#include "queuer/queuer.hpp"
#include "queuer/schema.hpp"

namespace queuerd {

namespace {

using namespace std::chrono_literals;

constexpr const char* kVersion = "0.1.0";

// Exit statuses (docs/man/queuerd.8.md, EXIT STATUS; the unit's Restart= rules rely on them).
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

void setup_logging(queuer::LogLevel level) {
    auto logger = spdlog::stderr_color_mt("queuerd");
    // Under systemd the journal adds its own timestamp.
    if (std::getenv("JOURNAL_STREAM"))
        logger->set_pattern("[%l] %v");
    else
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [%l] %v");
    spdlog::set_default_logger(logger);
    spdlog::flush_on(spdlog::level::info);
    switch (level) {
        case queuer::LogLevel::Trace:
            spdlog::set_level(spdlog::level::trace);
            break;
        case queuer::LogLevel::Debug:
            spdlog::set_level(spdlog::level::debug);
            break;
        case queuer::LogLevel::Info:
            spdlog::set_level(spdlog::level::info);
            break;
        case queuer::LogLevel::Warn:
            spdlog::set_level(spdlog::level::warn);
            break;
        case queuer::LogLevel::Error:
            spdlog::set_level(spdlog::level::err);
            break;
    }
}

void apply_log_level(queuer::LogLevel level) {
    static const spdlog::level::level_enum map[] = {spdlog::level::trace, spdlog::level::debug,
                                                    spdlog::level::info, spdlog::level::warn,
                                                    spdlog::level::err};
    spdlog::set_level(map[static_cast<int>(level)]);
}

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

    uv_loop_t* loop = uv_default_loop();
    uv_signal_t sigterm{}, sigint{}, sighup{};
    uv_timer_t status_timer{};
    uv_async_t remote_stop{}, stop_done{};
    std::thread stopper;
    bool stopping = false;
    std::atomic<int> queued{-1};
    std::atomic<bool> status_query_running{false};
    uint64_t watchdog_usec = 0;

    void begin_stop(std::chrono::milliseconds grace, const char* why) {
        if (stopping) return;
        stopping = true;
        spdlog::info("{}: stopping (grace {} ms, {} jobs running)", why, grace.count(),
                     worker->running_jobs());
        sd_notify(0, "STOPPING=1\nSTATUS=stopping: draining running jobs");
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
        apply_log_level(next.log_level);
        try {
            if (next.worker.max_concurrency != cfg.worker.max_concurrency) {
                worker->set_max_concurrency(next.worker.max_concurrency);
                spdlog::info("SIGHUP: max_concurrency {} -> {}", cfg.worker.max_concurrency,
                             next.worker.max_concurrency);
            }
            if (!(next.worker.on_error == cfg.worker.on_error)) {
                worker->set_worker_on_error(next.worker.on_error);
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
        auto grace = next.worker.shutdown_grace;
        auto mc = next.worker.max_concurrency;
        auto oe = next.worker.on_error;
        cfg.worker.shutdown_grace = grace;
        cfg.worker.max_concurrency = mc;
        cfg.worker.on_error = oe;
        cfg.log_level = next.log_level;
    }

    // Every few seconds: the watchdog (only while the engine loop turns) and the STATUS line.
    void tick() {
        if (watchdog_usec && worker->loop_healthy(std::chrono::milliseconds(watchdog_usec / 2000)))
            sd_notify(0, "WATCHDOG=1");
        if (!status_query_running.exchange(true)) {
            auto* req = new uv_work_t;
            req->data = this;
            uv_queue_work(
                loop, req,
                [](uv_work_t* r) {
                    auto* d = static_cast<Daemon*>(r->data);
                    try {
                        auto c = d->worker->pool().acquire();
                        auto res = c->exec(
                            "SELECT count(*) FROM job WHERE status IN ('QUEUED', 'SCHEDULED')");
                        d->queued = res.i32(0, 0);
                    } catch (const std::exception&) {
                        d->queued = -1;
                    }
                },
                [](uv_work_t* r, int) {
                    auto* d = static_cast<Daemon*>(r->data);
                    d->status_query_running = false;
                    delete r;
                });
        }
        if (stopping) return;
        int q = queued.load();
        std::string status =
            q < 0 ? fmt::format("STATUS=running {}/{} jobs; waiting for the database",
                                worker->running_jobs(), worker->max_concurrency())
                  : fmt::format("STATUS=running {}/{} jobs, {} queued", worker->running_jobs(),
                                worker->max_concurrency(), q);
        sd_notify(0, status.c_str());
    }
};

std::unique_ptr<queuer::Queuer> connect_worker(const queuer::AppConfig& cfg) {
    queuer::EngineOptions eo;
    eo.heartbeat_interval = cfg.worker.heartbeat_interval;
    eo.poll_interval = cfg.worker.poll_interval;
    eo.prefetch = cfg.worker.prefetch;
    eo.max_result_bytes = cfg.worker.max_result_bytes;
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
    bool logged = false;
    for (;;) {
        try {
            return std::make_unique<queuer::Queuer>(cfg.worker.name, cfg.worker.max_concurrency,
                                                    cfg.encryption_key, cfg.database,
                                                    cfg.worker.on_error, eo);
        } catch (const queuer::Error& e) {
            if (e.kind() != queuer::ErrorKind::Connection) throw;
            if (!logged) {
                spdlog::error("{}; retrying until it answers", e.what());
                logged = true;
            }
            sd_notify(0, "STATUS=waiting for the database");
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
    setup_logging(d.cfg.log_level);
    check_trusted_files(d.cfg, allow_insecure, [](const std::string& m) { spdlog::warn("{}", m); });
    spdlog::info("queuerd {} starting: worker {}, max concurrency {}, {} isolation, database {}",
                 kVersion, d.cfg.worker.name, d.cfg.worker.max_concurrency,
                 queuer::to_string(d.cfg.worker.isolation), d.cfg.database.describe());
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
        d.processes = std::make_unique<ProcessPool>(io);
        d.processes->prestart(1);  // fail fast when the runner or a plugin cannot start
    }

    std::signal(SIGTERM, early_signal);
    std::signal(SIGINT, early_signal);
    d.worker = connect_worker(d.cfg);
    if (!d.worker) {
        spdlog::info("stopped before the database answered");
        return 0;
    }
    if (d.processes)
        d.processes->register_into(*d.plugins, *d.worker);
    else
        d.plugins->register_into(*d.worker);

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
        return 0;
    }

    d.worker->start();
    sd_watchdog_enabled(0, &d.watchdog_usec);
    uv_timer_init(d.loop, &d.status_timer);
    d.status_timer.data = &d;
    uint64_t every = 5000;
    if (d.watchdog_usec)
        every = std::max<uint64_t>(500, std::min<uint64_t>(every, d.watchdog_usec / 3000));
    uv_timer_start(
        &d.status_timer, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->tick(); }, 0, every);
    sd_notify(0, "READY=1\nSTATUS=running");
    spdlog::info("ready: worker {} listening", d.worker->worker().rid);

    uv_run(d.loop, UV_RUN_DEFAULT);
    if (d.stopper.joinable()) d.stopper.join();
    uv_loop_close(d.loop);

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

}  // namespace

int daemon_main(int argc, char** argv) {
    CLI::App app{"queuerd: a job queue daemon on PostgreSQL"};
    std::string config_path;
    bool check = false, version = false, allow_insecure = false;
    // No CLI::ExistingFile: the loader reports a missing file itself ("FILE: cannot read the
    // configuration file: ..."), with exit status 1 like every configuration error.
    app.add_option("-c,--config", config_path, "YAML configuration file")->type_name("FILE");
    app.add_flag("--check", check,
                 "Validate the configuration, load the plugins, list their tasks; touch no job");
    app.add_flag("--allow-insecure-permissions", allow_insecure,
                 "Warn instead of refusing a configuration file, plugin or secret file that "
                 "other users could change (or, for secrets, read)");
    app.add_flag("-V,--version", version, "Print the version");
    app.footer(
        "Without --config everything comes from the environment (QUEUER_DB_*, "
        "QUEUER_ENCRYPTION_KEY).\nExamples:\n  queuerd --config /etc/queuerd/queuerd.yaml\n"
        "  queuerd --config queuerd.yaml --check");
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
                ProcessPool pool(io);
                pool.prestart(1);
            }
            std::cout << "configuration: " << (cfg.source.empty() ? "environment" : cfg.source)
                      << " is valid\n"
                      << "worker: " << cfg.worker.name << ", max_concurrency "
                      << cfg.worker.max_concurrency << ", isolation "
                      << queuer::to_string(cfg.worker.isolation) << "\n"
                      << "database: " << cfg.database.describe() << "\n"
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
        return run(config_path, allow_insecure);
    } catch (const std::exception& e) {
        std::cerr << "queuerd: " << e.what() << "\n";
        sd_notifyf(0, "STATUS=failed: %s", e.what());
        return kExitInvalid;
    }
}

}  // namespace queuerd
