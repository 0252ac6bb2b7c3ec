// AppConfig: the YAML loader of queuerd and queuerctl. Every error names FILE:LINE and the key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "queuer/app_config.hpp"
#include "queuer/crypto.hpp"
#include "queuer/error.hpp"

using namespace queuer;
using namespace std::chrono_literals;

namespace {

const char* const kVars[] = {
    "QUEUER_DB_HOST",     "QUEUER_DB_PORT",           "QUEUER_DB_DATABASE",
    "QUEUER_DB_USERNAME", "QUEUER_DB_PASSWORD",       "QUEUER_DB_SCHEMA",
    "QUEUER_DB_SSLMODE",  "QUEUER_DB_WITH_TIMESCALE", "QUEUER_ENCRYPTION_KEY",
    "QUEUER_WORKER_NAME", "CREDENTIALS_DIRECTORY"};

const char* const kKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

// Clears QUEUER_DB_* and QUEUER_ENCRYPTION_KEY, restores them afterwards; a temp directory for
// config files.
class AppConfigTest : public ::testing::Test {
  protected:
    void SetUp() override {
        for (const char* v : kVars) {
            const char* cur = std::getenv(v);
            saved_[v] = cur ? std::optional<std::string>(cur) : std::nullopt;
            ::unsetenv(v);
        }
        dir_ = std::filesystem::temp_directory_path() /
               ("queuer-appcfg-" + random_uuid().substr(0, 8));
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override {
        for (const auto& [k, v] : saved_) {
            if (v)
                ::setenv(k.c_str(), v->c_str(), 1);
            else
                ::unsetenv(k.c_str());
        }
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    static void set(const char* k, const char* v) { ::setenv(k, v, 1); }

    std::string write(const std::string& name, const std::string& text) {
        auto p = (dir_ / name).string();
        std::ofstream(p) << text;
        return p;
    }
    std::string config(const std::string& text) { return write("queuerd.yaml", text); }

    // The Config error message of loading `text`; fails the test when it loads.
    std::string error_of(const std::string& text, bool require_worker = true) {
        auto p = config(text);
        try {
            load_app_config(p, require_worker);
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Config) << e.what();
            return e.what();
        }
        ADD_FAILURE() << "loaded without error:\n" << text;
        return {};
    }
    std::string at(int line) const {
        return (dir_ / "queuerd.yaml").string() + ":" + std::to_string(line) + ": ";
    }

    std::filesystem::path dir_;

  private:
    std::map<std::string, std::optional<std::string>> saved_;
};

const char* const kMinimal = "worker:\n  name: w1\n  max_concurrency: 4\n";

}  // namespace

TEST_F(AppConfigTest, FullFileIsRead) {
    write("pw", "s3cret\n");
    write("key", std::string(kKey) + "\n");
    auto p = config(R"(# every key
worker:
  name: example-worker
  max_concurrency: 8
  on_error: { timeout: 30, max_retries: 3, retry_delay: 500ms, retry_backoff: exponential }
  heartbeat_interval: 5s
  shutdown_grace: 1m
  isolation: process
  poll_interval: 2s
database:
  host: db.example
  port: 6543
  database: jobs
  username: queuer
  password_file: pw
  schema: q1
  sslmode: require
  timescaledb: false
plugins:
  - path: /usr/lib/queuerd/plugins/libqueuer_examples.so
  - path: plugins/libmine.so
master:
  master_lock_timeout: 1m
  master_poll_interval: 10s
  retention_archive: 30d
  worker_stale_threshold: 2m
  worker_delete_threshold: 1d
  job_stale_threshold: 600
encryption:
  key_file: key
logging:
  level: debug
)");
    auto c = load_app_config(p);
    EXPECT_EQ(c.source, p);
    EXPECT_EQ(c.worker.name, "example-worker");
    EXPECT_EQ(c.worker.max_concurrency, 8);
    ASSERT_TRUE(c.worker.on_error);
    EXPECT_EQ(c.worker.on_error->timeout, 30);
    EXPECT_EQ(c.worker.on_error->max_retries, 3);
    EXPECT_DOUBLE_EQ(c.worker.on_error->retry_delay, 0.5);
    EXPECT_EQ(c.worker.on_error->retry_backoff, RetryBackoff::Exponential);
    EXPECT_EQ(c.worker.heartbeat_interval, 5s);
    EXPECT_EQ(c.worker.shutdown_grace, 60s);
    EXPECT_EQ(c.worker.isolation, Isolation::Process);
    EXPECT_EQ(c.worker.poll_interval, 2s);
    EXPECT_EQ(c.database.host, "db.example");
    EXPECT_EQ(c.database.port, 6543);
    EXPECT_EQ(c.database.database, "jobs");
    EXPECT_EQ(c.database.username, "queuer");
    EXPECT_EQ(c.database.password, "s3cret");
    EXPECT_EQ(c.database.schema, "q1");
    EXPECT_EQ(c.database.sslmode, "require");
    EXPECT_EQ(c.database.timescaledb, TimescaleMode::Off);
    ASSERT_EQ(c.plugins.size(), 2u);
    EXPECT_EQ(c.plugins[0].path, "/usr/lib/queuerd/plugins/libqueuer_examples.so");
    EXPECT_EQ(c.plugins[0].where, p + ":20");
    EXPECT_EQ(c.plugins[1].path, (dir_ / "plugins/libmine.so").string());
    EXPECT_TRUE(c.master_configured);
    EXPECT_EQ(c.master.master_lock_timeout, 1min);
    EXPECT_EQ(c.master.master_poll_interval, 10s);
    EXPECT_EQ(c.master.retention_archive, std::chrono::hours(24 * 30));
    EXPECT_EQ(c.master.worker_stale_threshold, 2min);
    EXPECT_EQ(c.master.worker_delete_threshold, std::chrono::hours(24));
    EXPECT_EQ(c.master.job_stale_threshold, 10min);
    EXPECT_EQ(c.encryption_key, kKey);
    EXPECT_EQ(c.encryption_key_source, (dir_ / "key").string());
    EXPECT_EQ(c.log_level, LogLevel::Debug);
}

TEST_F(AppConfigTest, MinimalFileTakesDefaults) {
    auto c = load_app_config(config(kMinimal));
    EXPECT_EQ(c.worker.name, "w1");
    EXPECT_EQ(c.worker.max_concurrency, 4);
    EXPECT_FALSE(c.worker.on_error);
    EXPECT_EQ(c.worker.heartbeat_interval, 10s);
    EXPECT_EQ(c.worker.shutdown_grace, 30s);
    EXPECT_EQ(c.worker.isolation, Isolation::Thread);
    EXPECT_EQ(c.database.host, "localhost");
    EXPECT_EQ(c.database.port, 5432);
    EXPECT_EQ(c.database.schema, "public");
    EXPECT_EQ(c.database.timescaledb, TimescaleMode::Auto);
    EXPECT_TRUE(c.plugins.empty());
    EXPECT_FALSE(c.master_configured);
    EXPECT_EQ(c.master.master_lock_timeout, MasterSettings{}.master_lock_timeout);
    EXPECT_TRUE(c.encryption_key.empty());
    EXPECT_TRUE(c.encryption_key_source.empty());
    EXPECT_EQ(c.log_level, LogLevel::Info);
}

TEST_F(AppConfigTest, UnknownKeyNamesPathAndLine) {
    auto e = error_of("worker:\n  name: w1\n  max_concurrenc: 4\n");
    EXPECT_EQ(e.rfind(at(3), 0), 0u) << e;
    EXPECT_NE(e.find("unknown key worker.max_concurrenc"), std::string::npos) << e;
    EXPECT_NE(e.find("did you mean worker.max_concurrency?"), std::string::npos) << e;

    e = error_of(std::string(kMinimal) + "frobnicate: 1\n");
    EXPECT_EQ(e.rfind(at(4), 0), 0u) << e;
    EXPECT_NE(e.find("unknown key frobnicate"), std::string::npos) << e;

    e = error_of(std::string(kMinimal) + "database:\n  hots: x\n");
    EXPECT_EQ(e.rfind(at(5), 0), 0u) << e;
    EXPECT_NE(e.find("database.hots"), std::string::npos) << e;
}

TEST_F(AppConfigTest, WrongTypes) {
    auto e = error_of("worker:\n  name: w1\n  max_concurrency: abc\n");
    EXPECT_EQ(e.rfind(at(3), 0), 0u) << e;
    EXPECT_NE(e.find("worker.max_concurrency must be an integer"), std::string::npos) << e;

    e = error_of("worker:\n  name: w1\n  max_concurrency: 2.5\n");
    EXPECT_NE(e.find("worker.max_concurrency must be an integer"), std::string::npos) << e;

    e = error_of("worker:\n  name: [a, b]\n  max_concurrency: 2\n");
    EXPECT_EQ(e.rfind(at(2), 0), 0u) << e;
    EXPECT_NE(e.find("worker.name must be a string"), std::string::npos) << e;

    e = error_of(std::string(kMinimal) + "database: localhost\n");
    EXPECT_NE(e.find("database must be a mapping"), std::string::npos) << e;

    e = error_of(std::string(kMinimal) + "database:\n  port: big\n");
    EXPECT_EQ(e.rfind(at(5), 0), 0u) << e;
    EXPECT_NE(e.find("database.port must be an integer"), std::string::npos) << e;

    e = error_of("- a\n- b\n");
    EXPECT_NE(e.find("must be a mapping of sections"), std::string::npos) << e;
}

TEST_F(AppConfigTest, OutOfRangeAndBadValues) {
    EXPECT_NE(error_of("worker:\n  name: w\n  max_concurrency: 0\n")
                  .find("worker.max_concurrency must be between 1 and 1000, not 0"),
              std::string::npos);
    EXPECT_NE(error_of("worker:\n  name: w\n  max_concurrency: 1001\n").find("not 1001"),
              std::string::npos);
    auto e = error_of(std::string(kMinimal) + "  isolation: fork\n");
    EXPECT_EQ(e.rfind(at(4), 0), 0u) << e;
    EXPECT_NE(e.find("worker.isolation must be one of thread | process"), std::string::npos) << e;
    e = error_of(std::string(kMinimal) + "  heartbeat_interval: 5 parsecs\n");
    EXPECT_EQ(e.rfind(at(4), 0), 0u) << e;
    EXPECT_NE(e.find("worker.heartbeat_interval"), std::string::npos) << e;
    e = error_of(std::string(kMinimal) + "  heartbeat_interval: 0s\n");
    EXPECT_NE(e.find("greater than zero"), std::string::npos) << e;
    e = error_of(std::string(kMinimal) + "  on_error: { retry_backoff: sometimes }\n");
    EXPECT_NE(e.find("worker.on_error.retry_backoff must be one of none | linear | exponential"),
              std::string::npos)
        << e;
    e = error_of(std::string(kMinimal) + "  on_error: { max_retries: -1 }\n");
    EXPECT_NE(e.find("worker.on_error.max_retries"), std::string::npos) << e;
    e = error_of(std::string(kMinimal) + "database:\n  timescaledb: maybe\n");
    EXPECT_NE(e.find("database.timescaledb must be one of auto | true | false"), std::string::npos)
        << e;
    e = error_of(std::string(kMinimal) + "database:\n  schema: \"bad-name\"\n");
    EXPECT_EQ(e.rfind(at(5), 0), 0u) << e;
    EXPECT_NE(e.find("database.schema"), std::string::npos) << e;
    e = error_of(std::string(kMinimal) + "logging:\n  level: loud\n");
    EXPECT_NE(e.find("logging.level must be one of trace | debug | info | warn | error"),
              std::string::npos)
        << e;
    e = error_of(std::string(kMinimal) + "master:\n  retention_archive: forever\n");
    EXPECT_EQ(e.rfind(at(5), 0), 0u) << e;
    EXPECT_NE(e.find("master.retention_archive"), std::string::npos) << e;
    e = error_of(std::string(kMinimal) + "  heartbeat_interval: 10m\n");
    EXPECT_NE(e.find("master.worker_stale_threshold"), std::string::npos) << e;
    e = error_of(std::string(kMinimal) + "worker:\n  name: again\n");
    EXPECT_NE(e.find("duplicate key worker (first at line 1)"), std::string::npos) << e;
}

TEST_F(AppConfigTest, MissingRequiredKeysPointAtTheSection) {
    auto e = error_of("# comment\n\ndatabase:\n  host: x\nworker:\n  max_concurrency: 2\n");
    EXPECT_EQ(e.rfind(at(5), 0), 0u) << e;
    EXPECT_NE(e.find("worker.name is required"), std::string::npos) << e;

    e = error_of("worker:\n  name: w\n");
    EXPECT_EQ(e.rfind(at(1), 0), 0u) << e;
    EXPECT_NE(e.find("worker.max_concurrency is required"), std::string::npos) << e;

    e = error_of("database:\n  host: x\n");
    EXPECT_EQ(e.rfind(at(1), 0), 0u) << e;
    EXPECT_NE(e.find("worker is required"), std::string::npos) << e;

    e = error_of("");
    EXPECT_NE(e.find("worker is required"), std::string::npos) << e;

    e = error_of(std::string(kMinimal) + "plugins:\n  - {}\n");
    EXPECT_EQ(e.rfind(at(5), 0), 0u) << e;
    EXPECT_NE(e.find("plugins[0].path is required"), std::string::npos) << e;

    e = error_of(std::string(kMinimal) + "plugins: /x.so\n");
    EXPECT_NE(e.find("plugins must be a list"), std::string::npos) << e;
}

TEST_F(AppConfigTest, WorkerOptionalForQueuerctl) {
    auto c = load_app_config(config("database:\n  host: dbhost\n"), false);
    EXPECT_EQ(c.database.host, "dbhost");
    EXPECT_EQ(c.worker.name, default_worker_name());
    EXPECT_EQ(c.worker.max_concurrency, default_max_concurrency());
}

TEST_F(AppConfigTest, MalformedYamlNamesTheLine) {
    auto e = error_of("worker:\n  name: w\n  max_concurrency: [1, 2\n");
    EXPECT_NE(e.find("malformed YAML"), std::string::npos) << e;
    EXPECT_EQ(e.rfind((dir_ / "queuerd.yaml").string() + ":", 0), 0u) << e;
    e = error_of("worker:\n  name: w\n    max_concurrency: 1\n");
    EXPECT_NE(e.find("malformed YAML"), std::string::npos) << e;
    EXPECT_EQ(e.rfind(at(3), 0), 0u) << e;
}

TEST_F(AppConfigTest, UnreadableFile) {
    auto missing = (dir_ / "nope.yaml").string();
    try {
        load_app_config(missing);
        FAIL() << "loaded a missing file";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Config);
        EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("cannot read"), std::string::npos) << e.what();
    }
    try {
        load_app_config(dir_.string());
        FAIL() << "loaded a directory";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
    }
}

