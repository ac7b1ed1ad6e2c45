// The automaton's behaviour through the Engine, with a fake clock, a manual scheduler and
// a ReplicaSetter the test completes by hand: no sleeping, no threads.
#include "scaler/decide/engine.h"

#include <chrono>
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/scaler/decide/test_util.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::decide {
namespace {

using ::testing::ElementsAre;
using testing::FakeSetter;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::kWorkload;
using testing::RecordingSink;
using testing::Rule;

class EngineTest : public ::testing::Test {
 protected:
  void Make(DeciderOptions options = {}) {
    engine_ = std::make_unique<Engine>(&clock_, &scheduler_, &setter_, &sink_, options);
  }
  void SetUp() override { Make(); }

  WorkloadSpec Spec(int32_t min, int32_t max, std::vector<ScalingRule> rules = {},
                    absl::Duration idle = absl::ZeroDuration()) {
    WorkloadSpec s;
    s.workload = kWorkload;
    s.min_replicas = min;
    s.max_replicas = max;
    s.rules = std::move(rules);
    s.idle_timeout = idle;
    return s;
  }

  // One sample from each of `pods` pods, with `f` filling in the metrics.
  std::vector<Decision> Feed(int pods, const std::function<void(Podmetric&)>& f = nullptr) {
    std::vector<Podmetric> batch;
    for (int i = 0; i < pods; ++i) {
      Podmetric m = testing::Sample(absl::StrCat("p", i), clock_.Now());
      m.seq = ++seq_;
      if (f) f(m);
      batch.push_back(m);
    }
    std::vector<Decision> out = engine_->OnSamples(batch);
    scheduler_.RunPending();
    return out;
  }
  // Advances time second by second, feeding samples, like sidecars do.
  void FeedFor(absl::Duration d, int pods, const std::function<void(Podmetric&)>& f = nullptr) {
    for (absl::Duration t; t < d; t += absl::Seconds(1)) {
      Advance(absl::Seconds(1));
      Feed(pods, f);
    }
  }
  // Moves past the rules' 1s window without running anything (samples stay fresh).
  void Step() { clock_.Advance(absl::Seconds(2)); }
  void Advance(absl::Duration d) {
    clock_.Advance(d);
    scheduler_.RunPending();
  }
  void CompleteSet(absl::Status s = absl::OkStatus()) {
    setter_.CompleteSet(s);
    scheduler_.RunPending();
  }
  void CompleteGet(absl::StatusOr<int32_t> n) {
    setter_.CompleteGet(n);
    scheduler_.RunPending();
  }
  WorkloadStatus Status() { return *engine_->GetStatus(kWorkload); }
  const Decision& Last() { return sink_.decisions.back(); }
  // Registers with `replicas` and fresh samples so the automaton is Active, then gives
  // it its rules once those samples have left the rules' window.
  void StartActive(WorkloadSpec spec, int32_t replicas, int pods = -1) {
    WorkloadSpec bare = spec;
    bare.rules.clear();
    ASSERT_TRUE(engine_->Upsert(bare, replicas).ok());
    Feed(pods < 0 ? replicas : pods);
    ASSERT_EQ(Status().state, State::kActive);
    Step();
    ASSERT_TRUE(engine_->Upsert(spec, replicas).ok());
    ASSERT_THAT(setter_.history, IsEmpty());
  }

  zeroscale::testing::FakeClock clock_;
  ManualScheduler scheduler_{&clock_};
  FakeSetter setter_;
  RecordingSink sink_;
  std::unique_ptr<Engine> engine_;
  uint64_t seq_ = 0;
};

// Rules over a 1s window, so that after Step() a test's new samples are judged alone.
ScalingRule Short(ScalingRule r) {
  r.window_seconds = 1;
  return r;
}
const ScalingRule kBusy = Short(Rule("busy", Action::kIncreaseInstances,
                                     MetricType::kInFlightRequests, Operator::kGreaterThan, 4));
const ScalingRule kCalm =
    Short(Rule("calm", Action::kDecreaseInstances, MetricType::kCpuUsage, Operator::kLessThan, 20));
const ScalingRule kIdle = Short(Rule("idle", Action::kDecreaseInstancesToZero,
                                     MetricType::kRequestRate, Operator::kEqualTo, 0));

TEST_F(EngineTest, RegistrationIsRecordedAndHoldsWithoutSamples) {
  ASSERT_TRUE(engine_->Upsert(Spec(1, 4, {kBusy}), 2).ok());
  ASSERT_EQ(sink_.decisions.size(), 1u);
  EXPECT_EQ(Last().trigger, Trigger::kRegistered);
  EXPECT_THAT(Last().reason, HasSubstr("registered with 2 replicas"));
  EXPECT_EQ(Status().state, State::kHolding);
  EXPECT_THAT(Status().note, HasSubstr("no samples received yet: holding 2 replicas"));
  EXPECT_THAT(setter_.history, IsEmpty());
}

TEST_F(EngineTest, StatusIsPushedOnChangeOnly) {
  ASSERT_TRUE(engine_->Upsert(Spec(1, 4, {kBusy}), 1).ok());
  ASSERT_EQ(sink_.statuses.size(), 1u);
  EXPECT_EQ(sink_.statuses.back(), Status());
  EXPECT_EQ(sink_.statuses.back().state, State::kHolding);

  Feed(1);  // fresh samples: Active
  ASSERT_EQ(sink_.statuses.size(), 2u);
  EXPECT_EQ(sink_.statuses.back().state, State::kActive);
  Advance(absl::Milliseconds(100));
  Feed(1);  // nothing the status shows changed: nothing pushed
  EXPECT_EQ(sink_.statuses.size(), 2u);

  Step();
  Feed(1, [](Podmetric& m) { m.in_flight = 9; });  // a scale-up goes out
  ASSERT_EQ(sink_.statuses.size(), 3u);
  EXPECT_TRUE(sink_.statuses.back().actuation_in_flight);
  EXPECT_EQ(sink_.statuses.back().desired, 2);
  EXPECT_EQ(sink_.statuses.back().replicas, 1);
  CompleteSet();  // the write landed: the new count is pushed without a decision
  ASSERT_EQ(sink_.statuses.size(), 4u);
  EXPECT_FALSE(sink_.statuses.back().actuation_in_flight);
  EXPECT_EQ(sink_.statuses.back().replicas, 2);
  EXPECT_EQ(sink_.statuses.back(), Status());

  EXPECT_TRUE(engine_->Remove(kWorkload));
  EXPECT_THAT(sink_.removed, ElementsAre(kWorkload));
}

TEST_F(EngineTest, InvalidSpecIsRefused) {
  EXPECT_EQ(engine_->Upsert(Spec(3, 2), 1).code(), absl::StatusCode::kInvalidArgument);
  WorkloadSpec other = Spec(0, 2, {kBusy});
  other.rules[0].target = "ml/Deployment/other";
  EXPECT_EQ(engine_->Upsert(other, 1).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EngineTest, StartsAtMinReplicasFromZero) {
  ASSERT_TRUE(engine_->Upsert(Spec(2, 3), 0).ok());
  EXPECT_EQ(Status().state, State::kWaking);
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.front().n, 2);
  // The write says what it was decided on, so it cannot land on another count.
  EXPECT_EQ(setter_.sets.front().from, 0);
  EXPECT_THAT(Last().reason, HasSubstr("minReplicas is 2: 0 -> 2 replicas"));
  CompleteSet();
  EXPECT_EQ(Status().replicas, 2);
}

TEST_F(EngineTest, IncreaseWhenRuleHolds) {
  StartActive(Spec(1, 4, {kBusy}), 1);
  std::vector<Decision> out = Feed(1, [](Podmetric& m) { m.in_flight = 7.2; });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reason,
            "rule 'busy' holds: IN_FLIGHT_REQUESTS 7.2 > 4 over 1s: 1 -> 2 replicas");
  EXPECT_EQ(out[0].rule, "busy");
  EXPECT_EQ(out[0].from, State::kActive);
  EXPECT_EQ(out[0].to, State::kActive);
  EXPECT_EQ(out[0].replicas_before, 1);
  EXPECT_EQ(out[0].replicas_after, 2);
  EXPECT_EQ(out[0].trigger, Trigger::kSample);
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.front().workload, kWorkload);
  EXPECT_EQ(setter_.sets.front().n, 2);
  EXPECT_TRUE(Status().actuation_in_flight);
  EXPECT_EQ(Status().desired, 2);
  // Nothing more is decided while the write is in flight.
  EXPECT_THAT(Feed(1, [](Podmetric& m) { m.in_flight = 9; }), IsEmpty());
  CompleteSet();
  EXPECT_EQ(Status().replicas, 2);
  // The samples so far were taken before the change: no second step on them.
  EXPECT_THAT(setter_.history, ElementsAre(2));
  EXPECT_EQ(Status().note, "waiting for samples taken after the last scale change");
  // A sample after the change still shows the load: with 1 of 2 pods reporting it may
  // scale up again.
  Step();
  Feed(1, [](Podmetric& m) { m.in_flight = 9; });
  EXPECT_THAT(setter_.history, ElementsAre(2, 3));
}

