// The application configuration shared by queuerd and queuerctl: a YAML file (keys as in
// docs/configuration.md) plus QUEUER_DB_* and QUEUER_ENCRYPTION_KEY from the environment.
// Every error is queuer::Error(ErrorKind::Config, "FILE:LINE: <key path> ...").
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "queuer/config.hpp"
#include "queuer/model.hpp"

namespace queuer {

enum class Isolation { Thread, Process };
const char* to_string(Isolation i);

enum class LogLevel { Trace, Debug, Info, Warn, Error };
const char* to_string(LogLevel l);

// logging.format: text lines (with a <N> syslog priority prefix under systemd), one JSON object
// per line, or native journald fields.
enum class LogFormat { Text, Json, Journal };
const char* to_string(LogFormat f);

// The first directory of $STATE_DIRECTORY (set by systemd for StateDirectory=), or "".
std::string default_spool_dir();

struct WorkerConfig {
    // Required in a file; default_worker_name() without one. QUEUER_WORKER_NAME overrides it;
    // "%H" in either is replaced by the host name ("%%" by "%").
    std::string name;
    int max_concurrency = 1;  // 1..1000; required in a file; number of CPUs without one
    // Default on_error for jobs added without one; absent = run once, no timeout.
    std::optional<OnError> on_error;
    std::chrono::milliseconds heartbeat_interval{std::chrono::seconds(10)};
    std::chrono::milliseconds shutdown_grace{std::chrono::seconds(30)};
    Isolation isolation = Isolation::Thread;
    std::chrono::milliseconds poll_interval{std::chrono::seconds(30)};  // NOTIFY fallback
    // Upper bound of jobs claimed ahead of free slots (EngineOptions::prefetch); 0 = none.
    int prefetch = 1000;
    // Results or errors larger than this end their job FAILED (EngineOptions::max_result_bytes).
    size_t max_result_bytes = 16u << 20;
    // Where outcomes that could not be written at shutdown are saved for the next start
    // (EngineOptions::spool_dir). Default: $STATE_DIRECTORY (systemd's StateDirectory=) when
    // set, else none; "" in the file turns it off.
    std::string spool_dir = default_spool_dir();
    // Variables passed to task-runner children (process isolation) on top of the default ones:
    // names, or prefixes ending in '*' (see daemon/src/child_env.hpp).
    std::vector<std::string> task_environment;
};

struct PluginConfig {
    std::string path;   // absolute, or resolved against the config file's directory
    std::string where;  // "FILE:LINE" of the entry, for error messages ("" without a file)
};

struct AppConfig {
    std::string source;  // the file loaded; empty when everything came from the environment
    WorkerConfig worker;
    DatabaseConfig database;  // application_name left at its default: the caller sets it
    std::vector<PluginConfig> plugins;
    MasterSettings master;           // defaults for keys not given
    bool master_configured = false;  // the file has a master: section
    // The key text (hex or base64); empty = no encryption. Never log it.
    std::string encryption_key;
    // Where the key came from: "QUEUER_ENCRYPTION_KEY", the key file's path, or "" (none).
    std::string encryption_key_source;
    // Where the database password came from: "QUEUER_DB_PASSWORD", "systemd credential
    // db-password", the password file's path, "database.password", or "" (none given).
    std::string password_source;
    // The secret files read (database.password_file, encryption.key_file), for queuerd's
    // permission checks.
    std::vector<std::string> secret_files;
    LogLevel log_level = LogLevel::Info;
    LogFormat log_format = LogFormat::Text;
    // http.listen: "HOST:PORT" for /metrics, /healthz, /readyz; empty = no HTTP endpoint.
    std::string http_listen;
};

// Loads `path`. With require_worker = false (queuerctl), worker.name and
// worker.max_concurrency may be missing and then take the no-file defaults.
AppConfig load_app_config(const std::string& path, bool require_worker = true);
// No file: defaults, QUEUER_DB_* and QUEUER_ENCRYPTION_KEY.
AppConfig load_app_config();

// "queuerd-<hostname>" (cut to 100 characters); "queuerd" when the host name is unknown.
std::string default_worker_name();
// std::thread::hardware_concurrency(), at least 1, at most 1000.
int default_max_concurrency();

}  // namespace queuer