TEST_F(AppConfigTest, SecretFilesAreNamedNeverShown) {
    auto e = error_of(std::string(kMinimal) + "database:\n  password_file: missing-pw\n");
    EXPECT_EQ(e.rfind(at(5), 0), 0u) << e;
    EXPECT_NE(e.find((dir_ / "missing-pw").string()), std::string::npos) << e;

    e = error_of(std::string(kMinimal) + "database:\n  password: a\n  password_file: pw\n");
    EXPECT_NE(e.find("not both"), std::string::npos) << e;

    write("badkey", "topsecretvalue\n");
    e = error_of(std::string(kMinimal) + "encryption:\n  key_file: badkey\n");
    EXPECT_EQ(e.rfind(at(5), 0), 0u) << e;
    EXPECT_NE(e.find((dir_ / "badkey").string()), std::string::npos) << e;
    EXPECT_EQ(e.find("topsecretvalue"), std::string::npos) << e;

    e = error_of(std::string(kMinimal) + "encryption:\n  key_file: nokey\n");
    EXPECT_NE(e.find("encryption.key_file: cannot read"), std::string::npos) << e;
}

TEST_F(AppConfigTest, EnvironmentOverridesTheFile) {
    write("pw", "from-file");
    auto p = config(std::string(kMinimal) +
                    "database:\n  host: filehost\n  port: 1111\n  database: filedb\n"
                    "  username: fileuser\n  password_file: missing\n  schema: fileschema\n"
                    "  sslmode: disable\n  timescaledb: true\nencryption:\n  key_file: missing\n");
    set("QUEUER_DB_HOST", "envhost");
    set("QUEUER_DB_PORT", "2222");
    set("QUEUER_DB_DATABASE", "envdb");
    set("QUEUER_DB_USERNAME", "envuser");
    set("QUEUER_DB_PASSWORD", "envpw");  // the (missing) password_file is then not read
    set("QUEUER_DB_SCHEMA", "envschema");
    set("QUEUER_DB_SSLMODE", "require");
    set("QUEUER_DB_WITH_TIMESCALE", "false");
    set("QUEUER_ENCRYPTION_KEY", kKey);  // the (missing) key_file is then not read
    auto c = load_app_config(p);
    EXPECT_EQ(c.database.host, "envhost");
    EXPECT_EQ(c.database.port, 2222);
    EXPECT_EQ(c.database.database, "envdb");
    EXPECT_EQ(c.database.username, "envuser");
    EXPECT_EQ(c.database.password, "envpw");
    EXPECT_EQ(c.database.schema, "envschema");
    EXPECT_EQ(c.database.sslmode, "require");
    EXPECT_EQ(c.database.timescaledb, TimescaleMode::Off);
    EXPECT_EQ(c.encryption_key, kKey);
    EXPECT_EQ(c.encryption_key_source, "QUEUER_ENCRYPTION_KEY");

    set("QUEUER_DB_PORT", "not-a-port");
    try {
        load_app_config(p);
        FAIL() << "bad QUEUER_DB_PORT accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("QUEUER_DB_PORT"), std::string::npos) << e.what();
    }
    ::unsetenv("QUEUER_DB_PORT");
    set("QUEUER_DB_SCHEMA", "bad-schema");
    try {
        load_app_config(p);
        FAIL() << "bad QUEUER_DB_SCHEMA accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("QUEUER_DB_SCHEMA"), std::string::npos) << e.what();
    }
    ::unsetenv("QUEUER_DB_SCHEMA");
    set("QUEUER_ENCRYPTION_KEY", "zzkeyzz");
    try {
        load_app_config(p);
        FAIL() << "bad QUEUER_ENCRYPTION_KEY accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Config);
        EXPECT_NE(std::string(e.what()).find("QUEUER_ENCRYPTION_KEY"), std::string::npos);
        EXPECT_EQ(std::string(e.what()).find("zzkeyzz"), std::string::npos) << e.what();
    }
}

