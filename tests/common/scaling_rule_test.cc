#include "common/model/scaling_rule.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

ScalingRule Busy() {
  ScalingRule r;
  r.id = "busy";
  r.action = Action::kIncreaseInstances;
  r.thresholds = {{MetricType::kInFlightRequests, 4, Operator::kGreaterThan},
                  {MetricType::kCpuUsage, 80, Operator::kGreaterThan}};
  r.target = "ml/Deployment/llama";
  r.window_seconds = 30;
  r.step = 2;
  r.cooldown_seconds = 60;
  return r;
}

TEST(ScalingRuleJson, RoundTrips) {
  absl::StatusOr<ScalingRule> back = ScalingRuleFromJson(ScalingRuleToJson(Busy()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, Busy());
}

TEST(ScalingRuleJson, UsesTheSeedFieldNames) {
  EXPECT_EQ(ScalingRuleToJson(Busy()),
            R"({"id":"busy","action":"INCREASE_INSTANCES","thresholds":[)"
            R"({"metricType":"IN_FLIGHT_REQUESTS","value":4.0,"operator":"GREATER_THAN"},)"
            R"({"metricType":"CPU_USAGE","value":80.0,"operator":"GREATER_THAN"}],)"
            R"("target":"ml/Deployment/llama","windowSeconds":30,"step":2,"cooldownSeconds":60})");
}

TEST(ScalingRuleJson, SeedRuleGetsDefaults) {
  absl::StatusOr<ScalingRule> r = ScalingRuleFromJson(
      R"({"id":"idle","action":"DECREASE_INSTANCES_TO_ZERO",
          "thresholds":[{"metricType":"AVERAGE_RESPONSE_TIME","value":0,"operator":"EQUAL_TO"}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->action, Action::kDecreaseInstancesToZero);
  EXPECT_EQ(r->window_seconds, 60u);
  EXPECT_EQ(r->step, 1u);
  EXPECT_EQ(r->cooldown_seconds, 0u);
  EXPECT_TRUE(ValidateScalingRule(*r).ok());
}

TEST(ScalingRuleJson, UnknownNamesAreErrorsNamingTheField) {
  auto r = ScalingRuleFromJson(R"({"id":"x","action":"EXPLODE","thresholds":[]})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), StartsWith("action: unknown action \"EXPLODE\""));

  r = ScalingRuleFromJson(
      R"({"id":"x","action":"INCREASE_INSTANCES",
          "thresholds":[{"metricType":"TPU_USAGE","value":1,"operator":"GREATER_THAN"}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), StartsWith("thresholds[0].metricType: unknown metric type"));

  r = ScalingRuleFromJson(
      R"({"id":"x","action":"INCREASE_INSTANCES",
          "thresholds":[{"metricType":"CPU_USAGE","value":1,"operator":"ABOUT"}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              StartsWith("thresholds[0].operator: unknown operator \"ABOUT\""));

  r = ScalingRuleFromJson(
      R"({"id":"x","action":"INCREASE_INSTANCES",
          "thresholds":[{"metricType":"CPU_USAGE","value":"lots","operator":"LESS_THAN"}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), StartsWith("thresholds[0].value:"));
}

TEST(ScalingRuleValidation, RefusesBadRules) {
  ScalingRule r = Busy();
  r.id = "";
  EXPECT_THAT(std::string(ValidateScalingRule(r).message()), StartsWith("id:"));
  r = Busy();
  r.thresholds.clear();
  EXPECT_THAT(std::string(ValidateScalingRule(r).message()), StartsWith("thresholds:"));
  r = Busy();
  r.thresholds[1].value = std::numeric_limits<double>::infinity();
  EXPECT_THAT(std::string(ValidateScalingRule(r).message()), StartsWith("thresholds[1].value:"));
  r = Busy();
  r.thresholds[0].value = std::nan("");
  EXPECT_THAT(std::string(ValidateScalingRule(r).message()), StartsWith("thresholds[0].value:"));
  r = Busy();
  r.window_seconds = 0;
  EXPECT_THAT(std::string(ValidateScalingRule(r).message()), StartsWith("windowSeconds:"));
  r = Busy();
  r.step = 0;
  EXPECT_THAT(std::string(ValidateScalingRule(r).message()), StartsWith("step:"));
  r = Busy();
  r.target = "llama";
  EXPECT_THAT(std::string(ValidateScalingRule(r).message()), StartsWith("target:"));
  EXPECT_TRUE(ValidateScalingRule(Busy()).ok());
}

TEST(ScalingRuleJson, CustomThresholdNamesItsSeries) {
  absl::StatusOr<ScalingRule> r = ScalingRuleFromJson(
      R"({"id":"queue","action":"INCREASE_INSTANCES","thresholds":[{"metricType":"CUSTOM",)"
      R"("metricName":"vllm:num_requests_waiting","aggregation":"SUM","operator":"GREATER_THAN",)"
      R"("value":5},{"metricType":"GPU_USAGE","operator":"GREATER_THAN","value":80}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->thresholds.size(), 2u);
  EXPECT_EQ(r->thresholds[0].metric_type, MetricType::kCustom);
  EXPECT_EQ(r->thresholds[0].metric_name, "vllm:num_requests_waiting");
  EXPECT_EQ(r->thresholds[0].aggregation, Aggregation::kSum);
  EXPECT_EQ(r->thresholds[1].metric_type, MetricType::kGpuUsage);
  EXPECT_TRUE(ValidateScalingRule(*r).ok());
  absl::StatusOr<ScalingRule> back = ScalingRuleFromJson(ScalingRuleToJson(*r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, *r);
  // The default aggregation is MEAN, written out so stored rules say it.
  r->thresholds[0].aggregation = Aggregation::kMean;
  EXPECT_THAT(ScalingRuleToJson(*r), HasSubstr(R"("aggregation":"MEAN")"));

  auto bad = ScalingRuleFromJson(
      R"({"id":"q","action":"INCREASE_INSTANCES","thresholds":[{"metricType":"CUSTOM",)"
      R"("metricName":"x","aggregation":"MEDIAN","operator":"GREATER_THAN","value":5}]})");
  EXPECT_THAT(std::string(bad.status().message()), StartsWith("thresholds[0].aggregation:"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("MEAN, SUM"));
}

TEST(ScalingRuleValidation, CustomNeedsAValidSeriesNameAndOthersNone) {
  ScalingRule r = Busy();
  r.thresholds[0].metric_type = MetricType::kCustom;
  EXPECT_THAT(std::string(ValidateScalingRule(r).message()),
              StartsWith("thresholds[0].metricName:"));
  r.thresholds[0].metric_name = "vllm:num_requests_waiting{model=\"a\"}";
  EXPECT_THAT(std::string(ValidateScalingRule(r).message()),
              StartsWith("thresholds[0].metricName:"));
  r.thresholds[0].metric_name = std::string(kMaxAppMetricNameLength + 1, 'a');
  EXPECT_FALSE(ValidateScalingRule(r).ok());
  r.thresholds[0].metric_name = "vllm:num_requests_waiting";
  EXPECT_TRUE(ValidateScalingRule(r).ok());
  r = Busy();
  r.thresholds[0].metric_name = "vllm:num_requests_waiting";
  EXPECT_THAT(std::string(ValidateScalingRule(r).message()),
              StartsWith("thresholds[0].metricName: is only for metricType CUSTOM"));
  r = Busy();
  r.thresholds[0].aggregation = Aggregation::kSum;
  EXPECT_THAT(std::string(ValidateScalingRule(r).message()),
              StartsWith("thresholds[0].aggregation:"));
}

TEST(Compare, EachOperator) {
  EXPECT_TRUE(Compare(Operator::kGreaterThan, 5, 4));
  EXPECT_FALSE(Compare(Operator::kGreaterThan, 4, 4));
  EXPECT_TRUE(Compare(Operator::kLessThan, 3, 4));
  EXPECT_FALSE(Compare(Operator::kLessThan, 4, 4));
  EXPECT_TRUE(Compare(Operator::kEqualTo, 0, 0));
  EXPECT_TRUE(Compare(Operator::kEqualTo, 1e-12, 0));
  EXPECT_FALSE(Compare(Operator::kEqualTo, 0.001, 0));
}

TEST(Names, RoundTripEveryEnum) {
  for (int i = 0; i < 10; ++i) {
    auto mt = static_cast<MetricType>(i);
    EXPECT_EQ(ParseMetricType(MetricTypeName(mt)), mt);
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ParseOperator(OperatorName(static_cast<Operator>(i))), static_cast<Operator>(i));
    EXPECT_EQ(ParseAction(ActionName(static_cast<Action>(i))), static_cast<Action>(i));
  }
  EXPECT_FALSE(ParseAction("increase_instances").has_value());
}

}  // namespace
}  // namespace zeroscale