TEST_F(EngineTest, AnyIncreaseBeatsAnyDecrease) {
  StartActive(Spec(1, 5, {kCalm, kBusy}), 3);
  Feed(3, [](Podmetric& m) {
    m.in_flight = 2;  // 6 in total > 4
    m.cpu_usage = 5;  // calm holds too
  });
  EXPECT_THAT(setter_.history, ElementsAre(4));
  EXPECT_EQ(Last().rule, "busy");
}

TEST_F(EngineTest, LargestIncreaseStepAndSmallestDecreaseStepWin) {
  ScalingRule big = kBusy;
  big.id = "very-busy";
  big.step = 3;
  StartActive(Spec(1, 10, {kBusy, big}), 2);
  Feed(2, [](Podmetric& m) { m.in_flight = 5; });
  EXPECT_THAT(setter_.history, ElementsAre(5));
  Step();
  CompleteSet();

  ScalingRule calm2 = kCalm;
  calm2.id = "very-calm";
  calm2.step = 2;
  ASSERT_TRUE(engine_->Upsert(Spec(1, 10, {calm2, kCalm}), 5).ok());
  Step();
  Feed(5, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, ElementsAre(5, 4));
  EXPECT_EQ(Last().rule, "calm");
}

TEST_F(EngineTest, ToZeroOnlyWhenNothingElseActs) {
  StartActive(Spec(0, 5, {kIdle, kCalm, kBusy}), 3);
  // Busy and idle both hold (no request rate, but in-flight high): increase.
  Feed(3, [](Podmetric& m) {
    m.in_flight = 3;
    m.cpu_usage = 1;
  });
  EXPECT_THAT(setter_.history, ElementsAre(4));
  CompleteSet();
  Step();
  // Calm and idle hold: decreases first, one step at a time, down to one replica.
  Feed(4, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, ElementsAre(4, 3));
  CompleteSet();
  Step();
  Feed(3, [](Podmetric& m) { m.cpu_usage = 1; });
  CompleteSet();
  Step();
  Feed(2, [](Podmetric& m) { m.cpu_usage = 1; });
  CompleteSet();
  Step();
  EXPECT_THAT(setter_.history, ElementsAre(4, 3, 2, 1));
  // At the decrease floor, to-zero is the last step.
  Feed(1, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, ElementsAre(4, 3, 2, 1, 0));
  EXPECT_EQ(Last().rule, "idle");
  EXPECT_EQ(Last().to, State::kScaledToZero);
  CompleteSet();
  EXPECT_EQ(Status().state, State::kScaledToZero);
  EXPECT_EQ(Status().replicas, 0);
}

