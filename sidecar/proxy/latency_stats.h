// Per-interval request statistics of the sidecar's proxy: count, rate, mean and p99
// latency (from a fixed log-linear histogram, ~3% resolution, constant memory) and
// time-weighted mean of requests in flight. Fed by the proxy's observer, drained by the
// sampler once per interval.
//
// Thread-safety: all methods are thread-safe (one mutex, held for a few instructions).
#ifndef ZEROSCALE_SIDECAR_PROXY_LATENCY_STATS_H_
#define ZEROSCALE_SIDECAR_PROXY_LATENCY_STATS_H_

#include <array>
#include <cstdint>
#include <mutex>

#include "absl/time/time.h"

namespace zeroscale::sidecar {

// Latencies in microseconds, 16 sub-buckets per power of two above 32 µs: every value up
// to ~12 days lands in a bucket whose width is at most 1/16 of its lower bound.
class LatencyHistogram {
 public:
  static constexpr int kBuckets = 32 + 40 * 16;

  void Record(absl::Duration latency);
  void Clear();
  uint64_t count() const { return count_; }
  // The latency below which a fraction q of the recorded values lie (bucket midpoint);
  // zero when empty.
  absl::Duration Quantile(double q) const;

  static int BucketOf(uint64_t micros);
  static uint64_t BucketLow(int bucket);   // smallest value in the bucket
  static uint64_t BucketHigh(int bucket);  // largest value in the bucket

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
};

struct IntervalStats {
  absl::Duration interval;  // since the previous TakeIntervalStats (or construction)
  int64_t request_count = 0;
  double request_rate = 0;     // completed requests per second
  double mean_latency_ms = 0;  // 0 when request_count is 0
  double p99_latency_ms = 0;
  double mean_in_flight = 0;      // time-weighted over the interval
  int64_t upstream_errors = 0;    // 502s in the interval
  int64_t upstream_timeouts = 0;  // 504s in the interval
};

class LatencyStats {
 public:
  explicit LatencyStats(absl::Time start);

  void OnStart(absl::Time now);
  // `latency` is measured by the proxy (monotonic); `now` drives the in-flight integral.
  void OnDone(absl::Time now, absl::Duration latency, bool upstream_error, bool upstream_timeout);

  // Figures since the previous call, then starts a new interval at `now`.
  IntervalStats TakeIntervalStats(absl::Time now);

  // Since construction; for the sidecar's /metrics.
  int64_t total_requests() const;
  int64_t total_upstream_errors() const;
  int64_t total_upstream_timeouts() const;
  int64_t in_flight() const;

 private:
  void Advance(absl::Time now);  // accumulates in-flight × time up to now

  mutable std::mutex mu_;
  absl::Time interval_start_;
  absl::Time last_change_;
  int64_t in_flight_ = 0;
  double in_flight_seconds_ = 0;  // integral of in_flight over the interval
  int64_t count_ = 0;
  double latency_sum_ms_ = 0;
  int64_t errors_ = 0;
  int64_t timeouts_ = 0;
  LatencyHistogram histogram_;
  int64_t total_requests_ = 0;
  int64_t total_errors_ = 0;
  int64_t total_timeouts_ = 0;
};

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_PROXY_LATENCY_STATS_H_
