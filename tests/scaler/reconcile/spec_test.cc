#include "scaler/reconcile/spec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::reconcile {
namespace {

using ::testing::HasSubstr;

kube::CustomAutoscaler ValidCr() {
  kube::CustomAutoscaler ca;
  ca.namespace_ = "ml";
  ca.name = "llama";
  ca.generation = 3;
  ca.spec.scale_target_ref = {"apps/v1", "Deployment", "llama"};
  ca.spec.min_replicas = 0;
  ca.spec.max_replicas = 4;
  ca.spec.idle_timeout_seconds = 30;
  ScalingRule r;
  r.id = "busy";
  r.thresholds = {{MetricType::kInFlightRequests, 4, Operator::kGreaterThan}};
  ca.spec.rules = {r};
  return ca;
}

TEST(WorkloadSpecFromTest, MapsBoundsIdleTimeoutAndBindsRules) {
  absl::StatusOr<decide::WorkloadSpec> spec = WorkloadSpecFrom(ValidCr());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->workload, "ml/Deployment/llama");
  EXPECT_EQ(spec->min_replicas, 0);
  EXPECT_EQ(spec->max_replicas, 4);
  EXPECT_EQ(spec->idle_timeout, absl::Seconds(30));
  ASSERT_EQ(spec->rules.size(), 1u);
  EXPECT_EQ(spec->rules[0].target, "ml/Deployment/llama");
}

TEST(WorkloadSpecFromTest, ParseErrorsAndInvalidSpecsAreRefused) {
  kube::CustomAutoscaler ca = ValidCr();
  ca.spec_error = absl::InvalidArgumentError("spec.maxReplicas: must be at least 1");
  EXPECT_THAT(WorkloadSpecFrom(ca).status().message(), HasSubstr("spec.maxReplicas"));

  ca = ValidCr();
  ca.spec.min_replicas = 5;  // beyond max, as a parser bug or a hand-built object might say
  EXPECT_EQ(WorkloadSpecFrom(ca).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zeroscale::reconcile
