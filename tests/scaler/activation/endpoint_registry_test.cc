#include "scaler/activation/endpoint_registry.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scaler/decide/scheduler.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::activation {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;

constexpr char kW[] = "local/Deployment/m";

TEST(EndpointRegistry, BackendPodsThenReadinessFromSamples) {
  EndpointRegistry r;
  std::vector<WorkloadEndpoints> heard;
  r.AddListener(kW, [&](const WorkloadEndpoints& s) { heard.push_back(s); });
  r.SetPods(kW, 2,
            {{"local/m-0", "127.0.0.1:1000", false}, {"local/m-1", "127.0.0.1:1001", false}});
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard.back().ready(), 0);
  EXPECT_TRUE(r.OnSample(kW, "local/m-1", true));
  EXPECT_FALSE(r.OnSample(kW, "local/m-1", true));  // no change: no notification
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard.back().ready(), 1);
  EXPECT_THAT(heard.back().endpoints,
              ElementsAre(Field(&Endpoint::ready, false), Field(&Endpoint::ready, true)));
  // The backend's next view keeps what samples taught.
  r.SetPods(kW, 2, {{"local/m-1", "127.0.0.1:1001", false}});
  EXPECT_EQ(r.Get(kW).ready(), 1);
  EXPECT_EQ(r.Get(kW).endpoints.size(), 1u);
  EXPECT_FALSE(r.OnSample(kW, "local/m-1", false));
  EXPECT_EQ(r.Get(kW).ready(), 0);
}

TEST(EndpointRegistry, AnnouncedAddressOfAPodTheBackendDoesNotKnow) {
  EndpointRegistry r;
  // Kubernetes: the sidecar announces its pod IP; the pod appears when it is ready.
  EXPECT_FALSE(r.OnSample("ml/Deployment/llama", "ml/llama-1", false, "10.0.0.7:8012"));
  EXPECT_TRUE(r.Get("ml/Deployment/llama").endpoints.empty());
  EXPECT_TRUE(r.OnSample("ml/Deployment/llama", "ml/llama-1", true, "10.0.0.7:8012"));
  const WorkloadEndpoints s = r.Get("ml/Deployment/llama");
  ASSERT_EQ(s.endpoints.size(), 1u);
  EXPECT_EQ(s.endpoints[0].address, "10.0.0.7:8012");
  // A new address (pod restarted in place) is announced even without a readiness flip.
  int notified = 0;
  r.AddListener("", [&](const WorkloadEndpoints&) { ++notified; });
  EXPECT_FALSE(r.OnSample("ml/Deployment/llama", "ml/llama-1", true, "10.0.0.9:8012"));
  EXPECT_EQ(notified, 1);
  EXPECT_EQ(r.Get("ml/Deployment/llama").endpoints[0].address, "10.0.0.9:8012");
}

TEST(EndpointRegistry, RemoveNotifiesAnEmptyStateAndListenersCanLeave) {
  EndpointRegistry r;
  std::vector<WorkloadEndpoints> heard;
  const uint64_t id = r.AddListener("", [&](const WorkloadEndpoints& s) { heard.push_back(s); });
  r.SetPods(kW, 1, {{"local/m-0", "127.0.0.1:1000", false}});
  r.Remove(kW);
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_TRUE(heard.back().endpoints.empty());
  EXPECT_TRUE(r.All().empty());
  r.RemoveListener(id);
  r.SetPods(kW, 1, {{"local/m-0", "127.0.0.1:1000", false}});
  EXPECT_EQ(heard.size(), 2u);
}

constexpr char kK[] = "ml/Deployment/llama";

// Kubernetes without a view of the pods: an announcement lives on a lease that fresh
// samples renew; a pod that stops reporting leaves, and Watch streams hear it at once.
class LeasedRegistry : public ::testing::Test {
 protected:
  LeasedRegistry() {
    r_.AddListener(kK, [this](const WorkloadEndpoints& s) { heard_.push_back(s); });
  }
  void Advance(absl::Duration d) {
    clock_.Advance(d);
    timers_.RunPending();
  }
  std::vector<std::string> Pods() {
    std::vector<std::string> out;
    for (const Endpoint& e : r_.Get(kK).endpoints) out.push_back(e.pod);
    return out;
  }

  zeroscale::testing::FakeClock clock_;
  decide::ManualScheduler timers_{&clock_};
  EndpointRegistry r_{&clock_, &timers_, EndpointRegistryOptions{absl::Seconds(5)}};
  std::vector<WorkloadEndpoints> heard_;
};

