// The real zeroscale-balancer in Kubernetes mode against the fake API server: routes
// come from CustomAutoscalers' spec.route, pods from EndpointSlices (list+watch), the
// scaler is an in-test ActivationService, pods are recording backends on 127.0.0.1.
// Checks: a routed request reaches the slice's pod; a workload with no pod holds the
// request, asks the scaler once, and releases it when its EndpointSlice shows a ready
// pod; a terminating pod stops taking traffic; a route edited in the cluster applies; a
// pod the scaler still announces after Kubernetes deleted it takes no traffic (the wake
// path runs instead of a 502); FQDN slices are ignored; the log says where routes come
// from; with --scaler-lease the calls follow the Lease holder across a switch.
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
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

// One pod per slice, so that each pod (a recording backend) has its own port. The pod
// is named NAME-pod.
std::string SliceJson(const std::string& name, const std::string& service, uint16_t port,
                      bool ready, bool terminating = false,
                      const std::string& address_type = "IPv4",
                      const std::string& address = "127.0.0.1") {
  json slice = {
      {"apiVersion", "discovery.k8s.io/v1"},
      {"kind", "EndpointSlice"},
      {"metadata",
       {{"name", name},
        {"namespace", "ml"},
        {"labels", {{"kubernetes.io/service-name", service}}}}},
      {"addressType", address_type},
      {"endpoints",
       {{{"addresses", {address}},
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
    kubeconfig_ = dir_ + "/kubeconfig";
    ASSERT_TRUE(testing::WriteKubeconfig(kubeconfig_, server_.url(), "balancer", "zs"));
    port_ = FreePort();
    admin_port_ = FreePort();
    balancer_ = NewBalancer(
        {absl::StrCat("--scaler=", scaler_.address()), "--discovery=kubernetes", "--namespace=ml"});
  }

  // The balancer binary on this test's ports and Redis, with `args` on top.
  std::unique_ptr<ChildProcess> NewBalancer(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {ZS_BALANCER_BIN, absl::StrCat("--redis=", redis_.address()),
                                     absl::StrCat("--listen=127.0.0.1:", port_),
                                     absl::StrCat("--admin-listen=127.0.0.1:", admin_port_),
                                     "--kubeconfig=" + kubeconfig_};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<ChildProcess>(argv, dir_ + "/balancer.log");
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

  // Waits for the route to be known: requests sent before would get 404.
  void WaitForRoutes(int n) {
    ASSERT_TRUE(WaitFor([&] { return MetricsHave(absl::StrCat("zeroscale_balancer_routes ", n)); },
                        absl::Seconds(20)));
  }

  FakeApiServer server_;
  testing::RedisServer redis_;
  FakeScaler scaler_;
  std::string dir_, kubeconfig_;
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

// The defect seen on a real cluster: after scale to zero the scaler still announced the
// deleted pod as ready, the balancer sent the request there and answered "502 upstream
// unavailable" within milliseconds, and never asked for a wake. Kubernetes decides which
// pods exist: the stale announcement must count for nothing.
TEST_F(BalancerKubeTest, AfterScaleToZeroAStaleAnnouncementWakesInsteadOf502) {
  auto old_pod = std::make_unique<RecordingBackend>("old");
  const std::string old_address = old_pod->address();
  RecordingBackend fresh("fresh"), canary("canary");
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "/llama")).ok());
  ASSERT_TRUE(server_.Create(kCrs, CrJson("canary", "/canary")).ok());
  ASSERT_TRUE(server_.Create(kSlices, SliceJson("llama-a", "llama", old_pod->port(), true)).ok());
  scaler_.Push("ml/Deployment/llama", {{"ml/llama-a-pod", old_address}});
  StartBalancer();
  ASSERT_TRUE(WaitFor([&] { return Get("/llama/x") == "old /llama/x"; }, absl::Seconds(20)));

  // Scale to zero: Kubernetes marks the pod terminating, then deletes it; the pod's
  // process is gone; the scaler keeps announcing it ready.
  ASSERT_TRUE(
      server_.Apply(kSlices, SliceJson("llama-a", "llama", old_pod->port(), false, true)).ok());
  ASSERT_TRUE(server_.Delete(absl::StrCat(kSlices, "/llama-a")).ok());
  old_pod.reset();
  // Slice events arrive in order: once a later one is seen, the deletion has been.
  ASSERT_TRUE(server_.Create(kSlices, SliceJson("canary-a", "canary", canary.port(), true)).ok());
  ASSERT_TRUE(WaitFor([&] { return Get("/canary/x") == "canary /canary/x"; }, absl::Seconds(20)));
  // The woken pod: Kubernetes lists it (not ready yet) and its sidecar announces ready.
  scaler_.OnActivate([&](const testing::ActivateCall& call) {
    // (A wake of the canary may reach the scaler only now.)
    if (call.workload != "ml/Deployment/llama") return;
    ASSERT_TRUE(server_.Create(kSlices, SliceJson("llama-b", "llama", fresh.port(), false)).ok());
    scaler_.Push("ml/Deployment/llama",
                 {{"ml/llama-a-pod", old_address}, {"ml/llama-b-pod", fresh.address()}});
  });
  // Before the fix: "<502>" at once, and no Activate.
  EXPECT_EQ(Get("/llama/y"), "fresh /llama/y");
  int llama_wakes = 0;  // the canary may have been woken too, while its slice was on its way
  for (const auto& call : scaler_.activate_calls()) {
    llama_wakes += call.workload == "ml/Deployment/llama" ? 1 : 0;
  }
  EXPECT_EQ(llama_wakes, 1);
}

TEST_F(BalancerKubeTest, FqdnSlicesAreIgnoredAndCounted) {
  RecordingBackend a("a");
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "/llama")).ok());
  ASSERT_TRUE(server_
                  .Create(kSlices, SliceJson("llama-fqdn", "llama", 8012, true, false, "FQDN",
                                             "llama.example.com"))
                  .ok());
  ASSERT_TRUE(server_.Create(kSlices, SliceJson("llama-a", "llama", a.port(), true)).ok());
  StartBalancer();
  ASSERT_TRUE(WaitFor([&] { return Get("/llama/x") == "a /llama/x"; }, absl::Seconds(20)));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Get("/llama/y"), "a /llama/y");
  EXPECT_TRUE(MetricsHave("zeroscale_balancer_endpointslices_ignored 1"));
  // Said once, however often the slice changes.
  ASSERT_TRUE(server_
                  .Apply(kSlices, SliceJson("llama-fqdn", "llama", 8013, true, false, "FQDN",
                                            "llama.example.com"))
                  .ok());
  ASSERT_TRUE(server_.Apply(kSlices, SliceJson("llama-a", "llama", a.port(), true)).ok());
  EXPECT_EQ(Get("/llama/z"), "a /llama/z");
  const std::string log = balancer_->ReadLog();
  size_t count = 0;
  for (size_t at = log.find("addressType is not IPv4 or IPv6"); at != std::string::npos;
       at = log.find("addressType is not IPv4 or IPv6", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << log;
}

TEST_F(BalancerKubeTest, TheLogSaysWhereRoutesComeFrom) {
  StartBalancer();
  WaitForRoutes(0);
  std::string log = balancer_->ReadLog();
  EXPECT_THAT(log, ::testing::HasSubstr("routes from CustomAutoscalers' spec.route"));
  EXPECT_THAT(log, ::testing::Not(::testing::HasSubstr("every request will be answered 404")));
  balancer_->Stop();

  // Neither a routes file nor Kubernetes: then, and only then, say so.
  balancer_ = NewBalancer({absl::StrCat("--scaler=", scaler_.address()), "--discovery=none"});
  ::unlink((dir_ + "/balancer.log").c_str());
  StartBalancer();
  log = balancer_->ReadLog();
  EXPECT_THAT(log, ::testing::HasSubstr(
                       "no --routes file and no Kubernetes discovery: every request will be "
                       "answered 404"));
}

TEST_F(BalancerKubeTest, AnUnusableScalerLeaseIsRefusedWithExitCode2) {
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--scaler-lease=zeroscale"}, "invalid value 'zeroscale' for --scaler-lease"},
           {{"--scaler-lease=zs/Bad_Name"}, "'Bad_Name' is not a Lease name"},
           // Without a cluster configuration there is no Lease to follow.
           {{"--scaler-lease=zs/zeroscale-scaler", "--kubeconfig=/nonexistent/kubeconfig",
             "--discovery=none"},
            "--scaler-lease needs a cluster"}}) {
    ::unlink((dir_ + "/balancer.log").c_str());
    balancer_ = NewBalancer(args);
    ASSERT_TRUE(balancer_->Start().ok());
    const std::optional<int> status = balancer_->WaitForExit(absl::Seconds(20));
    ASSERT_TRUE(status.has_value()) << message;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << *status;
    EXPECT_THAT(balancer_->ReadLog(), ::testing::HasSubstr(message));
  }
}

