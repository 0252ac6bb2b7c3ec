// queuer::Client against a real PostgreSQL (one schema per test): adding jobs (single, COPY
// batch, inside the caller's transaction), validation, listing and pagination, search, cancel,
// delete, readd, waiting, workers.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "queuer/client.hpp"
#include "queuer/crypto.hpp"
#include "queuer/db.hpp"
#include "queuer/error.hpp"
#include "queuer/model.hpp"
#include "support/test_db.hpp"

using namespace queuer;
using namespace std::chrono_literals;
using queuer::test::TestSchema;

namespace {

class ClientTest : public ::testing::Test {
  protected:
    void SetUp() override { client = std::make_unique<Client>(schema.config()); }

    int64_t count(const std::string& where = "true") {
        auto c = schema.connect();
        return c.exec("SELECT count(*) FROM job WHERE " + where).i64(0, 0);
    }
    int64_t count_archive(const std::string& where = "true") {
        auto c = schema.connect();
        return c.exec("SELECT count(*) FROM job_archive WHERE " + where).i64(0, 0);
    }

    TestSchema schema;  // declared first: dropped after the client closes its connections
    std::unique_ptr<Client> client;
};

rapidjson::Document parse(const std::string& text) {
    rapidjson::Document d;
    d.Parse(text.c_str());
    EXPECT_FALSE(d.HasParseError()) << text;
    return d;
}

template <class Fn>
void expect_error(Fn&& fn, ErrorKind kind, std::vector<std::string> needles) {
    try {
        fn();
        ADD_FAILURE() << "expected an error containing \"" << needles.at(0) << "\"";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        for (const auto& n : needles)
            EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
                << "message \"" << e.what() << "\" lacks \"" << n << "\"";
    }
}

// Strings that break naive quoting in SQL, JSON or COPY.
const std::vector<std::string> kNasty = {
    "plain",
    "double \" quote and single ' quote",
    "back\\slash and \\\\ two and trailing \\",
    "new\nline, crlf\r\n, tab\there",
    "unicode: caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x9a\x80",
    "'); DROP TABLE job; --",
    "\\N",
    "\\.",
    "100% _wild_ %%",
    "{\"looks\": [\"like\", \"json\"]}",
    "",
};

void expect_params_are_nasty(const Job& j) {
    auto d = parse(j.parameters);
    ASSERT_TRUE(d.IsArray()) << j.parameters;
    ASSERT_EQ(d.Size(), kNasty.size());
    for (rapidjson::SizeType i = 0; i < d.Size(); ++i) {
        ASSERT_TRUE(d[i].IsString());
        EXPECT_EQ(std::string(d[i].GetString(), d[i].GetStringLength()), kNasty[i]);
    }
    auto k = parse(j.parameters_keyed);
    ASSERT_TRUE(k.IsObject()) << j.parameters_keyed;
    for (const auto& s : kNasty) {
        std::string key = "k" + s;
        ASSERT_TRUE(k.HasMember(key.c_str())) << key;
        EXPECT_EQ(std::string(k[key.c_str()].GetString(), k[key.c_str()].GetStringLength()), s);
    }
}

std::string nasty_array() {
    return JsonValue(kNasty).text();
}
std::string nasty_object() {
    std::map<std::string, std::string> m;
    for (const auto& s : kNasty) m["k" + s] = s;
    return JsonValue(m).text();
}

const std::string kNastyTask = "task '\" \t\\ caf\xc3\xa9; DROP TABLE job; --";

}  // namespace

// ---- adding ----

TEST_F(ClientTest, AddJobRoundTripsPositionalAndKeyedParameters) {
    auto before = now();
    auto added = client->add_job("echo", 1, "a", true, 2.5, nullptr,
                                 Keyed{{"name", "x"}, {"n", 3}, {"list", JsonValue::raw("[1,2]")}});
    EXPECT_FALSE(added.rid.empty());
    EXPECT_NO_THROW(validate_rid(added.rid));
    EXPECT_EQ(added.status, status::queued);

    auto j = client->get_job(added.rid);
    EXPECT_EQ(j.id, added.id);
    EXPECT_EQ(j.rid, added.rid);
    EXPECT_EQ(j.task_name, "echo");
    EXPECT_EQ(json::compact(j.parameters, "p"), R"([1,"a",true,2.5,null])");
    auto k = parse(j.parameters_keyed);
    EXPECT_STREQ(k["name"].GetString(), "x");
    EXPECT_EQ(k["n"].GetInt(), 3);
    EXPECT_EQ(k["list"].Size(), 2u);
    EXPECT_EQ(j.status, status::queued);
    EXPECT_EQ(j.attempts, 0);
    EXPECT_EQ(j.schedule_count, 0);
    EXPECT_EQ(j.worker_id, 0);
    EXPECT_TRUE(j.worker_rid.empty());
    EXPECT_FALSE(j.scheduled_at);
    EXPECT_FALSE(j.started_at);
    EXPECT_EQ(json::compact(j.results, "r"), "[]");
    EXPECT_EQ(j.error, "");
    // created_at is the server's clock: loosely around now.
    EXPECT_LT(std::chrono::abs(j.created_at - before), std::chrono::minutes(5));
    EXPECT_EQ(j.created_at, j.updated_at);
}

