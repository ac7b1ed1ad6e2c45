// PodmetricStore against a real redis-server: the seed's layout, dedup, retention.
#include "scaler/store/podmetric_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/fake_clock.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kLlama[] = "ml/Deployment/llama";
constexpr char kMistral[] = "ml/Deployment/mistral";

class PodmetricStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    RedisOptions o;
    o.port = server_.port();
    redis_ = std::make_unique<HiredisClient>(o, &clock_);
    PodmetricStore::Options so;
    so.retention = absl::Minutes(15);
    so.trim_interval = absl::Seconds(30);
    store_ = std::make_unique<PodmetricStore>(redis_.get(), &clock_, so);
  }

  Podmetric Sample(const std::string& id, uint64_t seq, double cpu = 10,
                   const std::string& workload = "ml/Deployment/llama") {
    Podmetric m;
    m.id = id;
    m.workload = workload;
    m.cpu_usage = cpu;
    m.seq = seq;
    m.received_at = clock_.Now();
    return m;
  }

  absl::StatusOr<WriteResult> Write(const std::vector<Podmetric>& ms) {
    return WriteWith(store_.get(), ms);
  }
  static absl::StatusOr<WriteResult> WriteWith(PodmetricStore* store,
                                               const std::vector<Podmetric>& ms) {
    std::vector<EncodedPodmetric> encoded;
    for (const Podmetric& m : ms) encoded.push_back(Encode(m));
    std::vector<const EncodedPodmetric*> ptrs;
    for (const EncodedPodmetric& e : encoded) ptrs.push_back(&e);
    return store->Write(ptrs);
  }

  // The members of a set, sorted.
  std::vector<std::string> Members(const std::string& key) {
    std::vector<std::string> out;
    const absl::StatusOr<RedisReply> reply = redis_->Command({"SMEMBERS", key});
    for (const RedisReply& e : reply->elements) out.push_back(e.str);
    std::sort(out.begin(), out.end());
    return out;
  }

  int64_t Card(const std::string& key) { return redis_->Command({"ZCARD", key})->integer; }

  testing::RedisServer server_;
  testing::FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  std::unique_ptr<HiredisClient> redis_;
  std::unique_ptr<PodmetricStore> store_;
};

TEST_F(PodmetricStoreTest, SamplesLandWithTheSeedKeyScoreAndJson) {
  ASSERT_TRUE(Write({Sample("ml/a", 1, 42.5)}).ok());
  auto r = redis_->Command({"ZRANGE", "podmetric:ml/a", "0", "-1", "WITHSCORES"});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->elements.size(), 2u);
  EXPECT_EQ(r->elements[1].str, "1800000000");
  const nlohmann::json j = nlohmann::json::parse(r->elements[0].str);
  EXPECT_EQ(j["id"], "ml/a");
  EXPECT_EQ(j["cpuUsage"], 42.5);
  EXPECT_EQ(j["receivedAt"], "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(j["seq"], 1);
}

TEST_F(PodmetricStoreTest, SeedReadQueryReturnsTheWindow) {
  ASSERT_TRUE(Write({Sample("ml/a", 1)}).ok());
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(Write({Sample("ml/a", 2)}).ok());
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(Write({Sample("ml/a", 3)}).ok());
  // ZRANGEBYSCORE podmetric:<id> start end, as the seed's getPodmetrics does.
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  auto got = store_->Range("ml/a", t0 + absl::Seconds(5), t0 + absl::Seconds(20));
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].seq, 2u);
  EXPECT_EQ((*got)[1].seq, 3u);
  EXPECT_EQ(server_.Cli("ZRANGEBYSCORE podmetric:ml/a 1800000000 1800000010 | wc -l"), "2\n");
}

TEST_F(PodmetricStoreTest, ADuplicateSampleLeavesOneEntry) {
  auto first = Write({Sample("ml/a", 7)});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->stored, 1u);
  clock_.Advance(absl::Seconds(3));  // a replay arrives later: receivedAt would differ
  auto again = Write({Sample("ml/a", 7), Sample("ml/a", 8)});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->duplicates, 1u);
  EXPECT_EQ(again->stored, 1u);
  EXPECT_EQ(Card("podmetric:ml/a"), 2);
}

TEST_F(PodmetricStoreTest, DedupSurvivesAScalerRestart) {
  ASSERT_TRUE(Write({Sample("ml/a", 5)}).ok());
  // A new store (a restarted scaler) learns the mark from Redis.
  PodmetricStore fresh(redis_.get(), &clock_, {});
  const EncodedPodmetric replay = Encode(Sample("ml/a", 5));
  auto r = fresh.Write({&replay});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->duplicates, 1u);
  EXPECT_EQ(Card("podmetric:ml/a"), 1);
}

TEST_F(PodmetricStoreTest, IdenticalSamplesWithoutSeqAreOneMember) {
  Podmetric m = Sample("ml/a", 0);
  ASSERT_TRUE(Write({m, m}).ok());
  EXPECT_EQ(Card("podmetric:ml/a"), 1);
}

