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

namespace zeroscale {
namespace {

TEST(Rfc3339, FastPathAgreesWithAbsl) {
  for (int64_t ms : {int64_t{0}, int64_t{999}, int64_t{1'800'000'000'123},
                     int64_t{951'782'400'000} /* 2000-02-29 */, int64_t{4'102'444'799'999}}) {
    const absl::Time t = absl::FromUnixMillis(ms);
    const std::string s = FormatRfc3339(t);
    EXPECT_EQ(s, absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", t, absl::UTCTimeZone()));
    EXPECT_EQ(*ParseRfc3339(s), t) << s;
  }
  // Consecutive calls in one second reuse the cached prefix correctly.
  EXPECT_EQ(FormatRfc3339(absl::FromUnixMillis(1'800'000'000'001)), "2027-01-15T08:00:00.001Z");
  EXPECT_EQ(FormatRfc3339(absl::FromUnixMillis(1'800'000'001'010)), "2027-01-15T08:00:01.010Z");
  EXPECT_EQ(FormatRfc3339(absl::FromUnixMillis(-1)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(*ParseRfc3339("2027-01-15T08:00:00.123456789Z"),
            absl::FromUnixNanos(1'800'000'000'123'456'789));
  EXPECT_EQ(*ParseRfc3339("2027-01-15T08:00:00Z"), absl::FromUnixSeconds(1'800'000'000));
  EXPECT_FALSE(ParseRfc3339("2027-02-30T08:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2027-01-15T08:00:00.Z").ok());
  EXPECT_FALSE(ParseRfc3339("2027-01-15T25:00:00Z").ok());
}

}  // namespace
}  // namespace zeroscale