TEST_F(ClientTest, AddJobWithOptionsStoresThemAndSchedules) {
    Options o;
    o.on_error = OnError{5, 2, 0.5, RetryBackoff::Linear};
    Schedule s;
    s.start = now() + std::chrono::hours(1);
    s.max_count = 3;
    s.interval = 10min;
    o.schedule = s;
    o.metadata_json = R"({"team":"ops"})";
    auto j = client->add_job_with_options(o, "report", "weekly");
    EXPECT_EQ(j.status, status::scheduled);
    ASSERT_TRUE(j.scheduled_at);
    EXPECT_EQ(*j.scheduled_at, *s.start);
    auto back = client->get_job(j.rid);
    ASSERT_TRUE(back.options.on_error);
    EXPECT_EQ(*back.options.on_error, *o.on_error);
    ASSERT_TRUE(back.options.schedule);
    EXPECT_EQ(back.options.schedule->max_count, 3);
    EXPECT_EQ(back.options.schedule->interval, 10min);
    EXPECT_EQ(back.options.schedule->start, s.start);
    EXPECT_EQ(json::compact(back.options.metadata_json, "m"), R"({"team":"ops"})");
}

TEST_F(ClientTest, NastyStringsStoredVerbatimByAddJob) {
    auto j = client->add_job_json(kNastyTask, nasty_array(), nasty_object(), std::nullopt);
    auto back = client->get_job(j.rid);
    EXPECT_EQ(back.task_name, kNastyTask);
    expect_params_are_nasty(back);
    EXPECT_EQ(count(), 1);  // the table is still there
}

TEST_F(ClientTest, NastyStringsStoredVerbatimByAddJobsCopy) {
    std::vector<BatchJob> batch(3);
    for (auto& b : batch) {
        b.task = kNastyTask;
        b.parameters = nasty_array();
        b.parameters_keyed = nasty_object();
    }
    Options o;
    o.metadata_json = R"({"note":"tab\there \\ back"})";
    batch[1].options = o;
    auto rids = client->add_jobs(batch);
    ASSERT_EQ(rids.size(), 3u);
    for (const auto& rid : rids) {
        auto j = client->get_job(rid);
        EXPECT_EQ(j.task_name, kNastyTask);
        expect_params_are_nasty(j);
    }
    auto meta = parse(client->get_job(rids[1]).options.metadata_json);
    EXPECT_STREQ(meta["note"].GetString(), "tab\there \\ back");
    EXPECT_EQ(count(), 3);
}

TEST_F(ClientTest, AddJobsTenThousandReturnsDistinctRidsAllQueued) {
    constexpr int kN = 10000;
    std::vector<BatchJob> batch(kN);
    for (int i = 0; i < kN; ++i) {
        batch[i].task = "bulk";
        batch[i].parameters = "[" + std::to_string(i) + "]";
    }
    auto rids = client->add_jobs(batch);
    ASSERT_EQ(rids.size(), static_cast<size_t>(kN));
    std::set<std::string> distinct(rids.begin(), rids.end());
    EXPECT_EQ(distinct.size(), static_cast<size_t>(kN));

    auto c = schema.connect();
    db::Params p;
    p.add_array(rids);
    auto r = c.exec(
        "SELECT count(*), count(DISTINCT rid), "
        "count(*) FILTER (WHERE status = 'QUEUED'), "
        "count(*) FILTER (WHERE task_name = 'bulk') "
        "FROM job WHERE rid = ANY($1::uuid[])",
        p);
    EXPECT_EQ(r.i64(0, 0), kN);
    EXPECT_EQ(r.i64(0, 1), kN);
    EXPECT_EQ(r.i64(0, 2), kN);
    EXPECT_EQ(r.i64(0, 3), kN);
    EXPECT_EQ(count(), kN);
    // rids come back in input order.
    EXPECT_EQ(json::compact(client->get_job(rids.front()).parameters, "p"), "[0]");
    EXPECT_EQ(json::compact(client->get_job(rids[1234]).parameters, "p"), "[1234]");
    EXPECT_EQ(json::compact(client->get_job(rids.back()).parameters, "p"), "[9999]");
}

TEST_F(ClientTest, AddJobsScheduledItemIsScheduledAtItsStart) {
    Schedule s;
    s.start = now() + std::chrono::hours(2);
    Options o;
    o.schedule = s;
    std::vector<BatchJob> batch(2);
    batch[0].task = "now";
    batch[1].task = "later";
    batch[1].options = o;
    auto rids = client->add_jobs(batch);
    ASSERT_EQ(rids.size(), 2u);
    auto a = client->get_job(rids[0]);
    EXPECT_EQ(a.status, status::queued);
    EXPECT_FALSE(a.scheduled_at);
    auto b = client->get_job(rids[1]);
    EXPECT_EQ(b.status, status::scheduled);
    ASSERT_TRUE(b.scheduled_at);
    EXPECT_EQ(*b.scheduled_at, *s.start);
}

TEST_F(ClientTest, AddJobsEmptyIsANoOp) {
    EXPECT_TRUE(client->add_jobs({}).empty());
    EXPECT_EQ(count(), 0);
}

TEST_F(ClientTest, InvalidBatchItemFailsTheWholeBatchNamingTheItem) {
    std::vector<BatchJob> batch(3);
    batch[0].task = "ok";
    batch[1].task = "";
    batch[2].task = "ok";
    expect_error([&] { client->add_jobs(batch); }, ErrorKind::Invalid, {"batch job 2"});
    EXPECT_EQ(count(), 0);

    batch[1].task = "ok";
    batch[2].parameters = "{\"not\":\"an array\"}";
    expect_error([&] { client->add_jobs(batch); }, ErrorKind::Invalid,
                 {"batch job 3", "parameters"});
    EXPECT_EQ(count(), 0);

    batch[2].parameters = "[]";
    Options bad;
    bad.on_error = OnError{-1, 0, 0, RetryBackoff::None};
    batch[0].options = bad;
    expect_error([&] { client->add_jobs(batch); }, ErrorKind::Invalid, {"batch job 1", "timeout"});
    EXPECT_EQ(count(), 0);

    batch[0].options.reset();
    batch[1].task = std::string(101, 't');
    expect_error([&] { client->add_jobs(batch); }, ErrorKind::Invalid, {"batch job 2", "100"});
    EXPECT_EQ(count(), 0);
}

