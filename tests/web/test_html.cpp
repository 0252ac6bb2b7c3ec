// The console's HTML helpers (no database): escaping, URL encoding, numbers and ages, the chart.
#include <gtest/gtest.h>

#include "web/html.hpp"
#include "web/pages.hpp"

namespace queuerctl::web {
namespace {

TEST(WebHtml, EscapesEveryCharacterThatEndsTextOrAnAttribute) {
    EXPECT_EQ(esc(R"(<a href="x" title='y'>&amp;</a>)"),
              "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
    EXPECT_EQ(esc("plain text, ünïcode \u00b7"), "plain text, ünïcode \u00b7");
    EXPECT_EQ(esc(""), "");
}

TEST(WebHtml, UrlEncodingKeepsOnlyUnreservedCharacters) {
    EXPECT_EQ(url_encode("a b&c=d/é\"<"), "a%20b%26c%3Dd%2F%C3%A9%22%3C");
    EXPECT_EQ(url_encode("AZaz09-_.~"), "AZaz09-_.~");
    EXPECT_EQ(query_string({{"task", "a&b"}, {"status", ""}, {"since", "1h"}}),
              "?task=a%26b&since=1h");
    EXPECT_EQ(query_string({{"task", ""}}), "");
}

TEST(WebHtml, JsonStringsAreSafeInsideHtml) {
    EXPECT_EQ(json_str("</script>\"\\\n\x01&"), R"("\u003c/script\u003e\"\\\n\u0001\u0026")");
}

TEST(WebHtml, NumbersAndAges) {
    EXPECT_EQ(num(0), "0");
    EXPECT_EQ(num(999), "999");
    EXPECT_EQ(num(1000), "1,000");
    EXPECT_EQ(num(1234567), "1,234,567");
    EXPECT_EQ(num(-1234), "-1,234");
    EXPECT_EQ(age_text(0), "0 s");
    EXPECT_EQ(age_text(119.9), "119 s");
    EXPECT_EQ(age_text(300), "5 min");
    EXPECT_EQ(age_text(7200), "2.0 h");
    EXPECT_EQ(age_text(3 * 86400), "3.0 d");
    EXPECT_EQ(age_text(-5), "0 s");
}

TEST(WebHtml, PrettyJsonLeavesTextThatIsNotJsonAlone) {
    EXPECT_EQ(pretty_json(R"({"a":[1,2],"b":"<x>"})"), "{\n  \"a\": [1, 2],\n  \"b\": \"<x>\"\n}");
    EXPECT_EQ(pretty_json("not json <b>"), "not json <b>");
}

TEST(WebPages, ChartScalesToARoundTopAndLabelsEveryMinuteWithCounts) {
    queuer::admin::Activity a;
    a.minutes = 3;
    a.first_minute = queuer::parse_time("2026-01-31T12:00:00Z", "t");
    a.per_minute = {{0, 0, 0}, {30, 2, 1}, {7, 0, 0}};
    std::string svg = chart_svg(a);
    EXPECT_NE(svg.find("<span>50</span>"), std::string::npos) << svg;  // 33 -> 50
    EXPECT_NE(svg.find("12:01 UTC: 30 succeeded, 2 failed, 1 cancelled"), std::string::npos);
    EXPECT_NE(svg.find("12:02 UTC: 7 succeeded"), std::string::npos);
    EXPECT_EQ(svg.find("12:00 UTC"), std::string::npos) << "an empty minute draws nothing";
    EXPECT_NE(svg.find("40 in all, at most 33 in one minute"), std::string::npos);
}

}  // namespace
}  // namespace queuerctl::web
