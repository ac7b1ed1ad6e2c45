// Keep-alive policies on hand-made idle-gap sequences (periodic, bursty, none,
// out-of-range, malformed state), and pre-warm timing through the Engine with a fake clock.
#include "scaler/decide/keep_alive/keep_alive.h"

#include <memory>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scaler/decide/engine.h"
#include "tests/scaler/decide/test_util.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::decide {
namespace {

using testing::FakeSetter;
using ::testing::HasSubstr;
using testing::kWorkload;
using testing::RecordingSink;
using ::testing::StartsWith;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

KeepAliveConfig Adaptive(absl::Duration cold_start = absl::Minutes(2)) {
  KeepAliveConfig c;
  c.policy = KeepAlivePolicy::kAdaptive;
  c.policy_set = true;
  c.cold_start = cold_start;
  c.min_samples = 5;
  return c;
}

// Feeds gaps as requests: each `at` is the previous request plus the gap.
void Feed(KeepAliveModel& m, const std::vector<absl::Duration>& gaps) {
  absl::Time t = kT0;
  m.OnActivity(absl::InfinitePast(), t);
  for (absl::Duration g : gaps) {
    m.OnActivity(t, t + g);
    t += g;
  }
}

TEST(KeepAliveTest, DefaultIsAdaptiveButKeepsIdleTimeoutZeroMeaningNever) {
  KeepAliveConfig c;
  KeepAliveModel off(c, absl::ZeroDuration());
  EXPECT_EQ(off.Plan().basis, KeepAlivePlan::Basis::kDisabled);
  EXPECT_EQ(off.Plan().unload_after, absl::InfiniteDuration());
  KeepAliveModel on(c, absl::Minutes(5));
  EXPECT_EQ(on.Plan().basis, KeepAlivePlan::Basis::kLearning);
  EXPECT_EQ(on.Plan().unload_after, absl::Minutes(5));
}

TEST(KeepAliveTest, FixedAndKnative) {
  KeepAliveConfig c;
  c.policy = KeepAlivePolicy::kFixed;
  KeepAliveModel fixed(c, absl::Minutes(10));
  EXPECT_EQ(fixed.Plan().basis, KeepAlivePlan::Basis::kFixed);
  EXPECT_EQ(fixed.Plan().unload_after, absl::Minutes(10));
  EXPECT_EQ(ExplainKeepAlive(fixed.Plan()), "idleTimeoutSeconds 600");
  KeepAliveModel off(c, absl::ZeroDuration());
  EXPECT_EQ(off.Plan().unload_after, absl::InfiniteDuration());

  c.policy = KeepAlivePolicy::kKnative;
  KeepAliveModel knative(c, absl::ZeroDuration());
  EXPECT_EQ(knative.Plan().unload_after, absl::Seconds(90));
  EXPECT_EQ(knative.Plan().prewarm_after, absl::InfiniteDuration());
}

TEST(KeepAliveTest, NoHistoryFallsBackToTheFixedKeepAlive) {
  KeepAliveModel m(Adaptive(), absl::Minutes(10));
  EXPECT_EQ(m.Plan().basis, KeepAlivePlan::Basis::kLearning);
  EXPECT_EQ(m.Plan().unload_after, absl::Minutes(10));
  EXPECT_EQ(m.Plan().prewarm_after, absl::InfiniteDuration());
  Feed(m, {absl::Minutes(30), absl::Minutes(30)});
  EXPECT_EQ(m.Plan().basis, KeepAlivePlan::Basis::kLearning);
  EXPECT_THAT(ExplainKeepAlive(m.Plan()), HasSubstr("still learning: 2 of 5 idle gaps"));
  // Without idleTimeoutSeconds the fallback is 10 minutes.
  KeepAliveModel none(Adaptive(), absl::ZeroDuration());
  EXPECT_EQ(none.Plan().unload_after, absl::Minutes(10));
}

TEST(KeepAliveTest, PeriodicGapsArePreWarmedAheadOfTheNextRequest) {
  KeepAliveModel m(Adaptive(), absl::Minutes(10));
  std::vector<absl::Duration> gaps;
  for (int i = 0; i < 40; ++i) gaps.push_back(absl::Minutes(30) + absl::Seconds(i % 3 * 10));
  Feed(m, gaps);
  const KeepAlivePlan& p = m.Plan();
  ASSERT_EQ(p.basis, KeepAlivePlan::Basis::kHistogram);
  // Every gap is in the 30-minute bin: ready at 30m at the latest, loading for 2m.
  ASSERT_NE(p.prewarm_after, absl::InfiniteDuration());
  EXPECT_LE(p.prewarm_after + absl::Minutes(2), absl::Minutes(30));
  EXPECT_GE(p.prewarm_after + absl::Minutes(2), absl::Minutes(27));
  EXPECT_GE(p.keep_until, absl::Minutes(31));
  EXPECT_LT(p.unload_after, p.prewarm_after);
  EXPECT_EQ(p.expected_cold, 0);
  EXPECT_EQ(p.fixed_cold, 1);  // a fixed 10m keep-alive never sees the next request
  EXPECT_LE(p.expected_idle, p.fixed_idle);
  EXPECT_THAT(ExplainPrewarm(p), HasSubstr("of 40 idle gaps last at least 30m"));
  EXPECT_THAT(ExplainPrewarm(p), HasSubstr("the model loads in 2m"));
}

TEST(KeepAliveTest, ShortPeriodsAreKeptAliveNotPreWarmed) {
  // Every 2.5 minutes with a 2-minute load: pre-warming would save less than a minute.
  KeepAliveModel m(Adaptive(), absl::Minutes(10));
  Feed(m, std::vector<absl::Duration>(20, absl::Seconds(150)));
  const KeepAlivePlan& p = m.Plan();
  EXPECT_EQ(p.prewarm_after, absl::InfiniteDuration());
  EXPECT_GE(p.unload_after, absl::Seconds(150));
  EXPECT_LE(p.unload_after, absl::Minutes(4));  // the tail, not the fixed 10m
  EXPECT_EQ(p.expected_cold, 0);
}

TEST(KeepAliveTest, BurstyRandomGapsDoNotBeatTheFixedKeepAlive) {
  // Bursts (gaps of seconds) between long random pauses (log-normal, median 1 hour):
  // nothing pays at no more idle time than the fixed keep-alive, so it stays.
  KeepAliveModel m(Adaptive(), absl::Minutes(10));
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> pause(std::log(3600.0), 1.0);
  std::vector<absl::Duration> gaps;
  for (int i = 0; i < 200; ++i) {
    gaps.push_back(i % 4 == 0 ? absl::Seconds(pause(rng)) : absl::Minutes(1) + absl::Seconds(5));
  }
  Feed(m, gaps);
  const KeepAlivePlan& p = m.Plan();
  EXPECT_LE(p.expected_idle, p.fixed_idle);
  EXPECT_LE(p.expected_cold, p.fixed_cold);
  if (p.basis == KeepAlivePlan::Basis::kNoBetter) {
    EXPECT_EQ(p.unload_after, absl::Minutes(10));
    EXPECT_THAT(ExplainKeepAlive(p), HasSubstr("nothing beats the fixed keep-alive"));
  }
}

TEST(KeepAliveTest, OutOfRangeGapsUseTheRecentGaps) {
  // A job every 6 hours (beyond the 4-hour histogram), with ±3 minutes of jitter.
  KeepAliveModel m(Adaptive(), absl::Minutes(10));
  std::vector<absl::Duration> gaps;
  for (int i = 0; i < 12; ++i) gaps.push_back(absl::Hours(6) + absl::Minutes(i % 3 * 3 - 3));
  Feed(m, gaps);
  EXPECT_EQ(m.out_of_range(), 12);
  const KeepAlivePlan& p = m.Plan();
  ASSERT_EQ(p.basis, KeepAlivePlan::Basis::kForecast);
  ASSERT_NE(p.prewarm_after, absl::InfiniteDuration());
  EXPECT_LE(p.prewarm_after + absl::Minutes(2), absl::Hours(6) - absl::Minutes(3));
  EXPECT_EQ(p.expected_cold, 0);
  EXPECT_LE(p.expected_idle, p.fixed_idle);
  EXPECT_THAT(ExplainPrewarm(p), HasSubstr("most exceed the histogram's range"));
}

TEST(KeepAliveTest, ActivityCountsOneGapPerMinute) {
  KeepAliveModel m(Adaptive(), absl::Minutes(10));
  absl::Time t = kT0;
  m.OnActivity(absl::InfinitePast(), t);
  for (int i = 1; i <= 120; ++i) {
    m.OnActivity(t, t + absl::Seconds(1));  // a request every second for two minutes
    t += absl::Seconds(1);
  }
  EXPECT_EQ(m.in_range(), 2);
}

TEST(KeepAliveTest, StateRoundTripsAndRejectsMalformedJson) {
  KeepAliveModel m(Adaptive(), absl::Minutes(10));
  Feed(m, std::vector<absl::Duration>(20, absl::Minutes(30)));
  m.OnColdStart(absl::Minutes(3));
  EXPECT_EQ(m.ColdStart(), absl::Minutes(3));
  KeepAliveModel copy(Adaptive(), absl::Minutes(10));
  ASSERT_TRUE(copy.LoadJson(m.ToJson()).ok());
  EXPECT_EQ(copy.ToJson(), m.ToJson());
  EXPECT_EQ(copy.Plan().prewarm_after, m.Plan().prewarm_after);

  for (const char* bad : {"", "[]", "{\"v\":2}", "{\"v\":1,\"bins\":7,\"oob\":0}",
                          "{\"v\":1,\"bins\":[[1,-1]],\"oob\":0,\"recent\":[],\"coldStarts\":[]}",
                          "{\"v\":1,\"bins\":[],\"oob\":0,\"recent\":[1,2,3,4,5,6,7,8,9,10,11,12,"
                          "13,14,15,16,17],\"coldStarts\":[]}",
                          "{\"v\":1,\"bins\":[[[[[1]]]]]}"}) {
    absl::Status s = copy.LoadJson(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad << ": " << s;
  }
  EXPECT_EQ(copy.ToJson(), m.ToJson());  // unchanged by the failures
}

TEST(KeepAliveTest, ConfigFieldsAreCheckedByName) {
  KeepAliveConfig c;
  EXPECT_TRUE(SetKeepAliveField(&c, "policy", "adaptive").ok());
  EXPECT_EQ(c.policy, KeepAlivePolicy::kAdaptive);
  EXPECT_TRUE(SetKeepAliveField(&c, "coldStartSeconds", "180").ok());
  EXPECT_EQ(c.cold_start, absl::Minutes(3));
  EXPECT_THAT(SetKeepAliveField(&c, "policy", "sometimes").message(),
              HasSubstr("keepAlive.policy must be fixed, knative or adaptive"));
  EXPECT_THAT(SetKeepAliveField(&c, "prewarm", "yes").message(),
              HasSubstr("keepAlive.prewarm must be true or false"));
  EXPECT_THAT(SetKeepAliveField(&c, "stableWindowSeconds", "-1").message(),
              HasSubstr("keepAlive.stableWindowSeconds must be a whole number"));
  EXPECT_THAT(SetKeepAliveField(&c, "polcy", "fixed").message(), HasSubstr("no field 'polcy'"));
  c.head_percentile = 99;
  c.tail_percentile = 5;
  EXPECT_THAT(ValidateKeepAlive(c).message(), HasSubstr("headPercentile must be below"));
}

// Pre-warming through the real automaton: after learning 30-minute gaps, a workload at
// zero is woken exactly prewarm_after past its last request, once per idle period.
class PrewarmTest : public ::testing::Test {
 protected:
  void SetUp() {
    engine_ = std::make_unique<Engine>(&clock_, &scheduler_, &setter_, &sink_);
    WorkloadSpec s;
    s.workload = kWorkload;
    s.min_replicas = 0;
    s.max_replicas = 1;
    s.idle_timeout = absl::Minutes(10);
    s.keep_alive = Adaptive();
    ASSERT_TRUE(engine_->Upsert(s, 1).ok());
  }
  void Sample(double in_flight = 0) {
    Podmetric m = testing::Sample("p0", clock_.Now());
    m.seq = ++seq_;
    m.in_flight = in_flight;
    engine_->OnSample(m);
    scheduler_.RunPending();
  }
  // Advances second by second with samples until a SetReplicas call is pending.
  absl::Time UntilSet(absl::Duration limit) {
    for (absl::Duration t; t < limit && setter_.sets.empty(); t += absl::Seconds(1)) {
      clock_.Advance(absl::Seconds(1));
      Sample();
    }
    return clock_.Now();
  }

  zeroscale::testing::FakeClock clock_{kT0};
  ManualScheduler scheduler_{&clock_};
  FakeSetter setter_;
  RecordingSink sink_;
  std::unique_ptr<Engine> engine_;
  uint64_t seq_ = 0;
};

TEST_F(PrewarmTest, WakesAheadOfThePredictedRequestOncePerIdlePeriod) {
  KeepAliveModel learned(Adaptive(), absl::Minutes(10));
  Feed(learned, std::vector<absl::Duration>(20, absl::Minutes(30)));
  const KeepAlivePlan plan = learned.Plan();
  ASSERT_NE(plan.prewarm_after, absl::InfiniteDuration());
  ASSERT_TRUE(engine_->LoadKeepAlive(kWorkload, learned.ToJson()).ok());

  // A request at L, done within the report.
  Sample();
  const absl::Time last = clock_.Now();
  ASSERT_TRUE(engine_->OnTraffic(kWorkload, TrafficReport{last, 1, 0}).ok());
  Sample();
  // To zero once the plan's keep-alive is over.
  EXPECT_EQ(UntilSet(absl::Minutes(5)), last + plan.unload_after);
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.front().n, 0);
  setter_.CompleteSet();
  scheduler_.RunPending();

  // Timers (earlier ones are the staleness timer's) until the pre-warm.
  while (setter_.sets.empty()) {
    std::optional<absl::Time> next = scheduler_.NextTimer();
    ASSERT_TRUE(next.has_value());
    clock_.Set(*next);
    scheduler_.RunPending();
  }
  EXPECT_EQ(clock_.Now(), last + plan.prewarm_after);
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.front().n, 1);
  EXPECT_THAT(setter_.sets.front().reason, StartsWith("pre-warming: "));
  EXPECT_THAT(setter_.sets.front().reason, HasSubstr("the model loads in 2m"));
  EXPECT_THAT(sink_.decisions.back().reason, HasSubstr("0 -> 1 replicas"));
  setter_.CompleteSet();
  scheduler_.RunPending();

