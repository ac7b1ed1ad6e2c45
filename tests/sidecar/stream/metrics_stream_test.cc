// End-to-end: MetricsStream against the real zeroscale-scaler and a real redis-server.
#include "sidecar/stream/metrics_stream.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/model/podmetric.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/testing/auth_files.h"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::sidecar {
namespace {

using ::zeroscale::testing::ChildProcess;
using ::zeroscale::testing::FreePort;
using ::zeroscale::testing::RedisServer;
using ::zeroscale::testing::WaitForTcpPort;

// Polls `cond` until it holds or `timeout` passes; for conditions no event announces.
bool Eventually(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

// The pods the tests stream for, each with a credential (testing::PodToken) the scaler
// knows from its --auth-tokens.
const std::vector<std::string> kPods = {"test/pod-basic",  "test/pod-crash",  "test/pod-overflow",
                                        "test/pod-urgent", "test/pod-reject", "test/pod-stop",
                                        "test/pod-down",   "test/pod-rotated"};

// The real scaler on fixed loopback ports, so a restart comes back where it was.
class Scaler {
 public:
  explicit Scaler(const std::string& redis)
      : grpc_port_(FreePort()),
        process_(
            {ZS_SCALER_BIN, absl::StrCat("--redis=", redis),
             absl::StrCat("--grpc-listen=127.0.0.1:", grpc_port_),
             absl::StrCat("--http-listen=127.0.0.1:", FreePort()),
             absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()), "--backend=none",
             "--auth-tokens=" +
                 testing::WriteTestTokens(
                     absl::StrCat(::testing::TempDir(), "/metrics-stream-", ::getpid()), kPods)}) {}

  absl::Status Start() {
    if (absl::Status s = process_.Start(); !s.ok()) return s;
    return WaitForTcpPort(grpc_port_, absl::Seconds(20));
  }
  void Kill() { process_.Kill(); }
  std::string address() const { return absl::StrCat("127.0.0.1:", grpc_port_); }

 private:
  uint16_t grpc_port_;
  ChildProcess process_;
};

Podmetric Sample(const std::string& pod, double cpu = 12.5) {
  Podmetric m;
  m.id = pod;
  m.workload = "test/Deployment/app";
  m.cpu_usage = cpu;
  m.memory_usage = 40;
  m.ready = true;
  m.sampled_at = absl::Now();
  return m;
}

double CounterValue(prometheus::Registry& registry, const std::string& name,
                    const std::string& label_value = "") {
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (f.name != name) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      if (!label_value.empty() && (m.label.empty() || m.label.front().value != label_value)) {
        continue;
      }
      return m.counter.value;
    }
  }
  return -1;
}

class MetricsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    scaler_ = std::make_unique<Scaler>(redis_.address());
  }

  // Options for a stream of `pod`, with its credential.
  MetricsStreamOptions Options(const std::string& pod) {
    MetricsStreamOptions o;
    o.scaler = scaler_->address();
    o.max_backoff = absl::Seconds(1);
    o.authorization = [pod] { return testing::Bearer(testing::PodToken(pod)); };
    return o;
  }

  // The samples stored for `pod`, in Redis order.
  std::vector<Podmetric> Stored(const std::string& pod) {
    std::vector<Podmetric> out;
    const std::string raw = redis_.Cli(absl::StrCat("ZRANGE podmetric:", pod, " 0 -1"));
    for (absl::string_view line : absl::StrSplit(raw, '\n', absl::SkipWhitespace())) {
      absl::StatusOr<Podmetric> m = PodmetricFromJson(line);
      EXPECT_TRUE(m.ok()) << m.status() << " in " << line;
      if (m.ok()) out.push_back(*std::move(m));
    }
    std::sort(out.begin(), out.end(),
              [](const Podmetric& a, const Podmetric& b) { return a.seq < b.seq; });
    return out;
  }

  RedisServer redis_;
  std::unique_ptr<Scaler> scaler_;
};

