// Model types: validation messages, JSON shapes and round trips, time and duration parsing.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "queuer/error.hpp"
#include "queuer/model.hpp"

using namespace queuer;
using namespace std::chrono_literals;

namespace {

// Runs `fn`, expects Error(kind) whose message contains every one of `needles`.
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

TimePoint tp(int y, unsigned mo, unsigned d, int h, int mi, int s, int us = 0) {
    using namespace std::chrono;
    auto days = sys_days(year{y} / month{mo} / day{d});
    return TimePoint(days) + hours(h) + minutes(mi) + seconds(s) + microseconds(us);
}

}  // namespace

// ---- OnError ----

TEST(OnError, DefaultIsValid) {
    EXPECT_NO_THROW(OnError{}.validate());
}

TEST(OnError, NegativeTimeoutRejectedNamingTheField) {
    OnError e;
    e.timeout = -10;
    expect_error([&] { e.validate(); }, ErrorKind::Invalid, {"timeout", "negative"});
}

TEST(OnError, NegativeMaxRetriesRejectedNamingTheField) {
    OnError e;
    e.max_retries = -1;
    expect_error([&] { e.validate(); }, ErrorKind::Invalid, {"max_retries", "negative"});
}

TEST(OnError, NegativeRetryDelayRejectedNamingTheField) {
    OnError e;
    e.retry_delay = -0.5;
    expect_error([&] { e.validate(); }, ErrorKind::Invalid, {"retry_delay", "negative"});
}

TEST(OnError, BadBackoffRejectedNamingTheChoices) {
    expect_error([] { OnError::from_json(R"({"retry_backoff":"random"})"); }, ErrorKind::Invalid,
                 {"retry_backoff", "none, linear, exponential"});
    expect_error([] { OnError::from_json(R"({"retry_backoff":3})"); }, ErrorKind::Invalid,
                 {"retry_backoff"});
}

TEST(OnError, FromJsonValidates) {
    expect_error([] { OnError::from_json(R"({"timeout":-5})"); }, ErrorKind::Invalid, {"timeout"});
    expect_error([] { OnError::from_json(R"({"timeout":"5"})"); }, ErrorKind::Invalid,
                 {"timeout", "number"});
    expect_error([] { OnError::from_json(R"({"max_retries":1.5})"); }, ErrorKind::Invalid,
                 {"max_retries", "integer"});
    expect_error([] { OnError::from_json(R"({"bogus":1})"); }, ErrorKind::Invalid, {"bogus"});
    expect_error([] { OnError::from_json("[1]"); }, ErrorKind::Invalid, {"on_error"});
    expect_error([] { OnError::from_json("{"); }, ErrorKind::Invalid, {"on_error", "JSON"});
}

TEST(OnError, JsonRoundTrip) {
    OnError e;
    e.timeout = 2.5;
    e.max_retries = 3;
    e.retry_delay = 0.25;
    e.retry_backoff = RetryBackoff::Exponential;
    auto text = e.to_json();
    rapidjson::Document d;
    d.Parse(text.c_str());
    ASSERT_TRUE(d.IsObject()) << text;
    EXPECT_DOUBLE_EQ(d["timeout"].GetDouble(), 2.5);
    EXPECT_EQ(d["max_retries"].GetInt(), 3);
    EXPECT_DOUBLE_EQ(d["retry_delay"].GetDouble(), 0.25);
    EXPECT_STREQ(d["retry_backoff"].GetString(), "exponential");
    EXPECT_EQ(OnError::from_json(text), e);
}

TEST(OnError, DelayBeforeRetryNone) {
    OnError e;
    e.retry_delay = 1.5;
    e.retry_backoff = RetryBackoff::None;
    EXPECT_EQ(e.delay_before_retry(1), 1500ms);
    EXPECT_EQ(e.delay_before_retry(2), 1500ms);
    EXPECT_EQ(e.delay_before_retry(5), 1500ms);
}