TEST_F(ClientTest, AddJobTxRolledBackLeavesNoJob) {
    auto tx_conn = db::Connection::open(schema.config());
    std::string rid;
    {
        db::Transaction tx(tx_conn);
        rid = client->add_job_tx(tx_conn, "tx-task", 1, "two").rid;
        EXPECT_EQ(count(), 0) << "visible before commit";
        // no commit: rolled back at scope end
    }
    EXPECT_EQ(count(), 0);
    expect_error([&] { client->get_job(rid); }, ErrorKind::NotFound, {rid});
}

TEST_F(ClientTest, AddJobTxCommittedLeavesOneJob) {
    auto tx_conn = db::Connection::open(schema.config());
    std::string rid;
    {
        db::Transaction tx(tx_conn);
        tx_conn.exec("CREATE TABLE app_orders (id int)");  // the caller's own work, same tx
        rid = client->add_job_with_options_tx(tx_conn, Options{}, "tx-task", 1, "two").rid;
        tx_conn.exec("INSERT INTO app_orders VALUES (1)");
        tx.commit();
    }
    EXPECT_EQ(count(), 1);
    auto j = client->get_job(rid);
    EXPECT_EQ(j.task_name, "tx-task");
    EXPECT_EQ(json::compact(j.parameters, "p"), R"([1,"two"])");
}

TEST_F(ClientTest, InvalidInputRejectedWithClearMessagesAndNothingInserted) {
    expect_error([&] { client->add_job(""); }, ErrorKind::Invalid, {"task name", "empty"});
    expect_error([&] { client->add_job(std::string(101, 'x')); }, ErrorKind::Invalid,
                 {"task name", "100"});
    EXPECT_NO_THROW(client->add_job(std::string(100, 'x')));
    EXPECT_EQ(count(), 1);
    expect_error([&] { client->add_job_json("t", R"({"a":1})", "{}", std::nullopt); },
                 ErrorKind::Invalid, {"parameters", "array"});
    expect_error([&] { client->add_job_json("t", "[]", "[1]", std::nullopt); }, ErrorKind::Invalid,
                 {"parameters_keyed", "object"});
    expect_error([&] { client->add_job_json("t", "[1,", "{}", std::nullopt); }, ErrorKind::Invalid,
                 {"parameters", "JSON"});
    expect_error([&] { client->add_job_json("t", "[]", "{oops}", std::nullopt); },
                 ErrorKind::Invalid, {"parameters_keyed", "JSON"});
    Options neg;
    neg.on_error = OnError{-5, 0, 0, RetryBackoff::None};
    expect_error([&] { client->add_job_with_options(neg, "t"); }, ErrorKind::Invalid, {"timeout"});
    Options sched;
    sched.schedule = Schedule{};
    sched.schedule->max_count = 2;
    expect_error([&] { client->add_job_with_options(sched, "t"); }, ErrorKind::Invalid,
                 {"interval"});
    Options parent;
    parent.parent_rid = "nope";
    expect_error([&] { client->add_job_with_options(parent, "t"); }, ErrorKind::Invalid,
                 {"parent_rid"});
    EXPECT_EQ(count(), 1);
}

TEST_F(ClientTest, DefaultOnErrorMergedWhenJobHasNone) {
    client->set_default_on_error(OnError{30, 3, 1, RetryBackoff::None});
    auto a = client->get_job(client->add_job("t").rid);
    ASSERT_TRUE(a.options.on_error);
    EXPECT_EQ(a.options.on_error->max_retries, 3);
    Options own;
    own.on_error = OnError{1, 0, 0, RetryBackoff::None};
    auto b = client->get_job(client->add_job_with_options(own, "t").rid);
    ASSERT_TRUE(b.options.on_error);
    EXPECT_EQ(b.options.on_error->max_retries, 0);
}

// ---- listing ----

TEST_F(ClientTest, GetJobsPaginatesNewestFirstWithoutDuplicatesOrGaps) {
    std::vector<int64_t> ids;
    for (int i = 0; i < 25; ++i) ids.push_back(client->add_job("page", i).id);
    std::vector<Job> all;
    std::vector<size_t> sizes;
    JobQuery q;
    q.limit = 10;
    for (int guard = 0; guard < 10; ++guard) {
        auto page = client->get_jobs(q);
        sizes.push_back(page.size());
        if (page.empty()) break;
        all.insert(all.end(), page.begin(), page.end());
        q.last_id = page.back().id;
    }
    EXPECT_EQ(sizes, (std::vector<size_t>{10, 10, 5, 0}));
    ASSERT_EQ(all.size(), 25u);
    for (size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(all[i].id, ids[24 - i]) << "position " << i;
        EXPECT_EQ(json::compact(all[i].parameters, "p"), "[" + std::to_string(24 - i) + "]");
    }
}

TEST_F(ClientTest, PaginationDoesNotSkipRowsSharingATimestamp) {
    // A COPY batch shares one created_at (reference BUG 37).
    std::vector<BatchJob> batch(25);
    for (auto& b : batch) b.task = "same-ts";
    auto rids = client->add_jobs(batch);
    std::set<std::string> seen;
    JobQuery q;
    q.limit = 10;
    for (;;) {
        auto page = client->get_jobs(q);
        if (page.empty()) break;
        for (const auto& j : page) EXPECT_TRUE(seen.insert(j.rid).second) << "duplicate";
        q.last_id = page.back().id;
    }
    EXPECT_EQ(seen, std::set<std::string>(rids.begin(), rids.end()));
}

