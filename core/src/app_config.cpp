// AppConfig: the YAML configuration file of queuerd and queuerctl, strictly checked (unknown
// keys, wrong types and bad values are errors naming FILE:LINE and the key path), then
// overridden by QUEUER_DB_* and QUEUER_ENCRYPTION_KEY. Secrets are read from files but never
// appear in an error message.
#include "queuer/app_config.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
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

const char* to_string(LogFormat f) {
    switch (f) {
        case LogFormat::Text:
            return "text";
        case LogFormat::Json:
            return "json";
        case LogFormat::Journal:
            return "journal";
    }
    return "text";
}

std::string default_spool_dir() {
    const char* s = std::getenv("STATE_DIRECTORY");
    if (!s || !*s) return {};
    std::string dirs(s);
    return dirs.substr(0, dirs.find(':'));
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

// The first line of a password file, without its line ending: `echo secret > file` and an
// editor's trailing newline both give "secret". Nothing else is removed.
std::string first_line(const std::string& s) {
    std::string line = s.substr(0, s.find('\n'));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

// A systemd credential (LoadCredential=NAME:PATH in the unit): $CREDENTIALS_DIRECTORY/NAME.
// nullopt when there is no credentials directory or no such credential; a blank credential
// (the unit's SetCredential=NAME:\n default when the file is missing) counts as not given.
std::optional<std::string> read_credential(const char* name, std::string& path) {
    const char* dir = env_value("CREDENTIALS_DIRECTORY");
    if (!dir) return std::nullopt;
    path = (std::filesystem::path(dir) / name).string();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return std::nullopt;
    std::string why;
    auto content = read_file(path, why);
    if (!content)
        throw Error(ErrorKind::Config,
                    fmt::format("systemd credential {}: cannot read {}: {}", name, path, why));
    if (content->find_first_not_of(" \t\r\n") == std::string::npos) return std::nullopt;
    return content;
}

// worker.name (or QUEUER_WORKER_NAME) with its specifiers expanded: %H = the host name,
// %% = a percent sign. Throws a message (without location) for any other specifier.
std::string expand_worker_name(const std::string& raw, const std::string& what) {
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '%') {
            out += raw[i];
            continue;
        }
        char next = i + 1 < raw.size() ? raw[i + 1] : '\0';
        if (next == '%') {
            out += '%';
        } else if (next == 'H') {
            char host[256] = {};
            if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
                throw Error(ErrorKind::Config,
                            fmt::format("{}: %H is used but the host name is unknown", what));
            out += host;
        } else {
            throw Error(
                ErrorKind::Config,
                fmt::format("{}: unknown specifier %{} in \"{}\" (%H is the host name, %% "
                            "a percent sign)",
                            what, next == '\0' ? std::string() : std::string(1, next), raw));
        }
        ++i;
    }
    if (out.empty()) throw Error(ErrorKind::Config, fmt::format("{} must not be empty", what));
    if (out.size() > 100)
        throw Error(ErrorKind::Config,
                    fmt::format("{} must be at most 100 characters, not {} (\"{}\")", what,
                                out.size(), out));
    return out;
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
        // Absolute, so that relative paths in the file (even bare names like "libfoo.so") are
        // taken relative to its directory, also when the file was given as "queuerd.yaml".
        std::error_code ec;
        auto abs = std::filesystem::absolute(file_, ec);
        dir_ = (ec ? std::filesystem::path(file_) : abs).parent_path();
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
            fail(node, path.empty()
                           ? "the configuration must be a mapping of sections "
                             "(worker, database, plugins, master, encryption, logging, http)"
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

    // Reads a secret file named by a key; the error names the file, never its content. The
    // whole file with trailing white space removed, or only its first line (password files).
    std::string secret_file(const Section& s, const std::string& key, bool first_line_only,
                            AppConfig& cfg) const {
        std::string path = resolve(*string(s, key));
        std::string why;
        auto content = read_file(path, why);
        if (!content)
            fail(line(s, key), fmt::format("{}: cannot read {}: {}", s.key_path(key), path, why));
        cfg.secret_files.push_back(path);
        if (first_line_only) return first_line(*content);
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

#define QUEUER_WORKER_KEYS                                                                    \
    {                                                                                         \
        "name", "max_concurrency", "on_error", "heartbeat_interval", "shutdown_grace",        \
            "isolation", "poll_interval", "prefetch", "max_result_bytes", "task_environment", \
            "spool_dir"                                                                       \
    }

void apply_defaults_without_file(AppConfig& cfg) {
    cfg.worker.name = default_worker_name();
    if (const char* n = env_value("QUEUER_WORKER_NAME"))
        cfg.worker.name = expand_worker_name(n, "QUEUER_WORKER_NAME");
    cfg.worker.max_concurrency = default_max_concurrency();
}

// The password from the systemd credential db-password, unless QUEUER_DB_PASSWORD is set.
bool apply_password_credential(AppConfig& cfg) {
    if (std::getenv("QUEUER_DB_PASSWORD") != nullptr) return false;
    std::string path;
    auto cred = read_credential("db-password", path);
    if (!cred) return false;
    cfg.database.password = first_line(*cred);
    cfg.password_source = "systemd credential db-password";
    return true;
}

// The key from the systemd credential encryption-key, unless QUEUER_ENCRYPTION_KEY is set.
bool apply_key_credential(AppConfig& cfg) {
    if (env_value("QUEUER_ENCRYPTION_KEY")) return false;
    std::string path;
    auto cred = read_credential("encryption-key", path);
    if (!cred) return false;
    std::string key = trim_trailing_newlines(std::move(*cred));
    if (key.empty()) return false;
    check_key(key, "systemd credential encryption-key");
    cfg.encryption_key = std::move(key);
    cfg.encryption_key_source = "systemd credential encryption-key";
    return true;
}

void parse_worker(const Loader& L, const Section& root, AppConfig& cfg, bool require_worker) {
    Section w = L.subsection(root, "worker", QUEUER_WORKER_KEYS);
    if (!root.find("worker") && require_worker)
        L.fail(root.line, "worker is required (with worker.name and worker.max_concurrency)");
    auto name = L.string(w, "name");
    if (const char* env_name = env_value("QUEUER_WORKER_NAME")) {
        cfg.worker.name = expand_worker_name(env_name, "QUEUER_WORKER_NAME");
    } else if (name) {
        if (name->empty()) L.fail(L.line(w, "name"), "worker.name must not be empty");
        try {
            cfg.worker.name = expand_worker_name(*name, "worker.name");
        } catch (const Error& e) {
            L.fail(L.line(w, "name"), e.what());
        }
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
    if (auto v = L.string(w, "spool_dir")) cfg.worker.spool_dir = v->empty() ? "" : L.resolve(*v);
    // Extra variables for task-runner children: names, or prefixes ending in '*'.
    if (const Entry* e = w.find("task_environment"); e && e->value && !e->value.IsNull()) {
        if (!e->value.IsSequence())
            L.fail(e->value,
                   "worker.task_environment must be a list of variable names, e.g. "
                   "[ACME_URL, \"AWS_*\"]");
        for (size_t i = 0; i < e->value.size(); ++i) {
            const YAML::Node item = e->value[i];
            bool ok = item.IsScalar() && !item.Scalar().empty();
            if (ok) {
                const std::string& n = item.Scalar();
                for (size_t k = 0; k < n.size(); ++k) {
                    unsigned char c = static_cast<unsigned char>(n[k]);
                    bool star_at_end = c == '*' && k + 1 == n.size() && k > 0;
                    if (!(std::isalnum(c) || c == '_' || star_at_end) ||
                        (k == 0 && std::isdigit(c)))
                        ok = false;
                }
            }
            if (!ok)
                L.fail(item, fmt::format("worker.task_environment[{}] must be a variable name "
                                         "(letters, digits, _), optionally ending in * for a "
                                         "prefix",
                                         i));
            cfg.worker.task_environment.push_back(item.Scalar());
        }
    }
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
    if (auto v = L.string(d, "password")) {
        db.password = *v;
        cfg.password_source = "database.password";
    }
    // QUEUER_DB_PASSWORD wins, then the systemd credential db-password; the file is then not
    // even read.
    if (std::getenv("QUEUER_DB_PASSWORD") != nullptr) {
        cfg.password_source = "QUEUER_DB_PASSWORD";
    } else if (!apply_password_credential(cfg) && has_file) {
        db.password = L.secret_file(d, "password_file", true, cfg);
        cfg.password_source = L.resolve(*L.string(d, "password_file"));
    }

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
    if (apply_key_credential(cfg)) return;
    auto file = L.string(s, "key_file");
    if (!file) return;
    std::string path = L.resolve(*file);
    std::string key = L.secret_file(s, "key_file", false, cfg);
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
    Section s = L.subsection(root, "logging", {"level", "format"});
    if (auto v = L.choice(s, "format", {"text", "json", "journal"}))
        cfg.log_format = *v == "json"      ? LogFormat::Json
                         : *v == "journal" ? LogFormat::Journal
                                           : LogFormat::Text;
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

void parse_http(const Loader& L, const Section& root, AppConfig& cfg) {
    Section s = L.subsection(root, "http", {"listen"});
    auto v = L.string(s, "listen");
    if (!v || v->empty()) return;
    // HOST:PORT, [IPv6]:PORT or :PORT (all interfaces); resolved when queuerd starts.
    const std::string& t = *v;
    size_t colon = t.rfind(':');
    bool port_ok = colon != std::string::npos && colon + 1 < t.size() && t.size() - colon <= 6;
    for (size_t i = colon + 1; port_ok && i < t.size(); ++i) port_ok = t[i] >= '0' && t[i] <= '9';
    if (port_ok) port_ok = std::stoi(t.substr(colon + 1)) <= 65535;
    bool host_ok = colon != std::string::npos &&
                   (t.front() == '[' ? colon > 1 && t[colon - 1] == ']'
                                     : t.substr(0, colon).find(':') == std::string::npos);
    if (!port_ok || !host_ok)
        L.fail(L.line(s, "listen"),
               fmt::format("http.listen must be HOST:PORT such as 127.0.0.1:9464, [::1]:9464 or "
                           ":9464, not \"{}\"",
                           t));
    cfg.http_listen = t;
}

}  // namespace

AppConfig load_app_config() {
    AppConfig cfg;
    apply_defaults_without_file(cfg);
    cfg.database = DatabaseConfig::from_env();
    if (std::getenv("QUEUER_DB_PASSWORD") != nullptr)
        cfg.password_source = "QUEUER_DB_PASSWORD";
    else
        apply_password_credential(cfg);
    cfg.database.validate();
    if (const char* k = env_value("QUEUER_ENCRYPTION_KEY")) {
        check_key(k, "QUEUER_ENCRYPTION_KEY");
        cfg.encryption_key = k;
        cfg.encryption_key_source = "QUEUER_ENCRYPTION_KEY";
    } else {
        apply_key_credential(cfg);
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
    Section top = L.section(
        root, "", 1, {"worker", "database", "plugins", "master", "encryption", "logging", "http"});
    parse_worker(L, top, cfg, require_worker);
    parse_database(L, top, cfg);
    parse_plugins(L, top, cfg);
    parse_master(L, top, cfg);
    parse_encryption(L, top, cfg);
    parse_logging(L, top, cfg);
    parse_http(L, top, cfg);

    if (cfg.worker.heartbeat_interval >= cfg.master.worker_stale_threshold) {
        const Section w = L.subsection(top, "worker", QUEUER_WORKER_KEYS);
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