TEST(OnError, DelayBeforeRetryLinear) {
    OnError e;
    e.retry_delay = 1;
    e.retry_backoff = RetryBackoff::Linear;
    EXPECT_EQ(e.delay_before_retry(1), 1000ms);
    EXPECT_EQ(e.delay_before_retry(2), 2000ms);
    EXPECT_EQ(e.delay_before_retry(3), 3000ms);
}

TEST(OnError, DelayBeforeRetryExponential) {
    OnError e;
    e.retry_delay = 0.5;
    e.retry_backoff = RetryBackoff::Exponential;
    EXPECT_EQ(e.delay_before_retry(1), 500ms);
    EXPECT_EQ(e.delay_before_retry(2), 1000ms);
    EXPECT_EQ(e.delay_before_retry(3), 2000ms);
    EXPECT_EQ(e.delay_before_retry(4), 4000ms);
    // Huge k neither overflows nor goes negative.
    EXPECT_GT(e.delay_before_retry(1000), 0ms);
}

TEST(OnError, SubSecondDelayIsNotTruncated) {
    // Reference BUG 11: Go truncated 0.5 s to 0.
    OnError e;
    e.retry_delay = 0.2;
    EXPECT_EQ(e.delay_before_retry(1), 200ms);
}

// ---- Schedule ----

TEST(Schedule, NegativeMaxCountRejected) {
    Schedule s;
    s.max_count = -1;
    s.interval = 1s;
    expect_error([&] { s.validate(); }, ErrorKind::Invalid, {"max_count", "negative"});
}

TEST(Schedule, MaxCountZeroNeedsIntervalOrNextInterval) {
    Schedule s;
    s.max_count = 0;
    expect_error([&] { s.validate(); }, ErrorKind::Invalid, {"interval", "next_interval"});
    s.interval = 5s;
    EXPECT_NO_THROW(s.validate());
    s.interval = 0s;
    s.next_interval = "daily";
    EXPECT_NO_THROW(s.validate());
}

TEST(Schedule, MaxCountAboveOneNeedsIntervalOrNextInterval) {
    Schedule s;
    s.max_count = 3;
    expect_error([&] { s.validate(); }, ErrorKind::Invalid, {"interval", "next_interval"});
    s.interval = 1ms;
    EXPECT_NO_THROW(s.validate());
}

TEST(Schedule, MaxCountOneWithoutIntervalIsValid) {
    Schedule s;
    s.max_count = 1;
    s.start = now();
    EXPECT_NO_THROW(s.validate());
}

TEST(Schedule, NegativeIntervalRejected) {
    Schedule s;
    s.interval = -1s;
    expect_error([&] { s.validate(); }, ErrorKind::Invalid, {"interval"});
}

TEST(Schedule, GoIntegerNanosecondInterval) {
    auto s = Schedule::from_json(
        R"({"start":"2026-11-25T06:00:00Z","max_count":3,"interval":5000000000})");
    EXPECT_EQ(s.interval, 5s);
    EXPECT_EQ(s.max_count, 3);
    ASSERT_TRUE(s.start);
    EXPECT_EQ(*s.start, tp(2026, 11, 25, 6, 0, 0));
}

TEST(Schedule, PythonFloatSecondsInterval) {
    auto s = Schedule::from_json(
        R"({"start":"2026-11-25T06:00:00.5+00:00","max_count":2,"interval":1.5,)"
        R"("next_interval":null})");
    EXPECT_EQ(s.interval, 1500ms);
    EXPECT_TRUE(s.next_interval.empty());
    ASSERT_TRUE(s.start);
    EXPECT_EQ(*s.start, tp(2026, 11, 25, 6, 0, 0, 500000));
}

