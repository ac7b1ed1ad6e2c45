// The real zeroscale-balancer in Kubernetes mode against the fake API server: routes
// come from CustomAutoscalers' spec.route, pods from EndpointSlices (list+watch), the
// scaler is an in-test ActivationService, pods are recording backends on 127.0.0.1.
// Checks: a routed request reaches the slice's pod; a workload with no pod holds the
// request, asks the scaler once, and releases it when its EndpointSlice shows a ready
// pod; a terminating pod stops taking traffic; a route edited in the cluster applies.
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/balancer/fake_scaler.h"
#include "tests/balancer/recording_backend.h"
#include "tests/common/proxy/test_backend.h"
#include "tests/testing/child_process.h"
#include "tests/testing/fake_apiserver.h"
#include "tests/testing/kubeconfig.h"
#include "tests/testing/redis_server.h"

namespace zeroscale {
namespace {

using json = nlohmann::json;
using testing::ChildProcess;
using testing::FakeApiServer;
using testing::FakeScaler;
using testing::FreePort;
using testing::RecordingBackend;
using testing::TestClient;
using testing::WaitFor;

constexpr char kCrs[] =
    "/apis/autoscaler-group.autoscaler/v1alpha1/namespaces/ml/customautoscalers";
constexpr char kSlices[] = "/apis/discovery.k8s.io/v1/namespaces/ml/endpointslices";

std::string CrJson(const std::string& name, const std::string& prefix) {
  json cr = {
      {"apiVersion", "autoscaler-group.autoscaler/v1alpha1"},
      {"kind", "CustomAutoscaler"},
      {"metadata", {{"name", name}, {"namespace", "ml"}}},
      {"spec",
       {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", name}}},
        {"minReplicas", 0},
        {"maxReplicas", 3},
        {"idleTimeoutSeconds", 60},
        {"route", {{"pathPrefix", prefix}}}}}};
  return cr.dump();
}

// One pod per slice, so that each pod (a recording backend) has its own port.
std::string SliceJson(const std::string& name, const std::string& service, uint16_t port,
                      bool ready, bool terminating = false) {
  json slice = {
      {"apiVersion", "discovery.k8s.io/v1"},
      {"kind", "EndpointSlice"},
      {"metadata",
       {{"name", name},
        {"namespace", "ml"},
        {"labels", {{"kubernetes.io/service-name", service}}}}},
      {"addressType", "IPv4"},
      {"endpoints",
       {{{"addresses", {"127.0.0.1"}},
         {"conditions", {{"ready", ready}, {"serving", ready}, {"terminating", terminating}}},
         {"targetRef", {{"kind", "Pod"}, {"namespace", "ml"}, {"name", name + "-pod"}}}}}},
      {"ports", {{{"name", "http"}, {"port", port}, {"protocol", "TCP"}}}}};
  return slice.dump();
}

class BalancerKubeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ASSERT_TRUE(redis_.Start().ok());
    ASSERT_TRUE(scaler_.Start().ok());
    dir_ = absl::StrCat(::testing::TempDir(), "/zs-balancer-kube-", ::getpid());
    ASSERT_EQ(::system(("mkdir -p " + dir_).c_str()), 0);
    const std::string kubeconfig = dir_ + "/kubeconfig";
    ASSERT_TRUE(testing::WriteKubeconfig(kubeconfig, server_.url(), "balancer", "zs"));
    port_ = FreePort();
    admin_port_ = FreePort();
    balancer_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            ZS_BALANCER_BIN, absl::StrCat("--scaler=", scaler_.address()),
            absl::StrCat("--redis=", redis_.address()), absl::StrCat("--listen=127.0.0.1:", port_),
            absl::StrCat("--admin-listen=127.0.0.1:", admin_port_), "--discovery=kubernetes",
            "--kubeconfig=" + kubeconfig, "--namespace=ml"},
        dir_ + "/balancer.log");
  }

  void TearDown() override {
    if (balancer_->running()) balancer_->Stop();
    if (HasFailure()) std::cerr << "--- balancer log:\n" << balancer_->ReadLog() << "\n";
    server_.Stop();
    [[maybe_unused]] int rc = ::system(("rm -rf " + dir_).c_str());
  }

  void StartBalancer() {
    ASSERT_TRUE(balancer_->Start().ok());
    ASSERT_TRUE(testing::WaitForTcpPort(admin_port_, absl::Seconds(20)).ok());
  }

  // The body of a GET, or "<status>" when it is not 200.
  std::string Get(const std::string& target) {
    TestClient c(port_);
    testing::SimpleResponse r = c.Send("GET", target);
    return r.status == 200 ? r.body : absl::StrCat("<", r.status, ">");
  }

  bool MetricsHave(const std::string& line) {
    TestClient c(admin_port_);
    return absl::StrContains(c.Send("GET", "/metrics").body, line + "\n");
  }

  FakeApiServer server_;
  testing::RedisServer redis_;
  FakeScaler scaler_;
  std::string dir_;
  uint16_t port_ = 0, admin_port_ = 0;
  std::unique_ptr<ChildProcess> balancer_;
};