TEST_F(EngineTest, ToZeroRuleIsClampedToMinReplicas) {
  StartActive(Spec(2, 5, {kIdle}), 4);
  Feed(4);
  EXPECT_THAT(setter_.history, ElementsAre(2));
  EXPECT_THAT(Last().reason, HasSubstr("clamped to minReplicas 2"));
}

TEST_F(EngineTest, CooldownPerDirection) {
  ScalingRule busy = kBusy;
  busy.cooldown_seconds = 30;
  ScalingRule calm = kCalm;
  calm.cooldown_seconds = 20;
  StartActive(Spec(1, 10, {busy, calm}), 2);
  Feed(2, [](Podmetric& m) { m.in_flight = 5; });
  CompleteSet();
  EXPECT_THAT(setter_.history, ElementsAre(3));
  // Still busy, but within the 30s cooldown: nothing.
  FeedFor(absl::Seconds(29), 3, [](Podmetric& m) { m.in_flight = 5; });
  EXPECT_THAT(setter_.history, ElementsAre(3));
  EXPECT_THAT(Status().note, HasSubstr("in cooldown"));
  FeedFor(absl::Seconds(1), 3, [](Podmetric& m) { m.in_flight = 5; });
  EXPECT_THAT(setter_.history, ElementsAre(3, 4));
  CompleteSet();
  // A decrease waits for its cooldown since the last increase too.
  FeedFor(absl::Seconds(19), 4, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, ElementsAre(3, 4));
  // Its timer fires when the cooldown ends, even without a new sample at that instant.
  clock_.Advance(absl::Milliseconds(500));
  Feed(4, [](Podmetric& m) { m.cpu_usage = 1; });
  Advance(absl::Milliseconds(500));
  EXPECT_THAT(setter_.history, ElementsAre(3, 4, 3));
  EXPECT_EQ(Last().trigger, Trigger::kTimer);
}

TEST_F(EngineTest, ClampedToMaxAndMin) {
  StartActive(Spec(2, 3, {kBusy, kCalm}), 3);
  Feed(3, [](Podmetric& m) { m.in_flight = 9; });
  EXPECT_THAT(setter_.history, IsEmpty());
  EXPECT_THAT(Status().note, HasSubstr("at maxReplicas 3"));
  ScalingRule calm = kCalm;
  calm.step = 5;
  ASSERT_TRUE(engine_->Upsert(Spec(2, 3, {calm}), 3).ok());
  Feed(3, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, ElementsAre(2));  // 3 - 5, clamped to minReplicas
  CompleteSet();
  Feed(2, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, ElementsAre(2));
}

TEST_F(EngineTest, DecreaseNeverReachesZero) {
  StartActive(Spec(0, 3, {kCalm}), 1);
  Feed(1, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, IsEmpty());
}

TEST_F(EngineTest, ReplicasOutsideBoundsAreClamped) {
  ASSERT_TRUE(engine_->Upsert(Spec(1, 4), 10).ok());
  EXPECT_THAT(setter_.history, ElementsAre(4));
  EXPECT_THAT(Last().reason, HasSubstr("above maxReplicas 4: 10 -> 4 replicas"));
}

TEST_F(EngineTest, IdleTimeoutScalesToZero) {
  StartActive(Spec(0, 3, {}, absl::Seconds(30)), 1);
  FeedFor(absl::Seconds(10), 1, [](Podmetric& m) { m.request_count = 3; });
  FeedFor(absl::Seconds(29), 1);
  EXPECT_THAT(setter_.history, IsEmpty());
  FeedFor(absl::Seconds(1), 1);
  EXPECT_THAT(setter_.history, ElementsAre(0));
  EXPECT_EQ(Last().reason, "no request for 30s (idleTimeoutSeconds 30): 1 -> 0 replicas");
  EXPECT_EQ(Last().to, State::kScaledToZero);
}