TEST_F(ClientTest, GetJobsLimitValidation) {
    JobQuery q;
    q.limit = 0;
    expect_error([&] { client->get_jobs(q); }, ErrorKind::Invalid, {"limit"});
    q.limit = 10;
    q.last_id = -1;
    expect_error([&] { client->get_jobs(q); }, ErrorKind::Invalid, {"lastId"});
}

TEST_F(ClientTest, GetJobsFiltersByStatus) {
    Options o;
    o.schedule = Schedule{};
    o.schedule->start = now() + std::chrono::hours(1);
    for (int i = 0; i < 3; ++i) client->add_job("q");
    for (int i = 0; i < 2; ++i) client->add_job_with_options(o, "s");
    JobQuery q;
    q.status = "SCHEDULED";
    auto scheduled = client->get_jobs(q);
    ASSERT_EQ(scheduled.size(), 2u);
    for (const auto& j : scheduled) EXPECT_EQ(j.task_name, "s");
    q.status = "QUEUED";
    auto queued = client->get_jobs(q);
    ASSERT_EQ(queued.size(), 3u);
    for (const auto& j : queued) EXPECT_EQ(j.task_name, "q");
    q.status = "RUNNING";
    EXPECT_TRUE(client->get_jobs(q).empty());
    EXPECT_EQ(client->get_jobs().size(), 5u);
}

TEST_F(ClientTest, SearchFindsTaskNameFragmentsCaseInsensitively) {
    for (const char* t : {"report_daily", "report_weekly", "cleanup", "50%off", "50xoff"})
        client->add_job(t);
    auto names = [](const std::vector<Job>& js) {
        std::set<std::string> s;
        for (const auto& j : js) s.insert(j.task_name);
        return s;
    };
    EXPECT_EQ(names(client->get_jobs_by_search("report")),
              (std::set<std::string>{"report_daily", "report_weekly"}));
    EXPECT_EQ(names(client->get_jobs_by_search("REPORT_W")),
              (std::set<std::string>{"report_weekly"}));
    EXPECT_TRUE(client->get_jobs_by_search("nomatch").empty());
    // Status is searchable too.
    EXPECT_EQ(client->get_jobs_by_search("queued").size(), 5u);
}

TEST_F(ClientTest, SearchTreatsPercentAndUnderscoreLiterally) {
    for (const char* t : {"report_daily", "reportXdaily", "50%off", "50xoff"}) client->add_job(t);
    auto names = [](const std::vector<Job>& js) {
        std::set<std::string> s;
        for (const auto& j : js) s.insert(j.task_name);
        return s;
    };
    EXPECT_EQ(names(client->get_jobs_by_search("%")), (std::set<std::string>{"50%off"}));
    EXPECT_EQ(names(client->get_jobs_by_search("0%o")), (std::set<std::string>{"50%off"}));
    EXPECT_EQ(names(client->get_jobs_by_search("_")), (std::set<std::string>{"report_daily"}));
    EXPECT_EQ(names(client->get_jobs_by_search("t_d")), (std::set<std::string>{"report_daily"}));
    EXPECT_TRUE(client->get_jobs_by_search("\\").empty());
}

TEST_F(ClientTest, GetJobsByWorkerRid) {
    EXPECT_TRUE(client->get_jobs_by_worker_rid(random_uuid()).empty());
    auto a = client->add_job("mine");
    client->add_job("other");
    const std::string worker = random_uuid();
    auto c = schema.connect();
    db::Params p;
    p.add(worker).add(a.rid);
    c.exec(
        "UPDATE job SET worker_rid = $1::uuid, worker_id = 5, status = 'RUNNING' "
        "WHERE rid = $2::uuid",
        p);
    auto mine = client->get_jobs_by_worker_rid(worker);
    ASSERT_EQ(mine.size(), 1u);
    EXPECT_EQ(mine[0].rid, a.rid);
    EXPECT_EQ(mine[0].worker_rid, worker);
    EXPECT_EQ(mine[0].worker_id, 5);
    EXPECT_TRUE(client->get_jobs_by_worker_rid(random_uuid()).empty());
    expect_error([&] { client->get_jobs_by_worker_rid("not-a-rid"); }, ErrorKind::Invalid,
                 {"worker rid"});
}

TEST_F(ClientTest, GetJobUnknownOrMalformedRid) {
    auto rid = random_uuid();
    expect_error([&] { client->get_job(rid); }, ErrorKind::NotFound, {rid});
    expect_error([&] { client->get_job_ended(rid); }, ErrorKind::NotFound, {rid});
    expect_error([&] { client->get_job("x'; DROP TABLE job; --"); }, ErrorKind::Invalid, {"rid"});
}

// ---- cancel, delete, readd ----

TEST_F(ClientTest, CancelQueuedJobArchivesItCancelled) {
    auto j = client->add_job("cancel-me", 7, Keyed{{"k", "v"}});
    auto cancelled = client->cancel_job(j.rid);
    EXPECT_EQ(cancelled.rid, j.rid);
    EXPECT_EQ(cancelled.id, j.id);
    EXPECT_EQ(cancelled.status, status::cancelled);
    expect_error([&] { client->get_job(j.rid); }, ErrorKind::NotFound, {j.rid});
    EXPECT_TRUE(client->get_jobs().empty());
    auto ended = client->get_job_ended(j.rid);
    EXPECT_EQ(ended.status, status::cancelled);
    EXPECT_EQ(ended.task_name, "cancel-me");
    EXPECT_EQ(json::compact(ended.parameters, "p"), "[7]");
    EXPECT_EQ(json::compact(ended.results, "r"), "[]");
    EXPECT_EQ(count(), 0);
    EXPECT_EQ(count_archive(), 1);
    auto listed = client->get_jobs_ended();
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].rid, j.rid);
}

