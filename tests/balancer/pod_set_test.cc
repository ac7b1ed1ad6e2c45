// The rule that decides which pods a workload may send to (balancer/pods): the scaler's
// announcements checked against the pods Kubernetes lists.
#include "balancer/pods/pod_set.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::balancer {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

EndpointInfo Announced(const std::string& pod, const std::string& address, bool ready = true) {
  return EndpointInfo{pod, address, ready};
}

ListedPod Listed(const std::string& pod, const std::string& ip, int port, ListedState state) {
  ListedPod p;
  p.pod = pod;
  p.ip = CanonicalIp(ip);
  p.address = ip.find(':') != std::string::npos ? "[" + p.ip + "]:" + std::to_string(port)
                                                : p.ip + ":" + std::to_string(port);
  p.state = state;
  return p;
}

TEST(PodSetTest, WithoutKubernetesTheAnnouncementsDecide) {
  const std::vector<EndpointInfo> announced = {
      Announced("ml/a", "10.0.0.1:8012"), Announced("ml/b", "10.0.0.2:8012", /*ready=*/false),
      Announced("ml/c", ""), Announced("ml/a-again", "10.0.0.1:8012")};
  EXPECT_THAT(RoutableAddresses(announced, nullptr), ElementsAre("10.0.0.1:8012"));
  EXPECT_THAT(RoutableAddresses({}, nullptr), IsEmpty());
}

// The defect behind "502 upstream unavailable" after scale to zero: the scaler still
// announced pods that Kubernetes had deleted.
TEST(PodSetTest, APodThatLeftTheSlicesTakesNoTrafficWhateverTheScalerSays) {
  const std::vector<EndpointInfo> stale = {Announced("ml/gone-1", "10.0.0.1:8012"),
                                           Announced("ml/gone-2", "10.0.0.2:8012")};
  const std::vector<ListedPod> none;
  EXPECT_THAT(RoutableAddresses(stale, &none), IsEmpty());
  const std::vector<ListedPod> other = {
      Listed("ml/new-1", "10.0.0.9", 8012, ListedState::kStarting)};
  EXPECT_THAT(RoutableAddresses(stale, &other), IsEmpty());
}

TEST(PodSetTest, AnnouncedReadyBeforeKubernetesCountsItReadyIsTheFastPath) {
  const std::vector<ListedPod> listed = {Listed("ml/a", "10.0.0.1", 8080, ListedState::kStarting)};
  // At the sidecar's proxy port, which the announcement names, not the slice's app port.
  EXPECT_THAT(RoutableAddresses({Announced("ml/a", "10.0.0.1:8012")}, &listed),
              ElementsAre("10.0.0.1:8012"));
  // Not announced (or announced not ready) and not ready in Kubernetes: nothing yet.
  EXPECT_THAT(RoutableAddresses({}, &listed), IsEmpty());
  EXPECT_THAT(RoutableAddresses({Announced("ml/a", "10.0.0.1:8012", false)}, &listed), IsEmpty());
}

TEST(PodSetTest, TheSidecarsNotReadyWinsOverKubernetesReady) {
  // A model still loading behind a pod without a readiness probe, or a pod draining.
  const std::vector<ListedPod> listed = {Listed("ml/a", "10.0.0.1", 8012, ListedState::kReady),
                                         Listed("ml/b", "10.0.0.2", 8012, ListedState::kReady)};
  EXPECT_THAT(RoutableAddresses({Announced("ml/a", "10.0.0.1:8012", /*ready=*/false)}, &listed),
              ElementsAre("10.0.0.2:8012"));
}

TEST(PodSetTest, KubernetesReadyPodsWithoutASidecarTakeTrafficAtTheSliceAddress) {
  const std::vector<ListedPod> listed = {Listed("ml/a", "10.0.0.1", 8080, ListedState::kReady),
                                         Listed("", "10.0.0.5", 8080, ListedState::kReady)};
  EXPECT_THAT(RoutableAddresses({}, &listed), ElementsAre("10.0.0.1:8080", "10.0.0.5:8080"));
  // A sidecar that announces ready without an address: the slice's address it is.
  EXPECT_THAT(RoutableAddresses({Announced("ml/a", "")}, &listed),
              ElementsAre("10.0.0.1:8080", "10.0.0.5:8080"));
}

TEST(PodSetTest, WithdrawnPodsTakeNoTrafficEvenWhenAnnouncedReady) {
  const std::vector<ListedPod> listed = {Listed("ml/a", "10.0.0.1", 8012, ListedState::kWithdrawn),
                                         Listed("ml/b", "10.0.0.2", 8012, ListedState::kReady)};
  EXPECT_THAT(
      RoutableAddresses({Announced("ml/a", "10.0.0.1:8012"), Announced("ml/b", "10.0.0.2:8012")},
                        &listed),
      ElementsAre("10.0.0.2:8012"));
}

TEST(PodSetTest, PodNamesDecideWhenBothSidesHaveThem) {
  // A new pod got the IP of a deleted one: the stale announcement is not it.
  const std::vector<ListedPod> listed = {
      Listed("ml/new", "10.0.0.1", 8012, ListedState::kStarting)};
  EXPECT_THAT(RoutableAddresses({Announced("ml/old", "10.0.0.1:8012")}, &listed), IsEmpty());
  EXPECT_THAT(
      RoutableAddresses(
          {Announced("ml/old", "10.0.0.1:8012"), Announced("ml/new", "10.0.0.1:8012")}, &listed),
      ElementsAre("10.0.0.1:8012"));
}

TEST(PodSetTest, WithoutNamesTheAddressThenTheIpMatches) {
  const std::vector<ListedPod> listed = {Listed("", "10.0.0.1", 8080, ListedState::kStarting),
                                         Listed("", "fd00::1", 8080, ListedState::kStarting)};
  EXPECT_THAT(
      RoutableAddresses({Announced("", "10.0.0.1:8012"), Announced("ml/v6", "[fd00:0:0::1]:8012")},
                        &listed),
      ElementsAre("10.0.0.1:8012", "[fd00:0:0::1]:8012"));
  // Of two announcements on one IP (loopback in tests), the one at the listed address.
  const std::vector<ListedPod> loopback = {Listed("", "127.0.0.1", 9002, ListedState::kStarting)};
  EXPECT_THAT(
      RoutableAddresses({Announced("", "127.0.0.1:9001", false), Announced("", "127.0.0.1:9002")},
                        &loopback),
      ElementsAre("127.0.0.1:9002"));
}

TEST(PodSetTest, CanonicalIp) {
  EXPECT_EQ(CanonicalIp("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(CanonicalIp("FD00:0000::0001"), "fd00::1");
  EXPECT_EQ(CanonicalIp("llama.ml.svc"), "");
  EXPECT_EQ(CanonicalIp("10.0.0.256"), "");
  EXPECT_EQ(CanonicalIp(""), "");
}

}  // namespace
}  // namespace zeroscale::balancer
