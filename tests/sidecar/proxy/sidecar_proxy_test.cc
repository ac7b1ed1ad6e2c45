// The sidecar proxy's per-interval figures: histogram and in-flight math on a fake clock,
// and latency against a backend that sleeps a known time.
#include "sidecar/proxy/sidecar_proxy.h"

#include <algorithm>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/common/proxy/test_backend.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::sidecar {
namespace {

// The client can read the last byte before the proxy's write completion records the
// request, so tests await the count.
bool AwaitRequests(const SidecarProxy& proxy, int64_t n) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (proxy.total_requests() < n) {
    if (absl::Now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(LatencyHistogramTest, BucketsCoverValuesContiguously) {
  for (uint64_t v :
       {0ull, 1ull, 31ull, 32ull, 33ull, 63ull, 64ull, 1000ull, 50000ull, 123456789ull}) {
    const int b = LatencyHistogram::BucketOf(v);
    EXPECT_LE(LatencyHistogram::BucketLow(b), v) << v;
    EXPECT_GE(LatencyHistogram::BucketHigh(b), v) << v;
    // Resolution: a bucket is at most 1/16 of its lower bound wide.
    if (v >= 32) {
      EXPECT_LE(LatencyHistogram::BucketHigh(b) - LatencyHistogram::BucketLow(b) + 1,
                LatencyHistogram::BucketLow(b) / 16)
          << v;
    }
  }
  for (int b = 1; b < LatencyHistogram::kBuckets; ++b) {
    ASSERT_EQ(LatencyHistogram::BucketLow(b), LatencyHistogram::BucketHigh(b - 1) + 1) << b;
  }
}

TEST(LatencyHistogramTest, QuantilesWithinResolution) {
  LatencyHistogram h;
  for (int ms = 1; ms <= 1000; ++ms) h.Record(absl::Milliseconds(ms));
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_NEAR(absl::ToDoubleMilliseconds(h.Quantile(0.99)), 990, 990 * 0.04);
  EXPECT_NEAR(absl::ToDoubleMilliseconds(h.Quantile(0.5)), 500, 500 * 0.04);
  h.Clear();
  EXPECT_EQ(h.Quantile(0.99), absl::ZeroDuration());
}

TEST(LatencyStatsTest, IntervalFiguresOnAFakeClock) {
  testing::FakeClock clock;
  LatencyStats stats(clock.Now());
  stats.OnStart(clock.Now());  // A
  clock.Advance(absl::Seconds(1));
  stats.OnStart(clock.Now());  // B
  clock.Advance(absl::Seconds(1));
  stats.OnDone(clock.Now(), absl::Milliseconds(2000), false, false);  // A
  clock.Advance(absl::Seconds(2));
  IntervalStats s = stats.TakeIntervalStats(clock.Now());
  EXPECT_EQ(s.interval, absl::Seconds(4));
  EXPECT_EQ(s.request_count, 1);
  EXPECT_DOUBLE_EQ(s.request_rate, 0.25);
  EXPECT_DOUBLE_EQ(s.mean_latency_ms, 2000);
  EXPECT_NEAR(s.p99_latency_ms, 2000, 2000 * 0.04);
  EXPECT_DOUBLE_EQ(s.mean_in_flight, (1 * 1 + 2 * 1 + 1 * 2) / 4.0);

  // B still in flight across the boundary; then it fails with a 502.
  clock.Advance(absl::Seconds(1));
  stats.OnDone(clock.Now(), absl::Seconds(5), /*upstream_error=*/true, false);
  clock.Advance(absl::Seconds(1));
  s = stats.TakeIntervalStats(clock.Now());
  EXPECT_EQ(s.request_count, 1);
  EXPECT_DOUBLE_EQ(s.mean_in_flight, 0.5);
  EXPECT_EQ(s.upstream_errors, 1);
  EXPECT_EQ(stats.total_upstream_errors(), 1);
  EXPECT_EQ(stats.in_flight(), 0);

  clock.Advance(absl::Seconds(1));
  s = stats.TakeIntervalStats(clock.Now());
  EXPECT_EQ(s.request_count, 0);
  EXPECT_EQ(s.mean_latency_ms, 0);
  EXPECT_EQ(s.p99_latency_ms, 0);
  EXPECT_EQ(s.mean_in_flight, 0);
  EXPECT_EQ(stats.total_requests(), 2);
}

TEST(SidecarProxyTest, LatencyMatchesASleepingBackend) {
  testing::TestBackend backend;
  SidecarProxyOptions o;
  o.listen = {"127.0.0.1", 0};
  o.app_port = backend.port();
  SidecarProxy proxy(o);
  ASSERT_TRUE(proxy.Start().ok());
  const absl::Time start = absl::Now();
  // What the client saw of each request bounds what the proxy may measure from above, on
  // a loaded machine as on an idle one; the backend's sleep bounds it from below.
  double client_total_ms = 0, client_max_ms = 0;
  {
    testing::TestClient client(proxy.port());
    for (int i = 0; i < 10; ++i) {
      const absl::Time sent = absl::Now();
      ASSERT_EQ(client.Send("GET", "/sleep/50").status, 200);
      const double ms = absl::ToDoubleMilliseconds(absl::Now() - sent);
      client_total_ms += ms;
      client_max_ms = std::max(client_max_ms, ms);
    }
  }
  ASSERT_TRUE(AwaitRequests(proxy, 10));
  const IntervalStats s = proxy.TakeIntervalStats(absl::Now());
  EXPECT_EQ(s.request_count, 10);
  EXPECT_GE(s.mean_latency_ms, 49.5);
  EXPECT_LE(s.mean_latency_ms, client_total_ms / 10);
  EXPECT_GE(s.p99_latency_ms, 48);
  // The p99 comes from a histogram whose buckets are a few percent wide.
  EXPECT_LE(s.p99_latency_ms, client_max_ms * 1.05);
  EXPECT_GE(s.interval, absl::Milliseconds(500));
  EXPECT_LE(s.interval, absl::Now() - start + absl::Milliseconds(100));
  EXPECT_NEAR(s.request_rate, 10 / absl::ToDoubleSeconds(s.interval), 1e-9);
  // Requests ran back to back, so about one was in flight the whole time.
  EXPECT_GT(s.mean_in_flight, 0.7);
  EXPECT_LE(s.mean_in_flight, 1.0);
  EXPECT_EQ(proxy.total_requests(), 10);
}

TEST(SidecarProxyTest, UpstreamDownIsCountedAs502) {
  SidecarProxyOptions o;
  o.listen = {"127.0.0.1", 0};
  o.app_port = testing::UnusedPort();
  SidecarProxy proxy(o);
  ASSERT_TRUE(proxy.Start().ok());
  testing::TestClient client(proxy.port());
  EXPECT_EQ(client.Send("GET", "/").status, 502);
  ASSERT_TRUE(AwaitRequests(proxy, 1));
  EXPECT_EQ(proxy.upstream_errors(), 1);
  EXPECT_EQ(proxy.upstream_timeouts(), 0);
  const IntervalStats s = proxy.TakeIntervalStats(absl::Now());
  EXPECT_EQ(s.upstream_errors, 1);
  EXPECT_EQ(s.request_count, 1);
}

TEST(SidecarProxyTest, UpstreamTimeoutIsCountedAs504) {
  testing::TestBackend backend;
  SidecarProxyOptions o;
  o.listen = {"127.0.0.1", 0};
  o.app_port = backend.port();
  o.engine.upstream_timeout = absl::Milliseconds(200);
  o.engine.timer_tick = absl::Milliseconds(20);
  SidecarProxy proxy(o);
  ASSERT_TRUE(proxy.Start().ok());
  testing::TestClient client(proxy.port());
  EXPECT_EQ(client.Send("GET", "/hang").status, 504);
  ASSERT_TRUE(AwaitRequests(proxy, 1));
  EXPECT_EQ(proxy.upstream_timeouts(), 1);
  EXPECT_EQ(proxy.TakeIntervalStats(absl::Now()).upstream_timeouts, 1);
}

TEST(SidecarProxyTest, RefusesBadConfiguration) {
  SidecarProxyOptions o;
  o.listen = {"127.0.0.1", 0};
  o.app_port = 0;
  EXPECT_FALSE(SidecarProxy(o).Start().ok());
  o.listen = {"127.0.0.1", 8080};
  o.app_port = 8080;
  const absl::Status s = SidecarProxy(o).Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("8080"), std::string::npos);
}

}  // namespace
}  // namespace zeroscale::sidecar
