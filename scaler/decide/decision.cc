#include "scaler/decide/decision.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/time/clock.h"
#include "nlohmann/json.hpp"

namespace zeroscale::decide {
namespace {

constexpr std::pair<State, absl::string_view> kStates[] = {
    {State::kActive, "Active"},
    {State::kHolding, "Holding"},
    {State::kScaledToZero, "ScaledToZero"},
    {State::kWaking, "Waking"},
};

constexpr std::pair<Trigger, absl::string_view> kTriggers[] = {
    {Trigger::kRegistered, "registered"}, {Trigger::kSample, "sample"},
    {Trigger::kTimer, "timer"},           {Trigger::kActivate, "activate"},
    {Trigger::kPodReady, "podReady"},     {Trigger::kObservedReplicas, "observedReplicas"},
    {Trigger::kActuation, "actuation"},   {Trigger::kPods, "pods"},
    {Trigger::kAllocation, "allocation"},
};

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

}  // namespace

absl::string_view StateName(State s) {
  for (const auto& [state, name] : kStates) {
    if (state == s) return name;
  }
  return "Unknown";
}

std::optional<State> ParseState(absl::string_view name) {
  for (const auto& [state, n] : kStates) {
    if (n == name) return state;
  }
  return std::nullopt;
}

absl::string_view TriggerName(Trigger t) {
  for (const auto& [trigger, name] : kTriggers) {
    if (trigger == t) return name;
  }
  return "unknown";
}

std::optional<Trigger> ParseTrigger(absl::string_view name) {
  for (const auto& [trigger, n] : kTriggers) {
    if (n == name) return trigger;
  }
  return std::nullopt;
}

bool Decision::operator==(const Decision& o) const {
  return time == o.time && workload == o.workload && from == o.from && to == o.to &&
         replicas_before == o.replicas_before && replicas_after == o.replicas_after &&
         trigger == o.trigger && rule == o.rule && rule_source == o.rule_source &&
         reason == o.reason && dry_run == o.dry_run && limited_by == o.limited_by;
}

bool WorkloadStatus::operator==(const WorkloadStatus& o) const {
  return workload == o.workload && state == o.state && replicas == o.replicas &&
         desired == o.desired && actuation_in_flight == o.actuation_in_flight &&
         last_decision == o.last_decision && note == o.note && rules == o.rules &&
         rule_conflicts == o.rule_conflicts && limit == o.limit && limited_by == o.limited_by &&
         allocation_problem == o.allocation_problem;
}

absl::string_view RuleSourceName(RuleSource s) {
  switch (s) {
    case RuleSource::kCustomAutoscaler:
      return "customautoscaler";
    case RuleSource::kWorkloadsFile:
      return "workloads-file";
    case RuleSource::kRedis:
      return "redis";
  }
  return "unknown";
}

std::string DecisionToJson(const Decision& d) {
  nlohmann::ordered_json j;
  j["time"] = FormatRfc3339(d.time);
  j["workload"] = d.workload;
  j["from"] = std::string(StateName(d.from));
  j["to"] = std::string(StateName(d.to));
  j["replicasBefore"] = d.replicas_before;
  j["replicasAfter"] = d.replicas_after;
  j["trigger"] = std::string(TriggerName(d.trigger));
  if (!d.rule.empty()) j["rule"] = d.rule;
  if (!d.rule_source.empty()) j["ruleSource"] = d.rule_source;
  j["reason"] = d.reason;
  j["dryRun"] = d.dry_run;
  if (!d.limited_by.empty()) j["limitedBy"] = d.limited_by;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<Decision> DecisionFromJson(absl::string_view json) {
  nlohmann::json j = nlohmann::json::parse(json.begin(), json.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("decision is not a JSON object");
  }
  Decision d;
  auto str = [&](const char* field, std::string* out) -> absl::Status {
    auto it = j.find(field);
    if (it == j.end()) return absl::OkStatus();
    if (!it->is_string()) return FieldError(field, "must be a string");
    *out = it->get<std::string>();
    return absl::OkStatus();
  };
  auto num = [&](const char* field, int32_t* out) -> absl::Status {
    auto it = j.find(field);
    if (it == j.end()) return absl::OkStatus();
    if (!it->is_number_integer()) return FieldError(field, "must be an integer");
    *out = it->get<int32_t>();
    return absl::OkStatus();
  };
  std::string time, from, to, trigger;
  for (auto [field, out] : {std::pair{"time", &time},
                            {"workload", &d.workload},
                            {"from", &from},
                            {"to", &to},
                            {"trigger", &trigger},
                            {"rule", &d.rule},
                            {"ruleSource", &d.rule_source},
                            {"reason", &d.reason},
                            {"limitedBy", &d.limited_by}}) {
    if (absl::Status s = str(field, out); !s.ok()) return s;
  }
  if (absl::Status s = num("replicasBefore", &d.replicas_before); !s.ok()) return s;
  if (absl::Status s = num("replicasAfter", &d.replicas_after); !s.ok()) return s;
  absl::StatusOr<absl::Time> t = ParseRfc3339(time);
  if (!t.ok()) return FieldError("time", t.status().message());
  d.time = *t;
  std::optional<State> f = ParseState(from);
  if (!f) return FieldError("from", absl::StrCat("unknown state '", from, "'"));
  std::optional<State> s = ParseState(to);
  if (!s) return FieldError("to", absl::StrCat("unknown state '", to, "'"));
  d.from = *f;
  d.to = *s;
  if (!trigger.empty()) {
    std::optional<Trigger> tr = ParseTrigger(trigger);
    if (!tr) return FieldError("trigger", absl::StrCat("unknown trigger '", trigger, "'"));
    d.trigger = *tr;
  }
  if (auto it = j.find("dryRun"); it != j.end()) {
    if (!it->is_boolean()) return FieldError("dryRun", "must be true or false");
    d.dry_run = it->get<bool>();
  }
  return d;
}

absl::Status ValidateWorkloadSpec(const WorkloadSpec& spec) {
  if (spec.workload.empty()) return FieldError("workload", "must not be empty");
  if (spec.min_replicas < 0) return FieldError("minReplicas", "must not be negative");
  if (spec.max_replicas < 1) return FieldError("maxReplicas", "must be at least 1");
  if (spec.min_replicas > spec.max_replicas) {
    return FieldError("minReplicas",
                      absl::StrCat("(", spec.min_replicas, ") must not exceed maxReplicas (",
                                   spec.max_replicas, ")"));
  }
  if (spec.idle_timeout < absl::ZeroDuration()) {
    return FieldError("idleTimeoutSeconds", "must not be negative");
  }
  if (absl::Status s = ValidateKeepAlive(spec.keep_alive); !s.ok()) return s;
  for (const ScalingRule& rule : spec.rules) {
    if (absl::Status s = ValidateScalingRule(rule); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("rules[", rule.id, "].", s.message()));
    }
    if (!rule.target.empty() && rule.target != spec.workload) {
      return FieldError("rules", absl::StrCat("rule '", rule.id, "' targets '", rule.target,
                                              "', not '", spec.workload, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace zeroscale::decide