TEST_F(AppConfigTest, NoFileTakesEverythingFromTheEnvironment) {
    auto c = load_app_config();
    EXPECT_TRUE(c.source.empty());
    EXPECT_EQ(c.worker.name, default_worker_name());
    EXPECT_EQ(c.worker.name.rfind("queuerd", 0), 0u);
    EXPECT_GE(c.worker.max_concurrency, 1);
    EXPECT_EQ(c.worker.max_concurrency, default_max_concurrency());
    EXPECT_EQ(c.database.host, "localhost");
    EXPECT_TRUE(c.encryption_key.empty());

    set("QUEUER_DB_HOST", "envhost");
    set("QUEUER_DB_SCHEMA", "s2");
    set("QUEUER_ENCRYPTION_KEY", kKey);
    c = load_app_config();
    EXPECT_EQ(c.database.host, "envhost");
    EXPECT_EQ(c.database.schema, "s2");
    EXPECT_EQ(c.encryption_key, kKey);
    EXPECT_EQ(c.encryption_key_source, "QUEUER_ENCRYPTION_KEY");
}

#ifdef QUEUER_EXAMPLE_CONFIG
TEST_F(AppConfigTest, ExampleConfigLoads) {
    auto c = load_app_config(QUEUER_EXAMPLE_CONFIG);
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    EXPECT_EQ(c.worker.name, std::string("queuerd-") + host);  // name: queuerd-%H
    EXPECT_EQ(c.worker.max_concurrency, 8);
    ASSERT_EQ(c.plugins.size(), 1u);
    EXPECT_EQ(c.plugins[0].path, "/usr/lib/queuerd/plugins/libqueuer_examples.so");
    EXPECT_TRUE(c.master_configured);
    EXPECT_EQ(c.master.retention_archive, std::chrono::hours(24 * 30));
    EXPECT_TRUE(c.encryption_key.empty());
}
#endif