TEST_F(ClientTest, CancelUnknownRidIsNotFound) {
    auto rid = random_uuid();
    expect_error([&] { client->cancel_job(rid); }, ErrorKind::NotFound, {rid});
    EXPECT_EQ(count_archive(), 0);
}

TEST_F(ClientTest, CancelAlreadyEndedJobIsInvalid) {
    auto j = client->add_job("t");
    client->cancel_job(j.rid);
    expect_error([&] { client->cancel_job(j.rid); }, ErrorKind::Invalid, {j.rid, "CANCELLED"});
    EXPECT_EQ(count_archive(), 1);
}

TEST_F(ClientTest, CancelScheduledAndRunningJobs) {
    Options o;
    o.schedule = Schedule{};
    o.schedule->start = now() + std::chrono::hours(1);
    auto s = client->add_job_with_options(o, "sched");
    EXPECT_EQ(client->cancel_job(s.rid).status, status::cancelled);
    auto r = client->add_job("run");
    auto c = schema.connect();
    db::Params p;
    p.add(r.rid);
    c.exec("UPDATE job SET status = 'RUNNING' WHERE rid = $1::uuid", p);
    EXPECT_EQ(client->cancel_job(r.rid).status, status::cancelled);
    EXPECT_EQ(count(), 0);
    EXPECT_EQ(count_archive("status = 'CANCELLED'"), 2);
}

TEST_F(ClientTest, DeleteJobRemovesItFromTheArchive) {
    auto j = client->add_job("t");
    client->cancel_job(j.rid);
    client->delete_job(j.rid);
    expect_error([&] { client->get_job_ended(j.rid); }, ErrorKind::NotFound, {j.rid});
    EXPECT_EQ(count_archive(), 0);
    // Unknown rid: not an error. A live job is not touched (cancel first).
    EXPECT_NO_THROW(client->delete_job(random_uuid()));
    auto live = client->add_job("live");
    client->delete_job(live.rid);
    EXPECT_EQ(client->get_job(live.rid).rid, live.rid);
}

TEST_F(ClientTest, ReaddFromArchiveMakesANewQueuedJob) {
    Options o;
    o.on_error = OnError{3, 1, 0, RetryBackoff::None};
    auto j = client->add_job_with_options(o, "again", "x", 2, Keyed{{"k", true}});
    client->cancel_job(j.rid);
    auto re = client->readd_job_from_archive(j.rid);
    EXPECT_NE(re.rid, j.rid);
    EXPECT_NE(re.id, j.id);
    EXPECT_EQ(re.status, status::queued);
    auto back = client->get_job(re.rid);
    EXPECT_EQ(back.task_name, "again");
    EXPECT_EQ(json::compact(back.parameters, "p"), R"(["x",2])");
    EXPECT_EQ(json::compact(back.parameters_keyed, "k"), R"({"k":true})");
    ASSERT_TRUE(back.options.on_error);
    EXPECT_EQ(*back.options.on_error, *o.on_error);
    // The archived original stays.
    EXPECT_EQ(client->get_job_ended(j.rid).status, status::cancelled);
    auto unknown = random_uuid();
    expect_error([&] { client->readd_job_from_archive(unknown); }, ErrorKind::NotFound,
                 {"archive", unknown});
}

// ---- waiting ----

TEST_F(ClientTest, WaitForAlreadyEndedJobReturnsAtOnce) {
    auto j = client->add_job("t");
    client->cancel_job(j.rid);
    auto start = std::chrono::steady_clock::now();
    auto got = client->wait_for_job_finished(j.rid, 30s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->rid, j.rid);
    EXPECT_EQ(got->status, status::cancelled);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
}

TEST_F(ClientTest, WaitReturnsAJobCancelledFromAnotherThread) {
    auto j = client->add_job("t");
    std::thread canceller([&] {
        std::this_thread::sleep_for(200ms);
        client->cancel_job(j.rid);
    });
    auto start = std::chrono::steady_clock::now();
    auto got = client->wait_for_job_finished(j.rid, 30s);
    auto waited = std::chrono::steady_clock::now() - start;
    canceller.join();
    ASSERT_TRUE(got) << "timed out although the job was cancelled";
    EXPECT_EQ(got->rid, j.rid);
    EXPECT_EQ(got->status, status::cancelled);
    EXPECT_LT(waited, 25s) << "woken by the notification, not by the timeout";
}

TEST_F(ClientTest, WaitTimesOutOnAJobNobodyEnds) {
    auto j = client->add_job("t");
    auto start = std::chrono::steady_clock::now();
    auto got = client->wait_for_job_finished(j.rid, 300ms);
    EXPECT_FALSE(got);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 290ms);
    EXPECT_EQ(client->get_job(j.rid).status, status::queued);
}

TEST_F(ClientTest, WaitIgnoresOtherJobsEnding) {
    auto mine = client->add_job("mine");
    auto other = client->add_job("other");
    std::thread canceller([&] {
        std::this_thread::sleep_for(100ms);
        client->cancel_job(other.rid);
    });
    auto got = client->wait_for_job_finished(mine.rid, 600ms);
    canceller.join();
    EXPECT_FALSE(got);
}

// ---- workers ----