  // The pod loads; no request comes: back to zero at keep_until, and no second pre-warm.
  clock_.Advance(absl::Minutes(2));
  Sample();
  EXPECT_EQ(engine_->GetStatus(kWorkload)->state, State::kActive);
  EXPECT_EQ(UntilSet(absl::Hours(1)), last + plan.keep_until);
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.front().n, 0);
  EXPECT_THAT(setter_.sets.front().reason, HasSubstr("pre-warmed, but no request came"));
  setter_.CompleteSet();
  scheduler_.RunPending();
  while (std::optional<absl::Time> t = scheduler_.NextTimer()) {
    clock_.Set(*t);
    scheduler_.RunPending();
  }
  EXPECT_TRUE(setter_.sets.empty());
  EXPECT_EQ(engine_->GetStatus(kWorkload)->state, State::kScaledToZero);
}

TEST_F(PrewarmTest, StatePersistsThroughTheSinkAtMostOncePerMinute) {
  class KeepAliveSink : public RecordingSink {
   public:
    void OnKeepAlive(const std::string& w, const std::string& state) override {
      saved.emplace_back(w, state);
    }
    std::vector<std::pair<std::string, std::string>> saved;
  } sink;
  Engine engine(&clock_, &scheduler_, &setter_, &sink);
  WorkloadSpec s;
  s.workload = kWorkload;
  s.min_replicas = 0;
  s.max_replicas = 1;
  s.idle_timeout = absl::Minutes(10);
  s.keep_alive = Adaptive();
  ASSERT_TRUE(engine.Upsert(s, 1).ok());
  for (int i = 0; i < 300; ++i) {  // a request every second for 5 minutes
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(engine.OnTraffic(kWorkload, TrafficReport{clock_.Now(), 1, 0}).ok());
    Podmetric m = testing::Sample("p0", clock_.Now());
    m.seq = static_cast<uint64_t>(i + 1);
    engine.OnSample(m);
  }
  EXPECT_GE(sink.saved.size(), 4u);
  EXPECT_LE(sink.saved.size(), 6u);
  EXPECT_EQ(sink.saved.back().first, kWorkload);
  KeepAliveModel restored(Adaptive(), absl::Minutes(10));
  EXPECT_TRUE(restored.LoadJson(sink.saved.back().second).ok());
}

}  // namespace
}  // namespace zeroscale::decide