TEST_F(AppConfigTest, RetentionZeroMeansKeep) {
    auto c = load_app_config(config(std::string(kMinimal) + "master:\n  retention_archive: 0\n"));
    EXPECT_EQ(c.master.retention_archive.count(), 0);
}

TEST_F(AppConfigTest, PrefetchAndResultLimit) {
    auto d = load_app_config(config(kMinimal));
    EXPECT_EQ(d.worker.prefetch, 1000);
    EXPECT_EQ(d.worker.max_result_bytes, size_t{16} << 20);
    auto c = load_app_config(
        config(std::string(kMinimal) + "  prefetch: 0\n  max_result_bytes: 512kB\n"));
    EXPECT_EQ(c.worker.prefetch, 0);
    EXPECT_EQ(c.worker.max_result_bytes, size_t{512} * 1024);
    c = load_app_config(config(std::string(kMinimal) + "  max_result_bytes: 2048\n"));
    EXPECT_EQ(c.worker.max_result_bytes, 2048u);
    c = load_app_config(config(std::string(kMinimal) + "  max_result_bytes: 1GB\n"));
    EXPECT_EQ(c.worker.max_result_bytes, size_t{1} << 30);
    auto e = error_of(std::string(kMinimal) + "  max_result_bytes: 2TB\n");
    EXPECT_EQ(e.rfind(at(4), 0), 0u) << e;
    EXPECT_NE(e.find("worker.max_result_bytes must be a size"), std::string::npos) << e;
    e = error_of(std::string(kMinimal) + "  max_result_bytes: 10\n");
    EXPECT_NE(e.find("between 1024 and"), std::string::npos) << e;
    e = error_of(std::string(kMinimal) + "  prefetch: -1\n");
    EXPECT_NE(e.find("worker.prefetch must be between 0 and 100000"), std::string::npos) << e;
}

