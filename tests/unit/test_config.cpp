// DatabaseConfig: QUEUER_DB_* variables, validation, safe description, libpq keywords.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "queuer/config.hpp"
#include "queuer/error.hpp"

using namespace queuer;

namespace {

const char* const kVars[] = {"QUEUER_DB_HOST",     "QUEUER_DB_PORT",          "QUEUER_DB_DATABASE",
                             "QUEUER_DB_USERNAME", "QUEUER_DB_PASSWORD",      "QUEUER_DB_SCHEMA",
                             "QUEUER_DB_SSLMODE",  "QUEUER_DB_WITH_TIMESCALE"};

// Saves every QUEUER_DB_* variable, clears them, restores them afterwards.
class ConfigEnv : public ::testing::Test {
  protected:
    void SetUp() override {
        for (const char* v : kVars) {
            const char* cur = std::getenv(v);
            saved_[v] = cur ? std::optional<std::string>(cur) : std::nullopt;
            ::unsetenv(v);
        }
    }
    void TearDown() override {
        for (const auto& [k, v] : saved_) {
            if (v)
                ::setenv(k.c_str(), v->c_str(), 1);
            else
                ::unsetenv(k.c_str());
        }
    }
    static void set(const char* k, const char* v) { ::setenv(k, v, 1); }

  private:
    std::map<std::string, std::optional<std::string>> saved_;
};

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

}  // namespace

TEST_F(ConfigEnv, DefaultsWhenNothingIsSet) {
    auto c = DatabaseConfig::from_env();
    EXPECT_EQ(c.host, "localhost");
    EXPECT_EQ(c.port, 5432);
    EXPECT_EQ(c.database, "postgres");
    EXPECT_EQ(c.username, "postgres");
    EXPECT_EQ(c.password, "");
    EXPECT_EQ(c.schema, "public");
    EXPECT_EQ(c.timescaledb, TimescaleMode::Auto);
    EXPECT_NO_THROW(c.validate());
}

TEST_F(ConfigEnv, EveryVariableOverrides) {
    set("QUEUER_DB_HOST", "db.example");
    set("QUEUER_DB_PORT", "6543");
    set("QUEUER_DB_DATABASE", "jobs");
    set("QUEUER_DB_USERNAME", "alice");
    set("QUEUER_DB_PASSWORD", "s3cr3t-pw");
    set("QUEUER_DB_SCHEMA", "queue_1");
    set("QUEUER_DB_SSLMODE", "require");
    set("QUEUER_DB_WITH_TIMESCALE", "false");
    auto c = DatabaseConfig::from_env();
    EXPECT_EQ(c.host, "db.example");
    EXPECT_EQ(c.port, 6543);
    EXPECT_EQ(c.database, "jobs");
    EXPECT_EQ(c.username, "alice");
    EXPECT_EQ(c.password, "s3cr3t-pw");
    EXPECT_EQ(c.schema, "queue_1");
    EXPECT_EQ(c.sslmode, "require");
    EXPECT_EQ(c.timescaledb, TimescaleMode::Off);
    EXPECT_NO_THROW(c.validate());
}

TEST_F(ConfigEnv, WithTimescaleValues) {
    set("QUEUER_DB_WITH_TIMESCALE", "true");
    EXPECT_EQ(DatabaseConfig::from_env().timescaledb, TimescaleMode::On);
    set("QUEUER_DB_WITH_TIMESCALE", "FALSE");
    EXPECT_EQ(DatabaseConfig::from_env().timescaledb, TimescaleMode::Off);
    set("QUEUER_DB_WITH_TIMESCALE", "auto");
    EXPECT_EQ(DatabaseConfig::from_env().timescaledb, TimescaleMode::Auto);
    set("QUEUER_DB_WITH_TIMESCALE", "maybe");
    try {
        DatabaseConfig::from_env();
        FAIL() << "expected Error(Config)";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Config);
        EXPECT_TRUE(contains(e.what(), "QUEUER_DB_WITH_TIMESCALE")) << e.what();
    }
}

TEST_F(ConfigEnv, MalformedPortIsAConfigErrorNamingTheVariable) {
    for (const char* bad : {"abc", "5432x", " 5432", "54.32"}) {
        set("QUEUER_DB_PORT", bad);
        try {
            DatabaseConfig::from_env();
            FAIL() << "expected Error(Config) for port \"" << bad << "\"";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Config);
            EXPECT_TRUE(contains(e.what(), "QUEUER_DB_PORT")) << e.what();
        }
    }
}

