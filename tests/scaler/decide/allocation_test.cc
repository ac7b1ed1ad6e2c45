// Allocation limits through the Engine: workloads of one group competing for its budget,
// a wake from zero that does not fit (held, the balancer's request kept), the cluster's
// room, unschedulable pods, an unknown group (said in the status, not a crash), with a
// fake clock, a manual scheduler and a ReplicaSetter the test completes by hand.
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scaler/decide/engine.h"
#include "tests/scaler/decide/test_util.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::decide {
namespace {

using testing::FakeSetter;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::RecordingSink;

constexpr char kA[] = "ml/Deployment/a";
constexpr char kB[] = "ml/Deployment/b";

ResourceAmounts Gpus(int n) { return {{"nvidia.com/gpu", int64_t{n} * 1000}}; }

budget::GroupBudget Llm(int gpus) {
  budget::GroupBudget b;
  b.name = "llm";
  b.namespace_ = "ml";
  b.found = true;
  b.limits = Gpus(gpus);
  return b;
}

class AllocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = std::make_unique<Engine>(&clock_, &scheduler_, &setter_, &sink_);
  }
  WorkloadSpec Spec(const char* workload, int32_t min, int32_t max,
                    std::vector<ScalingRule> rules = {}) {
    WorkloadSpec s;
    s.workload = workload;
    s.min_replicas = min;
    s.max_replicas = max;
    s.rules = std::move(rules);
    for (ScalingRule& r : s.rules) r.target = workload;
    return s;
  }
  void InGroup(const char* workload, int gpus_per_replica, const std::string& group = "llm") {
    Engine::Allocation a;
    a.group = group;
    a.namespace_ = "ml";
    a.per_replica = Gpus(gpus_per_replica);
    engine_->SetAllocation(workload, a);
  }
  void CompleteAll() {
    while (!setter_.sets.empty()) {
      setter_.CompleteSet();
      scheduler_.RunPending();
    }
  }
  WorkloadStatus Status(const char* w) { return *engine_->GetStatus(w); }
  std::vector<Decision> Limited(const char* w) {
    std::vector<Decision> out;
    for (const Decision& d : sink_.decisions) {
      if (d.workload == w && !d.limited_by.empty()) out.push_back(d);
    }
    return out;
  }

  zeroscale::testing::FakeClock clock_;
  ManualScheduler scheduler_{&clock_};
  FakeSetter setter_;
  RecordingSink sink_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(AllocationTest, TwoWorkloadsCompeteForOneGroupsBudget) {
  engine_->SetGroupBudgets(std::vector<budget::GroupBudget>{Llm(8)});
  InGroup(kA, 2);
  InGroup(kB, 2);
  // A wakes to its minReplicas 3: 6 of the 8 GPUs.
  ASSERT_TRUE(engine_->Upsert(Spec(kA, 3, 4), 0).ok());
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.back().n, 3);
  CompleteAll();
  // B wants 3 as well; one replica fits.
  ASSERT_TRUE(engine_->Upsert(Spec(kB, 3, 4), 0).ok());
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.back().workload, kB);
  EXPECT_EQ(setter_.sets.back().n, 1);
  EXPECT_THAT(setter_.sets.back().reason,
              HasSubstr("0 -> 1 replicas (not 3: group 'llm' is at its 8 nvidia.com/gpu limit"));
  ASSERT_EQ(Limited(kB).size(), 1u);
  EXPECT_EQ(Limited(kB)[0].limited_by, "group");
  CompleteAll();
  // Waking with 1 of 3: held, said once however often it is evaluated.
  EXPECT_THAT(Status(kB).limit,
              HasSubstr("holding 1 replicas: group 'llm' is at its 8 nvidia.com/gpu limit"));
  EXPECT_EQ(Status(kB).limited_by, "group");
  const size_t held = Limited(kB).size();
  EXPECT_EQ(held, 2u);
  EXPECT_EQ(Limited(kB).back().replicas_after, 1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(engine_->OnPods(kB, std::nullopt).ok());
    clock_.Advance(absl::Seconds(1));
    scheduler_.RunPending();
  }
  EXPECT_EQ(Limited(kB).size(), held);
  EXPECT_THAT(setter_.sets, IsEmpty());
  // A goes away: its 6 GPUs are free, and B completes its wake.
  engine_->Remove(kA);
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.back().n, 3);
  EXPECT_THAT(setter_.sets.back().reason, HasSubstr("waking with 1 of 3 replicas"));
  CompleteAll();
  EXPECT_THAT(Status(kB).limit, IsEmpty());
}

