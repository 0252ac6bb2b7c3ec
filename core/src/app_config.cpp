// AppConfig: the YAML configuration file of queuerd and queuerctl, strictly checked (unknown
// keys, wrong types and bad values are errors naming FILE:LINE and the key path), then
// overridden by QUEUER_DB_* and QUEUER_ENCRYPTION_KEY. Secrets are read from files but never
// appear in an error message.
#include "queuer/app_config.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <sstream>
#include <thread>

#include "queuer/crypto.hpp"
#include "queuer/error.hpp"

namespace queuer {

const char* to_string(Isolation i) {
    return i == Isolation::Process ? "process" : "thread";
}

const char* to_string(LogLevel l) {
    switch (l) {
        case LogLevel::Trace:
            return "trace";
        case LogLevel::Debug:
            return "debug";
        case LogLevel::Info:
            return "info";
        case LogLevel::Warn:
            return "warn";
        case LogLevel::Error:
            return "error";
    }
    return "info";
}

std::string default_worker_name() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "queuerd";
    std::string name = std::string("queuerd-") + host;
    if (name.size() > 100) name.resize(100);
    return name;
}

int default_max_concurrency() {
    unsigned n = std::thread::hardware_concurrency();
    if (n == 0) return 1;
    return static_cast<int>(std::min(n, 1000u));
}

namespace {

const char* env_value(const char* name) {
    const char* v = std::getenv(name);
    return (v && *v) ? v : nullptr;
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

// Reads a whole file; nullopt with errno's text in `why` when it cannot.
std::optional<std::string> read_file(const std::string& path, std::string& why) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        why = "is a directory";
        return std::nullopt;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        why = std::strerror(errno);
        return std::nullopt;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) {
        why = "read error";
        return std::nullopt;
    }
    return ss.str();
}

