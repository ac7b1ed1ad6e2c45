#include "common/time/clock.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

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

TEST(RealClock, WaitUntilAPastDeadlineReturnsAtOnce) {
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  RealClock::Get()->WaitUntil(cv, lock, absl::InfinitePast());
  EXPECT_TRUE(lock.owns_lock());
  EXPECT_EQ(RealClock::Get()->BlockFor(absl::InfinitePast()), absl::ZeroDuration());
  EXPECT_EQ(RealClock::Get()->BlockFor(absl::InfiniteFuture()), absl::InfiniteDuration());
}

// A thread waiting through the fake clock wakes when the test moves time to its deadline,
// and the test can see what it waits for before moving.
TEST(FakeClock, WaitersWakeWhenTimeReachesTheirDeadline) {
  testing::FakeClock clock;
  const absl::Time start = clock.Now();
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    const absl::Time deadline = start + absl::Seconds(30);
    while (clock.Now() < deadline) clock.WaitUntil(cv, lock, deadline);
    done = true;
  });
  ASSERT_EQ(clock.AwaitWaiter(start, start + absl::Hours(1)), start + absl::Seconds(30));
  clock.Advance(absl::Seconds(29));
  // Still waiting, for the same deadline.
  ASSERT_EQ(clock.AwaitWaiter(start, start + absl::Hours(1)), start + absl::Seconds(30));
  EXPECT_FALSE(done.load());
  clock.Advance(absl::Seconds(1));
  waiter.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(clock.BlockFor(clock.Now()), absl::ZeroDuration());
  EXPECT_EQ(clock.BlockFor(clock.Now() + absl::Seconds(1)), absl::InfiniteDuration());
}

TEST(FakeClock, SubscribersHearEveryMove) {
  testing::FakeClock clock;
  int woken = 0;
  const uint64_t id = clock.Subscribe([&] { ++woken; });
  clock.Advance(absl::Seconds(1));
  clock.Set(clock.Now() + absl::Seconds(1));
  EXPECT_EQ(woken, 2);
  clock.Unsubscribe(id);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(woken, 2);
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
