// Test support: a DatabaseConfig from QUEUER_DB_* with a schema of its own per test, dropped at
// the end, so that tests run in parallel against one server without seeing each other.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "queuer/config.hpp"
#include "queuer/crypto.hpp"
#include "queuer/db.hpp"

namespace queuer::test {

inline DatabaseConfig fresh_config() {
    DatabaseConfig cfg = DatabaseConfig::from_env();
    std::string id = random_uuid().substr(0, 8);
    cfg.schema = "t_" + id;
    cfg.application_name = "queuer-test";
    return cfg;
}

// Owns a throwaway schema; drops it (CASCADE) on destruction.
class TestSchema {
  public:
    TestSchema() : cfg_(fresh_config()) {}
    ~TestSchema() {
        try {
            auto c = db::Connection::open(cfg_);
            c.exec("DROP SCHEMA IF EXISTS " + db::quote_ident(cfg_.schema) + " CASCADE");
        } catch (...) {
        }
    }
    TestSchema(const TestSchema&) = delete;
    TestSchema& operator=(const TestSchema&) = delete;
    const DatabaseConfig& config() const { return cfg_; }
    db::Connection connect() const { return db::Connection::open(cfg_); }

  private:
    DatabaseConfig cfg_;
};

// pgcrypto is database-wide but lives in one schema: the first test schema that migrated may
// own it and drop it with itself. Moves it to a schema of its own so that it stays for the
// calling test (queuerd's functions look it up wherever it is). False when the server has no
// pgcrypto.
inline bool ensure_pgcrypto(db::Connection& c) {
    if (c.exec("SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto'").rows() == 0)
        return false;
    db::Transaction tx(c);
    // The migration lock (core/src/schema.cpp kMigrationLockKey): migrations create pgcrypto.
    c.exec("SELECT pg_advisory_xact_lock(8175552253448552449)");
    c.exec("CREATE SCHEMA IF NOT EXISTS queuer_test_pgcrypto");
    c.exec("CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA queuer_test_pgcrypto");
    if (c.exec("SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto' AND extnamespace = "
               "'queuer_test_pgcrypto'::regnamespace")
            .rows() == 0)
        c.exec("ALTER EXTENSION pgcrypto SET SCHEMA queuer_test_pgcrypto");
    tx.commit();
    return true;
}

}  // namespace queuer::test