std::string trim_trailing_newlines(std::string s) {
    while (!s.empty() &&
           (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
        s.pop_back();
    return s;
}

struct Entry {
    YAML::Node key;
    YAML::Node value;
};

// One mapping of the file, its keys checked against the allowed ones.
struct Section {
    std::string path;  // "worker", "worker.on_error", "" for the root
    int line = 1;      // 1-based line of the section's key (for missing required keys)
    std::map<std::string, Entry> entries;

    const Entry* find(const std::string& key) const {
        auto it = entries.find(key);
        return it == entries.end() ? nullptr : &it->second;
    }
    std::string key_path(const std::string& key) const {
        return path.empty() ? key : path + "." + key;
    }
};

class Loader {
  public:
    explicit Loader(std::string file) : file_(std::move(file)) {
        dir_ = std::filesystem::path(file_).parent_path();
    }

    static int line_of(const YAML::Node& n) {
        auto m = n.Mark();
        return m.line >= 0 ? m.line + 1 : 1;
    }

    [[noreturn]] void fail(int line, const std::string& msg) const {
        throw Error(ErrorKind::Config, fmt::format("{}:{}: {}", file_, line, msg));
    }
    [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const {
        fail(line_of(n), msg);
    }
    std::string where(int line) const { return fmt::format("{}:{}", file_, line); }

    Section section(const YAML::Node& node, const std::string& path, int line,
                    std::initializer_list<const char*> allowed) const {
        Section s;
        s.path = path;
        s.line = line;
        if (!node || node.IsNull()) return s;
        if (!node.IsMap()) {
            fail(node, path.empty() ? "the configuration must be a mapping of sections "
                                      "(worker, database, plugins, master, encryption, logging)"
                                    : fmt::format("{} must be a mapping", path));
        }
        for (auto it = node.begin(); it != node.end(); ++it) {
            // Copies: the iterator hands out a temporary pair.
            const YAML::Node k = it->first;
            const YAML::Node v = it->second;
            if (!k.IsScalar()) fail(k, fmt::format("{}: keys must be plain names", s.key_path("")));
            const std::string& name = k.Scalar();
            bool known = std::any_of(allowed.begin(), allowed.end(),
                                     [&](const char* a) { return name == a; });
            if (!known) {
                std::string hint;
                size_t best = 3;
                for (const char* a : allowed) {
                    size_t d = edit_distance(name, a);
                    if (d < best) {
                        best = d;
                        hint = fmt::format(" (did you mean {}?)", s.key_path(a));
                    }
                }
                if (hint.empty()) {
                    std::string list;
                    for (const char* a : allowed)
                        list += (list.empty() ? "" : ", ") + s.key_path(a);
                    hint = " (known keys: " + list + ")";
                }
                fail(k, fmt::format("unknown key {}{}", s.key_path(name), hint));
            }
            if (s.entries.count(name))
                fail(k, fmt::format("duplicate key {} (first at line {})", s.key_path(name),
                                    line_of(s.entries[name].key)));
            s.entries[name] = Entry{k, v};
        }
        return s;
    }

    // A sub-section given by a key of `parent`; empty when absent or null.
    Section subsection(const Section& parent, const std::string& key,
                       std::initializer_list<const char*> allowed) const {
        const Entry* e = parent.find(key);
        if (!e) return section(YAML::Node(), parent.key_path(key), parent.line, allowed);
        return section(e->value, parent.key_path(key), line_of(e->key), allowed);
    }

    // The scalar text of a key; nullopt when absent or null. Wrong shapes are errors.
    std::optional<std::string> scalar(const Section& s, const std::string& key,
                                      const char* expected) const {
        const Entry* e = s.find(key);
        if (!e || !e->value || e->value.IsNull()) return std::nullopt;
        if (!e->value.IsScalar())
            fail(e->value, fmt::format("{} must be {}", s.key_path(key), expected));
        return e->value.Scalar();
    }

    int line(const Section& s, const std::string& key) const {
        const Entry* e = s.find(key);
        return e ? line_of(e->value) : s.line;
    }

    std::optional<std::string> string(const Section& s, const std::string& key) const {
        return scalar(s, key, "a string");
    }

    std::optional<int64_t> integer(const Section& s, const std::string& key, int64_t min,
                                   int64_t max) const {
        auto text = scalar(s, key, "an integer");
        if (!text) return std::nullopt;
        int64_t v = 0;
        const char* b = text->data();
        const char* e = b + text->size();
        if (b != e && *b == '+') ++b;
        auto [ptr, ec] = std::from_chars(b, e, v);
        if (b == e || ec != std::errc() || ptr != e)
            fail(line(s, key),
                 fmt::format("{} must be an integer, not \"{}\"", s.key_path(key), *text));
        if (v < min || v > max)
            fail(line(s, key),
                 fmt::format("{} must be between {} and {}, not {}", s.key_path(key), min, max, v));
        return v;
    }

    std::optional<std::chrono::nanoseconds> duration(const Section& s, const std::string& key,
                                                     bool allow_zero = false) const {
        auto text = scalar(s, key, "a duration such as 500ms, 3s, 5m, 30d or seconds");
        if (!text) return std::nullopt;
        std::chrono::nanoseconds d{0};
        try {
            d = parse_duration(*text, s.key_path(key));
        } catch (const Error& e) {
            fail(line(s, key), e.what());
        }
        if (d.count() < 0 || (!allow_zero && d.count() == 0))
            fail(line(s, key),
                 fmt::format("{} must be {}, not \"{}\"", s.key_path(key),
                             allow_zero ? "zero or more" : "greater than zero", *text));
        return d;
    }

    // A byte size: a plain number of bytes, or with a unit kB, MB, GB (PostgreSQL's units,
    // powers of 1024; KiB, MiB, GiB are accepted too).
    std::optional<uint64_t> size(const Section& s, const std::string& key, uint64_t min,
                                 uint64_t max) const {
        auto text = scalar(s, key, "a size such as 16MB or a number of bytes");
        if (!text) return std::nullopt;
        uint64_t v = 0;
        const char* b = text->data();
        const char* e = b + text->size();
        auto [ptr, ec] = std::from_chars(b, e, v);
        std::string unit(ptr, e);
        while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
        uint64_t mult = 0;
        if (unit.empty() || unit == "B") mult = 1;
        if (unit == "kB" || unit == "KB" || unit == "KiB") mult = 1024;
        if (unit == "MB" || unit == "MiB") mult = 1024 * 1024;
        if (unit == "GB" || unit == "GiB") mult = 1024ull * 1024 * 1024;
        if (ptr == b || ec != std::errc() || mult == 0 || v > max / mult)
            fail(line(s, key), fmt::format("{} must be a size such as 16MB, 512kB or a number of "
                                           "bytes, up to {} bytes, not \"{}\"",
                                           s.key_path(key), max, *text));
        v *= mult;
        if (v < min || v > max)
            fail(line(s, key), fmt::format("{} must be between {} and {} bytes, not {}",
                                           s.key_path(key), min, max, v));
        return v;
    }

    std::optional<std::string> choice(const Section& s, const std::string& key,
                                      std::initializer_list<const char*> values) const {
        auto text = scalar(s, key, "a string");
        if (!text) return std::nullopt;
        std::string lower;
        for (char c : *text)
            lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (const char* v : values)
            if (lower == v) return lower;
        std::string list;
        for (const char* v : values) list += (list.empty() ? "" : " | ") + std::string(v);
        fail(line(s, key),
             fmt::format("{} must be one of {}, not \"{}\"", s.key_path(key), list, *text));
    }

    std::string resolve(const std::string& p) const {
        std::filesystem::path path(p);
        if (path.is_absolute() || dir_.empty()) return p;
        return (dir_ / path).lexically_normal().string();
    }

    // Reads a secret file named by a key; the error names the file, never its content.
    std::string secret_file(const Section& s, const std::string& key) const {
        std::string path = resolve(*string(s, key));
        std::string why;
        auto content = read_file(path, why);
        if (!content)
            fail(line(s, key), fmt::format("{}: cannot read {}: {}", s.key_path(key), path, why));
        return trim_trailing_newlines(std::move(*content));
    }

    const std::string& file() const { return file_; }

  private:
    std::string file_;
    std::filesystem::path dir_;
};

std::chrono::milliseconds to_ms(std::chrono::nanoseconds d) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d);
    if (ms.count() == 0 && d.count() > 0) ms = std::chrono::milliseconds(1);
    return ms;
}

double to_seconds(std::chrono::nanoseconds d) {
    return static_cast<double>(d.count()) / 1e9;
}

void check_key(std::string_view key, std::string_view what) {
    try {
        Cipher c(key);
    } catch (const Error& e) {
        throw Error(ErrorKind::Config, fmt::format("{}: {}", what, e.what()));
    }
}

#define QUEUER_WORKER_KEYS                                                                          \
    {"name",           "max_concurrency", "on_error", "heartbeat_interval", "shutdown_grace", \
     "isolation",      "poll_interval",   "prefetch", "max_result_bytes"}

void apply_defaults_without_file(AppConfig& cfg) {
    cfg.worker.name = default_worker_name();
    cfg.worker.max_concurrency = default_max_concurrency();
}

void parse_worker(const Loader& L, const Section& root, AppConfig& cfg, bool require_worker) {
    Section w = L.subsection(root, "worker",
                             QUEUER_WORKER_KEYS);
    if (!root.find("worker") && require_worker)
        L.fail(root.line, "worker is required (with worker.name and worker.max_concurrency)");
    auto name = L.string(w, "name");
    if (name) {
        if (name->empty()) L.fail(L.line(w, "name"), "worker.name must not be empty");
        if (name->size() > 100)
            L.fail(L.line(w, "name"), "worker.name must be at most 100 characters");
        cfg.worker.name = *name;
    } else if (require_worker) {
        L.fail(w.line, "worker.name is required");
    } else {
        cfg.worker.name = default_worker_name();
    }
    auto mc = L.integer(w, "max_concurrency", 1, 1000);
    if (mc) {
        cfg.worker.max_concurrency = static_cast<int>(*mc);
    } else if (require_worker) {
        L.fail(w.line, "worker.max_concurrency is required (1..1000)");
    } else {
        cfg.worker.max_concurrency = default_max_concurrency();
    }

    if (const Entry* e = w.find("on_error"); e && e->value && !e->value.IsNull()) {
        Section oe =
            L.subsection(w, "on_error", {"timeout", "max_retries", "retry_delay", "retry_backoff"});
        OnError o;
        if (auto d = L.duration(oe, "timeout", true)) o.timeout = to_seconds(*d);
        if (auto n = L.integer(oe, "max_retries", 0, 1000000)) o.max_retries = static_cast<int>(*n);
        if (auto d = L.duration(oe, "retry_delay", true)) o.retry_delay = to_seconds(*d);
        if (auto b = L.choice(oe, "retry_backoff", {"none", "linear", "exponential"})) {
            o.retry_backoff = *b == "linear"        ? RetryBackoff::Linear
                              : *b == "exponential" ? RetryBackoff::Exponential
                                                    : RetryBackoff::None;
        }
        try {
            o.validate();
        } catch (const Error& err) {
            L.fail(oe.line, fmt::format("worker.on_error: {}", err.what()));
        }
        cfg.worker.on_error = o;
    }
    if (auto d = L.duration(w, "heartbeat_interval")) cfg.worker.heartbeat_interval = to_ms(*d);
    if (auto d = L.duration(w, "shutdown_grace", true)) cfg.worker.shutdown_grace = to_ms(*d);
    if (auto d = L.duration(w, "poll_interval")) cfg.worker.poll_interval = to_ms(*d);
    if (auto i = L.choice(w, "isolation", {"thread", "process"}))
        cfg.worker.isolation = *i == "process" ? Isolation::Process : Isolation::Thread;
    if (auto n = L.integer(w, "prefetch", 0, 100000)) cfg.worker.prefetch = static_cast<int>(*n);
    // At least 1 kB (an error text must fit); at most 1 GB, PostgreSQL's limit for one value.
    if (auto n = L.size(w, "max_result_bytes", 1024, 1024ull * 1024 * 1024))
        cfg.worker.max_result_bytes = static_cast<size_t>(*n);
}

void parse_database(const Loader& L, const Section& root, AppConfig& cfg) {
    Section d = L.subsection(root, "database",
                             {"host", "port", "database", "username", "password", "password_file",
                              "schema", "sslmode", "timescaledb"});
    DatabaseConfig& db = cfg.database;
    if (auto v = L.string(d, "host")) db.host = *v;
    if (auto v = L.integer(d, "port", 1, 65535)) db.port = static_cast<int>(*v);
    if (auto v = L.string(d, "database")) db.database = *v;
    if (auto v = L.string(d, "username")) db.username = *v;
    if (auto v = L.string(d, "schema")) db.schema = *v;
    if (auto v = L.choice(d, "sslmode",
                          {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}))
        db.sslmode = *v;
    if (auto v = L.choice(d, "timescaledb", {"auto", "true", "false"}))
        db.timescaledb = parse_timescale_mode(*v, "database.timescaledb");
    bool has_password = d.find("password") != nullptr;
    bool has_file = L.string(d, "password_file").has_value();
    if (has_password && has_file)
        L.fail(L.line(d, "password_file"),
               "set database.password or database.password_file, not both");
    if (auto v = L.string(d, "password")) db.password = *v;
    // QUEUER_DB_PASSWORD wins; the file is then not even read.
    if (has_file && std::getenv("QUEUER_DB_PASSWORD") == nullptr)
        db.password = L.secret_file(d, "password_file");

    db.apply_env();
    try {
        db.validate();
    } catch (const Error& e) {
        // Point at the key in the file unless the environment set the value.
        std::string msg = e.what();
        for (auto [key, var] :
             {std::pair{"host", "QUEUER_DB_HOST"}, std::pair{"database", "QUEUER_DB_DATABASE"},
              std::pair{"schema", "QUEUER_DB_SCHEMA"}}) {
            if (msg.rfind(std::string("database.") + key, 0) != 0) continue;
            if (env_value(var)) throw Error(ErrorKind::Config, fmt::format("{}: {}", var, msg));
            L.fail(L.line(d, key), msg);
        }
        L.fail(d.line, msg);
    }
}

void parse_master(const Loader& L, const Section& root, AppConfig& cfg) {
    Section m =
        L.subsection(root, "master",
                     {"master_lock_timeout", "master_poll_interval", "retention_archive",
                      "worker_stale_threshold", "worker_delete_threshold", "job_stale_threshold"});
    cfg.master_configured = root.find("master") != nullptr;
    MasterSettings& s = cfg.master;
    if (auto d = L.duration(m, "master_lock_timeout")) s.master_lock_timeout = *d;
    if (auto d = L.duration(m, "master_poll_interval")) s.master_poll_interval = *d;
    if (auto d = L.duration(m, "retention_archive", true)) s.retention_archive = *d;  // 0 = keep
    if (auto d = L.duration(m, "worker_stale_threshold")) s.worker_stale_threshold = *d;
    if (auto d = L.duration(m, "worker_delete_threshold")) s.worker_delete_threshold = *d;
    if (auto d = L.duration(m, "job_stale_threshold")) s.job_stale_threshold = *d;
}

void parse_plugins(const Loader& L, const Section& root, AppConfig& cfg) {
    const Entry* e = root.find("plugins");
    if (!e || !e->value || e->value.IsNull()) return;
    if (!e->value.IsSequence())
        L.fail(e->value, "plugins must be a list of entries like { path: /path/to/plugin.so }");
    for (size_t i = 0; i < e->value.size(); ++i) {
        const YAML::Node item = e->value[i];
        std::string path = fmt::format("plugins[{}]", i);
        Section p = L.section(item, path, Loader::line_of(item), {"path"});
        if (!item.IsMap()) L.fail(item, fmt::format("{} must be a mapping with a path", path));
        auto v = L.string(p, "path");
        if (!v || v->empty()) L.fail(p.line, fmt::format("{}.path is required", path));
        cfg.plugins.push_back(PluginConfig{L.resolve(*v), L.where(L.line(p, "path"))});
    }
}

void parse_encryption(const Loader& L, const Section& root, AppConfig& cfg) {
    Section s = L.subsection(root, "encryption", {"key_file"});
    if (const char* k = env_value("QUEUER_ENCRYPTION_KEY")) {
        cfg.encryption_key = k;
        cfg.encryption_key_source = "QUEUER_ENCRYPTION_KEY";
        check_key(cfg.encryption_key, "QUEUER_ENCRYPTION_KEY");
        return;
    }
    auto file = L.string(s, "key_file");
    if (!file) return;
    std::string path = L.resolve(*file);
    std::string key = L.secret_file(s, "key_file");
    if (key.empty())
        L.fail(L.line(s, "key_file"), fmt::format("encryption.key_file: {} is empty", path));
    try {
        check_key(key, fmt::format("encryption.key_file {}", path));
    } catch (const Error& e) {
        L.fail(L.line(s, "key_file"), e.what());
    }
    cfg.encryption_key = std::move(key);
    cfg.encryption_key_source = path;
}

void parse_logging(const Loader& L, const Section& root, AppConfig& cfg) {
    Section s = L.subsection(root, "logging", {"level"});
    if (auto v = L.choice(s, "level", {"trace", "debug", "info", "warn", "error"})) {
        if (*v == "trace")
            cfg.log_level = LogLevel::Trace;
        else if (*v == "debug")
            cfg.log_level = LogLevel::Debug;
        else if (*v == "info")
            cfg.log_level = LogLevel::Info;
        else if (*v == "warn")
            cfg.log_level = LogLevel::Warn;
        else
            cfg.log_level = LogLevel::Error;
    }
}

}  // namespace

