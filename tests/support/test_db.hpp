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

}  // namespace queuer::test
