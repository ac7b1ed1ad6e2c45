// ClusterView: routes from CustomAutoscalers and endpoints from EndpointSlices, fed
// domain objects directly (the informers feeding it are tested in tests/common/kube and
// end to end in tests/e2e/balancer_kube_test).
#include "balancer/discovery/cluster_view.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::balancer {
namespace {

using kube::WatchEventType;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

kube::CustomAutoscaler Ca(const std::string& name, const std::string& host,
                          const std::string& prefix = "", const std::string& service = "",
                          const std::string& port = "") {
  kube::CustomAutoscaler ca;
  ca.namespace_ = "ml";
  ca.name = name;
  ca.spec.scale_target_ref = {"apps/v1", "Deployment", name};
  ca.spec.min_replicas = 0;
  ca.spec.max_replicas = 3;
  kube::RouteSpec route;
  route.host = host;
  route.path_prefix = prefix;
  route.service = service;
  route.port = port;
  ca.spec.route = route;
  return ca;
}

kube::SliceEndpoint Ep(const std::string& ip, bool ready, bool terminating = false,
                       const std::string& pod = "") {
  kube::SliceEndpoint e;
  e.addresses = {ip};
  e.ready = ready;
  e.serving = ready;
  e.terminating = terminating;
  if (!pod.empty()) e.target_ref = {"", "Pod", "ml", pod, "", ""};
  return e;
}

kube::EndpointSlice Slice(const std::string& name, const std::string& service,
                          std::vector<kube::SliceEndpoint> endpoints,
                          std::vector<kube::EndpointSlicePort> ports = {{"http", 8012, "TCP"}}) {
  kube::EndpointSlice s;
  s.namespace_ = "ml";
  s.name = name;
  s.service_name = service;
  s.address_type = "IPv4";
  s.ports = std::move(ports);
  s.endpoints = std::move(endpoints);
  return s;
}

struct Recorder {
  std::vector<RouteTable> tables;
  // One pods update: the addresses in each state; `listed` false for nullopt.
  struct Update {
    bool listed = true;
    std::vector<std::string> ready, starting, withdrawn;
    std::vector<std::string> pods;  // pod names, "" for endpoints that are not pods
  };
  std::map<std::string, std::vector<Update>> updates;  // by workload
  std::map<std::string, std::string> refused;
  int refused_calls = 0;
  std::vector<size_t> ignored;

  ClusterSinks Sinks() {
    ClusterSinks s;
    s.routes = [this](RouteTable t) { tables.push_back(std::move(t)); };
    s.pods = [this](const std::string& w, std::optional<std::vector<ListedPod>> pods) {
      Update u;
      u.listed = pods.has_value();
      for (const ListedPod& p : pods.value_or(std::vector<ListedPod>{})) {
        (p.state == ListedState::kReady      ? u.ready
         : p.state == ListedState::kStarting ? u.starting
                                             : u.withdrawn)
            .push_back(p.address);
        u.pods.push_back(p.pod);
      }
      updates[w].push_back(std::move(u));
    };
    s.ignored = [this](size_t n) { ignored.push_back(n); };
    s.refused = [this](const std::string& ca, const std::string& reason, size_t refused_now) {
      refused_calls++;
      if (reason.empty()) {
        refused.erase(ca);
      } else {
        refused[ca] = reason;
      }
      EXPECT_EQ(refused_now, refused.size());
    };
    return s;
  }
  const Update& Last(const std::string& w) { return updates.at(w).back(); }
};

constexpr char kLlama[] = "ml/Deployment/llama";

// A route from the routes file, which CustomAutoscalers' routes must not displace.
Route DemoFileRoute() {
  Route r;
  r.workload = "local/Deployment/demo";
  r.host = "demo.local";
  return r;
}

TEST(ClusterViewTest, RoutesComeFromTheFileAndCustomAutoscalers) {
  Recorder rec;
  ClusterView view({DemoFileRoute()}, rec.Sinks());

  kube::CustomAutoscaler llama = Ca("llama", "llama.example.com", "/llama");
  llama.spec.route->activation_timeout_seconds = 600;
  view.OnCustomAutoscaler(WatchEventType::kAdded, llama);
  ASSERT_EQ(rec.tables.size(), 1u);
  const RouteTable& t = rec.tables.back();
  ASSERT_NE(t.Match("demo.local", "/"), nullptr);
  const Route* r = t.Match("LLAMA.example.com:80", "/x");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->workload, kLlama);
  EXPECT_EQ(r->activation_timeout, absl::Seconds(600));
  EXPECT_EQ(t.Match("other", "/llama/generate")->workload, kLlama);

