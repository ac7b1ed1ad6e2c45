#include "common/model/scaling_rule.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/model/json_fields.h"
#include "common/status/quote.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace zeroscale {
namespace {

using json_fields::FieldError;

constexpr absl::string_view kOperatorNames[] = {"GREATER_THAN", "LESS_THAN", "EQUAL_TO"};
constexpr absl::string_view kMetricTypeNames[] = {
    "CPU_USAGE",         "MEMORY_USAGE", "DISK_USAGE",         "AVERAGE_RESPONSE_TIME",
    "P99_RESPONSE_TIME", "REQUEST_RATE", "IN_FLIGHT_REQUESTS", "GPU_USAGE",
    "GPU_MEMORY_USAGE",  "CUSTOM"};
constexpr absl::string_view kAggregationNames[] = {"MEAN", "SUM"};
constexpr absl::string_view kActionNames[] = {"INCREASE_INSTANCES", "DECREASE_INSTANCES",
                                              "DECREASE_INSTANCES_TO_ZERO"};

template <typename E, size_t N>
std::optional<E> ParseName(const absl::string_view (&names)[N], absl::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<E>(i);
  }
  return std::nullopt;
}

template <size_t N>
std::string Choices(const absl::string_view (&names)[N]) {
  std::string out;
  for (size_t i = 0; i < N; ++i) absl::StrAppend(&out, i ? ", " : "", names[i]);
  return out;
}

absl::Status GetSmallUint(const nlohmann::json& j, const std::string& field, uint32_t* out) {
  uint64_t v = *out;
  ZS_RETURN_IF_ERROR(json_fields::GetUint(j, field, &v));
  if (v > UINT32_MAX) return FieldError(field, "is too large");
  *out = static_cast<uint32_t>(v);
  return absl::OkStatus();
}

}  // namespace

absl::string_view OperatorName(Operator op) { return kOperatorNames[static_cast<int>(op)]; }
absl::string_view MetricTypeName(MetricType mt) { return kMetricTypeNames[static_cast<int>(mt)]; }
absl::string_view ActionName(Action a) { return kActionNames[static_cast<int>(a)]; }
absl::string_view AggregationName(Aggregation a) { return kAggregationNames[static_cast<int>(a)]; }
std::optional<Operator> ParseOperator(absl::string_view name) {
  return ParseName<Operator>(kOperatorNames, name);
}
std::optional<MetricType> ParseMetricType(absl::string_view name) {
  return ParseName<MetricType>(kMetricTypeNames, name);
}
std::optional<Action> ParseAction(absl::string_view name) {
  return ParseName<Action>(kActionNames, name);
}
std::optional<Aggregation> ParseAggregation(absl::string_view name) {
  return ParseName<Aggregation>(kAggregationNames, name);
}

bool IsAppMetricName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxAppMetricNameLength) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

bool Compare(Operator op, double value, double threshold) {
  switch (op) {
    case Operator::kGreaterThan:
      return value > threshold;
    case Operator::kLessThan:
      return value < threshold;
    case Operator::kEqualTo:
      return std::fabs(value - threshold) <= 1e-9;
  }
  return false;
}

absl::Status ValidateScalingRule(const ScalingRule& rule) {
  if (rule.id.empty()) return FieldError("id", "must not be empty");
  if (rule.id.size() > kMaxRuleIdLength) {
    return FieldError("id", absl::StrCat("is longer than ", kMaxRuleIdLength, " bytes"));
  }
  for (unsigned char c : rule.id) {
    if (c <= ' ' || c == 0x7f) {
      return FieldError("id", "must not contain spaces or control characters");
    }
  }
  if (!rule.target.empty() && std::count(rule.target.begin(), rule.target.end(), '/') != 2) {
    return FieldError("target", absl::StrCat("must look like <namespace>/<kind>/<name>, got ",
                                             Quote(rule.target)));
  }
  if (rule.thresholds.empty()) return FieldError("thresholds", "must hold at least one threshold");
  for (size_t i = 0; i < rule.thresholds.size(); ++i) {
    const Threshold& t = rule.thresholds[i];
    const std::string prefix = absl::StrCat("thresholds[", i, "]");
    if (!std::isfinite(t.value)) return FieldError(prefix + ".value", "must be a finite number");
    if (t.metric_type == MetricType::kCustom) {
      if (!IsAppMetricName(t.metric_name)) {
        return FieldError(prefix + ".metricName",
                          absl::StrCat("must name a Prometheus series ([a-zA-Z_:][a-zA-Z0-9_:]*, "
                                       "at most ",
                                       kMaxAppMetricNameLength, " bytes) for CUSTOM, got ",
                                       Quote(t.metric_name)));
      }
    } else if (!t.metric_name.empty()) {
      return FieldError(prefix + ".metricName", absl::StrCat("is only for metricType CUSTOM, not ",
                                                             MetricTypeName(t.metric_type)));
    } else if (t.aggregation != Aggregation::kMean) {
      return FieldError(prefix + ".aggregation", absl::StrCat("is only for metricType CUSTOM; ",
                                                              MetricTypeName(t.metric_type),
                                                              " is aggregated as the spec says"));
    }
  }
  if (rule.window_seconds == 0 || rule.window_seconds > kMaxWindowSeconds) {
    return FieldError("windowSeconds", absl::StrCat("must be in 1..", kMaxWindowSeconds));
  }
  if (rule.step == 0) return FieldError("step", "must be at least 1");
  return absl::OkStatus();
}

