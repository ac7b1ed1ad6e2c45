// zeroscale end to end on the real control plane, as a user installs it: the chart
// installed by helm (CRD, RBAC, webhook registration), the scaler and balancer run with
// the chart's arguments and its ServiceAccounts' tokens (zeroscale_release.h), model
// Deployments opted in by annotation, injected by the chart's webhook as the API server
// calls it, run by the kubelet stand-in, listed in EndpointSlices by the real controller.
// One release serves every scenario of the binary; each scenario has a namespace (and a
// route host) of its own. Nothing here sleeps to assert: every wait is for a condition,
// with a deadline.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kube/zeroscale_release.h"
#include "tests/testing/kube_test_env.h"

namespace zeroscale::testing {
namespace {

using ::testing::HasSubstr;

// The release, started by the first scenario and shared by the rest.
ZeroscaleRelease* g_release = nullptr;
std::string g_release_error;

ZeroscaleRelease* SharedRelease(KubeControlPlane* cluster) {
  if (g_release == nullptr && g_release_error.empty()) {
    absl::StatusOr<std::unique_ptr<ZeroscaleRelease>> r = ZeroscaleRelease::Start(cluster);
    if (r.ok()) {
      g_release = r->release();  // lives until the binary exits, with the cluster
    } else {
      g_release_error = r.status().ToString();
    }
  }
  return g_release;
}

// The value of the Prometheus counter `name` (unlabelled) in `text`, or -1.
double Counter(const std::string& text, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, name) || line.size() <= name.size() || line[name.size()] != ' ') {
      continue;
    }
    double v;
    if (absl::SimpleAtod(line.substr(name.size() + 1), &v)) return v;
  }
  return -1;
}

class ScaleToZeroTest : public KubeTest {
 protected:
  void SetUp() override {
    KubeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    release_ = SharedRelease(&cluster());
    ASSERT_NE(release_, nullptr) << "installing zeroscale: " << g_release_error;
    host_ = absl::StrCat(ns(), ".models.test");
    for (int i = 0; i < 2; ++i)
      PrintOnFailure(absl::StrCat("scaler ", i), release_->scaler(i).log_path());
    PrintOnFailure("balancer", release_->balancer().log_path());
  }

  HttpExchange Request(absl::Duration timeout = absl::Seconds(60)) {
    return HttpRequestTo(ZeroscaleRelease::kBalancerAddress, ZeroscaleRelease::kBalancerPort, host_,
                         "/", timeout);
  }

  // Sends requests until the balancer knows the route (it watches CustomAutoscalers: a
  // request before that is a 404, which wakes nothing); returns the first routed answer.
  HttpExchange WaitForRoute() {
    HttpExchange x;
    WaitFor(
        [&] {
          x = Request();
          return x.status != 404;
        },
        absl::Seconds(30));
    return x;
  }

  absl::StatusOr<int> Replicas() {
    absl::StatusOr<json> d = api().Get(DeploymentRef(ns(), "model"));
    if (!d.ok()) return d.status();
    return (*d)["spec"].value("replicas", 0);
  }

  // Waits until the Deployment is at `replicas` and exactly that many pods are ready.
  absl::Status WaitForReplicas(int replicas, absl::Duration timeout = absl::Seconds(60)) {
    ZS_RETURN_IF_ERROR(
        api()
            .WaitFor(
                DeploymentRef(ns(), "model"),
                [&](const json& d) { return d["spec"].value("replicas", 0) == replicas; }, timeout,
                absl::StrCat("spec.replicas ", replicas))
            .status());
    return WaitForReadyPods("app=model", replicas, timeout).status();
  }

  // Sum over the workload's pods of their sidecars' proxied requests.
  double ProxiedRequests() {
    double sum = 0;
    absl::StatusOr<std::vector<json>> pods = api().List({"v1", "Pod", ns(), ""}, "app=model");
    if (!pods.ok()) return -1;
    for (const json& p : *pods) {
      HttpExchange m = HttpRequestTo(PodIP(p), 8013, "admin", "/metrics", absl::Seconds(5));
      const double v = Counter(m.body, "zeroscale_sidecar_requests_total");
      if (v < 0) return -1;
      sum += v;
    }
    return sum;
  }

