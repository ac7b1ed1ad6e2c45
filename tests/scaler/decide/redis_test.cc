// Against a real redis-server: the decision history (capped list of JSON) and rebuilding
// a new leader's windows from the samples the ingest path stored.
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scaler/decide/decider.h"
#include "scaler/decide/history.h"
#include "scaler/decide/rebuild.h"
#include "scaler/store/podmetric_store.h"
#include "tests/scaler/decide/test_util.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::decide {
namespace {

using ::testing::ElementsAre;
using testing::FakeSetter;
using ::testing::HasSubstr;
using testing::kWorkload;
using testing::RecordingSink;

class DecideRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    RedisOptions options;
    options.port = server_.port();
    redis_ = std::make_unique<HiredisClient>(options, &clock_);
  }

  Decision MakeDecision(int i) {
    Decision d;
    d.time = clock_.Now() + absl::Milliseconds(i);
    d.workload = kWorkload;
    d.from = State::kActive;
    d.to = i % 2 ? State::kScaledToZero : State::kActive;
    d.replicas_before = i;
    d.replicas_after = i + 1;
    d.trigger = Trigger::kTimer;
    d.rule = "busy";
    d.reason = absl::StrCat("reason ", i);
    d.dry_run = i % 3 == 0;
    return d;
  }

  zeroscale::testing::FakeClock clock_;
  zeroscale::testing::RedisServer server_;
  std::unique_ptr<HiredisClient> redis_;
};

TEST_F(DecideRedisTest, HistoryIsACappedListNewestFirst) {
  DecisionHistory history(redis_.get(), /*capacity=*/5);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(history.Append(MakeDecision(i)).ok());
  EXPECT_EQ(server_.Cli("LLEN zeroscale:decisions:ml/Deployment/llama"), "5\n");
  absl::StatusOr<std::vector<Decision>> read = history.Read(kWorkload, 10);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 5u);
  EXPECT_EQ((*read)[0], MakeDecision(7));
  EXPECT_EQ((*read)[4], MakeDecision(3));
  EXPECT_EQ(history.Read(kWorkload, 2)->size(), 2u);
  EXPECT_TRUE(history.Read("ml/Deployment/other", 10)->empty());
  EXPECT_THAT(server_.Cli("LINDEX zeroscale:decisions:ml/Deployment/llama 0"),
              HasSubstr("\"replicasBefore\":7"));
}

TEST_F(DecideRedisTest, UnreadableEntriesAreSkipped) {
  DecisionHistory history(redis_.get());
  ASSERT_TRUE(history.Append(MakeDecision(1)).ok());
  server_.Cli("LPUSH zeroscale:decisions:ml/Deployment/llama garbage");
  size_t skipped = 0;
  absl::StatusOr<std::vector<Decision>> read = history.Read(kWorkload, 10, &skipped);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 1u);
  EXPECT_EQ(skipped, 1u);
}

TEST_F(DecideRedisTest, RedisDownIsUnavailableAndCounted) {
  DecisionHistory history(redis_.get());
  server_.Kill();
  EXPECT_EQ(history.Append(MakeDecision(1)).code(), absl::StatusCode::kUnavailable);
  history.Record(MakeDecision(2));
  EXPECT_EQ(history.failures(), 1u);
}

TEST_F(DecideRedisTest, EngineDecisionsLandInTheHistory) {
  ManualScheduler scheduler(&clock_);
  FakeSetter setter;
  DecisionHistory history(redis_.get());
  Engine engine(&clock_, &scheduler, &setter, &history);
  WorkloadSpec spec;
  spec.workload = kWorkload;
  spec.min_replicas = 0;
  spec.max_replicas = 2;
  ASSERT_TRUE(engine.Upsert(spec, 0).ok());
  engine.Activate(kWorkload, nullptr);
  absl::StatusOr<std::vector<Decision>> read = history.Read(kWorkload, 10);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].to, State::kWaking);
  EXPECT_EQ((*read)[0].reason, "wake requested by the balancer: 0 -> 1 replicas");
  EXPECT_EQ((*read)[1].trigger, Trigger::kRegistered);
}

