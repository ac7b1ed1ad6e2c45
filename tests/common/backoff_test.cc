#include "common/time/backoff.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale {
namespace {

using ::testing::ElementsAre;

std::vector<absl::Duration> Take(Backoff& b, int n) {
  std::vector<absl::Duration> out;
  for (int i = 0; i < n; ++i) out.push_back(b.Next());
  return out;
}

TEST(BackoffTest, GrowsByTheMultiplierUpToTheCapAndStartsOverOnReset) {
  Backoff b({absl::Milliseconds(100), absl::Milliseconds(500), 2.0, Jitter::kNone});
  EXPECT_THAT(Take(b, 5),
              ElementsAre(absl::Milliseconds(100), absl::Milliseconds(200), absl::Milliseconds(400),
                          absl::Milliseconds(500), absl::Milliseconds(500)));
  EXPECT_EQ(b.retries(), 5);
  b.Reset();
  EXPECT_EQ(b.Next(), absl::Milliseconds(100));
}

TEST(BackoffTest, CeilingNeverOverflowsHoweverLongItFails) {
  const BackoffPolicy p{absl::Seconds(1), absl::Minutes(5), 10.0, Jitter::kNone};
  EXPECT_EQ(p.Ceiling(0), absl::Seconds(1));
  EXPECT_EQ(p.Ceiling(2), absl::Seconds(100));
  EXPECT_EQ(p.Ceiling(1'000'000), absl::Minutes(5));
}

TEST(BackoffTest, JitterKindsSpreadAsDocumented) {
  BackoffPolicy p{absl::Seconds(1), absl::Seconds(30), 2.0, Jitter::kProportional, 0.2};
  // retry 1: ceiling 2s.
  EXPECT_EQ(p.Delay(1, 0.0), absl::Milliseconds(1600));
  EXPECT_EQ(p.Delay(1, 0.5), absl::Seconds(2));
  EXPECT_EQ(p.Delay(1, 1.0), absl::Milliseconds(2400));
  p.jitter = Jitter::kEqual;
  EXPECT_EQ(p.Delay(1, 0.0), absl::Seconds(1));
  EXPECT_EQ(p.Delay(1, 1.0), absl::Seconds(2));
  p.jitter = Jitter::kFull;
  EXPECT_EQ(p.Delay(1, 0.0), absl::ZeroDuration());
  EXPECT_EQ(p.Delay(1, 0.25), absl::Milliseconds(500));
  // A source out of range is held to it.
  EXPECT_EQ(p.Delay(1, 7.0), absl::Seconds(2));
}

TEST(BackoffTest, InjectedSourceGivesExactSequences) {
  std::vector<double> draws = {0.0, 0.5, 1.0};
  size_t i = 0;
  Backoff b({absl::Seconds(1), absl::Seconds(30), 2.0, Jitter::kFull},
            [&] { return draws[i++ % draws.size()]; });
  EXPECT_THAT(Take(b, 3), ElementsAre(absl::ZeroDuration(), absl::Seconds(1), absl::Seconds(4)));
}

TEST(BackoffTest, DefaultSourceStaysWithinTheSpread) {
  Backoff b({absl::Seconds(1), absl::Seconds(1), 2.0, Jitter::kEqual});
  for (int i = 0; i < 100; ++i) {
    const absl::Duration d = b.Next();
    EXPECT_GE(d, absl::Milliseconds(500));
    EXPECT_LE(d, absl::Seconds(1));
  }
}

}  // namespace
}  // namespace zeroscale