TEST_F(EngineTest, BalancerTrafficCountsAsRequests) {
  StartActive(Spec(0, 3, {}, absl::Seconds(30)), 1);
  FeedFor(absl::Seconds(20), 1);
  ASSERT_TRUE(engine_->OnTraffic(kWorkload, {clock_.Now(), 5, 0}).ok());
  FeedFor(absl::Seconds(29), 1);
  EXPECT_THAT(setter_.history, IsEmpty());
  FeedFor(absl::Seconds(1), 1);
  EXPECT_THAT(setter_.history, ElementsAre(0));
}

TEST_F(EngineTest, InFlightRequestsBlockScaleToZero) {
  StartActive(Spec(0, 3, {}, absl::Seconds(5)), 1);
  Feed(1);
  EXPECT_THAT(setter_.history, IsEmpty()) << "registration counts as a request";
  // The balancer holds two requests.
  ASSERT_TRUE(engine_->OnTraffic(kWorkload, {clock_.Now(), 0, 2}).ok());
  FeedFor(absl::Seconds(10), 1);
  EXPECT_THAT(setter_.history, IsEmpty());
  EXPECT_THAT(Status().note, HasSubstr("2 requests are in flight: not scaling to zero"));
  // The balancer's queue drains.
  ASSERT_TRUE(engine_->OnTraffic(kWorkload, {clock_.Now(), 0, 0}).ok());
  Advance(absl::Seconds(1));
  Feed(1);
  EXPECT_THAT(setter_.history, ElementsAre(0));
}

TEST_F(EngineTest, SidecarInFlightBlocksScaleToZero) {
  ScalingRule quiet = Short(Rule("quiet", Action::kDecreaseInstancesToZero, MetricType::kCpuUsage,
                                 Operator::kLessThan, 50));
  StartActive(Spec(0, 3, {quiet}), 1);
  Feed(1, [](Podmetric& m) { m.in_flight = 0.5; });
  EXPECT_THAT(setter_.history, IsEmpty());
  EXPECT_THAT(Status().note, HasSubstr("in flight"));
  Feed(1);
  EXPECT_THAT(setter_.history, ElementsAre(0));
}

TEST_F(EngineTest, StaleDataHoldsAndSaysWhy) {
  StartActive(Spec(0, 5, {kCalm, kIdle}, absl::Seconds(10)), 3);
  // Busy CPU, so nothing to do, then the samples stop.
  Feed(3, [](Podmetric& m) {
    m.cpu_usage = 90;
    m.request_rate = 1;
  });
  size_t before = sink_.decisions.size();
  Advance(absl::Seconds(5));
  EXPECT_EQ(sink_.decisions.size(), before);
  Advance(absl::Milliseconds(1));  // the staleness timer fires
  ASSERT_EQ(sink_.decisions.size(), before + 1);
  EXPECT_EQ(Last().from, State::kActive);
  EXPECT_EQ(Last().to, State::kHolding);
  EXPECT_EQ(Last().trigger, Trigger::kTimer);
  EXPECT_EQ(Last().reason, "no fresh samples for 5s: holding 3 replicas");
  // Long past the idle timeout: missing data is not idleness.
  Advance(absl::Minutes(10));
  EXPECT_THAT(setter_.history, IsEmpty());
  EXPECT_EQ(Status().state, State::kHolding);
  EXPECT_THAT(Status().note, HasSubstr("no fresh samples for 5s: holding 3 replicas"));
  // Fresh data again: back to Active and deciding.
  Feed(3, [](Podmetric& m) {
    m.cpu_usage = 90;
    m.request_rate = 1;
  });
  EXPECT_EQ(Status().state, State::kActive);
  EXPECT_THAT(sink_.decisions.back().reason, HasSubstr("fresh samples from 3 pods"));
}

TEST_F(EngineTest, PartialDataAllowsUpButNotDown) {
  StartActive(Spec(1, 5, {kCalm, kBusy}), 3, /*pods=*/1);
  Feed(1, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, IsEmpty());
  EXPECT_THAT(Status().note, HasSubstr("only 1 of 3 pods report fresh samples"));
  Feed(1, [](Podmetric& m) { m.in_flight = 10; });
  EXPECT_THAT(setter_.history, ElementsAre(4));
}

// What Kubernetes lists of the target's pods: ids as Feed names them (ml/p<i>).
TargetPods Pods(int existing, std::vector<int> serving) {
  TargetPods p;
  for (int i = 0; i < existing; ++i) p.existing.push_back(absl::StrCat("ml/p", i));
  for (int i : serving) p.serving.push_back(absl::StrCat("ml/p", i));
  return p;
}

