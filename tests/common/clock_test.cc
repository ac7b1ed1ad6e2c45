#include "common/time/clock.h"

#include "gtest/gtest.h"

namespace zeroscale {
namespace {

TEST(Rfc3339, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(FormatRfc3339(absl::FromUnixMillis(1'800'000'000'123)), "2027-01-15T08:00:00.123Z");
  EXPECT_EQ(FormatRfc3339(absl::FromUnixSeconds(0)), "1970-01-01T00:00:00.000Z");
}

TEST(Rfc3339, ParsesOffsetsAndFractions) {
  EXPECT_EQ(*ParseRfc3339("2027-01-15T08:00:00.123Z"), absl::FromUnixMillis(1'800'000'000'123));
  EXPECT_EQ(*ParseRfc3339("2027-01-15T10:00:00+02:00"), absl::FromUnixSeconds(1'800'000'000));
  EXPECT_FALSE(ParseRfc3339("2027-01-15 08:00").ok());
  EXPECT_FALSE(ParseRfc3339("").ok());
}

TEST(RealClock, MovesForward) {
  const absl::Time a = RealClock::Get()->Now();
  EXPECT_GE(RealClock::Get()->Now(), a);
}

}  // namespace
}  // namespace zeroscale
