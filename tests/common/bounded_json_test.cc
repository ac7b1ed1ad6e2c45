// The one bounded JSON parser: limits on size and nesting, errors that name them and do
// not echo the input.
#include "common/json/bounded_json.h"

#include "common/status/quote.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace zeroscale::json {
namespace {

using ::testing::HasSubstr;

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(BoundedJsonTest, ParsesWithinTheLimits) {
  nlohmann::json j;
  ASSERT_TRUE(ParseJson(R"({"a":[1,{"b":[2]}]})", JsonLimits{1024, 4}, &j).ok());
  EXPECT_EQ(j["a"][1]["b"][0], 2);
  ASSERT_TRUE(ParseJson(Nested(8), JsonLimits{1024, 8}, &j).ok());
}

TEST(BoundedJsonTest, NestingBeyondTheLimitIsRefusedNamingIt) {
  nlohmann::json j;
  absl::Status s = ParseJson(Nested(9), JsonLimits{1024, 8}, &j);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "body: nested deeper than 8 levels (the limit)");
  // The reproducers of issue 10: 100,000 levels, which a recursive dump() or copy of the
  // parsed document could not survive.
  s = ParseJson(Nested(100000), JsonLimits{1 << 20, 32}, &j);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = ParseJson(R"({"max_connections": )" + Nested(100000) + "}", kSmallDocument, &j);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(j.is_null());
}

TEST(BoundedJsonTest, SizeBeyondTheLimitIsResourceExhausted) {
  nlohmann::json j;
  const absl::Status s = ParseJson(std::string(2000, ' '), JsonLimits{1000, 8}, &j, "request");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "request: 2000 bytes, more than the limit of 1000");
}

TEST(BoundedJsonTest, SyntaxErrorsQuoteAtMostAFewBytes) {
  nlohmann::json j;
  // nlohmann's message quotes the last token read: here, most of a 1 MB string.
  const std::string bad = "\"" + std::string(1 << 20, 'x') + "\x01\"";
  const absl::Status s = ParseJson(bad, JsonLimits{2 << 20, 8}, &j);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("body: not valid JSON: "));
  EXPECT_LT(s.message().size(), 300u);
}

TEST(QuoteTest, CutsLongValuesAndEscapes) {
  EXPECT_EQ(Quote("ab\"c\n"), R"("ab\"c\x0a")");
  EXPECT_EQ(Quote(std::string(100, 'a'), 3), "\"aaa\"... (100 bytes)");
  EXPECT_EQ(Shorten(std::string(100, 'a'), 3), "aaa... (100 bytes)");
}

}  // namespace
}  // namespace zeroscale::json