TEST(Schedule, DurationStringInterval) {
    auto s = Schedule::from_json(R"({"max_count":0,"interval":"5s"})");
    EXPECT_EQ(s.interval, 5s);
    EXPECT_EQ(s.max_count, 0);
    EXPECT_EQ(Schedule::from_json(R"({"max_count":2,"interval":"250ms"})").interval, 250ms);
    expect_error([] { Schedule::from_json(R"({"max_count":2,"interval":"soon"})"); },
                 ErrorKind::Invalid, {"schedule.interval"});
    expect_error([] { Schedule::from_json(R"({"max_count":2,"interval":true})"); },
                 ErrorKind::Invalid, {"schedule.interval"});
}

TEST(Schedule, FromJsonValidates) {
    expect_error([] { Schedule::from_json(R"({"max_count":5})"); }, ErrorKind::Invalid,
                 {"interval"});
    expect_error([] { Schedule::from_json(R"({"max_count":-2,"interval":1})"); },
                 ErrorKind::Invalid, {"max_count"});
    expect_error([] { Schedule::from_json(R"({"start":"yesterday"})"); }, ErrorKind::Invalid,
                 {"schedule.start"});
    expect_error([] { Schedule::from_json(R"({"when":1})"); }, ErrorKind::Invalid, {"when"});
}