  // A change that does not touch routing sends no new table.
  llama.spec.max_replicas = 9;
  view.OnCustomAutoscaler(WatchEventType::kModified, llama);
  EXPECT_EQ(rec.tables.size(), 1u);

  // Route removed from the spec, then the object deleted.
  kube::CustomAutoscaler no_route = llama;
  no_route.spec.route.reset();
  view.OnCustomAutoscaler(WatchEventType::kModified, no_route);
  ASSERT_EQ(rec.tables.size(), 2u);
  EXPECT_EQ(rec.tables.back().Match("llama.example.com", "/"), nullptr);
  EXPECT_NE(rec.tables.back().Match("demo.local", "/"), nullptr);
}

TEST(ClusterViewTest, AConflictingOrMalformedRouteIsRefusedAloneAndNamed) {
  Recorder rec;
  ClusterView view({DemoFileRoute()}, rec.Sinks());

  view.OnCustomAutoscaler(WatchEventType::kAdded, Ca("llama", "llama.local"));
  view.OnCustomAutoscaler(WatchEventType::kAdded, Ca("thief", "demo.local"));
  view.OnCustomAutoscaler(WatchEventType::kAdded, Ca("typo", "", "no-slash"));
  ASSERT_EQ(rec.refused.size(), 2u);
  EXPECT_THAT(rec.refused["ml/thief"], HasSubstr("host \"demo.local\" is already routed"));
  EXPECT_THAT(rec.refused["ml/typo"], HasSubstr("spec.route: pathPrefix must start with '/'"));
  EXPECT_EQ(view.Refused(), rec.refused);
  // The others still route.
  EXPECT_EQ(rec.tables.back().Match("llama.local", "/")->workload, kLlama);
  EXPECT_EQ(rec.tables.back().Match("demo.local", "/")->workload, "local/Deployment/demo");

  // What the parser objected to (here a port) is refused with its message.
  kube::CustomAutoscaler bad_port = Ca("badport", "badport.local");
  bad_port.route_error =
      absl::InvalidArgumentError("spec.route.port: must be 1-65535 or a port name, not '0'");
  view.OnCustomAutoscaler(WatchEventType::kAdded, bad_port);
  EXPECT_EQ(rec.refused["ml/badport"], "spec.route.port: must be 1-65535 or a port name, not '0'");
  EXPECT_EQ(rec.tables.back().Match("badport.local", "/"), nullptr);
  view.OnCustomAutoscaler(WatchEventType::kDeleted, bad_port);

  // Fixed: accepted, and the refusal is withdrawn once.
  const int calls = rec.refused_calls;
  view.OnCustomAutoscaler(WatchEventType::kModified, Ca("typo", "", "/typo"));
  EXPECT_EQ(rec.refused.count("ml/typo"), 0u);
  EXPECT_EQ(rec.refused_calls, calls + 1);
  EXPECT_EQ(rec.tables.back().Match("", "/typo/x")->workload, "ml/Deployment/typo");
  // Deleted while refused: the refusal goes too.
  view.OnCustomAutoscaler(WatchEventType::kDeleted, Ca("thief", "demo.local"));
  EXPECT_THAT(rec.refused, IsEmpty());
}

