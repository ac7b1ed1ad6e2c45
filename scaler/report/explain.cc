#include "scaler/report/explain.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace zeroscale::report {
namespace {

using decide::Decision;
using decide::State;
using decide::Trigger;

// client-go truncates Event messages to this; the API server refuses much longer ones.
constexpr size_t kMaxEventMessage = 1024;

std::string Truncate(std::string s, size_t max) {
  if (s.size() > max) {
    s.resize(max - 3);
    s += "...";
  }
  return s;
}

std::string BaseReason(const Decision& d) {
  if (IsFailedWrite(d)) return "FailedScale";
  // A scale-up an allocation limit held back entirely.
  if (!d.limited_by.empty() && d.replicas_after == d.replicas_before) return "ScaleUpLimited";
  if (d.trigger == Trigger::kRegistered && d.replicas_before == d.replicas_after &&
      d.from == d.to) {
    return "Registered";
  }
  if (d.trigger == Trigger::kObservedReplicas ||
      (d.trigger == Trigger::kActuation && absl::StartsWith(d.reason, "re-read"))) {
    return "ExternalScale";
  }
  if (d.replicas_after > d.replicas_before) {
    return d.from == State::kScaledToZero || d.to == State::kWaking ? "WakingFromZero" : "ScaledUp";
  }
  if (d.replicas_after < d.replicas_before) {
    return d.replicas_after == 0 ? "ScaledToZero" : "ScaledDown";
  }
  if (d.to == State::kHolding && d.from != State::kHolding) return "HoldingReplicas";
  if (d.from == State::kHolding && d.to == State::kActive) return "MetricsResumed";
  if (d.from == State::kWaking && d.to == State::kActive) return "WorkloadReady";
  return "Decision";
}

kube::Condition Cond(const char* type, bool ok, std::string reason, std::string message) {
  kube::Condition c;
  c.type = type;
  c.status = ok ? "True" : "False";
  c.reason = std::move(reason);
  c.message = std::move(message);
  return c;
}

}  // namespace

bool IsFailedWrite(const Decision& d) {
  // The automaton records a failed SetReplicas as an actuation decision saying so; it
  // has no separate flag.
  return d.trigger == Trigger::kActuation && absl::StartsWith(d.reason, "could not set");
}

EventExplanation ExplainDecision(const Decision& d) {
  EventExplanation e;
  const std::string base = BaseReason(d);
  const bool warn =
      base == "FailedScale" || base == "ScaleUpLimited" ||
      (base == "HoldingReplicas" && !absl::StartsWith(d.reason, decide::kNoSamplesYet));
  e.type = warn ? kube::EventType::kWarning : kube::EventType::kNormal;
  // Dry-run decisions stay apart from real ones, so `kubectl get events` cannot mistake
  // a rehearsal for an action.
  e.reason = d.dry_run ? absl::StrCat("DryRun", base) : base;
  std::string message = d.reason;
  if (!d.rule.empty() && !absl::StrContains(message, d.rule)) {
    absl::StrAppend(&message, " (rule '", d.rule, "')");
  }
  // A rule from Redis is not in the CustomAutoscaler: say where to find it.
  if (d.rule_source == "redis") {
    absl::StrAppend(&message, " (rule from Redis: scaling_rule:", d.rule, ")");
  }
  e.message = Truncate(std::move(message), kMaxEventMessage);
  return e;
}

std::string DescribeDecision(const Decision& d) {
  return absl::StrCat(d.dry_run ? "DryRun" : "", BaseReason(d), " ", d.replicas_before, " -> ",
                      d.replicas_after);
}