  // Audit events of the scaler's ServiceAccount writing replicas in this namespace.
  std::vector<json> ScalePatches() {
    const std::string user = release_->ServiceAccountUser("scaler");
    absl::StatusOr<std::vector<json>> events = cluster().AuditEvents([&](const json& e) {
      return e["user"].value("username", "") == user && e.value("verb", "") == "patch" &&
             e.contains("objectRef") && e["objectRef"].value("namespace", "") == ns() &&
             e["objectRef"].value("subresource", "") == "scale";
    });
    return events.ok() ? *events : std::vector<json>{};
  }

  // Requests the chart's ServiceAccounts were refused by RBAC or lost to a conflict (409)
  // in the whole run so far. (A 403 of admission, e.g. an Event into a namespace being
  // deleted after its test, is not RBAC's.)
  std::vector<json> RefusedOrConflicting() {
    const std::string scaler = release_->ServiceAccountUser("scaler");
    const std::string balancer = release_->ServiceAccountUser("balancer");
    absl::StatusOr<std::vector<json>> events = cluster().AuditEvents([&](const json& e) {
      const std::string user = e["user"].value("username", "");
      const int code = e["responseStatus"].value("code", 0);
      return (user == scaler || user == balancer) && (code == 409 || RefusedByRbac(e));
    });
    return events.ok() ? *events : std::vector<json>{};
  }

  std::vector<std::string> EventReasons(const std::string& type = "") {
    std::vector<std::string> out;
    absl::StatusOr<std::vector<json>> events = api().List({"v1", "Event", ns(), ""});
    if (!events.ok()) return out;
    for (const json& e : *events) {
      if (type.empty() || e.value("type", "") == type) {
        out.push_back(absl::StrCat(e.value("reason", ""), ": ", e.value("message", "")));
      }
    }
    return out;
  }

  // How many times Events of `reason` were recorded in this namespace (an Event seen
  // again is counted on the same object).
  int EventCount(const std::string& reason) {
    int n = 0;
    absl::StatusOr<std::vector<json>> events = api().List({"v1", "Event", ns(), ""});
    if (!events.ok()) return -1;
    for (const json& e : *events) {
      if (e.value("reason", "") != reason) continue;
      int count = e.value("count", 0);
      if (e.contains("series") && e["series"].is_object()) {
        count = std::max(count, e["series"].value("count", 0));
      }
      n += std::max(count, 1);
    }
    return n;
  }

  ZeroscaleRelease* release_ = nullptr;
  std::string host_;
};

// The one pod name an answer of the test app names ("hostname" is the pod's name).
std::string AnsweredBy(const HttpExchange& x) {
  const json body = json::parse(x.body, nullptr, false);
  return body.is_object() ? body.value("hostname", "") : "";
}