TEST(ClusterViewTest, EndpointsOfTheRoutedServiceAtTheRoutedPort) {
  Recorder rec;
  ClusterView view({}, rec.Sinks());
  view.OnEndpointSlicesSynced();
  // Slices may arrive before the CustomAutoscaler that routes them.
  view.OnEndpointSlice(WatchEventType::kAdded,
                       Slice("llama-abc", "llama", {Ep("10.0.0.1", true), Ep("10.0.0.2", false)}));
  view.OnEndpointSlice(WatchEventType::kAdded, Slice("other-xyz", "other", {Ep("10.0.9.9", true)}));
  EXPECT_THAT(rec.updates, IsEmpty());

  // Service defaults to the scale target's name; port to the slice's first.
  view.OnCustomAutoscaler(WatchEventType::kAdded, Ca("llama", "llama.local"));
  // Never ready yet (10.0.0.2): starting, which an announcement may route to.
  EXPECT_THAT(rec.Last(kLlama).ready, ElementsAre("10.0.0.1:8012"));
  EXPECT_THAT(rec.Last(kLlama).starting, ElementsAre("10.0.0.2:8012"));
  EXPECT_THAT(rec.Last(kLlama).withdrawn, IsEmpty());

  // A second slice of the same service adds to the first.
  view.OnEndpointSlice(WatchEventType::kAdded, Slice("llama-def", "llama", {Ep("10.0.0.3", true)}));
  EXPECT_THAT(rec.Last(kLlama).ready, ElementsAre("10.0.0.1:8012", "10.0.0.3:8012"));

  // Ready, then not ready: withdrawn. Terminating: withdrawn.
  view.OnEndpointSlice(WatchEventType::kModified,
                       Slice("llama-abc", "llama", {Ep("10.0.0.1", false), Ep("10.0.0.2", true)}));
  EXPECT_THAT(rec.Last(kLlama).ready, ElementsAre("10.0.0.2:8012", "10.0.0.3:8012"));
  EXPECT_THAT(rec.Last(kLlama).withdrawn, ElementsAre("10.0.0.1:8012"));
  view.OnEndpointSlice(WatchEventType::kModified,
                       Slice("llama-def", "llama", {Ep("10.0.0.3", false, true)}));
  EXPECT_THAT(rec.Last(kLlama).ready, ElementsAre("10.0.0.2:8012"));
  EXPECT_THAT(rec.Last(kLlama).withdrawn, ElementsAre("10.0.0.1:8012", "10.0.0.3:8012"));

  // An unrelated slice changes nothing for llama.
  const size_t n = rec.updates[kLlama].size();
  view.OnEndpointSlice(WatchEventType::kModified, Slice("other-xyz", "other", {}));
  EXPECT_EQ(rec.updates[kLlama].size(), n);

  // Slices deleted: the pods are gone from Kubernetes' view, which still lists the
  // workload's pods (none), so no announcement can bring them back.
  view.OnEndpointSlice(WatchEventType::kDeleted, Slice("llama-abc", "llama", {}));
  view.OnEndpointSlice(WatchEventType::kDeleted, Slice("llama-def", "llama", {}));
  EXPECT_TRUE(rec.Last(kLlama).listed);
  EXPECT_THAT(rec.Last(kLlama).ready, IsEmpty());
  EXPECT_THAT(rec.Last(kLlama).starting, IsEmpty());
  EXPECT_THAT(rec.Last(kLlama).withdrawn, IsEmpty());
}