TEST(Schedule, JsonRoundTrip) {
    Schedule s;
    s.start = tp(2030, 1, 2, 3, 4, 5, 123456);
    s.max_count = 4;
    s.interval = 90s;
    s.next_interval = "next_monday";
    auto text = s.to_json();
    rapidjson::Document d;
    d.Parse(text.c_str());
    ASSERT_TRUE(d.IsObject()) << text;
    EXPECT_STREQ(d["start"].GetString(), "2030-01-02T03:04:05.123456Z");
    ASSERT_TRUE(d["interval"].IsInt64()) << "Go shape: integer nanoseconds";
    EXPECT_EQ(d["interval"].GetInt64(), 90'000'000'000);
    auto back = Schedule::from_json(text);
    EXPECT_EQ(back.start, s.start);
    EXPECT_EQ(back.max_count, 4);
    EXPECT_EQ(back.interval, 90s);
    EXPECT_EQ(back.next_interval, "next_monday");
}

// ---- Options ----

TEST(Options, FullRoundTrip) {
    Options o;
    o.on_error = OnError{30, 3, 1, RetryBackoff::Linear};
    Schedule s;
    s.start = tp(2026, 11, 25, 6, 0, 0);
    s.max_count = 0;
    s.interval = 1h;
    o.schedule = s;
    o.parent_rid = "0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11";
    o.metadata_json = R"({"team":"billing","n":[1,2]})";
    EXPECT_NO_THROW(o.validate());
    auto text = o.to_json();
    rapidjson::Document d;
    d.Parse(text.c_str());
    ASSERT_TRUE(d.IsObject()) << text;
    EXPECT_TRUE(d["on_error"].IsObject());
    EXPECT_TRUE(d["schedule"].IsObject());
    EXPECT_STREQ(d["parent_rid"].GetString(), o.parent_rid.c_str());
    EXPECT_STREQ(d["metadata"]["team"].GetString(), "billing");

    auto back = Options::from_json(text);
    ASSERT_TRUE(back.on_error);
    EXPECT_EQ(*back.on_error, *o.on_error);
    ASSERT_TRUE(back.schedule);
    EXPECT_EQ(back.schedule->start, s.start);
    EXPECT_EQ(back.schedule->max_count, 0);
    EXPECT_EQ(back.schedule->interval, 1h);
    EXPECT_EQ(back.parent_rid, o.parent_rid);
    EXPECT_EQ(back.metadata_json, R"({"team":"billing","n":[1,2]})");
    EXPECT_EQ(back.to_json(), text);
}

TEST(Options, EmptyOptionsOmitEveryKey) {
    Options o;
    EXPECT_TRUE(o.empty());
    EXPECT_EQ(o.to_json(), "{}");
    EXPECT_TRUE(Options::from_json("").empty());
    EXPECT_TRUE(Options::from_json("null").empty());
    EXPECT_TRUE(Options::from_json("{}").empty());
}

TEST(Options, PythonShapeWithNullsAccepted) {
    auto o = Options::from_json(R"({"on_error":null,"schedule":null})");
    EXPECT_TRUE(o.empty());
    auto p = Options::from_json(
        R"({"on_error":{"timeout":30.0,"max_retries":3,"retry_delay":1.0,"retry_backoff":"none"},)"
        R"("schedule":null})");
    ASSERT_TRUE(p.on_error);
    EXPECT_EQ(p.on_error->max_retries, 3);
    EXPECT_FALSE(p.schedule);
}

TEST(Options, InvalidPiecesRejected) {
    expect_error([] { Options::from_json(R"({"on_error":{"max_retries":-1}})"); },
                 ErrorKind::Invalid, {"max_retries"});
    expect_error([] { Options::from_json(R"({"colour":"red"})"); }, ErrorKind::Invalid, {"colour"});
    expect_error([] { Options::from_json(R"({"metadata":[1]})"); }, ErrorKind::Invalid,
                 {"metadata"});
    expect_error([] { Options::from_json("[]"); }, ErrorKind::Invalid, {"options"});
    Options o;
    o.parent_rid = "not-a-uuid";
    expect_error([&] { o.validate(); }, ErrorKind::Invalid, {"parent_rid"});
}

TEST(Options, MetadataThatIsNotAJsonObjectIsRejectedByValidate) {
    // metadata_json is written into options verbatim; garbage must not reach the database.
    Options o;
    o.metadata_json = "not json";
    expect_error([&] { o.validate(); }, ErrorKind::Invalid, {"metadata"});
    o.metadata_json = "[1,2]";
    expect_error([&] { o.validate(); }, ErrorKind::Invalid, {"metadata"});
    o.metadata_json = R"({"ok":true})";
    EXPECT_NO_THROW(o.validate());
}

// ---- Job / Worker / Master JSON ----

TEST(Job, ToJsonHasExactlyTheReferenceFieldNamesInOrder) {
    Job j;
    j.id = 42;
    j.rid = "0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11";
    j.task_name = "say \"hi\"\n";
    j.parameters = R"([1,"a"])";
    j.parameters_keyed = R"({"k":true})";
    j.status = std::string(status::queued);
    j.scheduled_at = tp(2026, 1, 2, 3, 4, 5);
    j.results = "[]";
    j.error = "tab\there";
    j.created_at = tp(2026, 1, 1, 0, 0, 0);
    j.updated_at = tp(2026, 1, 1, 0, 0, 1, 7);
    auto text = j.to_json();
    rapidjson::Document d;
    d.Parse(text.c_str());
    ASSERT_FALSE(d.HasParseError()) << text;
    ASSERT_TRUE(d.IsObject());
    std::vector<std::string> keys;
    for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it)
        keys.emplace_back(it->name.GetString());
    std::vector<std::string> expected = {
        "id",        "rid",          "worker_id",  "worker_rid",
        "options",   "task_name",    "parameters", "parameters_keyed",
        "status",    "scheduled_at", "started_at", "schedule_count",
        "attempts",  "results",      "error",      "created_at",
        "updated_at"};
    EXPECT_EQ(keys, expected);
    EXPECT_EQ(d["id"].GetInt64(), 42);
    EXPECT_STREQ(d["task_name"].GetString(), "say \"hi\"\n");
    EXPECT_STREQ(d["error"].GetString(), "tab\there");
    EXPECT_TRUE(d["parameters"].IsArray());
    EXPECT_EQ(d["parameters"][1].GetString(), std::string("a"));
    EXPECT_TRUE(d["parameters_keyed"]["k"].GetBool());
    EXPECT_TRUE(d["results"].IsArray());
    EXPECT_TRUE(d["options"].IsObject());
    EXPECT_TRUE(d["started_at"].IsNull());
    EXPECT_STREQ(d["scheduled_at"].GetString(), "2026-01-02T03:04:05.000000Z");
    EXPECT_STREQ(d["updated_at"].GetString(), "2026-01-01T00:00:01.000007Z");
}