// (a) A Deployment opted in by annotation alone scales 0 -> 1 on a request through the
// balancer, and the request is answered by the woken pod through its injected sidecar;
// the scale PATCH is the scaler's (its ServiceAccount), without a conflict, and nothing
// the chart's ServiceAccounts asked for was refused.
TEST_F(ScaleToZeroTest, ARequestAtZeroWakesTheWorkloadAndIsAnswered) {
  Model m;
  ZS_ASSERT_OK(Apply(ModelYaml(m, host_)));
  HttpExchange x = WaitForRoute();
  ASSERT_EQ(x.status, 200) << x.error << x.body;
  ZS_ASSERT_OK_AND_ASSIGN(int replicas, Replicas());
  EXPECT_EQ(replicas, 1);
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=model", 1));
  EXPECT_EQ(AnsweredBy(x), NameOf(pods[0])) << x.body;
  // Injected by the chart's webhook, as the API server called it through the Service.
  ASSERT_EQ(pods[0]["spec"]["containers"].size(), 2u);
  const json& sidecar = pods[0]["spec"]["containers"][1];
  EXPECT_EQ(sidecar["name"], "zeroscale-sidecar");
  EXPECT_EQ(sidecar["readinessProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_THAT(sidecar["args"].dump(),
              HasSubstr(absl::StrCat("--scaler=", ZeroscaleRelease::kScalerAddress[1], ":9090")));

  const std::vector<json> patches = ScalePatches();
  ASSERT_FALSE(patches.empty());
  for (const json& p : patches) EXPECT_EQ(p["responseStatus"].value("code", 0), 200) << p.dump();
  EXPECT_THAT(EventReasons("Warning"), ::testing::IsEmpty());
  EXPECT_THAT(RefusedOrConflicting(), ::testing::IsEmpty());
}

// (b) 200 requests arriving together at zero: one wake, every one answered, each
// exactly once (the pods' sidecars proxied 200 requests in all).
TEST_F(ScaleToZeroTest, TwoHundredConcurrentRequestsAtZeroAreAnsweredExactlyOnce) {
  Model m;
  ZS_ASSERT_OK(Apply(ModelYaml(m, host_)));
  // Knowing the route takes a first request, which wakes the workload: back to zero.
  ASSERT_EQ(WaitForRoute().status, 200);
  ZS_ASSERT_OK(WaitForReplicas(0));

  constexpr int kClients = 200;
  std::vector<HttpExchange> answers(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] { answers[i] = Request(absl::Seconds(90)); });
  }
  for (std::thread& t : clients) t.join();
  int ok = 0;
  for (const HttpExchange& a : answers) {
    if (a.status == 200 && !AnsweredBy(a).empty()) {
      ++ok;
    } else {
      ADD_FAILURE() << "status " << a.status << " " << a.error << " " << a.body;
    }
  }
  EXPECT_EQ(ok, kClients);
  // A sidecar counts a request once it has answered it: wait for all, then none more.
  WaitFor([&] { return ProxiedRequests() >= kClients; }, absl::Seconds(10));
  EXPECT_EQ(ProxiedRequests(), kClients) << "requests reached the pods more or less than once";
  // One wake: one PATCH 0 -> 1 since the workload was at zero.
  ZS_ASSERT_OK_AND_ASSIGN(int replicas, Replicas());
  EXPECT_EQ(replicas, 1);
}

// (c) Idle -> 0 -> wake, three times, and not one request fails.
TEST_F(ScaleToZeroTest, IdleToZeroAndWakeThreeTimesWithoutAFailure) {
  Model m;
  ZS_ASSERT_OK(Apply(ModelYaml(m, host_)));
  ASSERT_EQ(WaitForRoute().status, 200);
  for (int cycle = 1; cycle <= 3; ++cycle) {
    SCOPED_TRACE(absl::StrCat("cycle ", cycle));
    ZS_ASSERT_OK(WaitForReplicas(0));
    HttpExchange x = Request();
    ASSERT_EQ(x.status, 200) << x.error << x.body;
    ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=model", 1));
    EXPECT_EQ(AnsweredBy(x), NameOf(pods[0]));
  }
  EXPECT_THAT(EventReasons("Warning"), ::testing::IsEmpty());
  EXPECT_GE(EventCount("ScaledToZero"), 3);
  EXPECT_GE(EventCount("WakingFromZero"), 3);
}