TEST_F(PodmetricStoreTest, RetentionTrimsOldSamples) {
  ASSERT_TRUE(Write({Sample("ml/a", 1)}).ok());
  clock_.Advance(absl::Minutes(10));
  ASSERT_TRUE(Write({Sample("ml/a", 2)}).ok());
  clock_.Advance(absl::Minutes(10));  // the first is now 20 min old, past 15 min
  ASSERT_TRUE(Write({Sample("ml/a", 3)}).ok());
  auto all = store_->Range("ml/a", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].seq, 2u);
  const int64_t ttl = redis_->Command({"TTL", "podmetric:ml/a"})->integer;
  EXPECT_GT(ttl, 15 * 60);
  EXPECT_LE(ttl, 15 * 60 + 31);
}

TEST_F(PodmetricStoreTest, IndexesPodsPerWorkload) {
  ASSERT_TRUE(Write({Sample("ml/a", 1), Sample("ml/b", 1)}).ok());
  auto pods = redis_->Command({"SMEMBERS", WorkloadPodsKey("ml/Deployment/llama")});
  ASSERT_TRUE(pods.ok());
  EXPECT_EQ(pods->elements.size(), 2u);
  EXPECT_EQ(redis_->Command({"SISMEMBER", kWorkloadsKey, "ml/Deployment/llama"})->integer, 1);
}

TEST_F(PodmetricStoreTest, AKeyOfTheWrongTypeFailsOnlyItsSample) {
  ASSERT_TRUE(redis_->Command({"SET", "podmetric:ml/bad", "x"}).ok());
  auto r = Write({Sample("ml/a", 1), Sample("ml/bad", 1), Sample("ml/c", 1)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stored, 2u);
  ASSERT_EQ(r->failed.size(), 1u);
  EXPECT_EQ(r->failed[0].first, 1u);
  EXPECT_THAT(std::string(r->failed[0].second.message()), HasSubstr("WRONGTYPE"));
}

TEST_F(PodmetricStoreTest, RedisDownIsUnavailableAndNothingIsHalfWritten) {
  server_.Kill();
  auto r = Write({Sample("ml/a", 1)});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(server_.Start().ok());
  clock_.Advance(absl::Seconds(10));
  r = Write({Sample("ml/a", 1)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stored, 1u);
}

TEST_F(PodmetricStoreTest, ForgetsMarksOfPodsWithNoSamplesLeft) {
  ASSERT_TRUE(Write({Sample("ml/a", 1), Sample("ml/gone", 1)}).ok());
  ASSERT_TRUE(redis_->Command({"DEL", "podmetric:ml/gone"}).ok());
  ASSERT_TRUE(store_->ForgetVanishedPods().ok());
  auto fields = redis_->Command({"HKEYS", kLastSeqKey});
  ASSERT_EQ(fields->elements.size(), 1u);
  EXPECT_EQ(fields->elements[0].str, "ml/a");
}

// Redis came back empty (FLUSHALL here; a restart without persistence, a lost volume):
// the next write finds this writer's marker missing and indexes its pods again, so a new
// leader reading windows through the index finds them. Without the marker the writer's
// cache of what it indexed would keep it from ever writing them again.
TEST_F(PodmetricStoreTest, AnEmptiedRedisGetsTheIndexesBackFromTheNextWrites) {
  ASSERT_TRUE(Write({Sample("ml/a", 1), Sample("ml/b", 1, 10, kMistral)}).ok());
  auto again = Write({Sample("ml/a", 2)});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->reindexed);
  ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());

  auto after = Write({Sample("ml/a", 3)});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->reindexed);
  EXPECT_EQ(after->stored, 1u);
  EXPECT_THAT(Members(WorkloadPodsKey(kLlama)), ElementsAre("ml/a"));
  EXPECT_THAT(Members(kWorkloadsKey), ElementsAre(kLlama));
  // Every other pod the writer knew is indexed at its next sample.
  auto b = Write({Sample("ml/b", 2, 10, kMistral)});
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->reindexed);
  EXPECT_THAT(Members(WorkloadPodsKey(kMistral)), ElementsAre("ml/b"));
  EXPECT_THAT(Members(kWorkloadsKey), ElementsAre(kLlama, kMistral));
  // The rewritten keys expire again as they should.
  EXPECT_GT(redis_->Command({"TTL", "podmetric:ml/a"})->integer, 0);
  EXPECT_GT(redis_->Command({"TTL", "podmetric:ml/b"})->integer, 0);
}