TEST_F(AppConfigTest, HttpListenAndLogFormat) {
    auto d = load_app_config(config(kMinimal));
    EXPECT_EQ(d.http_listen, "");
    EXPECT_EQ(d.log_format, LogFormat::Text);
    auto c = load_app_config(config(std::string(kMinimal) +
                                    "http:\n  listen: 127.0.0.1:9464\nlogging:\n  format: json\n"));
    EXPECT_EQ(c.http_listen, "127.0.0.1:9464");
    EXPECT_EQ(c.log_format, LogFormat::Json);
    c = load_app_config(config(std::string(kMinimal) +
                               "http:\n  listen: \"[::1]:0\"\nlogging:\n  format: journal\n"));
    EXPECT_EQ(c.http_listen, "[::1]:0");
    EXPECT_EQ(c.log_format, LogFormat::Journal);
    c = load_app_config(config(std::string(kMinimal) + "http:\n  listen: \"\"\n"));
    EXPECT_EQ(c.http_listen, "");  // empty = off
    for (const char* bad : {"9464", "127.0.0.1", "host:port", "::1:9464", "h:99999"}) {
        auto e = error_of(std::string(kMinimal) + "http:\n  listen: \"" + bad + "\"\n");
        EXPECT_EQ(e.rfind(at(5), 0), 0u) << e;
        EXPECT_NE(e.find("http.listen must be HOST:PORT"), std::string::npos) << e;
    }
    auto e = error_of(std::string(kMinimal) + "logging:\n  format: xml\n");
    EXPECT_NE(e.find("logging.format must be one of text | json | journal"), std::string::npos)
        << e;
    e = error_of(std::string(kMinimal) + "http:\n  port: 1\n");
    EXPECT_NE(e.find("unknown key http.port"), std::string::npos) << e;
}

