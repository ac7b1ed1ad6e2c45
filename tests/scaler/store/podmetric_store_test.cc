// PodmetricStore against a real redis-server: the seed's layout, dedup, retention.
#include "scaler/store/podmetric_store.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/fake_clock.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::store {
namespace {

using ::testing::HasSubstr;

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

  Podmetric Sample(const std::string& id, uint64_t seq, double cpu = 10) {
    Podmetric m;
    m.id = id;
    m.workload = "ml/Deployment/llama";
    m.cpu_usage = cpu;
    m.seq = seq;
    m.received_at = clock_.Now();
    return m;
  }

  absl::StatusOr<WriteResult> Write(const std::vector<Podmetric>& ms) {
    std::vector<EncodedPodmetric> encoded;
    for (const Podmetric& m : ms) encoded.push_back(Encode(m));
    std::vector<const EncodedPodmetric*> ptrs;
    for (const EncodedPodmetric& e : encoded) ptrs.push_back(&e);
    return store_->Write(ptrs);
  }

  int64_t Card(const std::string& key) {
    return redis_->Command({"ZCARD", key})->integer;
  }

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

}  // namespace
}  // namespace zeroscale::store