TEST_F(MetricsStreamTest, SamplesLandInRedisWithTheirSeq) {
  ASSERT_TRUE(scaler_->Start().ok());
  const absl::Time before = absl::Now();
  MetricsStream stream(Options("test/pod-basic"));
  ASSERT_TRUE(stream.Start().ok());
  std::vector<uint64_t> seqs;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<uint64_t> seq = stream.Submit(Sample("test/pod-basic", i));
    ASSERT_TRUE(seq.ok());
    seqs.push_back(*seq);
  }
  ASSERT_TRUE(stream.WaitForAck(seqs.back(), absl::Seconds(20)).ok());

  // Seqs start at the process's start time in microseconds and step by one.
  EXPECT_GE(seqs.front(), static_cast<uint64_t>(absl::ToUnixMicros(before - absl::Seconds(1))));
  EXPECT_LE(seqs.front(), static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())));
  const std::vector<Podmetric> stored = Stored("test/pod-basic");
  ASSERT_EQ(stored.size(), 5u);
  for (size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].seq, seqs[i]);
    EXPECT_EQ(stored[i].seq, seqs.front() + i);
    EXPECT_DOUBLE_EQ(stored[i].cpu_usage, static_cast<double>(i));
    EXPECT_EQ(stored[i].dropped, 0u);
  }
  const MetricsStreamStats stats = stream.stats();
  EXPECT_EQ(stats.submitted, 5u);
  EXPECT_EQ(stats.acked, 5u);
  EXPECT_EQ(stats.buffered, 0u);
  EXPECT_EQ(stats.acked_seq, seqs.back());
  EXPECT_TRUE(stats.connected);
  EXPECT_TRUE(stream.Stop(absl::Seconds(5)).ok());
}

TEST_F(MetricsStreamTest, ScalerCrashLosesNoSample) {
  ASSERT_TRUE(scaler_->Start().ok());
  const std::string pod = "test/pod-crash";
  MetricsStream stream(Options(pod));
  ASSERT_TRUE(stream.Start().ok());

  // A steady producer, as the sampler would be, running across the crash.
  std::atomic<bool> produce{true};
  std::atomic<uint64_t> last_seq{0};
  std::thread producer([&] {
    while (produce.load()) {
      absl::StatusOr<uint64_t> seq = stream.Submit(Sample(pod));
      if (seq.ok()) last_seq = *seq;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  // Stops the producer even when an assertion returns early.
  std::unique_ptr<void, std::function<void(void*)>> join_producer(&producer, [&](void*) {
    produce = false;
    if (producer.joinable()) producer.join();
  });

  ASSERT_TRUE(Eventually([&] { return stream.stats().acked >= 50; }));
  scaler_->Kill();
  ASSERT_TRUE(Eventually([&] { return !stream.stats().connected; }));
  const uint64_t connects = stream.stats().connects;
  const uint64_t submitted_at_kill = stream.stats().submitted;
  ASSERT_TRUE(Eventually([&] { return stream.stats().submitted >= submitted_at_kill + 100; }));
  EXPECT_GT(stream.stats().buffered, 0u);
  ASSERT_TRUE(scaler_->Start().ok());
  ASSERT_TRUE(Eventually([&] { return stream.stats().connects > connects; }));
  const uint64_t acked_at_restart = stream.stats().acked;
  ASSERT_TRUE(Eventually([&] { return stream.stats().acked >= acked_at_restart + 50; }));
  join_producer.reset();
  ASSERT_TRUE(stream.WaitForAck(last_seq.load(), absl::Seconds(20)).ok());

  const MetricsStreamStats stats = stream.stats();
  EXPECT_EQ(stats.dropped, 0u);
  EXPECT_EQ(stats.rejected, 0u);
  EXPECT_EQ(stats.acked, stats.submitted);
  const std::vector<Podmetric> stored = Stored(pod);
  ASSERT_EQ(stored.size(), stats.submitted);
  for (size_t i = 1; i < stored.size(); ++i) {
    ASSERT_EQ(stored[i].seq, stored[i - 1].seq + 1) << "gap or duplicate at " << i;
  }
  EXPECT_EQ(stored.back().seq, last_seq.load());
  EXPECT_TRUE(stream.Stop(absl::Seconds(5)).ok());
}

TEST_F(MetricsStreamTest, FullBufferDropsOldestAndReportsDrops) {
  auto registry = std::make_shared<prometheus::Registry>();
  const std::string pod = "test/pod-overflow";
  MetricsStreamOptions options = Options(pod);
  options.buffer_capacity = 10;
  options.registry = registry.get();
  MetricsStream stream(options);
  ASSERT_TRUE(stream.Start().ok());  // the scaler is not up yet
  uint64_t first = 0;
  for (int i = 0; i < 25; ++i) {
    absl::StatusOr<uint64_t> seq = stream.Submit(Sample(pod, i));
    ASSERT_TRUE(seq.ok());
    if (i == 0) first = *seq;
  }
  EXPECT_EQ(stream.dropped(), 15u);
  EXPECT_EQ(stream.buffered(), 10u);
  EXPECT_EQ(CounterValue(*registry, "zeroscale_sidecar_stream_samples_dropped_total"), 15);

  // The next sample evicts a 16th.
  absl::StatusOr<uint64_t> tail = stream.Submit(Sample(pod, 25));
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(stream.dropped(), 16u);

  ASSERT_TRUE(scaler_->Start().ok());
  ASSERT_TRUE(stream.WaitForAck(*tail, absl::Seconds(20)).ok());
  // With the buffer drained, a new sample has nothing to report.
  absl::StatusOr<uint64_t> last = stream.Submit(Sample(pod, 26));
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(stream.WaitForAck(*last, absl::Seconds(20)).ok());

  const std::vector<Podmetric> stored = Stored(pod);
  ASSERT_EQ(stored.size(), 11u) << ::testing::PrintToString([&] {
    std::vector<uint64_t> s;
    for (const Podmetric& m : stored) s.push_back(m.seq - first);
    return s;
  }());
  uint64_t reported = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].seq, first + 16 + i);  // the oldest 16 went
    EXPECT_DOUBLE_EQ(stored[i].cpu_usage, 16.0 + i);
    reported += stored[i].dropped;
  }
  // Every loss is reported exactly once, even when a sample carrying a count is dropped.
  EXPECT_EQ(reported, 16u);
  EXPECT_GT(stored[0].dropped, 0u);
  EXPECT_EQ(stored.back().dropped, 0u);  // nothing dropped since the previous sample
  EXPECT_EQ(CounterValue(*registry, "zeroscale_sidecar_stream_samples_dropped_total"), 16);
  EXPECT_EQ(stream.stats().acked, 11u);
  EXPECT_TRUE(stream.Stop(absl::Seconds(5)).ok());
}

