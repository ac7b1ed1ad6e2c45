// In-memory sample windows of one workload and the aggregation of SPEC.md section 3:
// each MetricType over a rule's window. Kept per pod for the longest window any rule of
// the workload needs, so evaluation never touches Redis (Redis is only read to rebuild
// the windows when a scaler becomes leader).
//
// Aggregation, over the samples received in [now - window, now] (both edges inclusive):
// - Only READY pods count: a pod whose latest sample is fresh (no older than the
//   staleness) and says ready. Of those pods, only their ready samples count, so a pod's
//   model-loading phase does not skew the mean.
// - CPU_USAGE, MEMORY_USAGE, DISK_USAGE: mean across ready pods of each pod's mean.
// - AVERAGE_RESPONSE_TIME: request-weighted over all counted samples,
//   sum(avg * requestCount) / sum(requestCount). Samples without requests are left out,
//   never counted as zero latency. (A seed-style sample with a latency but no
//   requestCount weighs as one request.)
// - P99_RESPONSE_TIME: the maximum of the per-sample p99s (of samples with requests).
//   Averaging p99s does not yield a p99; the worst one is the honest bound a tail
//   latency target should be compared with.
// - REQUEST_RATE: the SUM over ready pods of each pod's mean rate, i.e. the workload's
//   total rate. Thresholds are per workload (rules target workloads, not pods), and a
//   per-pod mean would drop when scaling up, making "rate > X" rules oscillate.
// - IN_FLIGHT_REQUESTS: likewise the sum over ready pods of each pod's mean in-flight,
//   the workload's total concurrency.
// - GPU_USAGE, GPU_MEMORY_USAGE: mean across the ready pods that report a GPU of each
//   pod's mean over its samples that carry one.
// - CUSTOM (a model-server series by name): each ready pod's mean over its samples that
//   carry the series, then the mean across those pods (MEAN, for gauges such as KV-cache
//   usage) or their sum (SUM, for counts such as requests waiting). Only series some rule
//   names are kept (set_custom_series), so a sidecar forwarding many costs nothing here.
// A metric with nothing to aggregate (no ready pod; no requests for the latencies) has
// no value; it is never reported as zero.
//
// Not thread-safe: owned by one automaton on the decider's loop thread.
#ifndef ZEROSCALE_SCALER_DECIDE_WINDOW_H_
#define ZEROSCALE_SCALER_DECIDE_WINDOW_H_

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/model/podmetric.h"
#include "common/model/scaling_rule.h"

namespace zeroscale::decide {

inline constexpr size_t kMetricTypeCount = 10;

struct CustomValue {
  std::string name;
  double mean = 0;
  double sum = 0;
  int pods = 0;  // ready pods whose samples in the window carry the series
};

struct WindowStats {
  absl::Duration window;
  int pods_reporting = 0;  // pods with a fresh sample, ready or not
  int pods_ready = 0;      // fresh pods whose latest sample says ready
  int pods_counted = 0;    // ready pods with ready samples inside the window
  size_t samples = 0;      // samples aggregated
  std::array<std::optional<double>, kMetricTypeCount> values;
  std::vector<CustomValue> custom;  // series some pod reported in the window

  std::optional<double> Get(MetricType t) const { return values[static_cast<size_t>(t)]; }
  // The value a threshold compares: its metric type's, or its CUSTOM series aggregated as
  // it says. No value when nothing reported it.
  std::optional<double> Get(const Threshold& t) const;
};

class SampleWindow {
 public:
  // `staleness`: a pod whose latest sample is older than this is not reporting.
  explicit SampleWindow(absl::Duration staleness, size_t max_samples_per_pod = 4096)
      : staleness_(staleness), max_samples_per_pod_(max_samples_per_pod) {}

  // How long samples are kept: the longest window a rule needs (staleness is added).
  void set_retention(absl::Duration retention) { retention_ = retention; }
  // The CUSTOM series the rules name; other appMetrics of a sample are not kept. Samples
  // already held keep the values of series still named.
  void set_custom_series(std::vector<std::string> names);

  // Adds a sample (timed by receivedAt). A sample already held (same pod, time and seq)
  // is ignored, so history loaded from Redis may overlap with live samples. Returns
  // whether the pod turned ready with it (its previous latest sample was not ready).
  bool Add(const Podmetric& m);

  // Drops samples no rule can need any more, and pods left without samples.
  void Prune(absl::Time now);

  WindowStats Compute(absl::Duration window, absl::Time now) const;

  // Time of the newest sample of any pod; InfinitePast when there is none.
  absl::Time newest() const { return newest_; }
  // Pods with a fresh sample.
  int ReportingPods(absl::Time now) const;
  // Whether `pod` has samples here at all, and whether its latest is fresh.
  bool HasPod(const std::string& pod) const { return pods_.contains(pod); }
  bool IsFresh(const std::string& pod, absl::Time now) const;
  // Whether some pod's latest sample is fresh, ready and received after `since` (so a
  // pod stopped just before a wake does not count); its id goes to `pod`.
  bool AnyFreshReady(absl::Time now, absl::Time since = absl::InfinitePast(),
                     std::string* pod = nullptr) const;
  // Sum of the latest fresh samples' in-flight: requests the pods are serving now.
  double InFlightNow(absl::Time now) const;
  // The latest receivedAt of a sample that shows traffic; InfinitePast when none.
  absl::Time last_request() const { return last_request_; }
  size_t pod_count() const { return pods_.size(); }

 private:
  struct Sample {
    absl::Time at;
    double cpu, memory, disk, avg_rt, p99, rate, in_flight;
    uint64_t requests;
    uint64_t seq;
    bool ready;
    // Compact, as Compute walks every sample of the window: the floats fill the padding
    // after `ready`, and custom values live out of line, only when a rule names a series.
    float gpu, gpu_memory;  // NaN: the sample has no GPU data
    // custom_series_.size() values in order (NaN where the sample lacks the series); null
    // when no rule names one.
    std::unique_ptr<double[]> custom;
  };
  struct Pod {
    std::deque<Sample> samples;  // oldest first
  };

  const absl::Duration staleness_;
  const size_t max_samples_per_pod_;
  absl::Duration retention_ = absl::Seconds(60);
  std::vector<std::string> custom_series_;
  absl::flat_hash_map<std::string, Pod> pods_;
  absl::Time newest_ = absl::InfinitePast();
  absl::Time last_request_ = absl::InfinitePast();
};

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_WINDOW_H_