std::string ScalingRuleToJson(const ScalingRule& rule) {
  nlohmann::ordered_json j;
  j["id"] = rule.id;
  j["action"] = ActionName(rule.action);
  nlohmann::ordered_json thresholds = nlohmann::ordered_json::array();
  for (const Threshold& t : rule.thresholds) {
    nlohmann::ordered_json tj;
    tj["metricType"] = MetricTypeName(t.metric_type);
    tj["value"] = t.value;
    tj["operator"] = OperatorName(t.op);
    if (t.metric_type == MetricType::kCustom) {
      tj["metricName"] = t.metric_name;
      tj["aggregation"] = AggregationName(t.aggregation);
    }
    thresholds.push_back(std::move(tj));
  }
  j["thresholds"] = std::move(thresholds);
  if (!rule.target.empty()) j["target"] = rule.target;
  j["windowSeconds"] = rule.window_seconds;
  j["step"] = rule.step;
  j["cooldownSeconds"] = rule.cooldown_seconds;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<ScalingRule> ScalingRuleFromJson(absl::string_view json) {
  nlohmann::json j;
  ZS_RETURN_IF_ERROR(json_fields::Parse(json, &j));
  if (!j.is_object()) return absl::InvalidArgumentError("a ScalingRule must be a JSON object");
  ScalingRule rule;
  ZS_RETURN_IF_ERROR(json_fields::GetString(j, "id", &rule.id));
  std::string action;
  ZS_RETURN_IF_ERROR(json_fields::GetString(j, "action", &action));
  if (std::optional<Action> a = ParseAction(action)) {
    rule.action = *a;
  } else {
    return FieldError("action", absl::StrCat("unknown action ", Quote(action), ", expected one of ",
                                             Choices(kActionNames)));
  }
  auto th = j.find("thresholds");
  if (th != j.end() && !th->is_null()) {
    if (!th->is_array()) return FieldError("thresholds", "must be an array");
    for (size_t i = 0; i < th->size(); ++i) {
      const nlohmann::json& tj = (*th)[i];
      const std::string prefix = absl::StrCat("thresholds[", i, "]");
      if (!tj.is_object()) return FieldError(prefix, "must be an object");
      Threshold t;
      std::string metric, op;
      absl::Status s = json_fields::GetString(tj, "metricType", &metric);
      if (!s.ok()) return FieldError(prefix + ".metricType", "must be a string");
      if (std::optional<MetricType> mt = ParseMetricType(metric)) {
        t.metric_type = *mt;
      } else {
        return FieldError(prefix + ".metricType",
                          absl::StrCat("unknown metric type ", Quote(metric), ", expected one of ",
                                       Choices(kMetricTypeNames)));
      }
      s = json_fields::GetString(tj, "operator", &op);
      if (!s.ok()) return FieldError(prefix + ".operator", "must be a string");
      if (std::optional<Operator> o = ParseOperator(op)) {
        t.op = *o;
      } else {
        return FieldError(prefix + ".operator",
                          absl::StrCat("unknown operator ", Quote(op), ", expected one of ",
                                       Choices(kOperatorNames)));
      }
      auto v = tj.find("value");
      if (v == tj.end() || !v->is_number()) {
        return FieldError(prefix + ".value", "must be a number");
      }
      t.value = v->get<double>();
      s = json_fields::GetString(tj, "metricName", &t.metric_name);
      if (!s.ok()) return FieldError(prefix + ".metricName", "must be a string");
      std::string aggregation;
      s = json_fields::GetString(tj, "aggregation", &aggregation);
      if (!s.ok()) return FieldError(prefix + ".aggregation", "must be a string");
      if (!aggregation.empty()) {
        if (std::optional<Aggregation> a = ParseAggregation(aggregation)) {
          t.aggregation = *a;
        } else {
          return FieldError(prefix + ".aggregation",
                            absl::StrCat("unknown aggregation ", Quote(aggregation),
                                         ", expected one of ", Choices(kAggregationNames)));
        }
      }
      rule.thresholds.push_back(t);
    }
  }
  ZS_RETURN_IF_ERROR(json_fields::GetString(j, "target", &rule.target));
  ZS_RETURN_IF_ERROR(GetSmallUint(j, "windowSeconds", &rule.window_seconds));
  ZS_RETURN_IF_ERROR(GetSmallUint(j, "step", &rule.step));
  ZS_RETURN_IF_ERROR(GetSmallUint(j, "cooldownSeconds", &rule.cooldown_seconds));
  return rule;
}

}  // namespace zeroscale
