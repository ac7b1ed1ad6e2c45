// How long a workload idles before it goes to zero, and whether it is woken ahead of its
// next request: the `keepAlive` block of a CustomAutoscaler spec and of a workloads file
// entry. Configuration only (the policies live in scaler/decide/keep_alive); both parsers
// hand each key to SetKeepAliveField so the two formats accept exactly the same fields.
// Pure functions; thread-safe.
#ifndef ZEROSCALE_COMMON_MODEL_KEEP_ALIVE_H_
#define ZEROSCALE_COMMON_MODEL_KEEP_ALIVE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace zeroscale {

enum class KeepAlivePolicy {
  // Scale to zero after idleTimeoutSeconds without a request.
  kFixed,
  // Knative's scale to zero: no request over the stable window, then the grace period.
  kKnative,
  // Shahrad et al. (USENIX ATC 2020) hybrid histogram: keep alive to the tail of the
  // workload's own idle-time histogram, pre-warm at its head.
  kAdaptive,
};
absl::string_view KeepAlivePolicyName(KeepAlivePolicy p);  // "adaptive"
std::optional<KeepAlivePolicy> ParseKeepAlivePolicy(absl::string_view name);

struct KeepAliveConfig {
  // The default, chosen from zeroscale-sim's results (README, "Keep-alive"): adaptive,
  // which keeps idleTimeoutSeconds while it learns and departs from it only where the
  // learned idle gaps promise fewer cold starts for no more idle time. Without an
  // explicit policy, idleTimeoutSeconds 0 still means no idle scale to zero.
  KeepAlivePolicy policy = KeepAlivePolicy::kAdaptive;
  bool policy_set = false;  // `policy` was given explicitly
  // knative: Knative's defaults (stable-window 60s, scale-to-zero-grace-period 30s).
  absl::Duration stable_window = absl::Seconds(60);
  absl::Duration grace_period = absl::Seconds(30);
  // adaptive: how long the model takes to load, until the scaler has measured it (it
  // keeps the slowest of its recent wakes). Pre-warming starts this long ahead.
  absl::Duration cold_start = absl::ZeroDuration();
  bool prewarm = true;
  // The histogram's range (1-minute bins); longer idle times count as out of range.
  absl::Duration histogram_range = absl::Hours(4);
  double head_percentile = 5;
  double tail_percentile = 99;
  // Idle times needed before the histogram is trusted; fewer: the fixed keep-alive.
  int min_samples = 10;

  bool operator==(const KeepAliveConfig& o) const;
};

// The field names accepted inside `keepAlive`, for unknown-key checks.
const std::vector<absl::string_view>& KeepAliveFieldNames();

// Sets one `keepAlive.<key>` from its textual value ("adaptive", "90", "true").
// kInvalidArgument saying what is wrong with the value (the caller adds where).
absl::Status SetKeepAliveField(KeepAliveConfig* c, absl::string_view key, absl::string_view value);

// kInvalidArgument naming the field: percentiles out of order, a range under 1 minute...
absl::Status ValidateKeepAlive(const KeepAliveConfig& c);

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_MODEL_KEEP_ALIVE_H_