TEST_F(ClientTest, GetWorkerUnknownRidIsNotFound) {
    auto rid = random_uuid();
    expect_error([&] { client->get_worker(rid); }, ErrorKind::NotFound, {rid});
    expect_error([&] { client->stop_worker(rid, true); }, ErrorKind::NotFound, {rid});
}

TEST_F(ClientTest, StopWorkerGracefullyThenImmediately) {
    auto c = schema.connect();
    auto r = c.exec(
        "INSERT INTO worker (name, status, max_concurrency, available_tasks) "
        "VALUES ('w1', 'RUNNING', 4, ARRAY['echo','sleep']) RETURNING rid");
    const std::string rid = r.str(0, 0);
    auto w = client->get_worker(rid);
    EXPECT_EQ(w.name, "w1");
    EXPECT_EQ(w.status, worker_status::running);
    EXPECT_EQ(w.max_concurrency, 4);
    EXPECT_EQ(w.available_tasks, (std::vector<std::string>{"echo", "sleep"}));

    auto graceful = client->stop_worker(rid, true);
    EXPECT_EQ(graceful.status, worker_status::stopping);
    EXPECT_EQ(client->get_worker(rid).status, worker_status::stopping);

    auto stopped = client->stop_worker(rid, false);
    EXPECT_EQ(stopped.status, worker_status::stopped);
    EXPECT_EQ(client->get_worker(rid).status, worker_status::stopped);

    expect_error([&] { client->stop_worker(rid, false); }, ErrorKind::Invalid, {"STOPPED"});
    expect_error([&] { client->stop_worker(rid, true); }, ErrorKind::Invalid, {"STOPPED"});
    EXPECT_EQ(client->get_worker(rid).status, worker_status::stopped);
}

TEST_F(ClientTest, GetWorkersListsAndSearches) {
    auto c = schema.connect();
    c.exec(
        "INSERT INTO worker (name, available_tasks) VALUES ('alpha', ARRAY['echo']), "
        "('beta', ARRAY['sleep']), ('gamma_1', ARRAY['echo'])");
    auto all = client->get_workers();
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].name, "gamma_1");  // newest first
    EXPECT_EQ(client->get_workers(0, 100, "echo").size(), 2u);
    EXPECT_EQ(client->get_workers(0, 100, "_").size(), 1u);
    auto page = client->get_workers(all[0].id, 1);
    ASSERT_EQ(page.size(), 1u);
    EXPECT_EQ(page[0].name, "beta");
}

TEST_F(ClientTest, MasterRowIsReadable) {
    auto m = client->get_master();
    EXPECT_EQ(m.id, 1);
    EXPECT_EQ(m.worker_id, 0);
    EXPECT_TRUE(m.worker_rid.empty());
    EXPECT_EQ(m.settings.master_lock_timeout, std::chrono::minutes(5));
}

// ---- encryption ----

namespace {
const std::string kKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const std::string kOtherKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh4=";
const std::string kSecret = "top secret payload 8d1f";
}  // namespace

TEST_F(ClientTest, EncryptedParametersAreSealedAtRestAndReadBack) {
    Client enc(schema.config(), kKey);
    EXPECT_TRUE(enc.encrypted());
    auto j = enc.add_job("secret", kSecret, Keyed{{"pin", "keyed " + kSecret}});

    auto c = schema.connect();
    db::Params p;
    p.add(j.rid);
    auto r = c.exec(
        "SELECT parameters::text, parameters_keyed::text, parameters_encrypted, "
        "parameters_keyed_encrypted FROM job WHERE rid = $1::uuid",
        p);
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.str(0, 0), "[]");
    EXPECT_EQ(r.str(0, 1), "{}");
    auto sealed = bytea_from_text(r.get(0, 2));
    auto sealed_keyed = bytea_from_text(r.get(0, 3));
    EXPECT_FALSE(sealed.empty());
    EXPECT_FALSE(sealed_keyed.empty());
    EXPECT_EQ(sealed.find(kSecret), std::string::npos);
    EXPECT_EQ(sealed_keyed.find(kSecret), std::string::npos);
    EXPECT_EQ(sealed.find("secret"), std::string::npos);

    auto back = enc.get_job(j.rid);
    auto d = parse(back.parameters);
    ASSERT_TRUE(d.IsArray());
    EXPECT_EQ(std::string(d[0].GetString()), kSecret);
    auto k = parse(back.parameters_keyed);
    EXPECT_EQ(std::string(k["pin"].GetString()), "keyed " + kSecret);
    // Listing and the archive decrypt too.
    ASSERT_EQ(enc.get_jobs().size(), 1u);
    EXPECT_EQ(parse(enc.get_jobs()[0].parameters)[0].GetString(), kSecret);
    enc.cancel_job(j.rid);
    EXPECT_EQ(parse(enc.get_job_ended(j.rid).parameters)[0].GetString(), kSecret);
}

TEST_F(ClientTest, EncryptedBatchIsSealedAndReadBack) {
    Client enc(schema.config(), kKey);
    std::vector<BatchJob> batch(2);
    batch[0].task = "a";
    batch[0].parameters = JsonValue(std::vector<std::string>{kSecret}).text();
    batch[1].task = "b";
    batch[1].parameters_keyed = R"({"s":")" + kSecret + R"("})";
    auto rids = enc.add_jobs(batch);
    auto c = schema.connect();
    auto r = c.exec(
        "SELECT count(*) FROM job WHERE parameters::text LIKE '%secret%' "
        "OR parameters_keyed::text LIKE '%secret%' OR length(parameters_encrypted) = 0");
    EXPECT_EQ(r.i64(0, 0), 0);
    EXPECT_EQ(parse(enc.get_job(rids[0]).parameters)[0].GetString(), kSecret);
    EXPECT_EQ(parse(enc.get_job(rids[1]).parameters_keyed)["s"].GetString(), kSecret);
}