TEST_F(AllocationTest, TheBudgetGrowingLetsAHeldScaleUpGo) {
  engine_->SetGroupBudgets(std::vector<budget::GroupBudget>{Llm(2)});
  InGroup(kA, 2);
  InGroup(kB, 2);
  ASSERT_TRUE(engine_->Upsert(Spec(kA, 1, 4), 0).ok());
  CompleteAll();
  ASSERT_TRUE(engine_->Upsert(Spec(kB, 1, 4), 0).ok());
  EXPECT_THAT(setter_.sets, IsEmpty());
  EXPECT_EQ(Status(kB).state, State::kScaledToZero);
  EXPECT_THAT(Status(kB).note, HasSubstr("minReplicas is 1, but holding 0 replicas: group 'llm' "
                                         "is at its 2 nvidia.com/gpu limit"));
  engine_->SetGroupBudgets(std::vector<budget::GroupBudget>{Llm(4)});
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.back().workload, kB);
  EXPECT_EQ(setter_.sets.back().n, 1);
}

TEST_F(AllocationTest, AWakeThatDoesNotFitKeepsTheRequestWaiting) {
  engine_->SetGroupBudgets(std::vector<budget::GroupBudget>{Llm(1)});
  InGroup(kA, 1);
  InGroup(kB, 1);
  ASSERT_TRUE(engine_->Upsert(Spec(kA, 0, 2), 0).ok());
  engine_->Activate(kA, nullptr);
  CompleteAll();
  ASSERT_EQ(Status(kA).replicas, 1);
  ASSERT_TRUE(engine_->Upsert(Spec(kB, 0, 2), 0).ok());
  int called = 0;
  engine_->Activate(kB, [&](absl::Status) { ++called; });
  EXPECT_THAT(setter_.sets, IsEmpty());
  EXPECT_EQ(called, 0) << "the balancer keeps holding the request";
  EXPECT_THAT(Status(kB).limit, HasSubstr("holding 0 replicas: group 'llm'"));
  ASSERT_EQ(Limited(kB).size(), 1u);
  EXPECT_THAT(Limited(kB)[0].reason, HasSubstr("wake requested by the balancer, but holding 0"));
  // A goes to zero (made outside zeroscale here): B wakes with the request still held.
  ASSERT_TRUE(engine_->OnObservedReplicas(kA, 0).ok());
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.back().workload, kB);
  EXPECT_EQ(setter_.sets.back().n, 1);
  CompleteAll();
  ASSERT_TRUE(engine_->OnPodReady(kB, "ml/b-0").ok());
  EXPECT_EQ(called, 1);
}

TEST_F(AllocationTest, UnknownGroupIsSaidNotFatal) {
  engine_->SetGroupBudgets(std::vector<budget::GroupBudget>{Llm(1)});
  InGroup(kA, 1, "nope");
  ASSERT_TRUE(engine_->Upsert(Spec(kA, 2, 4), 0).ok());
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.back().n, 2) << "no budget: not limited";
  EXPECT_THAT(Status(kA).allocation_problem,
              HasSubstr("group 'nope': no AllocationPolicy 'nope' in namespace ml"));
  // The policy appears: the status says nothing more.
  budget::GroupBudget nope = Llm(8);
  nope.name = "nope";
  engine_->SetGroupBudgets(std::vector<budget::GroupBudget>{nope});
  EXPECT_THAT(Status(kA).allocation_problem, IsEmpty());
}

