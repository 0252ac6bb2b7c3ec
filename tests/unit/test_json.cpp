// JSON helpers: building parameters from C++ values, validation, quoting.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "queuer/client.hpp"
#include "queuer/error.hpp"
#include "queuer/json.hpp"

using namespace queuer;

TEST(Json, PacksPositionalAndKeyedParameters) {
    auto p = detail::pack(1, "a", true, 2.5, nullptr, Keyed{{"name", "x"}, {"n", 3}});
    EXPECT_EQ(p.positional, R"([1,"a",true,2.5,null])");
    EXPECT_EQ(p.keyed, R"({"name":"x","n":3})");
}

TEST(Json, QuotesStringsWithQuotesAndControlCharacters) {
    EXPECT_EQ(json::quote("a\"b\\c\n"), R"("a\"b\\c\n")");
}

TEST(Json, RejectsInvalidJsonNamingTheField) {
    try {
        json::require_array("[1,", "parameters");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Invalid);
        EXPECT_NE(std::string(e.what()).find("parameters"), std::string::npos);
    }
    EXPECT_THROW(json::require_array("{}", "parameters"), Error);
    EXPECT_THROW(json::require_object("[]", "parameters_keyed"), Error);
}

TEST(Json, ValuesFromOrdinaryCppTypes) {
    EXPECT_EQ(JsonValue().text(), "null");
    EXPECT_EQ(JsonValue(false).text(), "false");
    EXPECT_EQ(JsonValue(-7).text(), "-7");
    EXPECT_EQ(JsonValue(int64_t{9007199254740993}).text(), "9007199254740993");
    EXPECT_EQ(JsonValue(std::string("x\ty")).text(), R"("x\ty")");
    EXPECT_EQ(JsonValue(std::vector<int>{1, 2, 3}).text(), "[1,2,3]");
    EXPECT_EQ(JsonValue(std::map<std::string, int>{{"a", 1}, {"b", 2}}).text(), R"({"a":1,"b":2})");
    EXPECT_EQ(JsonValue::raw(" [ 1 , {\"a\" : null} ] ").text(), R"([1,{"a":null}])");
    EXPECT_THROW(JsonValue::raw("[1,"), Error);
    EXPECT_THROW(JsonValue(std::numeric_limits<double>::quiet_NaN()), Error);
    EXPECT_THROW(JsonValue(std::numeric_limits<double>::infinity()), Error);
}

TEST(Json, UnicodeAndControlCharactersSurviveQuoting) {
    std::string s = "caf\xc3\xa9 \xe2\x9c\x93 \x01 '); DROP TABLE job; --";
    auto q = json::quote(s);
    EXPECT_TRUE(json::is_valid(q)) << q;
    rapidjson::Document d;
    d.Parse(q.c_str());
    ASSERT_TRUE(d.IsString());
    EXPECT_EQ(std::string(d.GetString(), d.GetStringLength()), s);
}

TEST(Json, EmptyAndNoParametersPack) {
    auto p = detail::pack();
    EXPECT_EQ(p.positional, "[]");
    EXPECT_EQ(p.keyed, "{}");
    auto k = detail::pack(Keyed{{"only", "keyed"}});
    EXPECT_EQ(k.positional, "[]");
    EXPECT_EQ(k.keyed, R"({"only":"keyed"})");
}

TEST(Json, CompactAndValidity) {
    EXPECT_EQ(json::compact("{ \"a\" : [ 1 , 2 ] }", "x"), R"({"a":[1,2]})");
    EXPECT_TRUE(json::is_valid("null"));
    EXPECT_FALSE(json::is_valid(""));
    EXPECT_FALSE(json::is_valid("{'a':1}"));
    EXPECT_NO_THROW(json::require_object(R"({"a":1})", "k"));
    try {
        json::require_object("[]", "parameters_keyed");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Invalid);
        EXPECT_NE(std::string(e.what()).find("parameters_keyed"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("object"), std::string::npos);
    }
}

TEST(Json, CompactKeepsNumbersExactlyAsWritten) {
    EXPECT_EQ(json::compact(
                  "[123456789012345678901234567890, 0.1000000000000000055511151231257827]", "p"),
              "[123456789012345678901234567890,0.1000000000000000055511151231257827]");
    EXPECT_EQ(json::compact(R"({"a": -0.0, "b": 1E+2, "c": 3})", "p"),
              R"({"a":-0.0,"b":1E+2,"c":3})");
    EXPECT_EQ(JsonValue::raw("[18446744073709551616]").text(), "[18446744073709551616]");
    EXPECT_THROW(json::compact("[01]", "p"), Error);
    EXPECT_THROW(json::compact("[1.]", "p"), Error);
    EXPECT_THROW(json::compact("[1] [2]", "p"), Error);
}
