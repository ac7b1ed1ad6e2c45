#include "scaler/activation/endpoint_registry.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

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

}  // namespace
}  // namespace zeroscale::activation