AppConfig load_app_config() {
    AppConfig cfg;
    apply_defaults_without_file(cfg);
    cfg.database = DatabaseConfig::from_env();
    cfg.database.validate();
    if (const char* k = env_value("QUEUER_ENCRYPTION_KEY")) {
        check_key(k, "QUEUER_ENCRYPTION_KEY");
        cfg.encryption_key = k;
        cfg.encryption_key_source = "QUEUER_ENCRYPTION_KEY";
    }
    return cfg;
}

// Settings that cannot be safe on a database shared with Go/Python queuer workers and masters
// (docs/compatibility.md, "Master election and stale workers"), refused with the reason.
#define QUEUER_MASTER_KEYS_FOR_CHECKS                                                  \
    {                                                                                  \
        "master_lock_timeout", "master_poll_interval", "retention_archive",            \
            "worker_stale_threshold", "worker_delete_threshold", "job_stale_threshold" \
    }

void check_shared_database_safety(const Loader& L, const Section& top, const AppConfig& cfg) {
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    const auto& m = cfg.master;
    // A master renews its lock once per pass; another queuerd may take a lock older than the
    // timeout, so a timeout within two passes lets two masters alternate.
    if (m.master_lock_timeout < 2 * m.master_poll_interval) {
        const Section ms = L.subsection(top, "master", QUEUER_MASTER_KEYS_FOR_CHECKS);
        L.fail(L.line(ms, "master_lock_timeout"),
               fmt::format("master.master_lock_timeout ({} ms) must be at least twice "
                           "master.master_poll_interval ({} ms): the master renews its lock once "
                           "per pass, and another worker takes a lock older than the timeout, so "
                           "two masters would run",
                           duration_cast<milliseconds>(m.master_lock_timeout).count(),
                           duration_cast<milliseconds>(m.master_poll_interval).count()));
    }
    // Go and Python masters declare a worker dead after 2 minutes without a heartbeat (fixed in
    // both); a heartbeat must come well within that, or they stop live queuerd workers.
    if (cfg.worker.heartbeat_interval > std::chrono::seconds(60)) {
        const Section w = L.subsection(top, "worker", QUEUER_WORKER_KEYS);
        L.fail(L.line(w, "heartbeat_interval"),
               fmt::format("worker.heartbeat_interval ({} ms) must be at most 60 s: Go and Python "
                           "queuer masters sharing the database declare a worker dead after 2 "
                           "minutes without a heartbeat",
                           cfg.worker.heartbeat_interval.count()));
    }
}

