// Keep-alive policies: when an idle workload goes to zero, and when a workload at zero is
// woken ahead of its next request (pre-warming). One KeepAliveModel per workload, owned by
// its automaton; it learns from the idle gaps it is told about and answers with a plan
// relative to the end of the last request. Pure: no I/O, no clock (times are passed in),
// so the scaler, the simulator (scaler/sim) and tests run the very same code.
//
// Policies (common/model/keep_alive.h for the configuration):
// - fixed: to zero after idleTimeoutSeconds without a request (0: never).
// - knative: after the stable window plus the scale-to-zero grace period.
// - adaptive: the hybrid histogram policy of Shahrad et al., "Serverless in the Wild"
//   (USENIX ATC 2020), made cost-aware. Idle gaps (nothing in flight, from the end of one
//   request's activity to the next request; at most one a minute) go into 1-minute bins up
//   to the histogram's range. With fewer than minSamples gaps: the fixed keep-alive
//   (idleTimeoutSeconds, 10 minutes when 0). Then, on the learned gaps, the paper's plans
//   — keep alive to a tail percentile (+10%), or go to zero and pre-warm at a head
//   percentile (-10%, -5% or the head itself) minus the cold start, keeping alive to a tail
//   percentile — are scored by their expected cold starts and idle time per gap, and the
//   one with the fewest cold starts whose idle time is no more than the fixed
//   keep-alive's wins (ties: less idle, then the shorter keep-alive); none: the fixed
//   keep-alive. This replaces the paper's coefficient-of-variation test, which any sparse
//   histogram passes. Most gaps beyond the range: the same choice on the recent gaps
//   (margins 15%), standing in for the paper's time-series forecast.
//   Histogram counts are halved once they total 4096, so the model follows a workload
//   whose pattern changes and its state stays bounded.
//
// Not thread-safe: owned by one automaton on the decider's loop thread.
#ifndef ZEROSCALE_SCALER_DECIDE_KEEP_ALIVE_KEEP_ALIVE_H_
#define ZEROSCALE_SCALER_DECIDE_KEEP_ALIVE_KEEP_ALIVE_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/model/keep_alive.h"

namespace zeroscale::decide {

// What a policy says about one idle period, as offsets from the end of the last request.
struct KeepAlivePlan {
  enum class Basis {
    kDisabled,   // no idle scale to zero (fixed with idleTimeoutSeconds 0)
    kFixed,      // idleTimeoutSeconds
    kKnative,    // stable window + grace period
    kLearning,   // adaptive, too few idle gaps yet: the fixed keep-alive
    kNoBetter,   // adaptive: no plan beats the fixed keep-alive on the learned gaps
    kHistogram,  // adaptive: head and tail percentiles of the histogram
    kForecast,   // adaptive: most gaps beyond the range, judged on the recent gaps
  };
  Basis basis = Basis::kDisabled;
  // Go to zero once idle this long (InfiniteDuration: never).
  absl::Duration unload_after = absl::InfiniteDuration();
  // Wake this long after the last request, ahead of the next (InfiniteDuration: never).
  absl::Duration prewarm_after = absl::InfiniteDuration();
  // Once pre-warmed, go back to zero when still idle this long after the last request.
  absl::Duration keep_until = absl::InfiniteDuration();

  // What the explanation needs.
  absl::Duration head = absl::ZeroDuration();        // histogram head / forecast low
  absl::Duration tail = absl::ZeroDuration();        // histogram tail / forecast high
  absl::Duration cold_start = absl::ZeroDuration();  // what pre-warming allowed for
  int64_t gaps = 0;                                  // idle gaps learned
  int64_t needed = 0;                                // gaps needed (kLearning)
  // The policy was chosen explicitly; the default policy explains itself as
  // idleTimeoutSeconds while it does what the fixed keep-alive does.
  bool explicit_policy = false;
  double head_percentile = 0;
  double tail_percentile = 0;
  // On the learned gaps: the chosen plan's and the fixed keep-alive's expected cold
  // starts (fraction of idle gaps) and idle time per gap.
  double expected_cold = 0;
  absl::Duration expected_idle = absl::ZeroDuration();
  absl::Duration fixed = absl::ZeroDuration();
  double fixed_cold = 0;
  absl::Duration fixed_idle = absl::ZeroDuration();
};

// "keep-alive 14m (adaptive: 99% of 40 idle gaps end within 13m, +10%)". For decisions.
std::string ExplainKeepAlive(const KeepAlivePlan& plan);
// "pre-warming: 95% of 40 idle gaps last at least 14m, 99% end within 16m; the model loads
// in 3m". For the wake decision.
std::string ExplainPrewarm(const KeepAlivePlan& plan);

class KeepAliveModel {
 public:
  // `fixed` is idleTimeoutSeconds (zero: none). `config` must be valid (ValidateKeepAlive).
  KeepAliveModel(const KeepAliveConfig& config, absl::Duration fixed);

  // A new spec: what was learned is kept (re-binned when the range changed).
  void Reconfigure(const KeepAliveConfig& config, absl::Duration fixed);

  // Request activity at `at` after the previous activity at `last` (InfinitePast: none
  // known). Records the idle gap between them, at most once per minute of activity, so a
  // busy workload counts one zero-length gap a minute, as the per-minute traces do.
  void OnActivity(absl::Time last, absl::Time at);
  // A wake took `d` until a pod was ready: the model's cold start, as measured.
  void OnColdStart(absl::Duration d);

  const KeepAlivePlan& Plan() const;
  // The cold start pre-warming allows for: the slowest recent wake, or the configured one.
  absl::Duration ColdStart() const;

  // Whether what was learned changed since MarkSaved (for persistence).
  bool dirty() const { return dirty_; }
  void MarkSaved() { dirty_ = false; }
  // The learned state as bounded JSON: {"v":1,"bins":[[minute,count],...],"oob":n,
  // "recent":[seconds...],"coldStarts":[seconds...],"lastMinute":m}.
  std::string ToJson() const;
  // Replaces the learned state with `json` (from ToJson, possibly another range).
  // kInvalidArgument naming what is wrong; the model is unchanged then.
  absl::Status LoadJson(absl::string_view json);

  const KeepAliveConfig& config() const { return config_; }
  int64_t in_range() const { return in_range_; }
  int64_t out_of_range() const { return out_of_range_; }

  static constexpr size_t kRecentGaps = 16;
  static constexpr size_t kRecentColdStarts = 8;
  static constexpr int64_t kHalveAt = 4096;

 private:
  void Record(absl::Duration gap);
  void Recompute() const;

  KeepAliveConfig config_;
  absl::Duration fixed_;
  std::vector<uint32_t> bins_;  // one per minute of the range
  int64_t in_range_ = 0;
  int64_t out_of_range_ = 0;
  std::deque<int64_t> recent_;       // recent gaps, seconds, newest last
  std::deque<int64_t> cold_starts_;  // recent measured cold starts, seconds
  int64_t last_minute_ = INT64_MIN;  // minute of the last activity recorded
  bool dirty_ = false;
  mutable bool stale_ = true;
  mutable int64_t planned_at_ = 0;  // gaps known when the plan was made
  mutable KeepAlivePlan plan_;
};

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_KEEP_ALIVE_KEEP_ALIVE_H_
