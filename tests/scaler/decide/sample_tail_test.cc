// Against a real redis-server: the leader's tail of the samples other scaler replicas
// stored, written here through the ingest path's own store.
#include "scaler/decide/sample_tail.h"

#include <atomic>
#include <memory>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scaler/decide/decider.h"
#include "scaler/decide/scheduler.h"
#include "scaler/store/podmetric_store.h"
#include "tests/scaler/decide/test_util.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::decide {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::kWorkload;
using ::testing::UnorderedElementsAre;

// (pod, seq) of what was delivered, in order.
using Delivered = std::vector<std::pair<std::string, uint64_t>>;

class SampleTailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    RedisOptions options;
    options.port = server_.port();
    tail_redis_ = std::make_unique<HiredisClient>(options, &clock_);
    other_redis_ = std::make_unique<HiredisClient>(options, &clock_);
    other_store_ = std::make_unique<store::PodmetricStore>(other_redis_.get(), &clock_,
                                                           store::PodmetricStore::Options{});
  }

  // What another replica's ingest path does with the samples it received.
  void StoreElsewhere(const std::vector<Podmetric>& samples) {
    std::vector<store::EncodedPodmetric> encoded;
    for (const Podmetric& m : samples) encoded.push_back(store::Encode(m));
    std::vector<const store::EncodedPodmetric*> ptrs;
    for (const store::EncodedPodmetric& e : encoded) ptrs.push_back(&e);
    absl::StatusOr<store::WriteResult> written = other_store_->Write(ptrs);
    ASSERT_TRUE(written.ok()) << written.status();
    ASSERT_EQ(written->stored, samples.size());
  }

  static Podmetric At(const std::string& pod, absl::Time at, uint64_t seq) {
    Podmetric m = testing::Sample(pod, at);
    m.seq = seq;
    return m;
  }

  // A tail delivering into `delivered_`, following kWorkload.
  std::unique_ptr<SampleTail> RecordingTail(SampleTailOptions options = {}) {
    return std::make_unique<SampleTail>(
        tail_redis_.get(), &clock_, &seen_,
        [this]() -> absl::StatusOr<std::vector<std::string>> { return workloads_; },
        [] { return true; },
        [this](std::vector<Podmetric> samples) {
          for (const Podmetric& m : samples) delivered_.push_back({m.id, m.seq});
        },
        options);
  }

  zeroscale::testing::FakeClock clock_;
  // Persistent: a restart must keep what was stored before the outage.
  zeroscale::testing::RedisServer server_{/*persistent=*/true};
  std::unique_ptr<HiredisClient> tail_redis_;
  std::unique_ptr<HiredisClient> other_redis_;
  std::unique_ptr<store::PodmetricStore> other_store_;
  SeenSamples seen_;
  std::vector<std::string> workloads_ = {kWorkload};
  Delivered delivered_;
};

TEST_F(SampleTailTest, SamplesStoredByAnotherReplicaReachTheDecider) {
  ManualScheduler scheduler(&clock_);
  testing::FakeSetter setter;
  testing::RecordingSink sink;
  Decider decider(&clock_, &scheduler, &setter, &sink);
  decider.Upsert(testing::BusySpec(), 2);
  scheduler.RunPending();
  // The test thread is the scheduler's thread here, so the engine may be read directly.
  SampleTail tail(
      tail_redis_.get(), &clock_, &seen_,
      [&decider]() -> absl::StatusOr<std::vector<std::string>> {
        return decider.engine().Workloads();
      },
      [] { return true; }, [&decider](std::vector<Podmetric> s) { decider.OnSamples(s); });

  // Both pods stream to another replica, busy throughout; this one only reads Redis.
  const absl::Time start = clock_.Now();
  for (int t = 0; t < 60; ++t) {
    clock_.Set(start + absl::Seconds(t) + absl::Milliseconds(300));
    std::vector<Podmetric> batch;
    for (int p = 0; p < 2; ++p) {
      Podmetric m = At(absl::StrCat("p", p), clock_.Now(), t + 1);
      m.in_flight = 3;
      batch.push_back(m);
    }
    StoreElsewhere(batch);
    ASSERT_TRUE(tail.RunOnce().ok());
    scheduler.RunPending();
  }
  EXPECT_EQ(tail.stats().delivered, 120u);
  EXPECT_EQ(tail.stats().skipped, 0u);
  EXPECT_THAT(setter.history, ElementsAre(3));
  EXPECT_EQ(sink.decisions.back().reason,
            "rule 'busy' holds: IN_FLIGHT_REQUESTS 6 > 5 over 60s: 2 -> 3 replicas");
}