// Defect: a pod that never reports (Pending: no GPU free, an image that does not pull)
// made "only 1 of 3 pods report" permanent, so nothing ever scaled down or to zero.
TEST_F(EngineTest, PendingPodsAreNotMissingData) {
  StartActive(Spec(1, 5, {kCalm}), 3, /*pods=*/1);
  ASSERT_TRUE(engine_->OnPods(kWorkload, Pods(3, {0})).ok());  // p1, p2 Pending
  Feed(1, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, ElementsAre(2));
  EXPECT_THAT(Last().reason, HasSubstr("rule 'calm' holds"));
}

TEST_F(EngineTest, PendingPodsDoNotBlockIdleScaleToZero) {
  StartActive(Spec(0, 5, {}, absl::Seconds(30)), 2, /*pods=*/1);
  ASSERT_TRUE(engine_->OnPods(kWorkload, Pods(2, {0})).ok());
  FeedFor(absl::Seconds(30), 1);
  EXPECT_THAT(setter_.history, ElementsAre(0));
  EXPECT_THAT(Last().reason, HasSubstr("no request for 30s"));
}

// A serving pod that stopped reporting is still missing data: its load is unknown.
TEST_F(EngineTest, AServingPodThatStoppedReportingBlocksScaleDown) {
  StartActive(Spec(1, 5, {kCalm}), 2);
  ASSERT_TRUE(engine_->OnPods(kWorkload, Pods(2, {0, 1})).ok());
  Advance(absl::Seconds(6));  // p1's last sample goes stale; p0 goes on
  Feed(1, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, IsEmpty());
  EXPECT_THAT(Status().note,
              HasSubstr("1 of 2 serving pods stopped reporting (ml/p1): not scaling down"));
  // Kubernetes says p1 no longer serves (not ready): nothing is missing any more.
  ASSERT_TRUE(engine_->OnPods(kWorkload, Pods(2, {0})).ok());
  Feed(1, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, ElementsAre(1));
}

// A serving pod that never reported is not missing data either.
TEST_F(EngineTest, AServingPodThatNeverReportedIsNotMissingData) {
  StartActive(Spec(1, 5, {kCalm}), 2, /*pods=*/1);
  ASSERT_TRUE(engine_->OnPods(kWorkload, Pods(2, {0, 1})).ok());
  Feed(1, [](Podmetric& m) { m.cpu_usage = 1; });
  EXPECT_THAT(setter_.history, ElementsAre(1));
}

// No pod serves (all Pending) and none ever reported: nothing can report, so nothing is
// missing and the idle timeout applies; with a serving pod silent it holds as before.
TEST_F(EngineTest, WhenNoPodServesOnlyTheIdleTimeoutActs) {
  ASSERT_TRUE(engine_->Upsert(Spec(0, 3, {kCalm}, absl::Seconds(30)), 1).ok());
  EXPECT_EQ(Status().state, State::kHolding);
  ASSERT_TRUE(engine_->OnPods(kWorkload, Pods(1, {})).ok());
  EXPECT_EQ(Status().state, State::kActive);
  EXPECT_EQ(Last().trigger, Trigger::kPods);
  EXPECT_THAT(Last().reason, HasSubstr("none of the 1 pods serves (Pending or not ready)"));
  Advance(absl::Seconds(29));
  EXPECT_THAT(setter_.history, IsEmpty());
  Advance(absl::Seconds(1));
  EXPECT_THAT(setter_.history, ElementsAre(0));

  ASSERT_TRUE(engine_->Upsert(Spec(0, 3, {}, absl::Seconds(30)), 1).ok());  // no change
  WorkloadSpec other = Spec(0, 3, {}, absl::Seconds(30));
  other.workload = "ml/Deployment/other";
  ASSERT_TRUE(engine_->Upsert(other, 1).ok());
  TargetPods serving;
  serving.existing = serving.serving = {"ml/q0"};
  ASSERT_TRUE(engine_->OnPods(other.workload, serving).ok());
  Advance(absl::Minutes(5));
  EXPECT_EQ(engine_->GetStatus(other.workload)->state, State::kHolding);
}