// The restart happens while the writer is idle: its next command is a health PING that
// fails on the dead connection, and the write after it succeeds on a new one, so no
// write ever failed. The marker still tells.
TEST_F(PodmetricStoreTest, ARedisRestartedEmptyBetweenWritesGetsTheIndexesBack) {
  ASSERT_TRUE(Write({Sample("ml/a", 1)}).ok());
  ASSERT_TRUE(server_.Restart().ok());  // not persistent: empty
  EXPECT_FALSE(store_->Ping().ok());
  auto after = Write({Sample("ml/a", 2)});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->reindexed);
  EXPECT_THAT(Members(WorkloadPodsKey(kLlama)), ElementsAre("ml/a"));
  EXPECT_THAT(Members(kWorkloadsKey), ElementsAre(kLlama));
}

// Two scaler replicas write into one Redis: each notices the loss through its own marker
// (one shared marker, set again by the first writer after the loss, would hide it from
// the second).
TEST_F(PodmetricStoreTest, EveryWriterRewritesWhatItIndexed) {
  RedisOptions o;
  o.port = server_.port();
  HiredisClient other_redis(o, &clock_);
  PodmetricStore other(&other_redis, &clock_, {});
  ASSERT_TRUE(Write({Sample("ml/a", 1)}).ok());
  ASSERT_TRUE(WriteWith(&other, {Sample("ml/b", 1)}).ok());
  ASSERT_TRUE(redis_->Command({"FLUSHALL"}).ok());
  ASSERT_TRUE(Write({Sample("ml/a", 2)}).ok());
  auto b = WriteWith(&other, {Sample("ml/b", 2)});
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->reindexed);
  EXPECT_THAT(Members(WorkloadPodsKey(kLlama)), ElementsAre("ml/a", "ml/b"));
}

TEST_F(PodmetricStoreTest, TheMarkerLivesAsLongAsAPodmetricKey) {
  PodmetricStore::Options so;
  so.writer_id = "replica-1";
  PodmetricStore named(redis_.get(), &clock_, so);
  ASSERT_TRUE(WriteWith(&named, {Sample("ml/a", 1)}).ok());
  const int64_t ttl = redis_->Command({"TTL", WriterMarkerKey("replica-1")})->integer;
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 15 * 60 + 31);
}

// Whatever else removes an entry (a pruning race with another replica, a hand-run SREM)
// is repaired when the pod's key is next trimmed.
TEST_F(PodmetricStoreTest, ARemovedIndexEntryComesBackWithinATrimInterval) {
  ASSERT_TRUE(Write({Sample("ml/a", 1)}).ok());
  ASSERT_TRUE(redis_->Command({"SREM", WorkloadPodsKey(kLlama), "ml/a"}).ok());
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(Write({Sample("ml/a", 2)}).ok());
  EXPECT_THAT(Members(WorkloadPodsKey(kLlama)), ElementsAre());
  clock_.Advance(absl::Seconds(25));
  ASSERT_TRUE(Write({Sample("ml/a", 3)}).ok());
  EXPECT_THAT(Members(WorkloadPodsKey(kLlama)), ElementsAre("ml/a"));
}

// Pod names change with every rollout: entries of pods whose samples are gone are
// dropped, and so are workloads left without pods.
TEST_F(PodmetricStoreTest, ForgetsIndexEntriesOfPodsWithNoSamplesLeft) {
  ASSERT_TRUE(
      Write({Sample("ml/a", 1), Sample("ml/old", 1), Sample("ml/m", 1, 10, kMistral)}).ok());
  ASSERT_TRUE(redis_->Command({"DEL", "podmetric:ml/old", "podmetric:ml/m"}).ok());
  ASSERT_TRUE(store_->ForgetVanishedPods().ok());
  EXPECT_THAT(Members(WorkloadPodsKey(kLlama)), ElementsAre("ml/a"));
  EXPECT_THAT(Members(WorkloadPodsKey(kMistral)), ElementsAre());
  EXPECT_THAT(Members(kWorkloadsKey), ElementsAre(kLlama));
  // A pod that reports again is indexed again at once.
  ASSERT_TRUE(Write({Sample("ml/m", 2, 10, kMistral)}).ok());
  EXPECT_THAT(Members(WorkloadPodsKey(kMistral)), ElementsAre("ml/m"));
  EXPECT_THAT(Members(kWorkloadsKey), ElementsAre(kLlama, kMistral));
}

TEST_F(PodmetricStoreTest, ForgettingLeavesAnIndexOfAnotherTypeAlone) {
  ASSERT_TRUE(Write({Sample("ml/a", 1)}).ok());
  ASSERT_TRUE(redis_->Command({"SADD", kWorkloadsKey, "odd"}).ok());
  ASSERT_TRUE(redis_->Command({"SET", WorkloadPodsKey("odd"), "x"}).ok());
  EXPECT_TRUE(store_->ForgetVanishedPods().ok());
  EXPECT_THAT(Members(kWorkloadsKey), ElementsAre(kLlama, "odd"));
  EXPECT_THAT(Members(WorkloadPodsKey(kLlama)), ElementsAre("ml/a"));
}

}  // namespace
}  // namespace zeroscale::store
