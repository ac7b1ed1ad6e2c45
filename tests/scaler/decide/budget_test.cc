// The allocation check before a scale-up, as pure math: group budgets with several
// workloads competing, the cluster's room for extended resources per node, unschedulable
// pods, quantities of every form, and what is not limited (no budget, an unknown group).
#include "scaler/decide/budget/budget.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::budget {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

int64_t Q(const char* text) { return *ParseQuantityMilli(text); }

ResourceAmounts Gpus(const char* n) { return {{"nvidia.com/gpu", Q(n)}}; }

GroupBudget Group(ResourceAmounts limits) {
  GroupBudget g;
  g.name = "llm";
  g.namespace_ = "ml";
  g.found = true;
  g.limits = std::move(limits);
  return g;
}

TEST(BudgetTest, NothingToCheckMeansAllFit) {
  ScaleUpInputs in;
  ScaleUpFit fit = FitScaleUp(in, 1, 4);
  EXPECT_EQ(fit.replicas, 4);
  EXPECT_EQ(fit.limit, LimitKind::kNone);
  EXPECT_THAT(fit.reason, IsEmpty());
  // Requests but neither group nor cluster known: nothing limits either.
  in.per_replica = Gpus("2");
  EXPECT_EQ(FitScaleUp(in, 0, 3).replicas, 3);
}

TEST(BudgetTest, SeveralWorkloadsCompetingInOneGroup) {
  // Group 'llm': 8 GPUs. Workload A (2 GPUs a replica) desires 3, so holds 6.
  const ResourceAmounts per_a = Gpus("2");
  ScaleUpInputs b;
  b.per_replica = Gpus("1");
  b.group = Group(Gpus("8"));
  b.group_used_by_others = Times(per_a, 3);
  // B (1 GPU a replica) may have 2 of the 4 it wants.
  ScaleUpFit fit = FitScaleUp(b, 0, 4);
  EXPECT_EQ(fit.replicas, 2);
  EXPECT_EQ(fit.limit, LimitKind::kGroup);
  EXPECT_EQ(std::string(LimitKindName(fit.limit)), "group");
  EXPECT_THAT(fit.reason, HasSubstr("group 'llm' is at its 8 nvidia.com/gpu limit"));
  EXPECT_THAT(fit.reason, HasSubstr("hold 6, one replica needs 1"));
  // At 2 B is at the limit: holds.
  fit = FitScaleUp(b, 2, 3);
  EXPECT_EQ(fit.replicas, 2);
  EXPECT_EQ(fit.limit, LimitKind::kGroup);
  // A scales down to 1: B may grow to 6.
  b.group_used_by_others = Times(per_a, 1);
  EXPECT_EQ(FitScaleUp(b, 2, 10).replicas, 6);
  // A third workload C of the group (4 GPUs, desires 1) takes its share too.
  AddTo(&b.group_used_by_others, Times(Gpus("4"), 1));
  EXPECT_EQ(FitScaleUp(b, 2, 10).replicas, 2);
  // Over the budget already (the policy shrank): never lowered here, only held.
  b.group = Group(Gpus("4"));
  fit = FitScaleUp(b, 2, 3);
  EXPECT_EQ(fit.replicas, 2);
  EXPECT_EQ(fit.limit, LimitKind::kGroup);
}

TEST(BudgetTest, QuantitiesOfEveryFormAndTheTightestResourceWins) {
  ScaleUpInputs in;
  in.per_replica = {{"cpu", Q("500m")}, {"memory", Q("16Gi")}, {"nvidia.com/gpu", Q("1")}};
  in.group = Group({{"cpu", Q("4")}, {"memory", Q("64Gi")}, {"nvidia.com/gpu", Q("8")}});
  // cpu fits 8, GPUs 8, memory 4: memory limits.
  ScaleUpFit fit = FitScaleUp(in, 1, 6);
  EXPECT_EQ(fit.replicas, 4);
  EXPECT_THAT(fit.reason, HasSubstr("at its 64Gi memory limit"));
  EXPECT_THAT(fit.reason, HasSubstr("one replica needs 16Gi"));
  // Others hold 2.5 cpu: cpu fits 3.
  in.group_used_by_others = {{"cpu", Q("2500m")}};
  fit = FitScaleUp(in, 1, 6);
  EXPECT_EQ(fit.replicas, 3);
  EXPECT_THAT(fit.reason, HasSubstr("at its 4 cpu limit (other workloads of the group hold 2.5"));
  // A limit on a resource the workload does not request does not limit it.
  in.group = Group({{"amd.com/gpu", Q("1")}});
  EXPECT_EQ(FitScaleUp(in, 1, 6).replicas, 6);
}

TEST(BudgetTest, UnknownOrUnusableGroupDoesNotLimitButUnlistedHolds) {
  ScaleUpInputs in;
  in.per_replica = Gpus("1");
  in.group = Group(Gpus("1"));
  in.group->found = false;  // no AllocationPolicy of that name
  EXPECT_EQ(FitScaleUp(in, 0, 3).replicas, 3);
  in.group = Group(Gpus("1"));
  in.group->error = absl::InvalidArgumentError("spec.limits.cpu: bad");
  EXPECT_EQ(FitScaleUp(in, 0, 3).replicas, 3);
  // Not listed yet: unknown is not unlimited.
  in.group = Group(Gpus("8"));
  in.group->listed = false;
  ScaleUpFit fit = FitScaleUp(in, 0, 3);
  EXPECT_EQ(fit.replicas, 0);
  EXPECT_EQ(fit.limit, LimitKind::kGroup);
  EXPECT_THAT(fit.reason, HasSubstr("group 'llm': its AllocationPolicy is not read yet"));
}