TEST(Job, UnreadableColumnsAreNullAndMarked) {
    Job j;
    j.rid = "0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11";
    j.status = std::string(status::succeeded);
    j.parameters = "[1]";
    j.results = "";
    j.unreadable = {"results"};
    j.sealed_by = "pgcrypto";
    j.unreadable_reason = "encrypted by a Go or Python queuer client";
    rapidjson::Document d;
    d.Parse(j.to_json().c_str());
    ASSERT_FALSE(d.HasParseError()) << j.to_json();
    EXPECT_TRUE(d["results"].IsNull());
    EXPECT_EQ(d["parameters"][0].GetInt(), 1);
    EXPECT_STREQ(d["status"].GetString(), "SUCCEEDED");
    ASSERT_TRUE(d["unreadable"].IsObject());
    EXPECT_STREQ(d["unreadable"]["columns"][0].GetString(), "results");
    EXPECT_STREQ(d["unreadable"]["encrypted_by"].GetString(), "pgcrypto");
    EXPECT_STREQ(d["unreadable"]["reason"].GetString(), j.unreadable_reason.c_str());
}

TEST(Job, OptionsInAShapeThisBuildDoesNotReadAreShownAsStored) {
    Job j;
    j.options_json = R"({"schedule":{"start":"someday"},"other":1})";
    rapidjson::Document d;
    d.Parse(j.to_json().c_str());
    ASSERT_FALSE(d.HasParseError()) << j.to_json();
    EXPECT_STREQ(d["options"]["schedule"]["start"].GetString(), "someday");
}

// ---- compat forms (what is written into the database) ----

TEST(CompatForm, ParsesNamesAndRejectsOthers) {
    EXPECT_EQ(parse_compat_form("python"), CompatForm::Python);
    EXPECT_EQ(parse_compat_form("Go"), CompatForm::Go);
    EXPECT_STREQ(to_string(CompatForm::Go), "go");
    expect_error([] { parse_compat_form("rust", "--compat"); }, ErrorKind::Invalid,
                 {"--compat", "python or go", "rust"});
}

TEST(CompatForm, PythonFormHasFloatSecondsAndANaiveStart) {
    Options o;
    Schedule s;
    s.start = tp(2030, 1, 2, 3, 4, 5, 500000);
    s.max_count = 2;
    s.interval = 1h;
    o.schedule = s;
    o.on_error = OnError{30, 3, 1, RetryBackoff::None};
    EXPECT_EQ(o.to_json(CompatForm::Python),
              R"({"on_error":{"timeout":30.0,"max_retries":3,"retry_delay":1.0,)"
              R"("retry_backoff":"none"},"schedule":{"start":"2030-01-02T03:04:05.500000",)"
              R"("max_count":2,"interval":3600.0,"next_interval":null}})");
    s.start = tp(2030, 1, 2, 3, 4, 5);
    s.interval = 0s;
    s.max_count = 1;
    EXPECT_EQ(s.to_json(CompatForm::Python),
              R"({"start":"2030-01-02T03:04:05","max_count":1,"interval":null,)"
              R"("next_interval":null})");
    // Read back as written.
    auto back = Options::from_json(o.to_json(CompatForm::Python));
    EXPECT_EQ(back.schedule->interval, 1h);
    EXPECT_EQ(back.schedule->start, tp(2030, 1, 2, 3, 4, 5, 500000));
}

TEST(CompatForm, GoFormHasIntegerNanosecondsAndRfc3339) {
    Schedule s;
    s.start = tp(2030, 1, 2, 3, 4, 5);
    s.max_count = 2;
    s.interval = 1500ms;
    EXPECT_EQ(s.to_json(CompatForm::Go),
              R"({"start":"2030-01-02T03:04:05.000000Z","max_count":2,"interval":1500000000})");
    EXPECT_EQ(s.to_json(), s.to_json(CompatForm::Go));
    EXPECT_EQ(Schedule::from_json(s.to_json(CompatForm::Go)).interval, 1500ms);
}