TEST_F(MetricsStreamTest, UrgentSubmitSkipsReconnectBackoff) {
  MetricsStreamOptions options = Options("test/pod-urgent");
  options.initial_backoff = absl::Seconds(60);
  options.max_backoff = absl::Seconds(60);
  MetricsStream stream(options);
  ASSERT_TRUE(stream.Start().ok());  // the scaler is not up: the stream backs off
  ASSERT_TRUE(Eventually([&] { return stream.stats().stream_failures >= 1; }));
  ASSERT_TRUE(scaler_->Start().ok());
  absl::StatusOr<uint64_t> seq = stream.SubmitUrgent(Sample("test/pod-urgent"));
  ASSERT_TRUE(seq.ok());
  // Far below the backoff; the wait is random, so a lucky short one could pass too,
  // but a broken urgent path fails almost always.
  EXPECT_TRUE(stream.WaitForAck(*seq, absl::Seconds(5)).ok());
}

TEST_F(MetricsStreamTest, RejectedSampleIsCountedAndDoesNotBlock) {
  ASSERT_TRUE(scaler_->Start().ok());
  auto registry = std::make_shared<prometheus::Registry>();
  const std::string pod = "test/pod-reject";
  MetricsStreamOptions options = Options(pod);
  options.registry = registry.get();
  MetricsStream stream(options);
  ASSERT_TRUE(stream.Start().ok());
  absl::StatusOr<uint64_t> good1 = stream.Submit(Sample(pod, 1));
  absl::StatusOr<uint64_t> bad = stream.Submit(Sample(pod, -1));  // negative cpuUsage
  absl::StatusOr<uint64_t> good2 = stream.Submit(Sample(pod, 2));
  ASSERT_TRUE(good1.ok() && bad.ok() && good2.ok());
  ASSERT_TRUE(stream.WaitForAck(*good2, absl::Seconds(20)).ok());

  EXPECT_EQ(stream.rejected(), 1u);
  EXPECT_EQ(stream.buffered(), 0u);
  EXPECT_EQ(CounterValue(*registry, "zeroscale_sidecar_stream_samples_rejected_total", "cpuUsage"),
            1);
  const std::vector<Podmetric> stored = Stored(pod);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].seq, *good1);
  EXPECT_EQ(stored[1].seq, *good2);
  EXPECT_TRUE(stream.Stop(absl::Seconds(5)).ok());
}