// (d) A rule scales up under load through the balancer, and another back down after.
TEST_F(ScaleToZeroTest, ARuleScalesUpUnderLoadAndBackDown) {
  Model m;
  m.replicas = 1;
  m.min_replicas = 1;
  m.idle_timeout_seconds = 0;
  m.rules = R"(    - id: busy
      action: INCREASE_INSTANCES
      thresholds: [{metricType: REQUEST_RATE, operator: GREATER_THAN, value: 20}]
      windowSeconds: 2
      cooldownSeconds: 1
    - id: quiet
      action: DECREASE_INSTANCES
      thresholds: [{metricType: REQUEST_RATE, operator: LESS_THAN, value: 2}]
      windowSeconds: 2
      cooldownSeconds: 1
)";
  ZS_ASSERT_OK(Apply(ModelYaml(m, host_)));
  ZS_ASSERT_OK(WaitForReplicas(1));
  ASSERT_EQ(WaitForRoute().status, 200);

  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, failed{0};
  std::vector<std::thread> load;
  for (int i = 0; i < 4; ++i) {
    load.emplace_back([&] {
      while (!stop.load()) {
        HttpExchange x = Request(absl::Seconds(30));
        (x.status == 200 ? answered : failed).fetch_add(1);
      }
    });
  }
  absl::StatusOr<json> up = api().WaitFor(
      DeploymentRef(ns(), "model"),
      [](const json& d) { return d["spec"].value("replicas", 0) >= 2; }, absl::Seconds(60),
      "scaled up by rule 'busy'");
  stop = true;
  for (std::thread& t : load) t.join();
  ZS_ASSERT_OK(up);
  EXPECT_EQ(failed.load(), 0) << "of " << answered.load() + failed.load();
  // Without load, rule 'quiet' takes it back to its minimum.
  ZS_ASSERT_OK(WaitForReplicas(1));
  const std::vector<std::string> reasons = EventReasons();
  EXPECT_THAT(absl::StrJoin(reasons, "\n"), HasSubstr("rule 'busy' holds"));
  EXPECT_THAT(absl::StrJoin(reasons, "\n"), HasSubstr("rule 'quiet' holds"));
  EXPECT_THAT(EventReasons("Warning"), ::testing::IsEmpty());
}

// (e) A replica that can never be scheduled (it asks for a GPU the node does not have
// free) stays Pending; it does not count as missing data, so the idle workload still
// goes to zero.
TEST_F(ScaleToZeroTest, APendingReplicaDoesNotBlockScaleToZero) {
  Model m;
  m.replicas = 2;
  m.max_replicas = 2;
  m.idle_timeout_seconds = 4;
  m.resources = "{limits: {nvidia.com/gpu: 1}}";
  ZS_ASSERT_OK(Apply(ModelYaml(m, host_)));
  // One pod runs on the node's only GPU; the other stays Pending.
  ZS_ASSERT_OK(api()
                   .WaitForList(
                       {"v1", "Pod", ns(), ""},
                       [](const std::vector<json>& pods) {
                         int ready = 0, unschedulable = 0;
                         for (const json& p : pods) {
                           ready += HasCondition(p, "Ready");
                           unschedulable += HasCondition(p, "PodScheduled", "False");
                         }
                         return ready == 1 && unschedulable == 1;
                       },
                       absl::Seconds(30), "one pod ready, one Unschedulable", "app=model")
                   .status());
  // It stays there until the workload goes to zero (the GPU stays taken).
  ZS_ASSERT_OK(api()
                   .WaitFor(
                       DeploymentRef(ns(), "model"),
                       [](const json& d) { return d["spec"].value("replicas", -1) == 0; },
                       absl::Seconds(60), "scaled to zero with a Pending replica")
                   .status());
  std::string to_zero;
  for (const std::string& r : EventReasons()) {
    if (absl::StartsWith(r, "ScaledToZero")) to_zero = r;
  }
  EXPECT_THAT(to_zero, HasSubstr("idleTimeoutSeconds"));
}