TEST_F(DecideRedisTest, NewLeaderRebuildsFullWindowsFromRedis) {
  // The ingest path stored 60s of samples of two pods, busy throughout.
  store::PodmetricStore store(redis_.get(), &clock_, {});
  const absl::Time start = clock_.Now();
  std::vector<Podmetric> samples;
  for (int t = 0; t < 60; ++t) {
    for (int p = 0; p < 2; ++p) {
      Podmetric m = testing::Sample(absl::StrCat("p", p), start + absl::Seconds(t));
      m.seq = t + 1;
      m.in_flight = 3;
      samples.push_back(m);
    }
  }
  Podmetric other = testing::Sample("x", start);
  other.workload = "ml/Deployment/other";
  samples.push_back(other);
  std::vector<store::EncodedPodmetric> encoded;
  for (const Podmetric& m : samples) encoded.push_back(store::Encode(m));
  std::vector<const store::EncodedPodmetric*> ptrs;
  for (const store::EncodedPodmetric& e : encoded) ptrs.push_back(&e);
  ASSERT_TRUE(store.Write(ptrs).ok());
  clock_.Set(start + absl::Seconds(59));

  size_t skipped = 0;
  absl::StatusOr<std::vector<Podmetric>> loaded = LoadWorkloadSamples(
      redis_.get(), kWorkload, clock_.Now() - absl::Seconds(30), clock_.Now(), &skipped);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->size(), 62u);  // 31 seconds, both edges included, two pods
  EXPECT_EQ(skipped, 0u);

  // A new leader: its decider has no samples, yet the first evaluation after the rebuild
  // sees the full 60s window (mean in-flight 3 per pod, 6 > 5).
  ManualScheduler scheduler(&clock_);
  FakeSetter setter;
  RecordingSink sink;
  Decider decider(&clock_, &scheduler, &setter, &sink);
  decider.Upsert(testing::BusySpec(), 2);
  scheduler.RunPending();
  ASSERT_TRUE(decider.RebuildFromRedis(redis_.get()).ok());
  scheduler.RunPending();
  EXPECT_THAT(setter.history, ElementsAre(3));
  EXPECT_EQ(sink.decisions.back().reason,
            "rule 'busy' holds: IN_FLIGHT_REQUESTS 6 > 5 over 60s: 2 -> 3 replicas");
}

TEST_F(DecideRedisTest, RebuildWithRedisDownIsUnavailable) {
  server_.Kill();
  EXPECT_EQ(
      LoadWorkloadSamples(redis_.get(), kWorkload, clock_.Now() - absl::Minutes(1), clock_.Now())
          .status()
          .code(),
      absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace zeroscale::decide

namespace zeroscale::decide {
namespace {

// What an adaptive keep-alive policy learned survives a leader change: the old leader's
// sink writes it to zeroscale:keepalive:<workload>, the new leader's rebuild reads it.
TEST_F(DecideRedisTest, KeepAliveStateSurvivesALeaderChange) {
  WorkloadSpec spec;
  spec.workload = kWorkload;
  spec.min_replicas = 0;
  spec.max_replicas = 1;
  spec.idle_timeout = absl::Minutes(10);
  spec.keep_alive.policy = KeepAlivePolicy::kAdaptive;
  spec.keep_alive.min_samples = 5;
  spec.keep_alive.cold_start = absl::Minutes(2);

  std::string learned;
  {
    DecisionHistory writer(redis_.get());
    ManualScheduler scheduler(&clock_);
    FakeSetter setter;
    Engine old_leader(&clock_, &scheduler, &setter, &writer);
    ASSERT_TRUE(old_leader.Upsert(spec, 1).ok());
    // A request every 30 minutes for 10 hours.
    for (int i = 0; i < 20; ++i) {
      clock_.Advance(absl::Minutes(30));
      ASSERT_TRUE(old_leader.OnTraffic(kWorkload, TrafficReport{clock_.Now(), 1, 0}).ok());
      old_leader.OnSample(testing::Sample("p0", clock_.Now()));
      scheduler.RunPending();
    }
    learned = *old_leader.KeepAliveState(kWorkload);
    EXPECT_THAT(server_.Cli("GET zeroscale:keepalive:ml/Deployment/llama"), HasSubstr("\"bins\""));
  }
  KeepAliveModel check(spec.keep_alive, spec.idle_timeout);
  ASSERT_TRUE(check.LoadJson(learned).ok());
  EXPECT_GE(check.in_range(), 18);

  ManualScheduler scheduler(&clock_);
  FakeSetter setter;
  RecordingSink sink;
  Decider new_leader(&clock_, &scheduler, &setter, &sink);
  new_leader.Upsert(spec, 1);
  scheduler.RunPending();
  ASSERT_TRUE(new_leader.RebuildFromRedis(redis_.get()).ok());
  scheduler.RunPending();
  EXPECT_EQ(new_leader.engine().KeepAliveState(kWorkload), learned);

  // A malformed state is refused and the policy starts afresh.
  server_.Cli("SET zeroscale:keepalive:ml/Deployment/llama '{\"v\":7}'");
  Decider third(&clock_, &scheduler, &setter, &sink);
  third.Upsert(spec, 1);
  scheduler.RunPending();
  ASSERT_TRUE(third.RebuildFromRedis(redis_.get()).ok());
  scheduler.RunPending();
  KeepAliveModel fresh(spec.keep_alive, spec.idle_timeout);
  EXPECT_EQ(third.engine().KeepAliveState(kWorkload), fresh.ToJson());
}

}  // namespace
}  // namespace zeroscale::decide