TEST_F(AppConfigTest, PasswordFileIsItsFirstLine) {
    // `echo secret > file`, an editor's CRLF, and a second line that is not part of it.
    for (auto [content, expect] :
         {std::pair{"s3cret\n", "s3cret"}, std::pair{"s3cret", "s3cret"},
          std::pair{"s3cret\r\n", "s3cret"}, std::pair{"s3cret\nsecond line\n", "s3cret"},
          std::pair{" spaced pw \n", " spaced pw "}}) {
        write("pw", content);
        auto c =
            load_app_config(config(std::string(kMinimal) + "database:\n  password_file: pw\n"));
        EXPECT_EQ(c.database.password, expect) << content;
        EXPECT_EQ(c.password_source, (dir_ / "pw").string());
        ASSERT_EQ(c.secret_files.size(), 1u);
        EXPECT_EQ(c.secret_files[0], (dir_ / "pw").string());
    }
    // The key file is the whole file, trailing white space removed.
    write("key", std::string(kKey) + "\n\n");
    auto c = load_app_config(config(std::string(kMinimal) + "encryption:\n  key_file: key\n"));
    EXPECT_EQ(c.encryption_key, kKey);
    ASSERT_EQ(c.secret_files.size(), 1u);
    EXPECT_EQ(c.secret_files[0], (dir_ / "key").string());
}