TEST(ClusterViewTest, NoPodsAreReportedBeforeTheSlicesWereListed) {
  Recorder rec;
  ClusterView view({}, rec.Sinks());
  // Routed, but the slices are not known yet: saying "no pods" would hold every request.
  view.OnCustomAutoscaler(WatchEventType::kAdded, Ca("llama", "llama.local"));
  view.OnEndpointSlice(WatchEventType::kAdded, Slice("llama-abc", "llama", {Ep("10.0.0.1", true)}));
  EXPECT_THAT(rec.updates, IsEmpty());
  view.OnEndpointSlicesSynced();
  EXPECT_THAT(rec.Last(kLlama).ready, ElementsAre("10.0.0.1:8012"));

  // A routed workload without any slice is listed, with no pod (at once, not on change).
  view.OnCustomAutoscaler(WatchEventType::kAdded, Ca("qwen", "qwen.local"));
  ASSERT_EQ(rec.updates["ml/Deployment/qwen"].size(), 1u);
  EXPECT_TRUE(rec.Last("ml/Deployment/qwen").listed);
  EXPECT_THAT(rec.Last("ml/Deployment/qwen").ready, IsEmpty());
  // Its CustomAutoscaler deleted: Kubernetes lists nothing for the balancer any more.
  view.OnCustomAutoscaler(WatchEventType::kDeleted, Ca("qwen", "qwen.local"));
  EXPECT_FALSE(rec.Last("ml/Deployment/qwen").listed);
}

TEST(ClusterViewTest, PodNamesComeFromTheTargetRef) {
  Recorder rec;
  ClusterView view({}, rec.Sinks());
  view.OnEndpointSlicesSynced();
  kube::SliceEndpoint service_ep = Ep("10.0.0.3", true);
  service_ep.target_ref = {"", "Service", "ml", "not-a-pod", "", ""};
  view.OnEndpointSlice(WatchEventType::kAdded,
                       Slice("llama-abc", "llama",
                             {Ep("10.0.0.1", true, false, "llama-7d9-x"),
                              Ep("10.0.0.2", false, false, "llama-7d9-y"), service_ep}));
  view.OnCustomAutoscaler(WatchEventType::kAdded, Ca("llama", "llama.local"));
  // Sorted by address.
  EXPECT_THAT(rec.Last(kLlama).pods, ElementsAre("ml/llama-7d9-x", "ml/llama-7d9-y", ""));
}

TEST(ClusterViewTest, APodListedTwiceTakesItsMostCautiousState) {
  Recorder rec;
  ClusterView view({}, rec.Sinks());
  view.OnEndpointSlicesSynced();
  view.OnCustomAutoscaler(WatchEventType::kAdded, Ca("llama", "llama.local"));
  // While the EndpointSlice controller moves an endpoint between slices.
  view.OnEndpointSlice(WatchEventType::kAdded, Slice("llama-a", "llama", {Ep("10.0.0.1", true)}));
  view.OnEndpointSlice(WatchEventType::kAdded,
                       Slice("llama-b", "llama", {Ep("10.0.0.1", false, /*terminating=*/true)}));
  EXPECT_THAT(rec.Last(kLlama).ready, IsEmpty());
  EXPECT_THAT(rec.Last(kLlama).withdrawn, ElementsAre("10.0.0.1:8012"));
}