AppConfig load_app_config(const std::string& path, bool require_worker) {
    std::string why;
    auto text = read_file(path, why);
    if (!text)
        throw Error(ErrorKind::Config,
                    fmt::format("{}: cannot read the configuration file: {}", path, why));
    Loader L(path);
    YAML::Node root;
    try {
        root = YAML::Load(*text);
    } catch (const YAML::Exception& e) {
        int line = e.mark.line >= 0 ? e.mark.line + 1 : 1;
        L.fail(line, fmt::format("malformed YAML: {} (column {})", e.msg, e.mark.column + 1));
    }

    AppConfig cfg;
    cfg.source = path;
    Section top = L.section(root, "", 1,
                            {"worker", "database", "plugins", "master", "encryption", "logging"});
    parse_worker(L, top, cfg, require_worker);
    parse_database(L, top, cfg);
    parse_plugins(L, top, cfg);
    parse_master(L, top, cfg);
    parse_encryption(L, top, cfg);
    parse_logging(L, top, cfg);

    if (cfg.worker.heartbeat_interval >= cfg.master.worker_stale_threshold) {
        const Section w = L.subsection(top, "worker",
                                       QUEUER_WORKER_KEYS);
        L.fail(L.line(w, "heartbeat_interval"),
               fmt::format("worker.heartbeat_interval ({} ms) must be well under "
                           "master.worker_stale_threshold ({} s), or live workers look stale",
                           cfg.worker.heartbeat_interval.count(),
                           std::chrono::duration_cast<std::chrono::seconds>(
                               cfg.master.worker_stale_threshold)
                               .count()));
    }
    check_shared_database_safety(L, top, cfg);
    return cfg;
}

}  // namespace queuer