// Defect: announcements were never expired in Kubernetes: /workloads showed 4 ready
// pods at 0 replicas, Activate said ready_replicas 1, and the balancer never woke it.
TEST_F(LeasedRegistry, APodThatStopsReportingLeavesWhenItsLeaseRunsOut) {
  ASSERT_TRUE(r_.OnSample(kK, "ml/llama-1", true, "198.18.1.1:8012"));
  ASSERT_TRUE(r_.OnSample(kK, "ml/llama-2", true, "198.18.1.2:8012"));
  Advance(absl::Seconds(3));
  EXPECT_FALSE(r_.OnSample(kK, "ml/llama-1", true));  // llama-1 renews, llama-2 is silent
  Advance(absl::Seconds(2));
  EXPECT_THAT(Pods(), ElementsAre("ml/llama-1"));
  ASSERT_FALSE(heard_.empty());
  EXPECT_THAT(heard_.back().endpoints, ElementsAre(Field(&Endpoint::pod, "ml/llama-1")));
  EXPECT_EQ(heard_.back().ready(), 1);
  Advance(absl::Seconds(3));
  EXPECT_THAT(Pods(), ElementsAre());
  EXPECT_EQ(heard_.back().ready(), 0);
  // A sample older than the lease renews nothing.
  EXPECT_FALSE(r_.OnSample(kK, "ml/llama-1", true, "", clock_.Now() - absl::Seconds(10)));
  timers_.RunPending();
  EXPECT_THAT(Pods(), ElementsAre());
}

TEST_F(LeasedRegistry, OnlyPodsKubernetesListsAreAnnounced) {
  ASSERT_TRUE(r_.OnSample(kK, "ml/llama-1", true, "198.18.1.1:8012"));
  ASSERT_TRUE(r_.OnSample(kK, "ml/llama-2", true, "198.18.1.2:8012"));
  r_.SetPodView(kK, std::vector<std::string>{"ml/llama-1"});
  EXPECT_THAT(Pods(), ElementsAre("ml/llama-1"));
  EXPECT_EQ(heard_.back().ready(), 1);
  // Listed pods do not expire: Kubernetes says they exist.
  Advance(absl::Minutes(1));
  EXPECT_THAT(Pods(), ElementsAre("ml/llama-1"));
  // A pod announcing itself before the watch lists it waits aside, then appears.
  EXPECT_FALSE(r_.OnSample(kK, "ml/llama-3", true, "198.18.1.3:8012"));
  EXPECT_THAT(Pods(), ElementsAre("ml/llama-1"));
  r_.SetPodView(kK, std::vector<std::string>{"ml/llama-1", "ml/llama-3"});
  EXPECT_THAT(Pods(), ElementsAre("ml/llama-1", "ml/llama-3"));
  EXPECT_EQ(r_.Get(kK).endpoints[1].address, "198.18.1.3:8012");
  // Deleted: gone at once.
  r_.SetPodView(kK, std::vector<std::string>{"ml/llama-3"});
  EXPECT_THAT(Pods(), ElementsAre("ml/llama-3"));
  // No view any more: back to leases, from each pod's latest sample.
  r_.SetPodView(kK, std::nullopt);
  Advance(absl::Seconds(5));
  EXPECT_THAT(Pods(), ElementsAre());
}

TEST_F(LeasedRegistry, ATargetAtZeroReplicasHasNoPods) {
  ASSERT_TRUE(r_.OnSample(kK, "ml/llama-1", true, "198.18.1.1:8012"));
  decide::WorkloadStatus at_zero;
  at_zero.workload = kK;
  at_zero.replicas = 0;
  r_.OnStatus(at_zero);  // as the decider pushes it
  EXPECT_THAT(Pods(), ElementsAre());
  EXPECT_EQ(heard_.back().ready(), 0);
  EXPECT_EQ(heard_.back().replicas, 0);
  // A late sample of a pod on its way out changes nothing.
  EXPECT_FALSE(r_.OnSample(kK, "ml/llama-1", true, "198.18.1.1:8012"));
  EXPECT_THAT(Pods(), ElementsAre());
  // Woken: the new pod's sample announces it.
  decide::WorkloadStatus woken = at_zero;
  woken.replicas = 1;
  r_.OnStatus(woken);
  EXPECT_TRUE(r_.OnSample(kK, "ml/llama-2", true, "198.18.1.2:8012"));
  EXPECT_THAT(Pods(), ElementsAre("ml/llama-2"));
  EXPECT_EQ(r_.Get(kK).replicas, 1);
  r_.OnRemoved(kK);
  EXPECT_TRUE(heard_.back().endpoints.empty());
}

// The local backend's list is authoritative: a stopped replica's last sample does not
// bring it back.
TEST(EndpointRegistry, BackendListedPodsAreNotRevivedBySamples) {
  EndpointRegistry r;
  r.SetPods(kW, 1, {{"local/m-0", "127.0.0.1:1000", false}});
  r.SetPods(kW, 0, {});
  EXPECT_FALSE(r.OnSample(kW, "local/m-0", true, "127.0.0.1:1000"));
  EXPECT_TRUE(r.Get(kW).endpoints.empty());
}

}  // namespace
}  // namespace zeroscale::activation