TEST(ClusterViewTest, NonIpSlicesAreIgnoredLoggedOnceAndCounted) {
  Recorder rec;
  ClusterView view({}, rec.Sinks());
  view.OnEndpointSlicesSynced();
  view.OnCustomAutoscaler(WatchEventType::kAdded, Ca("llama", "llama.local"));
  kube::EndpointSlice fqdn = Slice("llama-fqdn", "llama", {Ep("llama.example.com", true)});
  fqdn.address_type = "FQDN";
  const size_t before = rec.updates[kLlama].size();
  view.OnEndpointSlice(WatchEventType::kAdded, fqdn);
  EXPECT_EQ(rec.updates[kLlama].size(), before);  // nothing for the proxy
  EXPECT_THAT(rec.ignored, ElementsAre(1u));
  view.OnEndpointSlice(WatchEventType::kModified, fqdn);  // no second count
  EXPECT_THAT(rec.ignored, ElementsAre(1u));

  // IPv4 and IPv6 slices count; a garbage address in one is skipped, not handed on.
  kube::EndpointSlice v6 = Slice("llama-v6", "llama", {Ep("fd00::7", true), Ep("not-an-ip", true)});
  v6.address_type = "IPv6";
  view.OnEndpointSlice(WatchEventType::kAdded, v6);
  view.OnEndpointSlice(WatchEventType::kAdded, Slice("llama-v4", "llama", {Ep("10.0.0.1", true)}));
  EXPECT_THAT(rec.Last(kLlama).ready, ElementsAre("10.0.0.1:8012", "[fd00::7]:8012"));

  // The FQDN slice turned into an IP one, then deleted: the count follows.
  kube::EndpointSlice fixed = Slice("llama-fqdn", "llama", {Ep("10.0.0.9", true)});
  view.OnEndpointSlice(WatchEventType::kModified, fixed);
  EXPECT_THAT(rec.ignored, ElementsAre(1u, 0u));
  EXPECT_THAT(rec.Last(kLlama).ready,
              ElementsAre("10.0.0.1:8012", "10.0.0.9:8012", "[fd00::7]:8012"));
  view.OnEndpointSlice(WatchEventType::kModified, fqdn);
  view.OnEndpointSlice(WatchEventType::kDeleted, fqdn);
  EXPECT_THAT(rec.ignored, ElementsAre(1u, 0u, 1u, 0u));
  EXPECT_THAT(rec.Last(kLlama).ready, ElementsAre("10.0.0.1:8012", "[fd00::7]:8012"));
}

TEST(ClusterViewTest, PortByNameOrNumberAndServiceOverride) {
  Recorder rec;
  ClusterView view({}, rec.Sinks());
  view.OnEndpointSlicesSynced();
  const std::vector<kube::EndpointSlicePort> ports = {{"app", 8080, "TCP"},
                                                      {"zeroscale", 8012, "TCP"}};
  view.OnEndpointSlice(WatchEventType::kAdded,
                       Slice("svc-1", "llama-svc", {Ep("10.0.0.1", true)}, ports));
  kube::EndpointSlice v6 = Slice("v6-1", "llama-svc", {Ep("fd00::1", true)}, ports);
  v6.address_type = "IPv6";
  view.OnEndpointSlice(WatchEventType::kAdded, v6);

  view.OnCustomAutoscaler(WatchEventType::kAdded, Ca("llama", "llama.local", "", "llama-svc"));
  EXPECT_THAT(rec.Last(kLlama).ready, ElementsAre("10.0.0.1:8080", "[fd00::1]:8080"));
  view.OnCustomAutoscaler(WatchEventType::kModified,
                          Ca("llama", "llama.local", "", "llama-svc", "zeroscale"));
  EXPECT_THAT(rec.Last(kLlama).ready, ElementsAre("10.0.0.1:8012", "[fd00::1]:8012"));
  view.OnCustomAutoscaler(WatchEventType::kModified,
                          Ca("llama", "llama.local", "", "llama-svc", "9000"));
  EXPECT_THAT(rec.Last(kLlama).ready, ElementsAre("10.0.0.1:9000", "[fd00::1]:9000"));
  // A port name no slice has: no endpoints (the route still stands).
  view.OnCustomAutoscaler(WatchEventType::kModified,
                          Ca("llama", "llama.local", "", "llama-svc", "grpc"));
  EXPECT_THAT(rec.Last(kLlama).ready, IsEmpty());
  EXPECT_NE(rec.tables.back().Match("llama.local", "/"), nullptr);

  // The CustomAutoscaler deleted: its workload's pods are no longer listed.
  view.OnCustomAutoscaler(WatchEventType::kModified,
                          Ca("llama", "llama.local", "", "llama-svc", "app"));
  ASSERT_THAT(rec.Last(kLlama).ready, ElementsAre("10.0.0.1:8080", "[fd00::1]:8080"));
  view.OnCustomAutoscaler(WatchEventType::kDeleted, Ca("llama", "llama.local"));
  EXPECT_FALSE(rec.Last(kLlama).listed);
  EXPECT_EQ(rec.tables.back().Match("llama.local", "/"), nullptr);
}

}  // namespace
}  // namespace zeroscale::balancer