TEST_F(ConfigEnv, OutOfRangePortRejected) {
    for (const char* bad : {"0", "70000", "-1"}) {
        set("QUEUER_DB_PORT", bad);
        try {
            DatabaseConfig::from_env().validate();
            FAIL() << "expected Error(Config) for port " << bad;
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Config);
            EXPECT_TRUE(contains(e.what(), "port")) << e.what();
        }
    }
}

TEST_F(ConfigEnv, EmptyPasswordVariableIsAValidSetting) {
    set("QUEUER_DB_PASSWORD", "");
    auto c = DatabaseConfig::from_env();
    EXPECT_EQ(c.password, "");
}

TEST(Config, SchemaMustBeAPlainIdentifier) {
    DatabaseConfig c;
    for (const char* bad : {"", "1abc", "a-b", "a;drop", "x y", "\"q\""}) {
        c.schema = bad;
        try {
            c.validate();
            FAIL() << "expected Error(Config) for schema \"" << bad << "\"";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Config);
            EXPECT_TRUE(contains(e.what(), "schema")) << e.what();
        }
    }
    c.schema = std::string(64, 'a');
    EXPECT_THROW(c.validate(), Error);
    c.schema = "_ok_Schema9";
    EXPECT_NO_THROW(c.validate());
}

TEST(Config, HostAndDatabaseRequired) {
    DatabaseConfig c;
    c.host = "";
    EXPECT_THROW(c.validate(), Error);
    c.host = "h";
    c.database = "";
    EXPECT_THROW(c.validate(), Error);
}

TEST(Config, DescribeNeverContainsThePassword) {
    DatabaseConfig c;
    c.host = "db.internal";
    c.port = 5433;
    c.database = "jobs";
    c.username = "alice";
    c.password = "Very$ecretPassw0rd";
    c.schema = "q";
    auto d = c.describe();
    EXPECT_FALSE(contains(d, c.password)) << d;
    EXPECT_TRUE(contains(d, "alice")) << d;
    EXPECT_TRUE(contains(d, "db.internal")) << d;
    EXPECT_TRUE(contains(d, "5433")) << d;
    EXPECT_TRUE(contains(d, "jobs")) << d;
    EXPECT_TRUE(contains(d, "q")) << d;
}

TEST(Config, LibpqParamsCarryPasswordOnlyAsItsOwnKeyword) {
    DatabaseConfig c;
    c.password = "pw with spaces ' and = signs";
    c.schema = "myschema";
    auto params = c.libpq_params();
    int password_entries = 0;
    std::map<std::string, std::string> m;
    for (const auto& [k, v] : params) {
        m[k] = v;
        if (k == "password") {
            ++password_entries;
            EXPECT_EQ(v, c.password);
        } else {
            EXPECT_FALSE(contains(v, "pw with spaces")) << k << "=" << v;
        }
    }
    EXPECT_EQ(password_entries, 1);
    EXPECT_EQ(m["host"], "localhost");
    EXPECT_EQ(m["port"], "5432");
    EXPECT_EQ(m["dbname"], "postgres");
    EXPECT_EQ(m["user"], "postgres");
    EXPECT_EQ(m["application_name"], "queuer");
    EXPECT_EQ(m["connect_timeout"], "10");
    EXPECT_TRUE(contains(m["options"], "search_path=myschema")) << m["options"];
    EXPECT_TRUE(contains(m["options"], "statement_timeout=30000")) << m["options"];
    EXPECT_TRUE(contains(m["options"], "TimeZone=UTC")) << m["options"];
    // No DSN-style string anywhere.
    EXPECT_EQ(m.count("dsn"), 0u);
}

TEST(Config, LibpqParamsWithoutPasswordOmitIt) {
    DatabaseConfig c;
    for (const auto& [k, v] : c.libpq_params()) EXPECT_NE(k, "password");
}

TEST(Config, TimescaleModeNames) {
    EXPECT_STREQ(to_string(TimescaleMode::Auto), "auto");
    EXPECT_STREQ(to_string(TimescaleMode::On), "true");
    EXPECT_STREQ(to_string(TimescaleMode::Off), "false");
    EXPECT_EQ(parse_timescale_mode("On", "x"), TimescaleMode::On);
    EXPECT_EQ(parse_timescale_mode("0", "x"), TimescaleMode::Off);
    try {
        parse_timescale_mode("sometimes", "database.timescaledb");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Config);
        EXPECT_TRUE(contains(e.what(), "database.timescaledb"));
    }
}
