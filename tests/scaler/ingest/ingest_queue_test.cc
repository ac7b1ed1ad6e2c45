// IngestQueue with a real redis-server: callbacks only after storage, retry while
// Redis is down, backpressure.
#include "scaler/ingest/ingest_queue.h"

#include <future>

#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/testing/child_process.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::ingest {
namespace {

class IngestQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    RedisOptions o;
    o.port = server_.port();
    o.backoff_initial = absl::Milliseconds(10);
    o.backoff_max = absl::Milliseconds(50);
    redis_ = std::make_unique<HiredisClient>(o, RealClock::Get());
    store_ = std::make_unique<store::PodmetricStore>(redis_.get(), RealClock::Get(),
                                                     store::PodmetricStore::Options{});
    IngestQueue::Options qo;
    qo.high_water = 4;
    qo.low_water = 2;
    qo.health_interval = absl::Milliseconds(20);
    queue_ = std::make_unique<IngestQueue>(store_.get(), &metrics_, RealClock::Get(), qo);
    queue_->Start();
  }
  void TearDown() override { queue_->Stop(absl::ZeroDuration()); }

  static std::vector<store::EncodedPodmetric> Samples(const std::string& id, uint64_t first,
                                                      int n) {
    std::vector<store::EncodedPodmetric> out;
    for (int i = 0; i < n; ++i) {
      Podmetric m;
      m.id = id;
      m.seq = first + i;
      m.received_at = absl::Now();
      out.push_back(store::Encode(m));
    }
    return out;
  }

  int64_t Card(const std::string& key) { return std::stoll(server_.Cli("ZCARD " + key)); }

  testing::RedisServer server_;
  prometheus::Registry registry_;
  IngestMetrics metrics_{&registry_};
  std::unique_ptr<HiredisClient> redis_;
  std::unique_ptr<store::PodmetricStore> store_;
  std::unique_ptr<IngestQueue> queue_;
};

TEST_F(IngestQueueTest, CallbackRunsOnceStored) {
  std::promise<Outcome> done;
  queue_->Submit(Samples("ml/a", 1, 3), true, [&](const Outcome& o) { done.set_value(o); });
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(f.get().failed.empty());
  EXPECT_EQ(Card("podmetric:ml/a"), 3);
  EXPECT_TRUE(queue_->redis_up());
  EXPECT_EQ(metrics_.stored.Value(), 3);
}

TEST_F(IngestQueueTest, HoldsSamplesWhileRedisIsDownAndStoresThemAfter) {
  server_.Kill();
  ASSERT_TRUE(testing::WaitFor([&] { return !queue_->redis_up(); }, absl::Seconds(10)));
  std::promise<void> done;
  queue_->Submit(Samples("ml/a", 1, 5), true, [&](const Outcome&) { done.set_value(); });
  auto f = done.get_future();
  // Not acknowledged while Redis is down, and producers are asked to pause.
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  EXPECT_FALSE(queue_->HasSpace());
  std::promise<void> resumed;
  queue_->NotifyWhenSpace([&] { resumed.set_value(); });
  ASSERT_TRUE(server_.Start().ok());
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ASSERT_EQ(resumed.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(Card("podmetric:ml/a"), 5);
  EXPECT_TRUE(queue_->redis_up());
  EXPECT_GE(metrics_.redis_errors.Value(), 1);
}

TEST_F(IngestQueueTest, SubmissionsCompleteInOrder) {
  std::vector<int> order;
  std::mutex mu;
  std::promise<void> last;
  for (int i = 0; i < 20; ++i) {
    queue_->Submit(Samples("ml/a", 1 + i * 2, 2), i == 0, [&, i](const Outcome&) {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
      if (i == 19) last.set_value();
    });
  }
  ASSERT_EQ(last.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(Card("podmetric:ml/a"), 40);
}

// A writer that is never idle still forgets vanished pods every forget_interval: their
// sequence marks and index entries would otherwise grow with every pod ever seen. The
// health interval is made longer than the test, so the writer is never idle here.
TEST(IngestQueueForgetTest, ForgetsVanishedPodsUnderLoad) {
  testing::RedisServer server;
  ASSERT_TRUE(server.Start().ok());
  testing::FakeClock clock;
  RedisOptions o;
  o.port = server.port();
  HiredisClient redis(o, &clock);
  store::PodmetricStore store(&redis, &clock, {});
  prometheus::Registry registry;
  IngestMetrics metrics(&registry);
  IngestQueue::Options qo;
  qo.health_interval = absl::Hours(1);
  qo.forget_interval = absl::Minutes(15);
  IngestQueue queue(&store, &metrics, &clock, qo);
  queue.Start();
  const auto submit = [&](const std::string& pod, uint64_t seq) {
    std::promise<void> done;
    Podmetric m;
    m.id = pod;
    m.workload = "ml/Deployment/llama";
    m.seq = seq;
    m.received_at = clock.Now();
    std::vector<store::EncodedPodmetric> batch;
    batch.push_back(store::Encode(m));
    queue.Submit(std::move(batch), false, [&](const Outcome&) { done.set_value(); });
    return done.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  };
  ASSERT_TRUE(submit("ml/gone", 1));
  ASSERT_TRUE(submit("ml/a", 1));
  server.Cli("DEL podmetric:ml/gone");
  clock.Advance(absl::Minutes(16));
  ASSERT_TRUE(submit("ml/a", 2));
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return server.Cli("SMEMBERS zeroscale:workload:ml/Deployment/llama:pods") == "ml/a\n";
      },
      absl::Seconds(10)))
      << server.Cli("SMEMBERS zeroscale:workload:ml/Deployment/llama:pods");
  EXPECT_EQ(server.Cli("HKEYS zeroscale:lastseq"), "ml/a\n");
  queue.Stop(absl::ZeroDuration());
}

}  // namespace
}  // namespace zeroscale::ingest
