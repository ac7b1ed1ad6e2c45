// The snapshots the reconciler hands the decider for allocation limits: budgets from
// AllocationPolicies, each node's free extended resources, a target's unschedulable pods.
#include "scaler/reconcile/allocation_views.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scaler/reconcile/pod_views.h"

namespace zeroscale::reconcile {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

kube::Node GpuNode(const std::string& name, int gpus) {
  kube::Node n;
  n.name = name;
  n.allocatable = {{"nvidia.com/gpu", gpus * 1000}, {"cpu", 8000}};
  return n;
}

kube::Pod PodOn(const std::string& node, int gpus, const std::string& phase = "Running") {
  kube::Pod p;
  p.namespace_ = "ml";
  p.name = node + "-" + std::to_string(gpus) + phase;
  p.node_name = node;
  p.phase = phase;
  p.requests = {{"nvidia.com/gpu", gpus * 1000}, {"cpu", 1000}};
  return p;
}

TEST(CapacityOfTest, AllocatableMinusScheduledRequestsOfSchedulableNodes) {
  kube::Node cordoned = GpuNode("c", 8);
  cordoned.unschedulable = true;
  kube::Node not_ready = GpuNode("d", 8);
  not_ready.ready = false;
  budget::ClusterCapacity c = CapacityOf({GpuNode("a", 4), GpuNode("b", 2), cordoned, not_ready},
                                         {PodOn("a", 1), PodOn("a", 2), PodOn("b", 2, "Succeeded"),
                                          PodOn("x", 1), PodOn("b", 1, "Pending")});
  ASSERT_EQ(c.nodes.size(), 2u);
  EXPECT_EQ(c.nodes[0].name, "a");
  // Only extended resources: cpu is the scheduler's.
  EXPECT_THAT(c.nodes[0].free, ElementsAre(Pair("nvidia.com/gpu", 1000)));
  EXPECT_THAT(c.nodes[1].free, ElementsAre(Pair("nvidia.com/gpu", 1000)));
}

TEST(BudgetsOfTest, OnePerPolicyWithItsError) {
  kube::AllocationPolicy ok;
  ok.namespace_ = "ml";
  ok.name = "llm";
  ok.limits = {{"nvidia.com/gpu", 8000}};
  kube::AllocationPolicy bad = ok;
  bad.name = "broken";
  bad.spec_error = absl::InvalidArgumentError("spec.limits.cpu: bad");
  std::vector<budget::GroupBudget> b = BudgetsOf({ok, bad});
  ASSERT_EQ(b.size(), 2u);
  EXPECT_TRUE(b[0].found && b[0].listed && b[0].error.ok());
  EXPECT_EQ(b[0].limits, ok.limits);
  EXPECT_FALSE(b[1].error.ok());
}

TEST(TargetPodsOfTest, UnscheduledAndUnschedulablePods) {
  kube::Pod running = PodOn("a", 1);
  kube::Pod waiting;
  waiting.namespace_ = "ml";
  waiting.name = "w";
  waiting.phase = "Pending";
  kube::Pod stuck = waiting;
  stuck.name = "s";
  stuck.unschedulable = true;
  stuck.unschedulable_message = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.";
  decide::TargetPods t = TargetPodsOf({running, waiting, stuck});
  EXPECT_THAT(t.unscheduled, ElementsAre("ml/s", "ml/w"));
  EXPECT_THAT(t.unschedulable, ElementsAre("ml/s"));
  EXPECT_EQ(t.unschedulable_message, stuck.unschedulable_message);
}

}  // namespace
}  // namespace zeroscale::reconcile
