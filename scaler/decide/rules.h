// Rule evaluation against aggregated windows (SPEC.md section 3): a rule holds when every
// one of its thresholds holds. A threshold on a metric with no value (no ready pod, no
// requests for a latency) does not hold: absent data proves nothing either way.
// Pure functions; thread-safe.
#ifndef ZEROSCALE_SCALER_DECIDE_RULES_H_
#define ZEROSCALE_SCALER_DECIDE_RULES_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/model/scaling_rule.h"
#include "scaler/decide/window.h"

namespace zeroscale::decide {

// ">", "<", "==".
absl::string_view OperatorSymbol(Operator op);

// "IN_FLIGHT_REQUESTS"; a CUSTOM threshold's series ("vllm:num_requests_waiting", or
// "sum of vllm:num_requests_waiting" when pods are summed).
std::string MetricLabel(const Threshold& t);

bool ThresholdHolds(const Threshold& t, const WindowStats& stats);
// Cheap: builds no text, as it runs on every sample of every workload.
bool RuleHolds(const ScalingRule& rule, const WindowStats& stats);

// Why a rule holds or not, for humans: "rule 'busy' holds: IN_FLIGHT_REQUESTS 7.2 > 4 over
// 60s", or "rule 'idle' does not hold: CPU_USAGE 40 is not < 10 over 60s".
std::string ExplainRule(const ScalingRule& rule, const WindowStats& stats);

// Formats a metric value compactly ("7.2", "1234.57").
std::string FormatValue(double v);
// "60s" for whole seconds, else absl's format ("1.5s").
std::string FormatSeconds(absl::Duration d);

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_RULES_H_