kube::CustomAutoscalerStatus BuildStatus(const StatusInputs& in,
                                         const std::vector<kube::Condition>& previous,
                                         absl::Time now) {
  kube::CustomAutoscalerStatus st;
  st.observed_generation = in.generation;

  std::vector<kube::Condition> conds;
  if (in.spec.ok()) {
    conds.push_back(Cond(kConditionSpecValid, true, "ValidSpec", "the spec is valid"));
  } else {
    conds.push_back(
        Cond(kConditionSpecValid, false, in.spec_reason, std::string(in.spec.message())));
  }

  if (!in.spec.ok()) {
    conds.push_back(Cond(kConditionReady, false, in.spec_reason,
                         "no automaton runs for an invalid spec; fix the spec"));
  } else if (!in.target.ok()) {
    conds.push_back(
        Cond(kConditionReady, false,
             in.target.code() == absl::StatusCode::kNotFound ? "TargetNotFound" : "FailedGetScale",
             std::string(in.target.message())));
  } else if (!in.last_write.ok()) {
    conds.push_back(
        Cond(kConditionReady, false, "FailedUpdateScale", std::string(in.last_write.message())));
  } else if (in.workload) {
    conds.push_back(Cond(kConditionReady, true, "Reconciled",
                         in.dry_run ? "dry run: decisions are computed and recorded, not applied"
                                    : "the automaton manages the target's replicas"));
  } else {
    kube::Condition c = Cond(kConditionReady, false, "Pending", "reading the target");
    c.status = "Unknown";
    conds.push_back(std::move(c));
  }

  if (in.workload) {
    const decide::WorkloadStatus& w = *in.workload;
    st.replicas = w.replicas;
    st.desired_replicas = w.desired;
    st.effective_rules = static_cast<int32_t>(w.rules.size());
    st.state = std::string(decide::StateName(w.state));
    if (w.last_decision) {
      st.last_decision = DescribeDecision(*w.last_decision);
      st.last_decision_reason = w.last_decision->reason;
      st.last_decision_time = w.last_decision->time;
    }
    std::string note = w.note.empty() ? st.last_decision_reason : w.note;
    switch (w.state) {
      case decide::State::kActive:
        conds.push_back(Cond(kConditionScalingActive, true, "Active",
                             note.empty() ? "rules are evaluated on fresh metrics" : note));
        break;
      case decide::State::kWaking:
        conds.push_back(Cond(kConditionScalingActive, true, "Waking",
                             "waking from zero; waiting for a pod to report ready"));
        break;
      case decide::State::kHolding:
        conds.push_back(Cond(kConditionScalingActive, false, "NoFreshMetrics",
                             "no fresh metrics: replicas are held, never lowered"));
        break;
      case decide::State::kScaledToZero:
        conds.push_back(Cond(kConditionScalingActive, false, "ScaledToZero",
                             "at zero replicas until a request (or minReplicas) wakes it"));
        break;
    }
  } else {
    kube::Condition c = Cond(kConditionScalingActive, false, "NotManaged", "no automaton runs");
    c.status = "Unknown";
    conds.push_back(std::move(c));
  }
  // Allocation limits: shown only while a scale-up is held back, or while the group's
  // budget cannot be used.
  if (in.workload && !in.workload->limit.empty()) {
    const std::string& kind = in.workload->limited_by;
    conds.push_back(Cond(kConditionScalingLimited, true,
                         kind == "group"     ? "GroupBudget"
                         : kind == "cluster" ? "ClusterCapacity"
                                             : "PodsUnschedulable",
                         in.workload->limit));
  }
  if (in.workload && !in.workload->allocation_problem.empty()) {
    conds.push_back(
        Cond(kConditionAllocationPolicy, false, "PolicyUnusable", in.workload->allocation_problem));
  }
  // A rule id given both here and in Redis: shown only while it lasts.
  if (in.workload && !in.workload->rule_conflicts.empty()) {
    std::string ids;
    for (const decide::RuleConflict& c : in.workload->rule_conflicts) {
      absl::StrAppend(&ids, ids.empty() ? "" : ", ", "'", c.id, "' (scaling_rule:", c.id, ")");
    }
    conds.push_back(Cond("RuleConflict", true, "StoredRuleIgnored",
                         absl::StrCat("Redis also has rules with ids of spec.rules; spec.rules "
                                      "wins, the stored ones are ignored: ",
                                      ids)));
  }

  for (kube::Condition& c : conds) {
    c.observed_generation = in.generation;
    c.last_transition_time = now;
    for (const kube::Condition& p : previous) {
      if (p.type == c.type && p.status == c.status &&
          p.last_transition_time != absl::InfinitePast()) {
        c.last_transition_time = p.last_transition_time;
      }
    }
  }
  st.conditions = std::move(conds);
  return st;
}

}  // namespace zeroscale::report
