#include "common/model/proto_convert.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale {
namespace {

using ::testing::StartsWith;

TEST(ProtoConvert, PodmetricRoundTripsExceptReceivedAt) {
  Podmetric m;
  m.id = "ml/p";
  m.cpu_usage = 1.5;
  m.workload = "ml/Deployment/x";
  m.request_count = 3;
  m.in_flight = 0.5;
  m.sampled_at = absl::FromUnixMillis(1'800'000'000'250);
  m.ready = true;
  m.seq = 9;
  m.dropped = 1;
  m.gpu_usage = 0;  // present though zero
  m.gpu_memory_bytes = 4e9;
  m.app_metrics = {{"vllm:num_requests_waiting", 2}, {"tgi_queue_size", 0}};
  m.received_at = absl::FromUnixSeconds(5);  // stamped by the scaler, not carried
  v1::Podmetric p;
  PodmetricToProto(m, &p);
  absl::StatusOr<Podmetric> back = PodmetricFromProto(p);
  ASSERT_TRUE(back.ok());
  m.received_at = absl::UnixEpoch();
  EXPECT_EQ(*back, m);
}

TEST(ProtoConvert, BadSampledAtNamesTheField) {
  v1::Podmetric p;
  p.set_id("a/b");
  p.set_sampled_at("noon");
  EXPECT_THAT(std::string(PodmetricFromProto(p).status().message()), StartsWith("sampledAt:"));
}

TEST(ProtoConvert, RuleRoundTrips) {
  ScalingRule r;
  r.id = "idle";
  r.action = Action::kDecreaseInstancesToZero;
  r.thresholds = {{MetricType::kRequestRate, 0, Operator::kEqualTo},
                  {MetricType::kCustom, 2, Operator::kLessThan, "vllm:num_requests_waiting",
                   Aggregation::kSum}};
  r.window_seconds = 120;
  v1::ScalingRule p;
  ScalingRuleToProto(r, &p);
  EXPECT_EQ(p.action(), v1::DECREASE_INSTANCES_TO_ZERO);
  EXPECT_EQ(p.thresholds(0).metric_type(), v1::REQUEST_RATE);
  EXPECT_EQ(p.thresholds(0).operator_(), v1::EQUAL_TO);
  EXPECT_EQ(p.thresholds(1).metric_type(), v1::CUSTOM);
  EXPECT_EQ(p.thresholds(1).aggregation(), v1::SUM);
  absl::StatusOr<ScalingRule> back = ScalingRuleFromProto(p);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, r);
}

TEST(ProtoConvert, UnspecifiedEnumsAreRefused) {
  v1::ScalingRule p;
  p.set_id("x");
  EXPECT_THAT(std::string(ScalingRuleFromProto(p).status().message()), StartsWith("action:"));
  p.set_action(v1::INCREASE_INSTANCES);
  p.add_thresholds()->set_operator_(v1::LESS_THAN);
  EXPECT_THAT(std::string(ScalingRuleFromProto(p).status().message()), StartsWith("thresholds[0].metricType:"));
  p.mutable_thresholds(0)->set_metric_type(v1::CPU_USAGE);
  p.mutable_thresholds(0)->set_operator_(v1::OPERATOR_UNSPECIFIED);
  EXPECT_THAT(std::string(ScalingRuleFromProto(p).status().message()), StartsWith("thresholds[0].operator:"));
}

}  // namespace
}  // namespace zeroscale