// One sealed row never breaks a read: it is marked (Job::unreadable) and its sealed columns are
// left out; the reason names the job and never the key.
TEST_F(ClientTest, EncryptedJobWithAnotherKeyIsMarkedUnreadable) {
    Client enc(schema.config(), kKey);
    auto j = enc.add_job("secret", kSecret);
    Client other(schema.config(), kOtherKey);
    auto got = other.get_job(j.rid);
    EXPECT_EQ(got.status, "QUEUED");
    EXPECT_EQ(got.unreadable, (std::vector<std::string>{"parameters", "parameters_keyed"}));
    EXPECT_EQ(got.sealed_by, "queuerd");
    EXPECT_EQ(got.parameters.find(kSecret), std::string::npos);
    EXPECT_NE(got.unreadable_reason.find(j.rid), std::string::npos) << got.unreadable_reason;
    EXPECT_NE(got.unreadable_reason.find("another key"), std::string::npos)
        << got.unreadable_reason;
    EXPECT_EQ(got.unreadable_reason.find(kKey), std::string::npos);
    EXPECT_EQ(got.unreadable_reason.find(kOtherKey), std::string::npos);
    EXPECT_EQ(got.to_json().find(kSecret), std::string::npos);
    ASSERT_EQ(other.get_jobs().size(), 1u);
    EXPECT_FALSE(other.get_jobs()[0].readable());
}

TEST_F(ClientTest, EncryptedJobWithoutAKeyTellsToSetTheVariable) {
    Client enc(schema.config(), kKey);
    auto j = enc.add_job("secret", kSecret);
    auto got = client->get_job(j.rid);
    EXPECT_FALSE(got.readable());
    EXPECT_NE(got.unreadable_reason.find("QUEUER_ENCRYPTION_KEY"), std::string::npos)
        << got.unreadable_reason;
    EXPECT_NE(got.unreadable_reason.find(j.rid), std::string::npos) << got.unreadable_reason;
}

TEST_F(ClientTest, MalformedKeyRejectedAtConstruction) {
    expect_error([&] { Client bad(schema.config(), "short-key"); }, ErrorKind::Crypto,
                 {"32 bytes"});
}

// ---- more edge cases ----

TEST_F(ClientTest, NumbersInParametersKeepTheirExactText) {
    // A job queue must not round big integers or long decimals through a double.
    auto j = client->add_job_json(
        "n", "[123456789012345678901234567890, 0.1000000000000000055511151231257827, -0.0, 1E+2]",
        R"({"big": 98765432109876543210})", std::nullopt);
    auto back = client->get_job(j.rid);
    EXPECT_NE(back.parameters.find("123456789012345678901234567890"), std::string::npos)
        << back.parameters;
    EXPECT_NE(back.parameters.find("0.1000000000000000055511151231257827"), std::string::npos)
        << back.parameters;
    EXPECT_NE(back.parameters_keyed.find("98765432109876543210"), std::string::npos)
        << back.parameters_keyed;
    std::vector<BatchJob> batch(1);
    batch[0].task = "n";
    batch[0].parameters = "[123456789012345678901234567890]";
    auto rids = client->add_jobs(batch);
    auto b = client->get_job(rids[0]);
    EXPECT_NE(b.parameters.find("123456789012345678901234567890"), std::string::npos)
        << b.parameters;
}

TEST_F(ClientTest, NulCharacterInAStringIsRejectedAndNothingInserted) {
    // jsonb cannot hold \u0000; the add fails as a whole.
    EXPECT_THROW(client->add_job("t", std::string("a\0b", 3)), Error);
    std::vector<BatchJob> batch(2);
    batch[0].task = "ok";
    batch[1].task = "bad";
    batch[1].parameters = R"(["a\u0000b"])";
    EXPECT_THROW(client->add_jobs(batch), Error);
    EXPECT_EQ(count(), 0);
    // The pool is still usable afterwards.
    EXPECT_NO_THROW(client->add_job("after"));
    EXPECT_EQ(count(), 1);
}

TEST_F(ClientTest, ReadsRowsWrittenByTheGoAndPythonReferences) {
    auto c = schema.connect();
    // Go: interval in integer nanoseconds, start with an offset and nanoseconds, unscheduled
    // jobs carry the year-0001 sentinel, a single insert with no arguments stores JSON null.
    auto go = c.exec(
        "INSERT INTO job (options, task_name, parameters, parameters_keyed, status, scheduled_at) "
        "VALUES ('{\"on_error\":{\"timeout\":10,\"max_retries\":3,\"retry_delay\":1,"
        "\"retry_backoff\":\"exponential\"},\"schedule\":{\"start\":"
        "\"2026-11-25T07:00:00.123456789+01:00\",\"max_count\":3,\"interval\":5000000000},"
        "\"parent_rid\":\"0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11\",\"metadata\":{\"a\":1}}', "
        "'go', 'null', 'null', 'QUEUED', '0001-01-01 00:00:00') RETURNING rid");
    auto g = client->get_job(go.str(0, 0));
    EXPECT_EQ(g.parameters, "[]");
    EXPECT_EQ(g.parameters_keyed, "{}");
    EXPECT_FALSE(g.scheduled_at) << "year-0001 sentinel means not scheduled";
    ASSERT_TRUE(g.options.on_error);
    EXPECT_EQ(g.options.on_error->retry_backoff, RetryBackoff::Exponential);
    ASSERT_TRUE(g.options.schedule);
    EXPECT_EQ(g.options.schedule->interval, 5s);
    EXPECT_EQ(format_time(*g.options.schedule->start), "2026-11-25T06:00:00.123456Z");
    EXPECT_EQ(g.options.parent_rid, "0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11");

    // Python: float-second interval, nulls for unset keys, SQL NULL options allowed.
    auto py = c.exec(
        "INSERT INTO job (options, task_name) VALUES ('{\"on_error\":null,\"schedule\":"
        "{\"start\":\"2026-11-25T06:00:00\",\"max_count\":2,\"interval\":2.5,"
        "\"next_interval\":null}}', 'py'), (NULL, 'py-null') RETURNING rid");
    auto p = client->get_job(py.str(0, 0));
    EXPECT_FALSE(p.options.on_error);
    ASSERT_TRUE(p.options.schedule);
    EXPECT_EQ(p.options.schedule->interval, 2500ms);
    auto n = client->get_job(py.str(1, 0));
    EXPECT_TRUE(n.options.empty());
    EXPECT_EQ(n.task_name, "py-null");
    // Job JSON of such rows is valid JSON.
    for (const auto& j : client->get_jobs())
        EXPECT_TRUE(json::is_valid(j.to_json())) << j.to_json();
}