TEST_F(AllocationTest, BudgetsNotListedYetHoldTheGroup) {
  InGroup(kA, 1);
  ASSERT_TRUE(engine_->Upsert(Spec(kA, 1, 4), 0).ok());
  EXPECT_THAT(setter_.sets, IsEmpty());
  EXPECT_THAT(Status(kA).limit, HasSubstr("its AllocationPolicy is not read yet"));
  engine_->SetGroupBudgets(std::vector<budget::GroupBudget>{Llm(8)});
  ASSERT_EQ(setter_.sets.size(), 1u);
  CompleteAll();
  // A term ended: its budgets are forgotten, and the group holds again until relisted.
  engine_->SetGroupBudgets(std::nullopt);
  ASSERT_TRUE(engine_->Upsert(Spec(kA, 2, 4), 1).ok());
  EXPECT_THAT(setter_.sets, IsEmpty());
  EXPECT_THAT(Status(kA).limit, HasSubstr("its AllocationPolicy is not read yet"));
}

TEST_F(AllocationTest, ClusterRoomAndUnschedulablePodsLimitARule) {
  Engine::Allocation a;
  a.per_replica = Gpus(1);
  engine_->SetAllocation(kA, a);
  engine_->SetClusterCapacity(budget::ClusterCapacity{{budget::NodeRoom{"n", Gpus(1)}}});
  ScalingRule busy = testing::Rule("busy", Action::kIncreaseInstances,
                                   MetricType::kInFlightRequests, Operator::kGreaterThan, 4, 3);
  busy.window_seconds = 1;
  ASSERT_TRUE(engine_->Upsert(Spec(kA, 1, 8, {busy}), 1).ok());
  auto feed = [&](double in_flight) {
    clock_.Advance(absl::Seconds(1));
    Podmetric m = testing::Sample("a-0", clock_.Now());
    m.workload = kA;
    m.in_flight = in_flight;
    engine_->OnSamples({m});
    scheduler_.RunPending();
  };
  feed(9);
  // Step 3, room for 1.
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.back().n, 2);
  EXPECT_THAT(setter_.sets.back().reason,
              HasSubstr("1 -> 2 replicas (not 4: the cluster has room for 1 more replica needing "
                        "1 nvidia.com/gpu"));
  CompleteAll();
  // Its new pod is Pending: the scheduler found no GPU.
  TargetPods pods;
  pods.existing = pods.members = {"ml/a-0", "ml/a-1"};
  pods.serving = {"ml/a-0"};
  pods.unscheduled = pods.unschedulable = {"ml/a-1"};
  pods.unschedulable_message = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.";
  ASSERT_TRUE(engine_->OnPods(kA, pods).ok());
  engine_->SetClusterCapacity(budget::ClusterCapacity{{budget::NodeRoom{"n", Gpus(4)}}});
  feed(9);
  feed(9);
  EXPECT_THAT(setter_.sets, IsEmpty());
  EXPECT_THAT(Status(kA).limit,
              HasSubstr("holding 2 replicas: 1 replica Pending for lack of nvidia.com/gpu: not "
                        "adding more"));
  EXPECT_EQ(Status(kA).limited_by, "pending");
  // Scheduled at last: the rule may add again (room for 4, step 3).
  pods.unscheduled.clear();
  pods.unschedulable.clear();
  pods.unschedulable_message.clear();
  ASSERT_TRUE(engine_->OnPods(kA, pods).ok());
  feed(9);
  ASSERT_EQ(setter_.sets.size(), 1u);
  EXPECT_EQ(setter_.sets.back().n, 5);
}

}  // namespace
}  // namespace zeroscale::decide