TEST_F(MetricsStreamTest, StopFlushesWithinGrace) {
  ASSERT_TRUE(scaler_->Start().ok());
  const std::string pod = "test/pod-stop";
  MetricsStream stream(Options(pod));
  ASSERT_TRUE(stream.Start().ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(stream.Submit(Sample(pod, i)).ok());
  EXPECT_TRUE(stream.Stop(absl::Seconds(10)).ok());
  EXPECT_EQ(Stored(pod).size(), 100u);
  EXPECT_EQ(stream.Submit(Sample(pod)).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(stream.Stop(absl::Seconds(1)).ok());  // idempotent
}

TEST_F(MetricsStreamTest, StopWithScalerDownGivesUpAfterGrace) {
  MetricsStream stream(Options("test/pod-down"));  // nothing listens
  ASSERT_TRUE(stream.Start().ok());
  ASSERT_TRUE(stream.Submit(Sample("test/pod-down")).ok());
  const absl::Time start = absl::Now();
  const absl::Status s = stream.Stop(absl::Milliseconds(300));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

// The credential is asked for at every connection: a stream refused for a token the
// scaler does not know (UNAUTHENTICATED) reconnects, and the rotated token gets through.
TEST_F(MetricsStreamTest, TheTokenIsSentAndAskedForAgainOnReconnect) {
  ASSERT_TRUE(scaler_->Start().ok());
  const std::string pod = "test/pod-rotated";
  std::atomic<int> asked{0};
  MetricsStreamOptions options = Options(pod);
  options.initial_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(100);
  options.authorization = [&asked, pod] {
    return ++asked < 3 ? std::string("Bearer not-yet-a-valid-token")
                       : testing::Bearer(testing::PodToken(pod));
  };
  MetricsStream stream(options);
  ASSERT_TRUE(stream.Start().ok());
  absl::StatusOr<uint64_t> seq = stream.Submit(Sample(pod));
  ASSERT_TRUE(seq.ok());
  EXPECT_TRUE(stream.WaitForAck(*seq, absl::Seconds(20)).ok());
  EXPECT_GE(asked.load(), 3);
  EXPECT_GE(stream.stats().stream_failures, 2u);
  EXPECT_EQ(Stored(pod).size(), 1u);
  EXPECT_TRUE(stream.Stop(absl::Seconds(5)).ok());
}

TEST(MetricsStreamOptionsTest, BadOptionsAreRefused) {
  MetricsStreamOptions options;
  EXPECT_EQ(MetricsStream(options).Start().code(), absl::StatusCode::kInvalidArgument);
  options.scaler = "127.0.0.1:1";
  options.buffer_capacity = 0;
  EXPECT_EQ(MetricsStream(options).Start().code(), absl::StatusCode::kInvalidArgument);
  options.buffer_capacity = 1;
  options.max_backoff = absl::Milliseconds(1);
  EXPECT_EQ(MetricsStream(options).Start().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MetricsStreamOptionsTest, FirstSeqIsConfigurable) {
  MetricsStreamOptions options;
  options.scaler = "127.0.0.1:1";
  options.first_seq = 42;
  MetricsStream stream(options);
  EXPECT_EQ(*stream.Submit(Podmetric{}), 42u);
  EXPECT_EQ(*stream.Submit(Podmetric{}), 43u);
}

}  // namespace
}  // namespace zeroscale::sidecar
