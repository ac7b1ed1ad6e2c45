#include "sidecar/proxy/latency_stats.h"

#include <algorithm>
#include <cmath>

namespace zeroscale::sidecar {

int LatencyHistogram::BucketOf(uint64_t micros) {
  if (micros < 32) return static_cast<int>(micros);
  const int msb = 63 - __builtin_clzll(micros);  // >= 5
  const int shift = msb - 4;                     // keeps the top 5 bits: 16..31
  const int bucket = 32 + (shift - 1) * 16 + static_cast<int>((micros >> shift) - 16);
  return std::min(bucket, kBuckets - 1);
}

uint64_t LatencyHistogram::BucketLow(int bucket) {
  if (bucket < 32) return static_cast<uint64_t>(bucket);
  const int shift = (bucket - 32) / 16 + 1;
  const uint64_t top = 16 + static_cast<uint64_t>((bucket - 32) % 16);
  return top << shift;
}

uint64_t LatencyHistogram::BucketHigh(int bucket) {
  if (bucket < 32) return static_cast<uint64_t>(bucket);
  const int shift = (bucket - 32) / 16 + 1;
  return BucketLow(bucket) + (uint64_t{1} << shift) - 1;
}

void LatencyHistogram::Record(absl::Duration latency) {
  const int64_t us = std::max<int64_t>(0, absl::ToInt64Microseconds(latency));
  counts_[BucketOf(static_cast<uint64_t>(us))]++;
  count_++;
}

void LatencyHistogram::Clear() {
  if (count_ == 0) return;
  counts_.fill(0);
  count_ = 0;
}

absl::Duration LatencyHistogram::Quantile(double q) const {
  if (count_ == 0) return absl::ZeroDuration();
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += counts_[b];
    if (seen >= rank) {
      const uint64_t mid = (BucketLow(b) + BucketHigh(b)) / 2;
      return absl::Microseconds(static_cast<int64_t>(mid));
    }
  }
  return absl::Microseconds(static_cast<int64_t>(BucketHigh(kBuckets - 1)));
}

LatencyStats::LatencyStats(absl::Time start) : interval_start_(start), last_change_(start) {}

void LatencyStats::Advance(absl::Time now) {
  if (now > last_change_) {
    in_flight_seconds_ +=
        static_cast<double>(in_flight_) * absl::ToDoubleSeconds(now - last_change_);
    last_change_ = now;
  }
}

void LatencyStats::OnStart(absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  Advance(now);
  in_flight_++;
}

void LatencyStats::OnDone(absl::Time now, absl::Duration latency, bool upstream_error,
                          bool upstream_timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  Advance(now);
  if (in_flight_ > 0) in_flight_--;
  count_++;
  total_requests_++;
  latency_sum_ms_ += absl::ToDoubleMilliseconds(latency);
  histogram_.Record(latency);
  if (upstream_error) {
    errors_++;
    total_errors_++;
  }
  if (upstream_timeout) {
    timeouts_++;
    total_timeouts_++;
  }
}

IntervalStats LatencyStats::TakeIntervalStats(absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  Advance(now);
  IntervalStats s;
  s.interval = std::max(absl::ZeroDuration(), now - interval_start_);
  s.request_count = count_;
  const double secs = absl::ToDoubleSeconds(s.interval);
  if (secs > 0) {
    s.request_rate = static_cast<double>(count_) / secs;
    s.mean_in_flight = in_flight_seconds_ / secs;
  } else {
    s.mean_in_flight = static_cast<double>(in_flight_);
  }
  if (count_ > 0) {
    s.mean_latency_ms = latency_sum_ms_ / static_cast<double>(count_);
    s.p99_latency_ms = absl::ToDoubleMilliseconds(histogram_.Quantile(0.99));
  }
  s.upstream_errors = errors_;
  s.upstream_timeouts = timeouts_;
  interval_start_ = std::max(now, interval_start_);
  last_change_ = std::max(now, last_change_);
  in_flight_seconds_ = 0;
  count_ = 0;
  latency_sum_ms_ = 0;
  errors_ = timeouts_ = 0;
  histogram_.Clear();
  return s;
}

int64_t LatencyStats::total_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_requests_;
}
int64_t LatencyStats::total_upstream_errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_errors_;
}
int64_t LatencyStats::total_upstream_timeouts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_timeouts_;
}
int64_t LatencyStats::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

}  // namespace zeroscale::sidecar
