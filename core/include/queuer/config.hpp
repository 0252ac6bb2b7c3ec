// Database configuration: defaults, QUEUER_DB_* environment variables, libpq connection keywords.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace queuer {

enum class TimescaleMode { Auto, On, Off };
const char* to_string(TimescaleMode m);
TimescaleMode parse_timescale_mode(std::string_view text, std::string_view what);

struct DatabaseConfig {
    std::string host = "localhost";
    int port = 5432;
    std::string database = "postgres";
    std::string username = "postgres";
    std::string password;  // never logged, never in an error text
    std::string schema = "public";
    std::string sslmode = "prefer";
    TimescaleMode timescaledb = TimescaleMode::Auto;
    std::string application_name = "queuer";
    int connect_timeout_seconds = 10;
    int statement_timeout_ms = 30000;

    // Defaults overridden by every QUEUER_DB_* variable that is set.
    static DatabaseConfig from_env();
    // Overrides fields from QUEUER_DB_* variables that are set (HOST, PORT, DATABASE, USERNAME,
    // PASSWORD, SCHEMA, SSLMODE, WITH_TIMESCALE). Throws Error(Config) on a malformed value.
    void apply_env();
    // Throws Error(Config) naming the field (schema must be a plain identifier, port 1..65535).
    void validate() const;
    // "user@host:port/database (schema public)": safe to log, no password.
    std::string describe() const;
    // libpq keyword/value pairs for PQconnectdbParams (the password never enters a DSN string).
    std::vector<std::pair<std::string, std::string>> libpq_params() const;
};

}  // namespace queuer