TEST_F(BalancerKubeTest, RoutesAndPodsComeFromTheCluster) {
  RecordingBackend a("a"), b("b"), c("c");
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "/llama")).ok());
  ASSERT_TRUE(server_.Create(kSlices, SliceJson("llama-a", "llama", a.port(), true)).ok());
  // A pod not ready in Kubernetes' view takes no traffic from the slices alone.
  ASSERT_TRUE(server_.Create(kSlices, SliceJson("llama-b", "llama", b.port(), false)).ok());
  StartBalancer();

  // Listed at start: the route and the ready pod.
  ASSERT_TRUE(WaitFor([&] { return Get("/llama/x") == "a /llama/x"; }, absl::Seconds(20)));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Get("/llama/y"), "a /llama/y");
  EXPECT_EQ(b.count(), 0u);

  // Watched: b becomes ready and shares the load; then a terminates and takes none.
  ASSERT_TRUE(server_.Apply(kSlices, SliceJson("llama-b", "llama", b.port(), true)).ok());
  ASSERT_TRUE(WaitFor([&] { return Get("/llama/z") == "b /llama/z"; }, absl::Seconds(20)));
  ASSERT_TRUE(
      server_.Apply(kSlices, SliceJson("llama-a", "llama", a.port(), false, /*terminating=*/true))
          .ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < 4; ++i) {
          if (Get("/llama/t") != "b /llama/t") return false;
        }
        return true;
      },
      absl::Seconds(20)));

  // The route edited in the cluster: the new prefix routes, the old one no longer does.
  ASSERT_TRUE(server_.Apply(kCrs, CrJson("llama", "/llama-v2")).ok());
  ASSERT_TRUE(WaitFor([&] { return Get("/llama-v2/q") == "b /llama-v2/q"; }, absl::Seconds(20)));
  EXPECT_EQ(Get("/llama/q"), "<404>");
  EXPECT_EQ(c.count(), 0u);
  EXPECT_TRUE(scaler_.activate_calls().empty());
}

TEST_F(BalancerKubeTest, AWorkloadAtZeroWakesAndItsSliceReleasesTheHeldRequest) {
  RecordingBackend pod("qwen");
  ASSERT_TRUE(server_.Create(kCrs, CrJson("qwen", "/qwen")).ok());
  StartBalancer();
  // Requests sent before the route is known would get 404: wait for it first.
  ASSERT_TRUE(
      WaitFor([&] { return MetricsHave("zeroscale_balancer_routes 1"); }, absl::Seconds(20)));
  std::vector<std::thread> clients;
  std::vector<std::string> bodies(5);
  for (int i = 0; i < 5; ++i) {
    clients.emplace_back([&, i] { bodies[i] = Get(absl::StrCat("/qwen/", i)); });
  }
  // One wake for all five.
  ASSERT_TRUE(WaitFor([&] { return !scaler_.activate_calls().empty(); }, absl::Seconds(20)));
  ASSERT_TRUE(
      server_.Create(kSlices, SliceJson("qwen-1", "qwen", pod.port(), /*ready=*/true)).ok());
  for (auto& t : clients) t.join();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(bodies[i], absl::StrCat("qwen /qwen/", i));
  ASSERT_EQ(scaler_.activate_calls().size(), 1u);
  EXPECT_EQ(scaler_.activate_calls()[0].workload, "ml/Deployment/qwen");
  EXPECT_EQ(pod.count(), 5u);
}

TEST_F(BalancerKubeTest, ApiErrorsAndAnExpiredWatchAreRiddenOut) {
  RecordingBackend a("a"), b("b");
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "/llama")).ok());
  ASSERT_TRUE(server_.Create(kSlices, SliceJson("llama-a", "llama", a.port(), true)).ok());
  // The API server fails the first lists (the balancer retries with backoff and counts
  // them), and answers the first EndpointSlice watch 410 Gone, as when the
  // resourceVersion of the list has already been compacted away: only a re-list helps.
  server_.FailNext(2, 503, -1, "endpointslices?labelSelector");
  server_.FailNext(1, 429, 1, "customautoscalers");
  server_.FailNext(1, 410, -1, "endpointslices?watch=");
  StartBalancer();
  ASSERT_TRUE(WaitFor([&] { return Get("/llama/x") == "a /llama/x"; }, absl::Seconds(30)));
  // Two failed lists, the first good one, and the re-list after 410.
  ASSERT_TRUE(
      WaitFor([&] { return server_.CountRequests("GET", "endpointslices?labelSelector") == 4; },
              absl::Seconds(30)));
  // Failures that led to a retry; the 410 is not one (it leads to a re-list at once).
  EXPECT_TRUE(MetricsHave("zeroscale_balancer_kube_watch_errors_total 3"));

  // The watch after the re-list carries on: a pod replaced is seen.
  ASSERT_TRUE(server_.WaitForWatches(2, absl::Seconds(20)));
  ASSERT_TRUE(server_.Delete(absl::StrCat(kSlices, "/llama-a")).ok());
  ASSERT_TRUE(server_.Create(kSlices, SliceJson("llama-b", "llama", b.port(), true)).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < 4; ++i) {
          if (Get("/llama/t") != "b /llama/t") return false;
        }
        return true;
      },
      absl::Seconds(30)));
}

}  // namespace
}  // namespace zeroscale
