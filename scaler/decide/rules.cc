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

bool ThresholdHolds(const Threshold& t, const WindowStats& stats) {
  std::optional<double> v = stats.Get(t.metric_type);
  return v.has_value() && Compare(t.op, *v, t.value);
}

bool RuleHolds(const ScalingRule& rule, const WindowStats& stats) {
  if (rule.thresholds.empty()) return false;
  for (const Threshold& t : rule.thresholds) {
    if (!ThresholdHolds(t, stats)) return false;
  }
  return true;
}

std::string ExplainRule(const ScalingRule& rule, const WindowStats& stats) {
  const std::string over = absl::StrCat(" over ", FormatSeconds(stats.window));
  std::vector<std::string> parts;
  for (const Threshold& t : rule.thresholds) {
    const absl::string_view metric = MetricTypeName(t.metric_type);
    std::optional<double> v = stats.Get(t.metric_type);
    if (!v.has_value()) {
      const bool latency = t.metric_type == MetricType::kAverageResponseTime ||
                           t.metric_type == MetricType::kP99ResponseTime;
      return absl::StrCat("rule '", rule.id, "' does not hold: ", metric, " has no data", over,
                          latency && stats.pods_counted > 0 ? " (no requests)" : " (no ready pod)");
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