// (f) A sidecar told to stop (SIGTERM, as when its pod is deleted) leaves the balancer's
// rotation while its proxy still serves: the balancer stops sending it requests before
// the process exits, and no request fails.
TEST_F(ScaleToZeroTest, AStoppingSidecarLeavesTheRotationBeforeItExits) {
  Model m;
  m.replicas = 2;
  m.min_replicas = 2;
  m.max_replicas = 2;
  m.idle_timeout_seconds = 0;
  ZS_ASSERT_OK(Apply(ModelYaml(m, host_)));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=model", 2));
  ASSERT_EQ(WaitForRoute().status, 200);
  // Both take traffic.
  std::set<std::string> seen;
  ASSERT_TRUE(WaitFor(
      [&] {
        seen.insert(AnsweredBy(Request()));
        return seen.size() >= 2;
      },
      absl::Seconds(20)));

  const std::string stopping = NameOf(pods[0]);
  const std::string stopping_ip = PodIP(pods[0]);
  ZS_ASSERT_OK(kubelet().SignalContainer(ns(), stopping, "zeroscale-sidecar", SIGTERM));
  int failed = 0, in_a_row = 0;
  bool out_while_serving = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    HttpExchange x = Request(absl::Seconds(10));
    if (x.status != 200) {
      ++failed;
      ADD_FAILURE() << "status " << x.status << " " << x.error << " " << x.body;
      continue;
    }
    in_a_row = AnsweredBy(x) == stopping ? 0 : in_a_row + 1;
    if (in_a_row < 20) continue;
    // Twenty answers in a row from the other pod: is the stopping sidecar still serving,
    // the same process, still in its drain? (It logs "drained" before it exits, so a log
    // without it, read after the answer, means no restarted sidecar gave that answer.)
    HttpExchange direct = HttpRequestTo(stopping_ip, 8012, "direct", "/", absl::Seconds(5));
    const std::string log = kubelet().ContainerLog(ns(), stopping, "zeroscale-sidecar");
    EXPECT_THAT(log, HasSubstr("draining: announced not ready"));
    out_while_serving = direct.status == 200 && !absl::StrContains(log, "\"msg\":\"drained\"");
    EXPECT_TRUE(out_while_serving)
        << "the sidecar had finished its drain (" << direct.status << " " << direct.error
        << ") before the balancer stopped sending to it:\n"
        << log;
    break;
  }
  EXPECT_TRUE(out_while_serving) << "the stopping pod stayed in the rotation";
  EXPECT_EQ(failed, 0);
}

// (g) The leading scaler is killed with SIGKILL while its workload is at zero: the other
// replica takes the Lease within the configured lease duration, and a request sent at
// the moment of the kill is held, wakes the workload through the new leader and is
// answered.
TEST_F(ScaleToZeroTest, ALeaderKilledIsReplacedWithinTheLeaseAndTheWakeGoesThrough) {
  Model m;
  ZS_ASSERT_OK(Apply(ModelYaml(m, host_)));
  ASSERT_EQ(WaitForRoute().status, 200);
  ZS_ASSERT_OK(WaitForReplicas(0));
  ZS_ASSERT_OK_AND_ASSIGN(std::string holder, release_->LeaseHolder());
  const int leader = holder == release_->ScalerIdentity(0) ? 0 : 1;
  ASSERT_EQ(holder, release_->ScalerIdentity(leader));
  const int other = 1 - leader;

  ZS_ASSERT_OK(release_->KillScaler(leader));
  const absl::Time killed = absl::Now();
  HttpExchange x;
  std::thread client([&] { x = Request(absl::Seconds(60)); });
  // Lease duration 3s, renewals every 0.5s: the other replica holds it by then, with
  // a margin for a loaded machine.
  absl::Status took_over = release_->WaitForLeader(other, absl::Seconds(3 + 0.5 + 4));
  const absl::Duration takeover = absl::Now() - killed;
  client.join();
  ZS_EXPECT_OK(took_over);
  std::printf("leader killed -> the other scaler holds the Lease: %s\n",
              absl::FormatDuration(takeover).c_str());
  EXPECT_EQ(x.status, 200) << x.error << x.body;
  ZS_ASSERT_OK_AND_ASSIGN(int replicas, Replicas());
  EXPECT_EQ(replicas, 1);
  EXPECT_THAT(release_->scaler(other).ReadLog(), HasSubstr("Waking"));
  EXPECT_THAT(RefusedOrConflicting(), ::testing::IsEmpty());
  // Back to two replicas for whatever runs next.
  ZS_EXPECT_OK(release_->RestartScaler(leader));
}

}  // namespace
}  // namespace zeroscale::testing