TEST_F(AppConfigTest, SystemdCredentialsGiveThePasswordAndTheKey) {
    auto creds = dir_ / "creds";
    std::filesystem::create_directories(creds);
    std::ofstream((creds / "db-password").string()) << "from-credential\nignored\n";
    std::ofstream((creds / "encryption-key").string()) << kKey << "\n";
    write("pw", "from-file\n");
    set("CREDENTIALS_DIRECTORY", creds.c_str());

    // The credential wins over password_file (not even read) and key_file.
    auto c =
        load_app_config(config(std::string(kMinimal) + "database:\n  password_file: missing\n"
                                                       "encryption:\n  key_file: missing-key\n"));
    EXPECT_EQ(c.database.password, "from-credential");
    EXPECT_EQ(c.password_source, "systemd credential db-password");
    EXPECT_EQ(c.encryption_key, kKey);
    EXPECT_EQ(c.encryption_key_source, "systemd credential encryption-key");
    EXPECT_TRUE(c.secret_files.empty());

    // Without a file too.
    auto env_only = load_app_config();
    EXPECT_EQ(env_only.database.password, "from-credential");
    EXPECT_EQ(env_only.encryption_key, kKey);

    // The environment wins over the credential.
    set("QUEUER_DB_PASSWORD", "from-env");
    c = load_app_config(config(std::string(kMinimal)));
    EXPECT_EQ(c.database.password, "from-env");
    EXPECT_EQ(c.password_source, "QUEUER_DB_PASSWORD");
    ::unsetenv("QUEUER_DB_PASSWORD");

    // A blank credential (the unit's SetCredential=NAME:\n default) counts as not given.
    std::ofstream((creds / "db-password").string(), std::ios::trunc) << "\n";
    std::ofstream((creds / "encryption-key").string(), std::ios::trunc);
    c = load_app_config(config(std::string(kMinimal) + "database:\n  password_file: pw\n"));
    EXPECT_EQ(c.database.password, "from-file");
    EXPECT_TRUE(c.encryption_key.empty());

    // A malformed key credential is named, never shown.
    std::ofstream((creds / "encryption-key").string()) << "topsecretvalue\n";
    auto e = error_of(std::string(kMinimal));
    EXPECT_NE(e.find("systemd credential encryption-key"), std::string::npos) << e;
    EXPECT_EQ(e.find("topsecretvalue"), std::string::npos) << e;
}