TEST_F(SampleTailTest, SamplesReceivedLocallyAreNotFedTwice) {
  std::unique_ptr<SampleTail> tail = RecordingTail();
  // Received here (and stored by this replica's own ingest path): receivedAt has
  // microseconds, which the stored copy loses.
  const absl::Time t0 = clock_.Now() + absl::Microseconds(123456);
  std::vector<Podmetric> local = {At("a", t0, 1), At("a", t0 + absl::Milliseconds(100), 2),
                                  At("a", t0 + absl::Milliseconds(200), 3)};
  std::vector<Podmetric> kept = local;
  seen_.KeepUnseen(&kept);
  ASSERT_EQ(kept.size(), 3u);
  StoreElsewhere(local);
  // The pod's stream then moved to another replica.
  StoreElsewhere(
      {At("a", t0 + absl::Milliseconds(300), 4), At("a", t0 + absl::Milliseconds(400), 5)});
  ASSERT_TRUE(tail->RunOnce().ok());
  EXPECT_THAT(delivered_, ElementsAre(std::pair<std::string, uint64_t>("ml/a", 4),
                                      std::pair<std::string, uint64_t>("ml/a", 5)));
  EXPECT_EQ(tail->stats().read, 5u);

  // The next round re-reads the current second and delivers nothing again.
  delivered_.clear();
  ASSERT_TRUE(tail->RunOnce().ok());
  EXPECT_THAT(delivered_, IsEmpty());

  // Back on this replica's stream: delivered locally, so the tail leaves it alone.
  const Podmetric six = At("a", t0 + absl::Milliseconds(500), 6);
  std::vector<Podmetric> kept_six = {six};
  seen_.KeepUnseen(&kept_six);
  StoreElsewhere({six});
  ASSERT_TRUE(tail->RunOnce().ok());
  EXPECT_THAT(delivered_, IsEmpty());
}

TEST_F(SampleTailTest, SamplesWithoutSeqAreFedWhenNewerThanAnySeen) {
  std::unique_ptr<SampleTail> tail = RecordingTail();
  const absl::Time t0 = clock_.Now() + absl::Microseconds(250400);
  const Podmetric local = At("seed", t0, 0);
  std::vector<Podmetric> kept = {local};
  seen_.KeepUnseen(&kept);
  StoreElsewhere({local, At("seed", t0 + absl::Milliseconds(500), 0),
                  At("seed", t0 + absl::Milliseconds(1500), 0)});
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(tail->RunOnce().ok());
  // The local one comes back truncated to 250ms, older than the 250.4ms already seen.
  EXPECT_EQ(delivered_.size(), 2u);
  EXPECT_EQ(tail->stats().read, 3u);
  delivered_.clear();
  ASSERT_TRUE(tail->RunOnce().ok());
  EXPECT_THAT(delivered_, IsEmpty());
}

TEST_F(SampleTailTest, RedisDownSkipsTheRoundAndCatchesUpAfter) {
  std::unique_ptr<SampleTail> tail = RecordingTail();
  StoreElsewhere({At("a", clock_.Now(), 1)});
  ASSERT_TRUE(tail->RunOnce().ok());
  ASSERT_EQ(delivered_.size(), 1u);

  // Stored, then Redis went down before the tail read it.
  clock_.Advance(absl::Seconds(1));
  StoreElsewhere({At("a", clock_.Now(), 2), At("b", clock_.Now(), 1)});
  server_.Kill();
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(tail->RunOnce().code(), absl::StatusCode::kUnavailable);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(tail->RunOnce().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(tail->stats().failed_rounds, 2u);
  EXPECT_EQ(delivered_.size(), 1u);

  ASSERT_TRUE(server_.Start().ok());
  clock_.Advance(absl::Seconds(10));  // past the client's reconnect backoff
  ASSERT_TRUE(tail->RunOnce().ok());
  // Pods come in the index's order; each pod's samples in order.
  EXPECT_THAT(delivered_, UnorderedElementsAre(std::pair<std::string, uint64_t>("ml/a", 1),
                                               std::pair<std::string, uint64_t>("ml/a", 2),
                                               std::pair<std::string, uint64_t>("ml/b", 1)));
  EXPECT_EQ(tail->stats().rounds, 2u);
}

TEST_F(SampleTailTest, PodIndexedLaterIsPickedUpFromBeforeItWasListed) {
  std::unique_ptr<SampleTail> tail = RecordingTail();
  StoreElsewhere({At("a", clock_.Now(), 1)});
  ASSERT_TRUE(tail->RunOnce().ok());
  const absl::Time listed = clock_.Now();

  // Received by another replica just before that listing, stored (and indexed) after
  // it: the ingest queue was behind.
  clock_.Advance(absl::Seconds(1));
  StoreElsewhere({At("b", listed - absl::Seconds(2), 7), At("b", clock_.Now(), 8)});
  ASSERT_TRUE(tail->RunOnce().ok());
  EXPECT_THAT(delivered_, ElementsAre(std::pair<std::string, uint64_t>("ml/a", 1),
                                      std::pair<std::string, uint64_t>("ml/b", 7),
                                      std::pair<std::string, uint64_t>("ml/b", 8)));
}

TEST_F(SampleTailTest, IdleWithoutWorkloadsAndSkipsOtherWorkloadsMembers) {
  std::unique_ptr<SampleTail> tail = RecordingTail();
  workloads_.clear();
  StoreElsewhere({At("a", clock_.Now(), 1)});
  ASSERT_TRUE(tail->RunOnce().ok());
  EXPECT_THAT(delivered_, IsEmpty());
  EXPECT_EQ(tail->stats().rounds, 0u);  // no Redis call at all

  workloads_ = {kWorkload};
  // A pod name reused by another workload: its member is not ours.
  Podmetric stray = At("a", clock_.Now(), 2);
  stray.workload = "ml/Deployment/other";
  server_.Cli("ZADD podmetric:ml/a " + absl::StrCat(absl::ToUnixSeconds(clock_.Now())) + " '" +
              PodmetricToJson(stray) + "'");
  ASSERT_TRUE(tail->RunOnce().ok());
  EXPECT_THAT(delivered_, ElementsAre(std::pair<std::string, uint64_t>("ml/a", 1)));
  EXPECT_EQ(tail->stats().skipped, 1u);
}

TEST(SeenSamplesTest, AReplayedSampleIsKeptOutOnce) {
  SeenSamples seen;
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  std::vector<Podmetric> first;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    Podmetric m = testing::Sample("a", t0 + absl::Seconds(seq));
    m.seq = seq;
    first.push_back(m);
  }
  seen.KeepUnseen(&first);
  EXPECT_EQ(first.size(), 3u);
  // After a reconnect the sidecar replays 2 and 3 (unacknowledged) with new receivedAt,
  // then goes on with 4; another pod's samples are untouched.
  std::vector<Podmetric> replay;
  for (uint64_t seq = 2; seq <= 4; ++seq) {
    Podmetric m = testing::Sample("a", t0 + absl::Minutes(1) + absl::Seconds(seq));
    m.seq = seq;
    replay.push_back(m);
  }
  Podmetric other = testing::Sample("b", t0);
  other.seq = 2;
  replay.push_back(other);
  seen.KeepUnseen(&replay);
  ASSERT_EQ(replay.size(), 2u);
  EXPECT_EQ(replay[0].seq, 4u);
  EXPECT_EQ(replay[1].id, other.id);
}