TEST(Time, NaiveFormatIsPythonsIsoformat) {
    EXPECT_EQ(format_time_naive(tp(2026, 11, 25, 6, 0, 0)), "2026-11-25T06:00:00");
    EXPECT_EQ(format_time_naive(tp(2026, 11, 25, 6, 0, 0, 7)), "2026-11-25T06:00:00.000007");
    EXPECT_EQ(parse_time(format_time_naive(tp(2026, 11, 25, 6, 0, 0, 7)), "t"),
              tp(2026, 11, 25, 6, 0, 0, 7));
}

TEST(Worker, ToJsonParses) {
    Worker w;
    w.id = 1;
    w.rid = "0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11";
    w.name = "w\"1";
    w.available_tasks = {"echo", "sleep"};
    w.status = std::string(worker_status::ready);
    rapidjson::Document d;
    auto text = w.to_json();
    d.Parse(text.c_str());
    ASSERT_TRUE(d.IsObject()) << text;
    EXPECT_STREQ(d["name"].GetString(), "w\"1");
    EXPECT_EQ(d["available_tasks"].Size(), 2u);
    EXPECT_FALSE(d.HasMember("options"));
}

TEST(MasterSettings, ZeroOrMissingFieldsGetDefaults) {
    auto s = MasterSettings::from_json(
        R"({"master_lock_timeout":0,"master_poll_interval":0,"retention_archive":0})");
    EXPECT_EQ(s.master_lock_timeout, 5min);
    EXPECT_EQ(s.master_poll_interval, 1min);
    EXPECT_EQ(s.retention_archive, std::chrono::hours(24 * 7));
    EXPECT_EQ(s.worker_stale_threshold, 5min);
    EXPECT_EQ(s.worker_delete_threshold, 24h);
    EXPECT_EQ(s.job_stale_threshold, 1h);
    auto e = MasterSettings::from_json("{}");
    EXPECT_EQ(e.master_lock_timeout, 5min);
    EXPECT_EQ(MasterSettings::from_json("").job_stale_threshold, 1h);
}

TEST(MasterSettings, NonZeroFieldsKeptAndRoundTrip) {
    auto s = MasterSettings::from_json(R"({"master_lock_timeout":30000000000,)"
                                       R"("retention_archive":3600000000000})");
    EXPECT_EQ(s.master_lock_timeout, 30s);
    EXPECT_EQ(s.retention_archive, 1h);
    EXPECT_EQ(s.master_poll_interval, 1min);
    auto back = MasterSettings::from_json(s.to_json());
    EXPECT_EQ(back.master_lock_timeout, 30s);
    EXPECT_EQ(back.retention_archive, 1h);
    rapidjson::Document d;
    auto text = s.to_json();
    d.Parse(text.c_str());
    ASSERT_TRUE(d["job_stale_threshold"].IsInt64());
    EXPECT_EQ(d["job_stale_threshold"].GetInt64(), 3'600'000'000'000);
}

// ---- BatchJob ----

TEST(MasterSettings, PythonMastersShapeIsReadInItsUnits) {
    auto s = MasterSettings::from_json(
        R"({"retention_archive": 30, "master_poll_interval": 30.0, "lock_timeout_minutes": 5})");
    EXPECT_EQ(s.retention_archive, std::chrono::hours(24 * 30));
    EXPECT_EQ(s.master_poll_interval, 30s);
    EXPECT_EQ(s.master_lock_timeout, 5min);
    EXPECT_EQ(s.worker_stale_threshold, 2min);
}