TEST_F(ClientTest, AddJobTxRollbackThenCommitOnTheSameConnection) {
    auto tx_conn = db::Connection::open(schema.config());
    {
        db::Transaction tx(tx_conn);
        client->add_job_tx(tx_conn, "first");
    }
    std::string rid;
    {
        db::Transaction tx(tx_conn);
        rid = client->add_job_tx(tx_conn, "second").rid;
        tx.commit();
    }
    EXPECT_EQ(count(), 1);
    EXPECT_EQ(client->get_job(rid).task_name, "second");
}

TEST_F(ClientTest, ConcurrentAddsFromManyThreads) {
    constexpr int kThreads = 8, kEach = 40;
    std::vector<std::vector<std::string>> rids(kThreads);
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) rids[t].push_back(client->add_job("mt", t, i).rid);
        });
    for (auto& t : ts) t.join();
    std::set<std::string> all;
    for (const auto& v : rids) all.insert(v.begin(), v.end());
    EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
    EXPECT_EQ(count(), kThreads * kEach);
}

TEST_F(ClientTest, ConcurrentCancelsOfOneJobEndItOnce) {
    auto j = client->add_job("t");
    constexpr int kThreads = 6;
    std::atomic<int> ok{0}, invalid{0}, other{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t)
        ts.emplace_back([&] {
            try {
                client->cancel_job(j.rid);
                ++ok;
            } catch (const Error& e) {
                if (e.kind() == ErrorKind::Invalid)
                    ++invalid;
                else
                    ++other;
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(invalid.load(), kThreads - 1);
    EXPECT_EQ(other.load(), 0);
    EXPECT_EQ(count_archive(), 1);
}

TEST_F(ClientTest, ReaddOfAnEncryptedJobKeepsItSealed) {
    Client enc(schema.config(), kKey);
    auto j = enc.add_job("secret", kSecret);
    enc.cancel_job(j.rid);
    auto re = enc.readd_job_from_archive(j.rid);
    EXPECT_EQ(parse(enc.get_job(re.rid).parameters)[0].GetString(), kSecret);
    auto c = schema.connect();
    db::Params p;
    p.add(re.rid);
    EXPECT_EQ(c.exec("SELECT parameters::text FROM job WHERE rid = $1::uuid", p).str(0, 0), "[]");
}

TEST_F(ClientTest, StopWorkerNotifiesChannelWorker) {
    auto c = schema.connect();
    const std::string rid =
        c.exec("INSERT INTO worker (name, status) VALUES ('w', 'RUNNING') RETURNING rid").str(0, 0);
    auto listener = schema.connect();
    listener.listen("worker");
    client->stop_worker(rid, false);
    bool seen = false;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!seen && std::chrono::steady_clock::now() < deadline) {
        for (const auto& n : listener.drain_notifications()) {
            if (n.payload.find(rid) == std::string::npos) continue;
            auto d = parse(n.payload);
            EXPECT_STREQ(d["status"].GetString(), "STOPPED");
            seen = true;
        }
        if (!seen) std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(seen);
}

TEST_F(ClientTest, ConnectionsListIncludesOurApplicationName) {
    auto other = schema.connect();  // get_connections leaves out the asking connection itself
    auto conns = client->get_connections();
    bool found = false;
    for (const auto& c : conns) {
        if (c.application_name == "queuer-test") found = true;
        EXPECT_TRUE(json::is_valid(c.to_json()));
    }
    EXPECT_TRUE(found);
}

TEST_F(ClientTest, WaitIsWokenWhenTheJobEndsWhileItLooksTheJobUp) {
    // The job may end while the waiter's first lookup runs: its notification then arrives with
    // that query's reply and sits in libpq's buffer; the waiter must not sleep on the socket
    // until the timeout. Many rounds with tiny cancel delays make that window likely.
    int slow = 0;
    for (int round = 0; round < 60; ++round) {
        auto j = client->add_job("race");
        std::thread canceller([&, round] {
            std::this_thread::sleep_for(std::chrono::microseconds(250 * (round % 60)));
            client->cancel_job(j.rid);
        });
        auto start = std::chrono::steady_clock::now();
        auto got = client->wait_for_job_finished(j.rid, 4s);
        auto took = std::chrono::steady_clock::now() - start;
        canceller.join();
        ASSERT_TRUE(got);
        EXPECT_EQ(got->status, status::cancelled);
        if (took > 3s) ++slow;
    }
    EXPECT_EQ(slow, 0) << "waits that slept until their timeout although the job had ended";
}
