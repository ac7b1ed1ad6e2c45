#include "scaler/report/explain.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::report {
namespace {

using decide::Decision;
using decide::State;
using decide::Trigger;
using ::testing::HasSubstr;

const kube::Condition* Find(const std::vector<kube::Condition>& cs, const std::string& type) {
  for (const kube::Condition& c : cs) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

Decision D(State from, State to, int before, int after, Trigger trigger, std::string reason) {
  Decision d;
  d.workload = "ml/Deployment/llama";
  d.from = from;
  d.to = to;
  d.replicas_before = before;
  d.replicas_after = after;
  d.trigger = trigger;
  d.reason = std::move(reason);
  return d;
}

TEST(ExplainDecisionTest, ReasonsAndTypes) {
  struct Case {
    Decision d;
    kube::EventType type;
    std::string reason;
  } cases[] = {
      {D(State::kActive, State::kActive, 1, 2, Trigger::kSample, "rule 'busy' holds"),
       kube::EventType::kNormal, "ScaledUp"},
      {D(State::kActive, State::kActive, 3, 2, Trigger::kSample, "rule 'calm' holds"),
       kube::EventType::kNormal, "ScaledDown"},
      {D(State::kActive, State::kScaledToZero, 2, 0, Trigger::kTimer, "idle for 30s"),
       kube::EventType::kNormal, "ScaledToZero"},
      {D(State::kScaledToZero, State::kWaking, 0, 1, Trigger::kActivate, "wake requested"),
       kube::EventType::kNormal, "WakingFromZero"},
      {D(State::kActive, State::kHolding, 2, 2, Trigger::kTimer, "no fresh samples"),
       kube::EventType::kWarning, "HoldingReplicas"},
      // A pod just turned ready; its first sample is on its way: not a warning.
      {D(State::kActive, State::kHolding, 1, 1, Trigger::kPodReady,
         "no samples received yet: holding 1 replicas"),
       kube::EventType::kNormal, "HoldingReplicas"},
      {D(State::kActive, State::kActive, 3, 2, Trigger::kActuation,
         "could not set 3 replicas (UNAVAILABLE: 503): re-reading"),
       kube::EventType::kWarning, "FailedScale"},
      {D(State::kHolding, State::kHolding, 1, 1, Trigger::kRegistered, "registered"),
       kube::EventType::kNormal, "Registered"},
      {D(State::kActive, State::kActive, 1, 5, Trigger::kObservedReplicas,
         "replicas changed outside zeroscale: 1 -> 5 replicas"),
       kube::EventType::kNormal, "ExternalScale"},
      {D(State::kWaking, State::kActive, 1, 1, Trigger::kPodReady, "pod ready"),
       kube::EventType::kNormal, "WorkloadReady"},
  };
  for (const Case& c : cases) {
    EventExplanation e = ExplainDecision(c.d);
    EXPECT_EQ(e.reason, c.reason) << c.d.reason;
    EXPECT_EQ(e.type, c.type) << c.d.reason;
    EXPECT_EQ(e.message, c.d.reason);
  }
}

TEST(ExplainDecisionTest, DryRunIsMarkedAndRuleNamedOnce) {
  Decision d = D(State::kActive, State::kActive, 1, 2, Trigger::kSample, "dry run: load is high");
  d.dry_run = true;
  d.rule = "busy";
  EventExplanation e = ExplainDecision(d);
  EXPECT_EQ(e.reason, "DryRunScaledUp");
  EXPECT_EQ(e.message, "dry run: load is high (rule 'busy')");
  EXPECT_EQ(DescribeDecision(d), "DryRunScaledUp 1 -> 2");
  d.reason = std::string(5000, 'x');
  EXPECT_EQ(ExplainDecision(d).message.size(), 1024u);
}

TEST(BuildStatusTest, InvalidSpec) {
  StatusInputs in;
  in.generation = 2;
  in.spec = absl::InvalidArgumentError("spec.maxReplicas: must be at least 1");
  kube::CustomAutoscalerStatus st = BuildStatus(in, {}, absl::FromUnixSeconds(100));
  EXPECT_FALSE(st.replicas.has_value());
  EXPECT_EQ(st.observed_generation, 2);
  const kube::Condition* valid = Find(st.conditions, kConditionSpecValid);
  ASSERT_NE(valid, nullptr);
  EXPECT_EQ(valid->status, "False");
  EXPECT_EQ(valid->reason, "InvalidSpec");
  EXPECT_EQ(valid->message, "spec.maxReplicas: must be at least 1");
  EXPECT_EQ(valid->last_transition_time, absl::FromUnixSeconds(100));
  EXPECT_EQ(Find(st.conditions, kConditionReady)->status, "False");
  EXPECT_EQ(Find(st.conditions, kConditionScalingActive)->status, "Unknown");
}

TEST(ExplainDecisionTest, StoredRuleNamesItsKey) {
  Decision d = D(State::kActive, State::kActive, 2, 3, Trigger::kSample, "rule 'grow' holds");
  d.rule = "grow";
  d.rule_source = "redis";
  EXPECT_THAT(ExplainDecision(d).message, HasSubstr("(rule from Redis: scaling_rule:grow)"));
  d.rule_source = "customautoscaler";
  EXPECT_EQ(ExplainDecision(d).message, "rule 'grow' holds");
}

TEST(BuildStatusTest, EffectiveRulesCountedAndConflictsAConditionWhileTheyLast) {
  StatusInputs in;
  in.generation = 1;
  decide::WorkloadStatus w;
  w.rules = {{"busy", decide::RuleSource::kCustomAutoscaler, Action::kIncreaseInstances},
             {"grow", decide::RuleSource::kRedis, Action::kIncreaseInstances}};
  w.rule_conflicts = {{"calm", decide::RuleSource::kCustomAutoscaler, decide::RuleSource::kRedis}};
  in.workload = w;
  kube::CustomAutoscalerStatus st = BuildStatus(in, {}, absl::FromUnixSeconds(100));
  EXPECT_EQ(st.effective_rules, 2);
  const kube::Condition* c = Find(st.conditions, "RuleConflict");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->status, "True");
  EXPECT_THAT(c->message, HasSubstr("'calm' (scaling_rule:calm)"));
  EXPECT_THAT(kube::CustomAutoscalerStatusPatch(st), HasSubstr(R"("effectiveRules":2)"));
  in.workload->rule_conflicts.clear();
  EXPECT_EQ(Find(BuildStatus(in, {}, absl::FromUnixSeconds(100)).conditions, "RuleConflict"),
            nullptr);
  in.workload.reset();
  EXPECT_FALSE(BuildStatus(in, {}, absl::FromUnixSeconds(100)).effective_rules.has_value());
}

TEST(BuildStatusTest, RunningWorkloadAndTransitionTimesKept) {
  StatusInputs in;
  in.generation = 1;
  decide::WorkloadStatus w;
  w.state = State::kActive;
  w.replicas = 2;
  w.desired = 3;
  Decision d = D(State::kActive, State::kActive, 2, 3, Trigger::kSample, "rule 'busy' holds");
  d.time = absl::FromUnixSeconds(90);
  w.last_decision = d;
  in.workload = w;
  kube::CustomAutoscalerStatus first = BuildStatus(in, {}, absl::FromUnixSeconds(100));
  EXPECT_EQ(first.replicas, 2);
  EXPECT_EQ(first.desired_replicas, 3);
  EXPECT_EQ(first.state, "Active");
  EXPECT_EQ(first.last_decision, "ScaledUp 2 -> 3");
  EXPECT_EQ(first.last_decision_reason, "rule 'busy' holds");
  EXPECT_EQ(first.last_decision_time, absl::FromUnixSeconds(90));
  EXPECT_EQ(Find(first.conditions, kConditionReady)->status, "True");
  EXPECT_EQ(Find(first.conditions, kConditionScalingActive)->status, "True");

  // Later: same statuses keep their times; a change gets a new one.
  in.workload->state = State::kScaledToZero;
  kube::CustomAutoscalerStatus second =
      BuildStatus(in, first.conditions, absl::FromUnixSeconds(200));
  EXPECT_EQ(Find(second.conditions, kConditionSpecValid)->last_transition_time,
            absl::FromUnixSeconds(100));
  const kube::Condition* active = Find(second.conditions, kConditionScalingActive);
  EXPECT_EQ(active->status, "False");
  EXPECT_EQ(active->reason, "ScaledToZero");
  EXPECT_EQ(active->last_transition_time, absl::FromUnixSeconds(200));

  in.last_write = absl::UnavailableError("HTTP 503");
  EXPECT_EQ(Find(BuildStatus(in, {}, absl::Now()).conditions, kConditionReady)->reason,
            "FailedUpdateScale");
  in.target = absl::NotFoundError("deployments \"llama\" not found");
  EXPECT_EQ(Find(BuildStatus(in, {}, absl::Now()).conditions, kConditionReady)->reason,
            "TargetNotFound");
}

}  // namespace
}  // namespace zeroscale::report

