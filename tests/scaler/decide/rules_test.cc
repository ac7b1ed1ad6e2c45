#include "scaler/decide/rules.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/scaler/decide/test_util.h"

namespace zeroscale::decide {
namespace {

using testing::Rule;

WindowStats Stats(MetricType t, std::optional<double> v) {
  WindowStats st;
  st.window = absl::Seconds(60);
  st.pods_counted = 1;
  st.values[static_cast<size_t>(t)] = v;
  return st;
}

TEST(RulesTest, GreaterThan) {
  ScalingRule r = Rule("busy", Action::kIncreaseInstances, MetricType::kInFlightRequests,
                       Operator::kGreaterThan, 4);
  EXPECT_TRUE(RuleHolds(r, Stats(MetricType::kInFlightRequests, 7.2)));
  EXPECT_FALSE(RuleHolds(r, Stats(MetricType::kInFlightRequests, 4)));
  EXPECT_EQ(ExplainRule(r, Stats(MetricType::kInFlightRequests, 7.2)),
            "rule 'busy' holds: IN_FLIGHT_REQUESTS 7.2 > 4 over 60s");
  EXPECT_EQ(ExplainRule(r, Stats(MetricType::kInFlightRequests, 3)),
            "rule 'busy' does not hold: IN_FLIGHT_REQUESTS 3 is not > 4 over 60s");
}

TEST(RulesTest, CustomAndGpuThresholdsExplainThemselves) {
  ScalingRule r = Rule("queue", Action::kIncreaseInstances, MetricType::kCustom,
                       Operator::kGreaterThan, 5);
  r.thresholds[0].metric_name = "vllm:num_requests_waiting";
  r.thresholds[0].aggregation = Aggregation::kSum;
  WindowStats st = Stats(MetricType::kCpuUsage, 1);
  EXPECT_FALSE(RuleHolds(r, st));
  EXPECT_EQ(ExplainRule(r, st),
            "rule 'queue' does not hold: sum of vllm:num_requests_waiting has no data over 60s "
            "(no ready pod's model server reported the series)");
  st.custom.push_back({"vllm:num_requests_waiting", 3.5, 7, 2});
  EXPECT_TRUE(RuleHolds(r, st));
  EXPECT_EQ(ExplainRule(r, st),
            "rule 'queue' holds: sum of vllm:num_requests_waiting 7 > 5 over 60s");
  ScalingRule gpu = Rule("hot", Action::kIncreaseInstances, MetricType::kGpuUsage,
                         Operator::kGreaterThan, 80);
  EXPECT_EQ(ExplainRule(gpu, st),
            "rule 'hot' does not hold: GPU_USAGE has no data over 60s (no pod reports a GPU)");
}

TEST(RulesTest, LessThan) {
  ScalingRule r =
      Rule("calm", Action::kDecreaseInstances, MetricType::kCpuUsage, Operator::kLessThan, 20);
  EXPECT_TRUE(RuleHolds(r, Stats(MetricType::kCpuUsage, 19.9)));
  EXPECT_FALSE(RuleHolds(r, Stats(MetricType::kCpuUsage, 20)));
}

TEST(RulesTest, EqualToWithinTolerance) {
  ScalingRule r = Rule("idle", Action::kDecreaseInstancesToZero, MetricType::kRequestRate,
                       Operator::kEqualTo, 0);
  EXPECT_TRUE(RuleHolds(r, Stats(MetricType::kRequestRate, 0)));
  EXPECT_TRUE(RuleHolds(r, Stats(MetricType::kRequestRate, 1e-12)));
  EXPECT_FALSE(RuleHolds(r, Stats(MetricType::kRequestRate, 0.01)));
}

TEST(RulesTest, MissingDataHoldsNothing) {
  for (Operator op : {Operator::kGreaterThan, Operator::kLessThan, Operator::kEqualTo}) {
    ScalingRule r =
        Rule("slow", Action::kIncreaseInstances, MetricType::kAverageResponseTime, op, 0);
    EXPECT_FALSE(RuleHolds(r, Stats(MetricType::kAverageResponseTime, std::nullopt)));
  }
  ScalingRule r = Rule("slow", Action::kIncreaseInstances, MetricType::kAverageResponseTime,
                       Operator::kLessThan, 100);
  EXPECT_EQ(ExplainRule(r, Stats(MetricType::kAverageResponseTime, std::nullopt)),
            "rule 'slow' does not hold: AVERAGE_RESPONSE_TIME has no data over 60s (no requests)");
}

TEST(RulesTest, AllThresholdsMustHold) {
  ScalingRule r =
      Rule("both", Action::kIncreaseInstances, MetricType::kCpuUsage, Operator::kGreaterThan, 50);
  r.thresholds.push_back({MetricType::kMemoryUsage, 80, Operator::kGreaterThan});
  WindowStats st = Stats(MetricType::kCpuUsage, 60);
  st.values[static_cast<size_t>(MetricType::kMemoryUsage)] = 70;
  EXPECT_FALSE(RuleHolds(r, st));
  st.values[static_cast<size_t>(MetricType::kMemoryUsage)] = 90;
  EXPECT_TRUE(RuleHolds(r, st));
  EXPECT_EQ(ExplainRule(r, st),
            "rule 'both' holds: CPU_USAGE 60 > 50 and MEMORY_USAGE 90 > 80 over 60s");
}

}  // namespace
}  // namespace zeroscale::decide

namespace zeroscale::decide {
namespace {

TEST(DecisionJsonTest, RoundTripsAndNamesBadFields) {
  Decision d;
  d.time = absl::FromUnixMillis(1'800'000'000'123);
  d.workload = "ml/Deployment/llama";
  d.from = State::kWaking;
  d.to = State::kActive;
  d.replicas_before = 0;
  d.replicas_after = 1;
  d.trigger = Trigger::kPodReady;
  d.reason = "pod ml/p0 is ready 4.2s after the wake";
  d.dry_run = true;
  const std::string json = DecisionToJson(d);
  EXPECT_EQ(json,
            "{\"time\":\"2027-01-15T08:00:00.123Z\",\"workload\":\"ml/Deployment/llama\","
            "\"from\":\"Waking\",\"to\":\"Active\",\"replicasBefore\":0,\"replicasAfter\":1,"
            "\"trigger\":\"podReady\",\"reason\":\"pod ml/p0 is ready 4.2s after the wake\","
            "\"dryRun\":true}");
  absl::StatusOr<Decision> back = DecisionFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, d);
  EXPECT_THAT(DecisionFromJson("{\"from\":\"Sleeping\",\"time\":\"2027-01-15T08:00:00Z\"}")
                  .status()
                  .ToString(),
              ::testing::HasSubstr("from: unknown state"));
  EXPECT_THAT(DecisionFromJson("{\"replicasAfter\":\"x\"}").status().ToString(),
              ::testing::HasSubstr("replicasAfter: must be an integer"));
  EXPECT_EQ(DecisionFromJson("[]").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zeroscale::decide