TEST_F(AppConfigTest, WorkerNameSpecifiersAndOverride) {
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    auto c = load_app_config(config("worker:\n  name: w-%H-100%%\n  max_concurrency: 1\n"));
    EXPECT_EQ(c.worker.name, std::string("w-") + host + "-100%");

    auto e = error_of("worker:\n  name: w-%x\n  max_concurrency: 1\n");
    EXPECT_EQ(e.rfind(at(2), 0), 0u) << e;
    EXPECT_NE(e.find("unknown specifier %x"), std::string::npos) << e;

    set("QUEUER_WORKER_NAME", "replica-%H");
    c = load_app_config(config("worker:\n  name: from-file\n  max_concurrency: 1\n"));
    EXPECT_EQ(c.worker.name, std::string("replica-") + host);
    // It also satisfies the required worker.name.
    c = load_app_config(config("worker:\n  max_concurrency: 1\n"));
    EXPECT_EQ(c.worker.name, std::string("replica-") + host);
    EXPECT_EQ(load_app_config().worker.name, std::string("replica-") + host);
}

TEST_F(AppConfigTest, TaskEnvironment) {
    auto c = load_app_config(
        config(std::string(kMinimal) + "  task_environment: [ACME_URL, \"AWS_*\", http_proxy]\n"));
    EXPECT_EQ(c.worker.task_environment,
              (std::vector<std::string>{"ACME_URL", "AWS_*", "http_proxy"}));
    EXPECT_TRUE(load_app_config(config(kMinimal)).worker.task_environment.empty());
    auto e = error_of(std::string(kMinimal) + "  task_environment: ACME_URL\n");
    EXPECT_NE(e.find("worker.task_environment must be a list"), std::string::npos) << e;
    e = error_of(std::string(kMinimal) + "  task_environment: [\"A B\"]\n");
    EXPECT_EQ(e.rfind(at(4), 0), 0u) << e;
    EXPECT_NE(e.find("worker.task_environment[0]"), std::string::npos) << e;
    e = error_of(std::string(kMinimal) + "  task_environment: [\"*\"]\n");
    EXPECT_NE(e.find("worker.task_environment[0]"), std::string::npos) << e;
}

TEST_F(AppConfigTest, BarePluginNamesAreRelativeToTheConfigFile) {
    auto p = config(std::string(kMinimal) + "plugins:\n  - path: libmine.so\n");
    // Load it through a relative path from the file's own directory, as `queuerd --config
    // queuerd.yaml` would.
    auto cwd = std::filesystem::current_path();
    std::filesystem::current_path(dir_);
    auto c = load_app_config("queuerd.yaml");
    std::filesystem::current_path(cwd);
    ASSERT_EQ(c.plugins.size(), 1u);
    EXPECT_EQ(c.plugins[0].path, (dir_ / "libmine.so").string());
    (void)p;
}