namespace zeroscale::report {
namespace {

TEST(AllocationLimitsTest, AHeldScaleUpIsAWarningEventAndACondition) {
  Decision hold = D(State::kActive, State::kActive, 3, 3, Trigger::kSample,
                    "rule 'busy' holds, but holding 3 replicas: group 'llm' is at its 8 "
                    "nvidia.com/gpu limit");
  hold.limited_by = "group";
  EventExplanation e = ExplainDecision(hold);
  EXPECT_EQ(e.reason, "ScaleUpLimited");
  EXPECT_EQ(e.type, kube::EventType::kWarning);
  EXPECT_THAT(e.message, HasSubstr("group 'llm' is at its 8 nvidia.com/gpu limit"));
  // A scale-up cut short still scaled up: ScaledUp, with the limit in its message.
  Decision partial = D(State::kActive, State::kActive, 1, 2, Trigger::kSample,
                       "rule 'busy' holds: 1 -> 2 replicas (not 4: the cluster has room for 1 "
                       "more replica needing 1 nvidia.com/gpu)");
  partial.limited_by = "cluster";
  EXPECT_EQ(ExplainDecision(partial).reason, "ScaledUp");

  StatusInputs in;
  in.generation = 1;
  decide::WorkloadStatus w;
  w.state = State::kActive;
  w.limit = "holding 3 replicas: 2 replicas Pending for lack of nvidia.com/gpu: not adding more";
  w.limited_by = "pending";
  w.allocation_problem =
      "group 'nope': no AllocationPolicy 'nope' in namespace ml: scale-ups "
      "are not limited by a group budget";
  in.workload = w;
  kube::CustomAutoscalerStatus st = BuildStatus(in, {}, absl::FromUnixSeconds(100));
  const kube::Condition* c = Find(st.conditions, kConditionScalingLimited);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->status, "True");
  EXPECT_EQ(c->reason, "PodsUnschedulable");
  EXPECT_EQ(c->message, w.limit);
  c = Find(st.conditions, kConditionAllocationPolicy);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->status, "False");
  EXPECT_THAT(c->message, HasSubstr("no AllocationPolicy 'nope'"));
  // Gone when they no longer apply.
  in.workload->limit.clear();
  in.workload->allocation_problem.clear();
  st = BuildStatus(in, {}, absl::FromUnixSeconds(100));
  EXPECT_EQ(Find(st.conditions, kConditionScalingLimited), nullptr);
  EXPECT_EQ(Find(st.conditions, kConditionAllocationPolicy), nullptr);
}

TEST(AllocationLimitsTest, DecisionJsonKeepsTheLimit) {
  Decision d = D(State::kWaking, State::kWaking, 1, 1, Trigger::kAllocation, "held");
  d.limited_by = "group";
  absl::StatusOr<Decision> back = decide::DecisionFromJson(decide::DecisionToJson(d));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, d);
}

}  // namespace
}  // namespace zeroscale::report