// A wake that never completes (the new replica stays Pending) gives its replica back
// once nobody waits for it: past the wake timeout and the idle timeout.
TEST_F(EngineTest, AWakeThatNeverCompletesReturnsToZeroWhenIdle) {
  ASSERT_TRUE(engine_->Upsert(Spec(0, 3, {}, absl::Seconds(60)), 0).ok());
  absl::Status result;
  engine_->Activate(kWorkload, [&](absl::Status s) { result = s; });
  CompleteSet();
  ASSERT_TRUE(engine_->OnPods(kWorkload, Pods(1, {})).ok());
  // The balancer still holds a request when the wake times out: not idle.
  Advance(absl::Minutes(5) - absl::Seconds(1));
  ASSERT_TRUE(engine_->OnTraffic(kWorkload, {clock_.Now(), 0, 1}).ok());
  Advance(absl::Seconds(1));
  EXPECT_EQ(result.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(setter_.history, ElementsAre(1));
  // Its hold ends too; a minute (idleTimeoutSeconds) later nobody has asked again.
  ASSERT_TRUE(engine_->OnTraffic(kWorkload, {clock_.Now(), 0, 0}).ok());
  Advance(absl::Seconds(58));
  EXPECT_THAT(setter_.history, ElementsAre(1));
  Advance(absl::Seconds(1));
  EXPECT_THAT(setter_.history, ElementsAre(1, 0));
  EXPECT_THAT(Last().reason, HasSubstr("no pod ready 300s after the wake; no request for"));
  CompleteSet();
  EXPECT_EQ(Status().state, State::kScaledToZero);
}

TEST_F(EngineTest, WakeFromZeroOnActivate) {
  ASSERT_TRUE(engine_->Upsert(Spec(0, 3, {kCalm}), 0).ok());
  EXPECT_EQ(Status().state, State::kScaledToZero);
  std::vector<absl::Status> ready;
  engine_->Activate(kWorkload, [&](absl::Status s) { ready.push_back(s); });
  EXPECT_EQ(Status().state, State::kWaking);
  EXPECT_EQ(Last().from, State::kScaledToZero);
  EXPECT_EQ(Last().to, State::kWaking);
  EXPECT_EQ(Last().trigger, Trigger::kActivate);
  EXPECT_EQ(Last().reason, "wake requested by the balancer: 0 -> 1 replicas");
  EXPECT_THAT(setter_.history, ElementsAre(1));
  // A second request while waking waits too, without a second write.
  engine_->Activate(kWorkload, [&](absl::Status s) { ready.push_back(s); });
  CompleteSet();
  EXPECT_THAT(ready, IsEmpty());
  Advance(absl::Milliseconds(4200));
  Feed(1, [](Podmetric& m) { m.ready = false; });  // sidecar up, model still loading
  EXPECT_THAT(ready, IsEmpty());
  Feed(1);
  EXPECT_EQ(Status().state, State::kActive);
  EXPECT_EQ(Last().from, State::kWaking);
  EXPECT_EQ(Last().to, State::kActive);
  EXPECT_EQ(Last().reason, "pod ml/p0 is ready 4.2s after the wake: serving with 1 replicas");
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_TRUE(ready[0].ok());
  EXPECT_THAT(setter_.history, ElementsAre(1));
  // Already running: at once.
  bool called = false;
  engine_->Activate(kWorkload, [&](absl::Status s) { called = s.ok(); });
  EXPECT_TRUE(called);
}

TEST_F(EngineTest, PodReadyEventEndsWaking) {
  ASSERT_TRUE(engine_->Upsert(Spec(0, 3), 0).ok());
  engine_->Activate(kWorkload, nullptr);
  CompleteSet();
  ASSERT_TRUE(engine_->OnPodReady(kWorkload, "ml/p9").ok());
  EXPECT_EQ(Status().state, State::kActive);
  EXPECT_EQ(Last().trigger, Trigger::kPodReady);
  EXPECT_THAT(Last().reason, HasSubstr("pod ml/p9 is ready"));
}

TEST_F(EngineTest, WakeTimeoutFailsWaiters) {
  ASSERT_TRUE(engine_->Upsert(Spec(0, 3), 0).ok());
  absl::Status result;
  engine_->Activate(kWorkload, [&](absl::Status s) { result = s; });
  CompleteSet();
  Advance(absl::Minutes(5));
  EXPECT_EQ(result.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(Status().state, State::kWaking);
  EXPECT_THAT(Last().reason, HasSubstr("no pod ready 300s after the wake"));
}

TEST_F(EngineTest, ActivateDuringScaleToZeroWakesAfterIt) {
  StartActive(Spec(0, 3, {kIdle}), 1);
  Feed(1);
  ASSERT_THAT(setter_.history, ElementsAre(0));
  bool ready = false;
  engine_->Activate(kWorkload, [&](absl::Status s) { ready = s.ok(); });
  EXPECT_THAT(setter_.history, ElementsAre(0)) << "one write at a time";
  CompleteSet();
  EXPECT_THAT(setter_.history, ElementsAre(0, 1));
  EXPECT_EQ(Status().state, State::kWaking);
  CompleteSet();
  EXPECT_FALSE(ready) << "the pod stopped before the wake does not count";
  Advance(absl::Seconds(1));
  Feed(1);
  EXPECT_TRUE(ready);
}

TEST_F(EngineTest, ReplicasChangedOutsideZeroscale) {
  StartActive(Spec(0, 10, {kBusy}), 2);
  ASSERT_TRUE(engine_->OnObservedReplicas(kWorkload, 5).ok());
  EXPECT_EQ(Last().trigger, Trigger::kObservedReplicas);
  EXPECT_EQ(Last().reason, "replicas changed outside zeroscale: 2 -> 5 replicas");
  EXPECT_EQ(Status().replicas, 5);
  ASSERT_TRUE(engine_->OnObservedReplicas(kWorkload, 5).ok());  // no change: nothing new
  EXPECT_EQ(Last().replicas_after, 5);
  ASSERT_TRUE(engine_->OnObservedReplicas(kWorkload, 0).ok());
  EXPECT_EQ(Status().state, State::kScaledToZero);
  EXPECT_EQ(Last().to, State::kScaledToZero);
  ASSERT_TRUE(engine_->OnObservedReplicas(kWorkload, 2).ok());
  EXPECT_EQ(Status().state, State::kWaking);
  Advance(absl::Seconds(1));
  Feed(2);
  EXPECT_EQ(Status().state, State::kActive);
  EXPECT_THAT(setter_.history, IsEmpty());
  EXPECT_EQ(engine_->OnObservedReplicas("ml/Deployment/none", 1).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EngineTest, ConflictRereadsAndDecidesAgain) {
  StartActive(Spec(1, 10, {kBusy}), 2);
  Feed(2, [](Podmetric& m) { m.in_flight = 5; });
  ASSERT_THAT(setter_.history, ElementsAre(3));
  CompleteSet(absl::AbortedError("409 Conflict"));
  EXPECT_THAT(Last().reason, HasSubstr("could not set 3 replicas"));
  EXPECT_THAT(Last().reason, HasSubstr("re-reading it and deciding again"));
  EXPECT_EQ(Status().replicas, 2);
  ASSERT_EQ(setter_.gets.size(), 1u) << "a conflict re-reads at once";
  // Nothing is decided until the re-read answers, whatever arrives.
  Feed(2, [](Podmetric& m) { m.in_flight = 5; });
  EXPECT_THAT(setter_.history, ElementsAre(3));
  CompleteGet(6);  // someone else scaled meanwhile
  EXPECT_EQ(Status().replicas, 6) << "adopted first";
  // Decided afresh from 6, never the stale 2 -> 3 again.
  EXPECT_THAT(setter_.history, ElementsAre(3, 7));
  EXPECT_THAT(Last().reason, HasSubstr("6 -> 7 replicas"));
}

TEST_F(EngineTest, FailedWriteRereadsAfterBackoff) {
  StartActive(Spec(1, 10, {kBusy}), 2);
  Feed(2, [](Podmetric& m) { m.in_flight = 5; });
  CompleteSet(absl::UnavailableError("503"));
  EXPECT_THAT(setter_.gets, IsEmpty());
  Advance(absl::Seconds(1));
  ASSERT_EQ(setter_.gets.size(), 1u);
  CompleteGet(absl::UnavailableError("still down"));
  Advance(absl::Seconds(1));
  EXPECT_THAT(setter_.gets, IsEmpty()) << "backoff doubled";
  Advance(absl::Seconds(1));
  ASSERT_EQ(setter_.gets.size(), 1u);
  CompleteGet(2);
  EXPECT_THAT(setter_.history, ElementsAre(3)) << "the old decision is not retried";
  Feed(2, [](Podmetric& m) { m.in_flight = 5; });
  EXPECT_THAT(setter_.history, ElementsAre(3, 3));
}

TEST_F(EngineTest, DryRunRecordsButAppliesNothing) {
  DeciderOptions options;
  options.dry_run = true;
  Make(options);
  StartActive(Spec(0, 4, {kBusy}, absl::Seconds(30)), 1);
  std::vector<Decision> out = Feed(1, [](Podmetric& m) { m.in_flight = 5; });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].dry_run);
  EXPECT_EQ(out[0].reason,
            "dry run: rule 'busy' holds: IN_FLIGHT_REQUESTS 5 > 4 over 1s: 1 -> 2 replicas");
  EXPECT_EQ(Status().replicas, 1);
  // The same decision is not repeated on every sample.
  EXPECT_THAT(Feed(1, [](Podmetric& m) { m.in_flight = 5; }), IsEmpty());
  // Idle: would scale to zero, but does not.
  FeedFor(absl::Seconds(31), 1);
  EXPECT_EQ(Last().to, State::kScaledToZero);
  EXPECT_TRUE(Last().dry_run);
  EXPECT_EQ(Status().state, State::kActive);
  // At zero, a wake is recorded and refused.
  ASSERT_TRUE(engine_->OnObservedReplicas(kWorkload, 0).ok());
  absl::Status woke;
  engine_->Activate(kWorkload, [&](absl::Status s) { woke = s; });
  EXPECT_EQ(woke.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Last().to, State::kWaking);
  EXPECT_TRUE(Last().dry_run);
  EXPECT_THAT(setter_.history, IsEmpty());
  EXPECT_THAT(setter_.gets, IsEmpty());
}

TEST_F(EngineTest, RemovedWorkloadCancelsWaitersAndDropsSamples) {
  ASSERT_TRUE(engine_->Upsert(Spec(0, 3), 0).ok());
  absl::Status result;
  engine_->Activate(kWorkload, [&](absl::Status s) { result = s; });
  EXPECT_TRUE(engine_->Remove(kWorkload));
  EXPECT_EQ(result.code(), absl::StatusCode::kCancelled);
  CompleteSet();  // a late completion finds nobody
  Feed(1);
  EXPECT_EQ(engine_->unrouted_samples(), 1u);
  engine_->Activate(kWorkload, [&](absl::Status s) { result = s; });
  EXPECT_EQ(result.code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineTest, TenThousandWorkloadsAreCheap) {
  constexpr int kWorkloads = 10000;
  for (int i = 0; i < kWorkloads; ++i) {
    WorkloadSpec s = Spec(1, 4, {kBusy, kCalm});
    s.workload = absl::StrCat("ns/Deployment/w", i);
    for (ScalingRule& r : s.rules) r.target = s.workload;
    ASSERT_TRUE(engine_->Upsert(s, 2).ok());
  }
  const auto start = std::chrono::steady_clock::now();
  // 60 seconds of 2 pods per workload sampling once a second: 1.2M samples.
  for (int t = 0; t < 60; ++t) {
    clock_.Advance(absl::Seconds(1));
    std::vector<Podmetric> batch;
    batch.reserve(2 * kWorkloads);
    for (int i = 0; i < kWorkloads; ++i) {
      for (int p = 0; p < 2; ++p) {
        Podmetric m = testing::Sample(absl::StrCat("w", i, "-", p), clock_.Now());
        m.workload = absl::StrCat("ns/Deployment/w", i);
        m.cpu_usage = 50;
        m.in_flight = 1;
        batch.push_back(std::move(m));
      }
    }
    engine_->OnSamples(batch);
    scheduler_.RunPending();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // A minute of samples must take well under a minute (including building them here).
  EXPECT_LT(seconds, 30.0);
  EXPECT_THAT(setter_.history, IsEmpty());
  std::cerr << "10000 workloads x 2 pods x 60 s evaluated in " << seconds << " s\n";
}

}  // namespace
}  // namespace zeroscale::decide

namespace zeroscale::decide {
namespace {

class EngineStoredRulesTest : public EngineTest {};

TEST_F(EngineStoredRulesTest, StoredRuleForTheWorkloadDrivesDecisionsAndNamesItsSource) {
  StartActive(Spec(1, 4, {}), 1);
  EXPECT_EQ(engine_->SetStoredRules({kBusy}), 0u);
  scheduler_.RunPending();
  ASSERT_EQ(Status().rules.size(), 1u);
  EXPECT_EQ(Status().rules[0], (RuleRef{"busy", RuleSource::kRedis, Action::kIncreaseInstances}));
  Step();
  std::vector<Decision> out = Feed(1, [](Podmetric& m) { m.in_flight = 7; });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].rule, "busy");
  EXPECT_EQ(out[0].rule_source, "redis");
  EXPECT_EQ(out[0].replicas_after, 2);
  // Deleted: the rule is gone from the effective set.
  CompleteSet();
  engine_->SetStoredRules({});
  EXPECT_THAT(Status().rules, IsEmpty());
}

TEST_F(EngineStoredRulesTest, RulesStoredBeforeTheWorkloadExistsApplyWhenItIsAdded) {
  ScalingRule other = kCalm;
  other.target = "ns/Deployment/other";
  ScalingRule unbound = kIdle;
  unbound.target.clear();
  engine_->SetStoredRules({kBusy, other, unbound});
  ASSERT_TRUE(engine_->Upsert(Spec(1, 4, {}), 1).ok());
  ASSERT_EQ(Status().rules.size(), 1u);  // neither the other workload's nor the unbound
  EXPECT_EQ(Status().rules[0].id, "busy");
}

TEST_F(EngineStoredRulesTest, ConflictWithTheSpecIsReportedAndTheSpecWins) {
  StartActive(Spec(1, 4, {kBusy}), 1);
  ScalingRule stored = kBusy;
  stored.action = Action::kDecreaseInstances;
  EXPECT_EQ(engine_->SetStoredRules({stored}), 1u);
  EXPECT_EQ(engine_->rule_conflicts(), 1u);
  ASSERT_EQ(Status().rules.size(), 1u);
  EXPECT_EQ(Status().rules[0].source, RuleSource::kCustomAutoscaler);
  EXPECT_EQ(Status().rules[0].action, Action::kIncreaseInstances);
  ASSERT_EQ(Status().rule_conflicts.size(), 1u);
  EXPECT_EQ(Status().rule_conflicts[0].loser, RuleSource::kRedis);
  EXPECT_EQ(sink_.statuses.back(), Status());  // pushed to the reporters
  // Resolved by deleting the stored one.
  EXPECT_EQ(engine_->SetStoredRules({}), 0u);
  EXPECT_THAT(Status().rule_conflicts, IsEmpty());
}

TEST_F(EngineStoredRulesTest, InvalidStoredRulesAreDropped) {
  ASSERT_TRUE(engine_->Upsert(Spec(1, 4, {}), 1).ok());
  ScalingRule bad = kBusy;
  bad.step = 0;
  engine_->SetStoredRules({bad});
  EXPECT_THAT(Status().rules, IsEmpty());
}

TEST_F(EngineStoredRulesTest, SpecUpdatesKeepStoredRules) {
  ASSERT_TRUE(engine_->Upsert(Spec(1, 4, {}), 1).ok());
  engine_->SetStoredRules({kBusy});
  ASSERT_TRUE(engine_->Upsert(Spec(1, 5, {kCalm}), 1).ok());
  ASSERT_EQ(Status().rules.size(), 2u);
  EXPECT_EQ(Status().rules[0].id, "calm");
  EXPECT_EQ(Status().rules[1].id, "busy");
}

}  // namespace
}  // namespace zeroscale::decide