TEST(BatchJob, FromJsonReadsEveryField) {
    auto b = BatchJob::from_json(
        R"({"task":"echo","parameters":[1,"x"],"parameters_keyed":{"a":1},)"
        R"("options":{"on_error":{"max_retries":2,"retry_backoff":"linear"}}})");
    EXPECT_EQ(b.task, "echo");
    EXPECT_EQ(b.parameters, R"([1,"x"])");
    EXPECT_EQ(b.parameters_keyed, R"({"a":1})");
    ASSERT_TRUE(b.options);
    ASSERT_TRUE(b.options->on_error);
    EXPECT_EQ(b.options->on_error->max_retries, 2);
    auto minimal = BatchJob::from_json(R"({"task":"noop"})");
    EXPECT_EQ(minimal.parameters, "[]");
    EXPECT_EQ(minimal.parameters_keyed, "{}");
    EXPECT_FALSE(minimal.options);
}

TEST(BatchJob, UnknownFieldRejected) {
    expect_error([] { BatchJob::from_json(R"({"task":"echo","priority":1})"); }, ErrorKind::Invalid,
                 {"priority"});
}

TEST(BatchJob, TaskRequired) {
    expect_error([] { BatchJob::from_json(R"({"parameters":[]})"); }, ErrorKind::Invalid, {"task"});
    expect_error([] { BatchJob::from_json(R"({"task":7})"); }, ErrorKind::Invalid, {"task"});
}

TEST(BatchJob, WrongParameterTypesRejected) {
    expect_error([] { BatchJob::from_json(R"({"task":"e","parameters":{"a":1}})"); },
                 ErrorKind::Invalid, {"parameters", "array"});
    expect_error([] { BatchJob::from_json(R"({"task":"e","parameters_keyed":[1]})"); },
                 ErrorKind::Invalid, {"parameters_keyed", "object"});
    expect_error([] { BatchJob::from_json(R"({"task":"e",)"); }, ErrorKind::Invalid, {"JSON"});
    expect_error([] { BatchJob::from_json(R"([1])"); }, ErrorKind::Invalid, {"object"});
}

// ---- time ----

TEST(Time, ParsesRfc3339WithZ) {
    EXPECT_EQ(parse_time("2026-11-25T06:00:00Z", "t"), tp(2026, 11, 25, 6, 0, 0));
    EXPECT_EQ(parse_time("2026-11-25t06:00:00z", "t"), tp(2026, 11, 25, 6, 0, 0));
}

TEST(Time, ParsesOffsets) {
    EXPECT_EQ(parse_time("2026-11-25T08:30:00+02:30", "t"), tp(2026, 11, 25, 6, 0, 0));
    EXPECT_EQ(parse_time("2026-11-25T01:00:00-05:00", "t"), tp(2026, 11, 25, 6, 0, 0));
    EXPECT_EQ(parse_time("2026-11-25T07:00:00+0100", "t"), tp(2026, 11, 25, 6, 0, 0));
    // Across a day boundary.
    EXPECT_EQ(parse_time("2026-11-24T23:00:00-07:00", "t"), tp(2026, 11, 25, 6, 0, 0));
}

TEST(Time, ParsesFractions) {
    EXPECT_EQ(parse_time("2026-11-25T06:00:00.5Z", "t"), tp(2026, 11, 25, 6, 0, 0, 500000));
    EXPECT_EQ(parse_time("2026-11-25T06:00:00.123456Z", "t"), tp(2026, 11, 25, 6, 0, 0, 123456));
    // Go writes nanoseconds; digits beyond microseconds are dropped.
    EXPECT_EQ(parse_time("2026-11-25T06:00:00.123456789+00:00", "t"),
              tp(2026, 11, 25, 6, 0, 0, 123456));
}