TEST(SeenSamplesTest, MaybeForgetSweepsAtMostOnceAMinute) {
  SeenSamples seen(absl::Minutes(5));
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  std::vector<Podmetric> s = {testing::Sample("a", t0)};
  seen.KeepUnseen(&s);
  seen.MaybeForget(t0 + absl::Minutes(5) - absl::Seconds(1));  // sweeps; "a" is young enough
  EXPECT_EQ(seen.size(), 1u);
  seen.MaybeForget(t0 + absl::Minutes(5) + absl::Seconds(30));  // too soon for another sweep
  EXPECT_EQ(seen.size(), 1u);
  seen.MaybeForget(t0 + absl::Minutes(6));  // a minute on: sweeps, "a" is gone
  EXPECT_EQ(seen.size(), 0u);
}

TEST(SeenSamplesTest, ForgetsSilentPods) {
  SeenSamples seen;
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  Podmetric old = testing::Sample("old", t0);
  old.seq = 5;
  std::vector<Podmetric> both = {old, testing::Sample("new", t0 + absl::Minutes(30))};
  seen.KeepUnseen(&both);
  seen.Forget(t0 + absl::Minutes(10));
  EXPECT_EQ(seen.size(), 1u);
  // Forgotten: its samples count as unseen again.
  EXPECT_TRUE(seen.MarkIfUnseen(old));
  EXPECT_FALSE(seen.MarkIfUnseen(old));
}

TEST_F(SampleTailTest, ThreadFollowsOnlyWhileLeading) {
  std::atomic<bool> leading{false};
  std::mutex mu;
  Delivered delivered;
  EventLoop loop(RealClock::Get());
  testing::FakeSetter setter;
  Decider decider(RealClock::Get(), &loop, &setter, nullptr);
  WorkloadSpec spec;
  spec.workload = kWorkload;
  spec.min_replicas = 1;
  spec.max_replicas = 5;
  decider.Upsert(spec, 1);
  loop.Start();
  SampleTailOptions options;
  options.interval = absl::Milliseconds(10);
  SampleTail tail(
      tail_redis_.get(), &clock_, &seen_, SampleTail::WorkloadsOf(&decider, &loop),
      [&leading] { return leading.load(); },
      [&](std::vector<Podmetric> samples) {
        std::lock_guard<std::mutex> lock(mu);
        for (const Podmetric& m : samples) delivered.push_back({m.id, m.seq});
      },
      options);
  tail.Start();
  StoreElsewhere({At("a", clock_.Now(), 1)});
  // Rounds are timed on the clock: move it a round at a time, once the tail waits.
  auto next_round = [&] {
    const absl::Time at = clock_.Now() + options.interval;
    ASSERT_EQ(clock_.AwaitWaiter(at, at), at);
    clock_.Advance(options.interval);
    // The round is over when the tail waits for the next one.
    const absl::Time then = clock_.Now() + options.interval;
    ASSERT_EQ(clock_.AwaitWaiter(then, then), then);
  };
  next_round();
  EXPECT_EQ(tail.stats().rounds, 0u);  // not leading

  leading = true;
  next_round();
  tail.Stop();
  loop.Stop();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_THAT(delivered, ElementsAre(std::pair<std::string, uint64_t>("ml/a", 1)));
}

}  // namespace
}  // namespace zeroscale::decide
