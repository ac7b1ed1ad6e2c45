#include "scaler/decide/rules.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace zeroscale::decide {

absl::string_view OperatorSymbol(Operator op) {
  switch (op) {
    case Operator::kGreaterThan:
      return ">";
    case Operator::kLessThan:
      return "<";
    case Operator::kEqualTo:
      return "==";
  }
  return "?";
}

std::string FormatValue(double v) { return absl::StrFormat("%.6g", v); }

std::string FormatSeconds(absl::Duration d) {
  if (d == absl::Trunc(d, absl::Seconds(1))) return absl::StrCat(absl::ToInt64Seconds(d), "s");
  return absl::FormatDuration(d);
}

std::string MetricLabel(const Threshold& t) {
  if (t.metric_type != MetricType::kCustom) return std::string(MetricTypeName(t.metric_type));
  return absl::StrCat(t.aggregation == Aggregation::kSum ? "sum of " : "", t.metric_name);
}

bool ThresholdHolds(const Threshold& t, const WindowStats& stats) {
  std::optional<double> v = stats.Get(t);
  return v.has_value() && Compare(t.op, *v, t.value);
}

bool RuleHolds(const ScalingRule& rule, const WindowStats& stats) {
  if (rule.thresholds.empty()) return false;
  for (const Threshold& t : rule.thresholds) {
    if (!ThresholdHolds(t, stats)) return false;
  }
  return true;
}

namespace {

absl::string_view NoDataReason(const Threshold& t, const WindowStats& stats) {
  if (stats.pods_counted == 0) return " (no ready pod)";
  switch (t.metric_type) {
    case MetricType::kAverageResponseTime:
    case MetricType::kP99ResponseTime:
      return " (no requests)";
    case MetricType::kGpuUsage:
    case MetricType::kGpuMemoryUsage:
      return " (no pod reports a GPU)";
    case MetricType::kCustom:
      return " (no ready pod's model server reported the series)";
    default:
      return "";
  }
}

}  // namespace

std::string ExplainRule(const ScalingRule& rule, const WindowStats& stats) {
  const std::string over = absl::StrCat(" over ", FormatSeconds(stats.window));
  std::vector<std::string> parts;
  for (const Threshold& t : rule.thresholds) {
    const std::string metric = MetricLabel(t);
    std::optional<double> v = stats.Get(t);
    if (!v.has_value()) {
      return absl::StrCat("rule '", rule.id, "' does not hold: ", metric, " has no data", over,
                          NoDataReason(t, stats));
    }
    if (!Compare(t.op, *v, t.value)) {
      return absl::StrCat("rule '", rule.id, "' does not hold: ", metric, " ", FormatValue(*v),
                          " is not ", OperatorSymbol(t.op), " ", FormatValue(t.value), over);
    }
    parts.push_back(absl::StrCat(metric, " ", FormatValue(*v), " ", OperatorSymbol(t.op), " ",
                                 FormatValue(t.value)));
  }
  if (parts.empty()) return absl::StrCat("rule '", rule.id, "' has no thresholds");
  return absl::StrCat("rule '", rule.id, "' holds: ", absl::StrJoin(parts, " and "), over);
}

}  // namespace zeroscale::decide
