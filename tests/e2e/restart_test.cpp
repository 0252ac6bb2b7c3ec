// PostgreSQL restarted under a running queuerd (the cluster the tests started): the daemon
// reconnects and every job ends exactly once. Runs alone (RUN_SERIAL): the restart would break
// every other test's connections.
#include <cstdlib>
#include <regex>

#include "e2e.hpp"
#include "support/http_client.hpp"

using namespace queuer;
using namespace queuer::test;
using namespace std::chrono_literals;

namespace {
int count(db::Connection& c, const std::string& sql) {
    return c.exec(sql).i32(0, 0);
}
}  // namespace

TEST_F(E2E, SurvivesAPostgresRestart) {
    const char* pgctl = std::getenv("QUEUER_TEST_PGCTL");
    const char* pgdata = std::getenv("QUEUER_TEST_PGDATA");
    if (!pgctl || !pgdata) GTEST_SKIP() << "the tests did not start the server themselves";
    DaemonOptions o;
    o.http_listen = "127.0.0.1:0";  // the metrics must tell the outage and the recovery
    auto& d = start_daemon(o);
    std::vector<BatchJob> batch(300);
    for (auto& j : batch) {
        j.task = "sleep";
        j.parameters = "[20]";
    }
    auto rids = client().add_jobs(batch);
    client_.reset();
    std::this_thread::sleep_for(300ms);
    std::string cmd = std::string(pgctl) + " -D " + pgdata + " -m fast -w restart >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    auto conn_ok = [&] {
        try {
            auto c = schema.connect();
            return count(c, "SELECT count(*) FROM job") == 0;
        } catch (...) {
            return false;
        }
    };
    ASSERT_TRUE(eventually(conn_ok, 90s)) << d.log();
    auto c = schema.connect();
    EXPECT_EQ(count(c, "SELECT count(*) FROM job_archive WHERE status = 'SUCCEEDED'"), 300);
    EXPECT_EQ(count(c, "SELECT count(DISTINCT rid) FROM job_archive"), 300);
    EXPECT_TRUE(d.alive());
    EXPECT_TRUE(d.wait_log("reconnect", 10s)) << d.log();

    std::smatch m;
    std::string log = d.log();
    ASSERT_TRUE(
        std::regex_search(log, m, std::regex("http: listening on 127\\.0\\.0\\.1:([0-9]+)")));
    int port = std::stoi(m[1]);
    Exposition e;
    EXPECT_TRUE(eventually([&] {
        e = parse_exposition(http_get(port, "/metrics").body);
        return e.value("queuerd_db_up") == 1 && e.value("queuerd_db_reconnects_total") >= 1;
    })) << http_get(port, "/metrics").body;
    EXPECT_EQ(e.value("queuerd_jobs_finished_total", {{"task", "sleep"}, {"status", "SUCCEEDED"}}),
              300);
    EXPECT_EQ(http_get(port, "/readyz").status, 200);
}
