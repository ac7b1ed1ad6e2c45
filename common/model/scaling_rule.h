// The ScalingRule domain type (SPEC.md section 3): enums with the seed's exact names,
// validation, and the JSON mapping stored under scaling_rule:<id>. Pure functions;
// thread-safe.
#ifndef ZEROSCALE_COMMON_MODEL_SCALING_RULE_H_
#define ZEROSCALE_COMMON_MODEL_SCALING_RULE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zeroscale {

enum class Operator { kGreaterThan, kLessThan, kEqualTo };
enum class MetricType {
  kCpuUsage,
  kMemoryUsage,
  kDiskUsage,
  kAverageResponseTime,
  kP99ResponseTime,
  kRequestRate,
  kInFlightRequests,
  kGpuUsage,        // percent of the GPUs' compute the pod's processes use
  kGpuMemoryUsage,  // percent of the GPUs' memory the pod's processes hold
  kCustom,          // a model-server series the sidecar forwards, named by metric_name
};
// How a CUSTOM series is combined across ready pods: the mean of the pods' means (a
// gauge like KV-cache usage) or their sum (a count like requests waiting).
enum class Aggregation { kMean, kSum };
enum class Action { kIncreaseInstances, kDecreaseInstances, kDecreaseInstancesToZero };

absl::string_view OperatorName(Operator op);       // "GREATER_THAN"
absl::string_view MetricTypeName(MetricType mt);   // "CPU_USAGE"
absl::string_view ActionName(Action a);            // "INCREASE_INSTANCES"
absl::string_view AggregationName(Aggregation a);  // "MEAN"
std::optional<Operator> ParseOperator(absl::string_view name);
std::optional<MetricType> ParseMetricType(absl::string_view name);
std::optional<Action> ParseAction(absl::string_view name);
std::optional<Aggregation> ParseAggregation(absl::string_view name);

// Whether `name` is a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) of at most
// kMaxAppMetricNameLength bytes: the names a CUSTOM threshold and appMetrics may use.
bool IsAppMetricName(absl::string_view name);
inline constexpr size_t kMaxAppMetricNameLength = 200;

struct Threshold {
  MetricType metric_type = MetricType::kCpuUsage;
  double value = 0;
  Operator op = Operator::kGreaterThan;
  // CUSTOM only: the series name (e.g. "vllm:num_requests_waiting") and how pods combine.
  std::string metric_name;
  Aggregation aggregation = Aggregation::kMean;
  bool operator==(const Threshold& o) const {
    return metric_type == o.metric_type && value == o.value && op == o.op &&
           metric_name == o.metric_name && aggregation == o.aggregation;
  }
};

struct ScalingRule {
  std::string id;
  Action action = Action::kIncreaseInstances;
  std::vector<Threshold> thresholds;
  // Extensions.
  std::string target;  // <namespace>/<kind>/<name>; empty: not bound yet
  uint32_t window_seconds = 60;
  uint32_t step = 1;
  uint32_t cooldown_seconds = 0;
  bool operator==(const ScalingRule& o) const {
    return id == o.id && action == o.action && thresholds == o.thresholds && target == o.target &&
           window_seconds == o.window_seconds && step == o.step &&
           cooldown_seconds == o.cooldown_seconds;
  }
};

inline constexpr size_t kMaxRuleIdLength = 253;
inline constexpr uint32_t kMaxWindowSeconds = 86400;

// Refuses empty or oversized ids, no thresholds, non-finite values, a zero window or
// step, a CUSTOM threshold without a valid metricName and a metricName or a SUM
// aggregation on any other metric type. The kInvalidArgument message starts with the JSON field
// name.
absl::Status ValidateScalingRule(const ScalingRule& rule);

// Whether `value` satisfies `op` against `threshold` (EQUAL_TO within 1e-9, meant for 0).
bool Compare(Operator op, double value, double threshold);

// Deterministic JSON with the seed's field names, plus the extensions.
std::string ScalingRuleToJson(const ScalingRule& rule);
// Unknown metric types, operators and actions are errors naming the field and value.
absl::StatusOr<ScalingRule> ScalingRuleFromJson(absl::string_view json);

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_MODEL_SCALING_RULE_H_