constexpr char kLeases[] = "/apis/coordination.k8s.io/v1/namespaces/zs/leases";

std::string LeaseJson(const std::string& holder, const std::string& address) {
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata",
                 {{"name", "zeroscale-scaler"},
                  {"namespace", "zs"},
                  {"annotations", {{"zeroscale.io/grpc-address", address}}}}},
                {"spec",
                 {{"holderIdentity", holder},
                  {"leaseDurationSeconds", 15},
                  {"renewTime",
                   absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone())}}}};
  return lease.dump();
}

// Two scalers; the Lease names the leader. The first leader loses the Lease while a
// request waits for a wake (it answers FAILED_PRECONDITION from then on): the balancer
// re-reads the Lease instead of hammering it, follows the new holder, and the held
// request is answered after the new leader's wake.
TEST_F(BalancerKubeTest, CallsFollowTheScalersLeaderAndAHeldRequestSurvivesTheSwitch) {
  FakeScaler first, second;
  ASSERT_TRUE(first.Start().ok());
  ASSERT_TRUE(second.Start().ok());
  RecordingBackend pod("qwen");
  ASSERT_TRUE(server_.Create(kLeases, LeaseJson("scaler-0", first.address())).ok());
  ASSERT_TRUE(server_.Create(kCrs, CrJson("qwen", "/qwen")).ok());
  // --scaler is the fallback while no holder is known: here nothing listens there.
  balancer_ =
      NewBalancer({absl::StrCat("--scaler=127.0.0.1:", FreePort()), "--discovery=kubernetes",
                   "--namespace=ml", "--scaler-lease=zs/zeroscale-scaler"});
  StartBalancer();
  WaitForRoutes(1);
  ASSERT_TRUE(first.WaitForWatchers(1, absl::Seconds(20)));
  EXPECT_TRUE(MetricsHave("zeroscale_balancer_scaler_leader_known 1"));

  first.SetNotLeader(true);
  second.OnActivate([&](const auto&) {
    ASSERT_TRUE(server_.Create(kSlices, SliceJson("qwen-1", "qwen", pod.port(), false)).ok());
    second.Push("ml/Deployment/qwen", {{"ml/qwen-1-pod", pod.address()}});
  });
  std::optional<std::string> body;
  std::thread client([&] { body = Get("/qwen/0"); });
  // The refusal makes the balancer read the Lease again; it still names the first.
  ASSERT_TRUE(WaitFor([&] { return first.not_leader_answers() > 0; }, absl::Seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return server_.CountRequests("GET", "/leases/zeroscale-scaler") > 0; },
                      absl::Seconds(20)));
  // The new leader takes the Lease and publishes its address.
  ASSERT_TRUE(server_.Apply(kLeases, LeaseJson("scaler-1", second.address())).ok());
  client.join();
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(*body, "qwen /qwen/0");
  EXPECT_FALSE(second.activate_calls().empty());
  EXPECT_EQ(second.activate_calls()[0].workload, "ml/Deployment/qwen");
  EXPECT_TRUE(MetricsHave("zeroscale_balancer_scaler_switches_total 2"));  // to first, second
  // Re-reads are rate-limited: far fewer than the refusals the streams got.
  EXPECT_LE(server_.CountRequests("GET", "/leases/zeroscale-scaler"), 20);
}

}  // namespace
}  // namespace zeroscale
