// DatabaseConfig: QUEUER_DB_* environment variables and libpq keywords.
#include "queuer/config.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdlib>

#include "queuer/error.hpp"

namespace queuer {

const char* to_string(TimescaleMode m) {
    switch (m) {
        case TimescaleMode::Auto:
            return "auto";
        case TimescaleMode::On:
            return "true";
        case TimescaleMode::Off:
            return "false";
    }
    return "auto";
}

TimescaleMode parse_timescale_mode(std::string_view text, std::string_view what) {
    std::string v;
    for (char c : text) v += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (v == "auto" || v.empty()) return TimescaleMode::Auto;
    if (v == "true" || v == "on" || v == "yes" || v == "1") return TimescaleMode::On;
    if (v == "false" || v == "off" || v == "no" || v == "0") return TimescaleMode::Off;
    throw Error(ErrorKind::Config,
                fmt::format("{} must be auto, true or false, not \"{}\"", what, text));
}

namespace {
const char* env(const char* name) {
    const char* v = std::getenv(name);
    return (v && *v) ? v : nullptr;
}
}  // namespace

DatabaseConfig DatabaseConfig::from_env() {
    DatabaseConfig c;
    c.apply_env();
    return c;
}

void DatabaseConfig::apply_env() {
    if (auto v = env("QUEUER_DB_HOST")) host = v;
    if (auto v = env("QUEUER_DB_PORT")) {
        std::string_view s(v);
        int p = 0;
        auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), p);
        if (ec != std::errc() || ptr != s.data() + s.size())
            throw Error(ErrorKind::Config,
                        fmt::format("QUEUER_DB_PORT must be a port number, not \"{}\"", s));
        port = p;
    }
    if (auto v = env("QUEUER_DB_DATABASE")) database = v;
    if (auto v = env("QUEUER_DB_USERNAME")) username = v;
    // An empty password is a valid setting (trust/peer auth), so only "unset" keeps the default.
    if (const char* v = std::getenv("QUEUER_DB_PASSWORD")) password = v;
    if (auto v = env("QUEUER_DB_SCHEMA")) schema = v;
    if (auto v = env("QUEUER_DB_SSLMODE")) sslmode = v;
    if (auto v = env("QUEUER_DB_WITH_TIMESCALE"))
        timescaledb = parse_timescale_mode(v, "QUEUER_DB_WITH_TIMESCALE");
}

void DatabaseConfig::validate() const {
    if (host.empty()) throw Error(ErrorKind::Config, "database.host must not be empty");
    if (port < 1 || port > 65535)
        throw Error(ErrorKind::Config, fmt::format("database.port {} is not in 1..65535", port));
    if (database.empty()) throw Error(ErrorKind::Config, "database.database must not be empty");
    bool ok = !schema.empty() && schema.size() <= 63 &&
              (std::isalpha(static_cast<unsigned char>(schema[0])) || schema[0] == '_');
    for (char c : schema)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) ok = false;
    if (!ok)
        throw Error(ErrorKind::Config,
                    fmt::format("database.schema \"{}\" must be a plain identifier "
                                "(letters, digits, underscore; at most 63)",
                                schema));
}

std::string DatabaseConfig::describe() const {
    return fmt::format("{}@{}:{}/{} (schema {})", username, host, port, database, schema);
}

std::vector<std::pair<std::string, std::string>> DatabaseConfig::libpq_params() const {
    std::vector<std::pair<std::string, std::string>> p = {
        {"host", host},
        {"port", std::to_string(port)},
        {"dbname", database},
        {"user", username},
        {"sslmode", sslmode},
        {"application_name", application_name},
        {"connect_timeout", std::to_string(connect_timeout_seconds)},
        // A server that vanished without a word (host down, cable cut) is noticed within about
        // 30 s: TCP keepalives on idle connections, a limit on unacknowledged data otherwise.
        {"keepalives", "1"},
        {"keepalives_idle", "10"},
        {"keepalives_interval", "5"},
        {"keepalives_count", "3"},
        {"tcp_user_timeout", "30000"},
        {"options", fmt::format("-c search_path={} -c statement_timeout={} -c TimeZone=UTC", schema,
                                statement_timeout_ms)},
    };
    if (!password.empty()) p.emplace_back("password", password);
    // No GSSAPI transport encryption unless PGGSSENCMODE asks for it: libpq's default (prefer)
    // initialises Kerberos on every connect (three quarters of a megabyte resident in an idle
    // queuerd) to find, almost always, no credentials. GSSAPI authentication is not affected.
    if (!std::getenv("PGGSSENCMODE")) p.emplace_back("gssencmode", "disable");
    return p;
}

}  // namespace queuer