TEST(BudgetTest, ClusterRoomIsCountedInWholeReplicasPerNode) {
  ScaleUpInputs in;
  in.per_replica = {{"nvidia.com/gpu", Q("2")}, {"cpu", Q("4")}};
  in.cluster = ClusterCapacity{{NodeRoom{"a", Gpus("3")}, NodeRoom{"b", Gpus("3")}}};
  // 6 GPUs free, but a 2-GPU replica fits once per node: 2 more.
  ScaleUpFit fit = FitScaleUp(in, 1, 5);
  EXPECT_EQ(fit.replicas, 3);
  EXPECT_EQ(fit.limit, LimitKind::kCluster);
  EXPECT_THAT(fit.reason,
              HasSubstr("the cluster has room for 2 more replicas needing 2 nvidia.com/gpu (6 "
                        "nvidia.com/gpu free on 2 schedulable nodes)"));
  // A replica wanted before and not yet placed takes one of those places.
  in.unplaced = 1;
  fit = FitScaleUp(in, 1, 5);
  EXPECT_EQ(fit.replicas, 2);
  EXPECT_THAT(fit.reason, HasSubstr("1 replica of it not placed yet"));
  // No node has the resource: nothing more.
  in.unplaced = 0;
  in.cluster = ClusterCapacity{{NodeRoom{"cpu-only", {}}}};
  fit = FitScaleUp(in, 1, 2);
  EXPECT_EQ(fit.replicas, 1);
  EXPECT_THAT(fit.reason, HasSubstr("room for no more replicas"));
  // cpu alone is left to the scheduler: not checked against the cluster.
  in.per_replica = {{"cpu", Q("64")}};
  EXPECT_EQ(FitScaleUp(in, 1, 2).replicas, 2);
  // Being listed: holds rather than guess.
  in.per_replica = Gpus("1");
  in.cluster = ClusterCapacity{{}, /*listed=*/false};
  fit = FitScaleUp(in, 1, 2);
  EXPECT_EQ(fit.replicas, 1);
  EXPECT_THAT(fit.reason, HasSubstr("the cluster's free nvidia.com/gpu is not read yet"));
  // Overcommitted nodes (negative room) count as none.
  in.per_replica = Gpus("1");
  in.cluster = ClusterCapacity{{NodeRoom{"a", {{"nvidia.com/gpu", -1000}}}}};
  EXPECT_EQ(FitScaleUp(in, 0, 1).replicas, 0);
}

TEST(BudgetTest, UnschedulablePodsStopFurtherScaleUp) {
  ScaleUpInputs in;
  in.per_replica = Gpus("1");
  in.cluster = ClusterCapacity{{NodeRoom{"a", Gpus("8")}}};  // a stale view says room
  in.unschedulable = 2;
  in.unschedulable_message =
      "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) had untolerated taint.";
  ScaleUpFit fit = FitScaleUp(in, 3, 5);
  EXPECT_EQ(fit.replicas, 3);
  EXPECT_EQ(fit.limit, LimitKind::kPending);
  EXPECT_EQ(fit.reason, "2 replicas Pending for lack of nvidia.com/gpu: not adding more");
  in.unschedulable = 1;
  in.unschedulable_message = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity.";
  EXPECT_THAT(FitScaleUp(in, 3, 5).reason,
              HasSubstr("1 replica Pending (unschedulable: 0/1 nodes are available: 1 node(s) "
                        "didn't match"));
}

TEST(BudgetTest, TheTightestLimitGivesTheReason) {
  ScaleUpInputs in;
  in.per_replica = Gpus("1");
  in.group = Group(Gpus("8"));
  in.cluster = ClusterCapacity{{NodeRoom{"a", Gpus("2")}}};
  ScaleUpFit fit = FitScaleUp(in, 1, 6);
  EXPECT_EQ(fit.replicas, 3);
  EXPECT_EQ(fit.limit, LimitKind::kCluster);
  in.cluster = ClusterCapacity{{NodeRoom{"a", Gpus("16")}}};
  fit = FitScaleUp(in, 1, 12);
  EXPECT_EQ(fit.replicas, 8);
  EXPECT_EQ(fit.limit, LimitKind::kGroup);
}

TEST(BudgetTest, LackingResourceFromTheSchedulersMessage) {
  EXPECT_EQ(LackingResource("0/1 nodes are available: 1 Insufficient nvidia.com/gpu."),
            "nvidia.com/gpu");
  EXPECT_EQ(LackingResource("0/2 nodes are available: 2 Insufficient cpu, 2 Insufficient memory."),
            "cpu");
  EXPECT_EQ(LackingResource("0/1 nodes are available: 1 Too many pods."), "");
  EXPECT_EQ(LackingResource(""), "");
}

TEST(BudgetTest, SaturatingArithmetic) {
  ResourceAmounts big = {{"memory", kMaxQuantityMilli}};
  EXPECT_EQ(Times(big, 3)["memory"], kMaxQuantityMilli);
  AddTo(&big, big);
  EXPECT_EQ(big["memory"], kMaxQuantityMilli);
  EXPECT_EQ(Times(Gpus("2"), 0)["nvidia.com/gpu"], 0);
}

}  // namespace
}  // namespace zeroscale::budget