TEST(Time, ParsesPostgresFormat) {
    EXPECT_EQ(parse_time("2026-11-25 06:00:00.000123", "t"), tp(2026, 11, 25, 6, 0, 0, 123));
    EXPECT_EQ(parse_time("2026-11-25 06:00:00", "t"), tp(2026, 11, 25, 6, 0, 0));
    // Go's "not scheduled" sentinel parses (callers map it to absent).
    EXPECT_EQ(parse_time("0001-01-01 00:00:00", "t"), tp(1, 1, 1, 0, 0, 0));
}

TEST(Time, FormatIsRfc3339UtcWithMicrosecondsAndRoundTrips) {
    auto t = tp(2026, 11, 25, 6, 0, 0, 123456);
    EXPECT_EQ(format_time(t), "2026-11-25T06:00:00.123456Z");
    EXPECT_EQ(parse_time(format_time(t), "t"), t);
    auto n = now();
    EXPECT_EQ(parse_time(format_time(n), "t"), n);
}

TEST(Time, GarbageRejectedNamingWhat) {
    for (const char* bad :
         {"", "yesterday", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-25T25:00:00Z",
          "2026-11-25T06:00:00.Z", "2026-11-25T06:00:00Zjunk", "2026-11-25T06:00", "2026/11/25"}) {
        expect_error([&] { parse_time(bad, "schedule.start"); }, ErrorKind::Invalid,
                     {"schedule.start"});
    }
}

// ---- durations ----

TEST(Duration, ParsesUnits) {
    EXPECT_EQ(parse_duration("500ms", "d"), 500ms);
    EXPECT_EQ(parse_duration("3s", "d"), 3s);
    EXPECT_EQ(parse_duration("5m", "d"), 5min);
    EXPECT_EQ(parse_duration("2h", "d"), 2h);
    EXPECT_EQ(parse_duration("30d", "d"), std::chrono::hours(24 * 30));
    EXPECT_EQ(parse_duration("1.5", "d"), 1500ms);
    EXPECT_EQ(parse_duration("10", "d"), 10s);
    EXPECT_EQ(parse_duration(" 2s ", "d"), 2s);
}

TEST(Duration, GarbageRejectedNamingWhat) {
    for (const char* bad : {"", "soon", "5x", "-5s", "s", "1.2.3s", ".", "5 s", "1e3"}) {
        expect_error([&] { parse_duration(bad, "master.retention_archive"); }, ErrorKind::Invalid,
                     {"master.retention_archive"});
    }
}

TEST(Duration, OutOfRangeRejectedInsteadOfWrapping) {
    // 10^12 days do not fit in int64 nanoseconds; must not silently wrap.
    expect_error([] { parse_duration("1000000000000d", "d"); }, ErrorKind::Invalid, {"d"});
}

// ---- names and rids ----

TEST(TaskName, LengthLimits) {
    expect_error([] { validate_task_name(""); }, ErrorKind::Invalid, {"task name", "empty"});
    expect_error([] { validate_task_name(std::string(101, 'a')); }, ErrorKind::Invalid,
                 {"task name", "100"});
    EXPECT_NO_THROW(validate_task_name(std::string(100, 'a')));
    EXPECT_NO_THROW(validate_task_name("x"));
    expect_error([] { validate_task_name("", "batch task"); }, ErrorKind::Invalid, {"batch task"});
}

TEST(Rid, CanonicalUuidAccepted) {
    EXPECT_NO_THROW(validate_rid("0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11"));
    EXPECT_NO_THROW(validate_rid("0B7F7A1E-8D3C-4C1A-9F2E-2F6D3F0A9B11"));
}

TEST(Rid, MalformedRejected) {
    for (const char* bad :
         {"", "abc", "0b7f7a1e8d3c4c1a9f2e2f6d3f0a9b11", "0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b1",
          "0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b111", "0b7f7a1e-8d3c-4c1a-9f2e_2f6d3f0a9b11",
          "zb7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b11", "0b7f7a1e-8d3c-4c1a-9f2e-2f6d3f0a9b1-"}) {
        expect_error([&] { validate_rid(bad, "job rid"); }, ErrorKind::Invalid, {"job rid"});
    }
}
