// JSON helpers: building parameters from C++ values, validation, quoting.
#include <gtest/gtest.h>

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
