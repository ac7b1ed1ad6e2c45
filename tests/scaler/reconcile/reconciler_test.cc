// The scaler's Kubernetes units wired as main.cc wires them (leadership, reconciler,
// scale actuator, reporter) against the fake API server (real wire format on 127.0.0.1), a
// real Decider on an EventLoop, and a real redis-server for the takeover rebuild. Each
// replica has its own KubeClient with its own token, so the requests tell who wrote.
//
// Time is a FakeClock shared by every replica: retries, Retry-After, re-reads and the
// Lease move only when a test moves the clock, after it has seen (AwaitWaiter) what the
// code waits for. Tests wait for results without polling: on the fake API server's
// answers and on what the deciders push.
#include "scaler/reconcile/reconciler.h"

#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "scaler/activation/endpoint_registry.h"
#include "scaler/actuate/scale_actuator.h"
#include "scaler/decide/decider.h"
#include "scaler/decide/scheduler.h"
#include "scaler/leader/leadership.h"
#include "scaler/report/kube_reporter.h"
#include "scaler/store/podmetric_store.h"
#include "tests/testing/child_process.h"
#include "tests/testing/fake_apiserver.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::reconcile {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

constexpr char kWorkload[] = "ml/Deployment/llama";
constexpr char kDeployment[] = "/apis/apps/v1/namespaces/ml/deployments/llama";
constexpr char kScalePath[] = "/apis/apps/v1/namespaces/ml/deployments/llama/scale";
constexpr char kCrs[] =
    "/apis/autoscaler-group.autoscaler/v1alpha1/namespaces/ml/customautoscalers";

kube::ClusterConfig Config(const std::string& server) {
  kube::ClusterConfig c;
  c.server = server;
  return c;
}

std::string CrJson(const std::string& name, const std::string& target, int min, int max,
                   int cooldown = 600, const std::string& kind = "Deployment") {
  json rule = {
      {"id", "busy"},
      {"action", "INCREASE_INSTANCES"},
      {"cooldownSeconds", cooldown},
      {"thresholds",
       {{{"metricType", "IN_FLIGHT_REQUESTS"}, {"operator", "GREATER_THAN"}, {"value", 4}}}}};
  json cr = {{"apiVersion", "autoscaler-group.autoscaler/v1alpha1"},
             {"kind", "CustomAutoscaler"},
             {"metadata", {{"name", name}}},
             {"spec",
              {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", kind}, {"name", target}}},
               {"minReplicas", min},
               {"maxReplicas", max},
               {"rules", json::array({rule})}}}};
  return cr.dump();
}

std::vector<Podmetric> Busy(const std::string& workload, int pods, absl::Time at) {
  std::vector<Podmetric> out;
  for (int p = 0; p < pods; ++p) {
    Podmetric m;
    m.id = absl::StrCat("ml/llama-", p);
    m.workload = workload;
    m.received_at = at;
    m.sampled_at = at;
    m.in_flight = 10;
    m.request_count = 20;
    m.request_rate = 20;
    m.average_response_time = 50;
    m.ready = true;
    out.push_back(m);
  }
  return out;
}

// Hears what one replica's decider pushes and when its terms start and end; tests wait
// on it instead of polling.
class Observer : public decide::DecisionSink, public leader::TermListener {
 public:
  using Pred = std::function<bool(const decide::WorkloadStatus&)>;

  void Record(const decide::Decision&) override {}
  void OnStatus(const decide::WorkloadStatus& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    statuses_[s.workload] = s;
    cv_.notify_all();
  }
  void OnRemoved(const std::string& workload) override {
    std::lock_guard<std::mutex> lock(mu_);
    statuses_.erase(workload);
    cv_.notify_all();
  }
  void OnTermStart(uint64_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    leading_ = true;
    cv_.notify_all();
  }
  void OnTermEnd(uint64_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    leading_ = false;
    cv_.notify_all();
  }

  std::optional<decide::WorkloadStatus> Get(const std::string& workload) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = statuses_.find(workload);
    if (it == statuses_.end()) return std::nullopt;
    return it->second;
  }
  // Until the decider manages `workload` and its status satisfies `pred`.
  bool WaitFor(const std::string& workload, const Pred& pred = nullptr) {
    return Wait([&] {
      auto it = statuses_.find(workload);
      return it != statuses_.end() && (!pred || pred(it->second));
    });
  }
  bool WaitGone(const std::string& workload) {
    return Wait([&] { return statuses_.count(workload) == 0; });
  }
  bool WaitLeading() {
    return Wait([&] { return leading_; });
  }

 private:
  bool Wait(const std::function<bool()>& cond) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(15), cond);
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, decide::WorkloadStatus> statuses_;
  bool leading_ = false;
};

// What one replica is configured with.
struct TestOptions {
  leader::LeadershipOptions leadership;
  actuate::ScaleActuatorOptions actuator;
  reconcile::ReconcilerOptions reconciler;
  bool dry_run = false;
};

// One scaler replica: its own client, Redis connection, decision loop and units.
struct Replica {
  explicit Replica(const Clock* clock)
      : loop(clock),
        registry(clock, &loop, activation::EndpointRegistryOptions{absl::Seconds(20)}) {}
  ~Replica() {
    Stop();
    loop.Stop();
  }
  void Stop() {
    if (leadership) leadership->Stop();
    if (reconciler) reconciler->Stop();
    if (actuator) actuator->Stop();
    if (reporter) reporter->Stop();
  }

  std::optional<decide::WorkloadStatus> Status(const std::string& workload = kWorkload) {
    return observer.Get(workload);
  }
  bool Has(const std::string& workload = kWorkload) { return Status(workload).has_value(); }
  absl::StatusOr<int32_t> Replicas(const std::string& workload) {
    auto p = std::make_shared<std::promise<absl::StatusOr<int32_t>>>();
    auto f = p->get_future();
    actuator->GetReplicas(workload, [p](absl::StatusOr<int32_t> n) { p->set_value(n); });
    return f.get();
  }
  // Asks without waiting for the answer, for calls that wait on the clock.
  std::future<absl::StatusOr<int32_t>> StartReplicas(const std::string& workload) {
    auto p = std::make_shared<std::promise<absl::StatusOr<int32_t>>>();
    auto f = p->get_future();
    actuator->GetReplicas(workload, [p](absl::StatusOr<int32_t> n) { p->set_value(n); });
    return f;
  }
  absl::Status Set(const std::string& workload, int32_t n) {
    auto p = std::make_shared<std::promise<absl::Status>>();
    auto f = p->get_future();
    actuator->SetReplicas(workload, 1, n, "test", [p](absl::Status s) { p->set_value(s); });
    return f.get();
  }

  decide::EventLoop loop;
  activation::EndpointRegistry registry;  // the balancer's view, fed as main.cc feeds it
  Observer observer;
  std::unique_ptr<kube::KubeClient> client;
  std::unique_ptr<HiredisClient> redis;
  std::unique_ptr<leader::Leadership> leadership;
  std::unique_ptr<actuate::ScaleActuator> actuator;
  std::unique_ptr<report::KubeReporter> reporter;
  std::unique_ptr<decide::FanoutSink> sinks;
  std::unique_ptr<decide::Decider> decider;
  std::unique_ptr<Reconciler> reconciler;
};

class KubeUnitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ASSERT_TRUE(redis_.Start().ok());
    ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "llama", 1).ok());
  }

  TestOptions Options(const std::string& id) {
    TestOptions o;
    o.leadership.identity = id;
    o.leadership.leader_elect = false;
    o.leadership.lease_duration = absl::Seconds(1);
    o.leadership.renew_deadline = absl::Milliseconds(600);
    o.leadership.retry_period = absl::Milliseconds(100);
    o.actuator.resync = absl::Hours(1);
    o.actuator.api_backoff.initial = absl::Milliseconds(20);
    o.reconciler.resync = absl::Hours(1);
    o.reconciler.api_backoff.initial = absl::Milliseconds(20);
    return o;
  }

  std::unique_ptr<Replica> Make(TestOptions options, decide::DeciderOptions dopts = {}) {
    auto r = std::make_unique<Replica>(&clock_);
    kube::ClusterConfig cluster;
    cluster.server = server_.url();
    cluster.token = "token-" + options.leadership.identity;
    cluster.namespace_ = "zs";
    auto client = kube::KubeClient::Create(cluster, &clock_);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    r->client = *std::move(client);
    RedisOptions ro;
    ro.port = redis_.port();
    r->redis = std::make_unique<HiredisClient>(ro, &clock_);
    options.leadership.Resolve(cluster.namespace_);
    options.actuator.dry_run = options.dry_run;
    r->leadership =
        std::make_unique<leader::Leadership>(r->client.get(), options.leadership, &clock_);
    r->actuator = std::make_unique<actuate::ScaleActuator>(r->client.get(), r->leadership.get(),
                                                           options.actuator, &clock_);
    report::KubeReporterOptions rpo;
    rpo.dry_run = options.dry_run;
    rpo.identity = options.leadership.identity;
    r->reporter =
        std::make_unique<report::KubeReporter>(r->client.get(), r->leadership.get(), rpo, &clock_);
    dopts.staleness = absl::Seconds(20);
    dopts.retry_initial = absl::Milliseconds(50);
    dopts.retry_max = absl::Milliseconds(200);
    dopts.dry_run = options.dry_run;
    r->loop.Start();
    r->sinks = std::make_unique<decide::FanoutSink>(
        std::vector<decide::DecisionSink*>{r->reporter.get(), &r->observer, &r->registry});
    options.reconciler.on_pods = [reg = &r->registry](
                                     const std::string& workload,
                                     const std::optional<decide::TargetPods>& pods) {
      std::optional<std::vector<std::string>> existing;
      if (pods) existing = pods->existing;
      reg->SetPodView(workload, std::move(existing));
    };
    r->decider = std::make_unique<decide::Decider>(&clock_, &r->loop, r->actuator.get(),
                                                   r->sinks.get(), dopts);
    r->reconciler = std::make_unique<Reconciler>(
        r->client.get(), r->leadership.get(), r->decider.get(), r->actuator.get(),
        r->reporter.get(), r->redis.get(), options.reconciler, &clock_);
    r->actuator->Attach(r->decider.get(), r->reporter.get());
    r->leadership->AddListener(r->actuator.get());
    r->leadership->AddListener(r->reporter.get());
    r->leadership->AddListener(r->reconciler.get());
    r->leadership->AddListener(&r->observer);
    r->actuator->Start();
    r->reporter->Start();
    r->reconciler->Start();
    r->leadership->Start();
    return r;
  }

  // Waits until `cond` (about what the fake API server holds) is true, checking again
  // after every request the server answers.
  bool WaitServer(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(15)) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      const size_t seen = server_.request_count();
      if (cond()) return true;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration() || !server_.WaitForRequestsBeyond(seen, left)) {
        return cond();
      }
    }
  }

  // Once some thread waits on the clock for exactly `at`, moves the clock there.
  bool AdvanceToWaiter(absl::Time at) {
    if (clock_.AwaitWaiter(at, at) != at) return false;
    clock_.Advance(at - clock_.Now());
    return true;
  }
  // Once some thread waits on the clock for a deadline at most `within` ahead, moves the
  // clock to the earliest such deadline.
  bool AdvanceToNextWaiter(absl::Duration within) {
    const absl::Time now = clock_.Now();
    std::optional<absl::Time> at = clock_.AwaitWaiter(now, now + within);
    if (!at) return false;
    clock_.Advance(*at - now);
    return true;
  }

  int32_t ServerReplicas(const std::string& path = kDeployment) {
    auto obj = server_.Get(path);
    if (!obj.ok()) return -1;
    return json::parse(*obj)["spec"].value("replicas", 0);
  }

  json Cr(const std::string& name) {
    auto obj = server_.Get(absl::StrCat(kCrs, "/", name));
    return obj.ok() ? json::parse(*obj) : json();
  }
  // The CR's status, an empty object until one is written.
  json CrStatus(const std::string& name) {
    json obj = Cr(name);
    return obj.is_object() && obj.contains("status") && obj["status"].is_object() ? obj["status"]
                                                                                  : json::object();
  }

  // The CR's condition of `type`, or an empty object.
  json Condition(const std::string& cr, const std::string& type) {
    json obj = Cr(cr);
    if (!obj.is_object() || !obj.contains("status") || !obj["status"].contains("conditions")) {
      return json::object();
    }
    for (const json& c : obj["status"]["conditions"]) {
      if (c.value("type", "") == type) return c;
    }
    return json::object();
  }

  // Scale writes by the backends (the tests' own writer sends no token).
  std::vector<testing::FakeApiServer::RequestRecord> ScalePatches() {
    std::vector<testing::FakeApiServer::RequestRecord> out;
    for (auto& r : server_.requests()) {
      if (r.method == "PATCH" && absl::StrContains(r.target, "/scale") &&
          !r.authorization.empty()) {
        out.push_back(r);
      }
    }
    return out;
  }

  // Scale writes by the backends that succeeded, once logged (a request is logged just
  // after its effect shows).
  int SuccessfulScalePatches() {
    int n = 0;
    for (const auto& r : ScalePatches()) n += r.status == 200;
    return n;
  }

  std::vector<json> Events() {
    std::vector<json> out;
    for (const std::string& e : server_.List("/api/v1/namespaces/ml/events")) {
      out.push_back(json::parse(e));
    }
    return out;
  }

  bool HasEvent(const std::string& reason, const std::string& type = "Normal") {
    for (const json& e : Events()) {
      if (e.value("reason", "") == reason && e.value("type", "") == type &&
          e["involvedObject"].value("kind", "") == "Deployment" &&
          e["involvedObject"].value("name", "") == "llama") {
        return true;
      }
    }
    return false;
  }

  testing::FakeClock clock_;
  testing::FakeApiServer server_;
  testing::RedisServer redis_;
};

TEST_F(KubeUnitsTest, CustomAutoscalerBecomesAnAutomatonWithItsBounds) {
  TestOptions o = Options("a");
  o.actuator.resync = absl::Seconds(30);
  const absl::Time start = clock_.Now();
  auto a = Make(o);
  ASSERT_TRUE(a->observer.WaitLeading());
  // minReplicas 2 while the target has 1: the automaton raises it to its floor.
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 2, 4)).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload));
  ASSERT_TRUE(WaitServer([&] { return ServerReplicas() == 2; }));
  EXPECT_TRUE(a->observer.WaitFor(kWorkload, [](const auto& s) { return s.replicas == 2; }));

  // Someone sets 9; the periodic re-read (on the clock) notices, the automaton adopts it
  // and clamps to maxReplicas.
  auto other = kube::KubeClient::Create(Config(server_.url()));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->PatchScale({"ml", "Deployment", "llama"}, 9, "").ok());
  ASSERT_TRUE(AdvanceToWaiter(start + absl::Seconds(30)));
  ASSERT_TRUE(WaitServer([&] { return ServerReplicas() == 4; })) << ServerReplicas();
  EXPECT_TRUE(a->observer.WaitFor(kWorkload, [](const auto& s) { return s.replicas == 4; }));
  EXPECT_TRUE(WaitServer([&] { return HasEvent("ExternalScale"); }));
}

TEST_F(KubeUnitsTest, DecisionBecomesScalePatchEventAndStatus) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 3)).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload));

  a->decider->OnSamples(Busy(kWorkload, 1, clock_.Now()));
  ASSERT_TRUE(WaitServer([&] { return SuccessfulScalePatches() == 1; }));
  EXPECT_EQ(ServerReplicas(), 2);
  std::vector<testing::FakeApiServer::RequestRecord> patches = ScalePatches();
  ASSERT_EQ(patches.size(), 1u);
  EXPECT_EQ(patches[0].target, kScalePath);
  EXPECT_EQ(patches[0].authorization, "Bearer token-a");
  EXPECT_EQ(patches[0].content_type, "application/json-patch+json");
  EXPECT_EQ(json::parse(patches[0].body),
            json::parse(R"([{"op":"test","path":"/spec/replicas","value":1},
                            {"op":"add","path":"/spec/replicas","value":2}])"));

  EXPECT_TRUE(WaitServer([&] { return HasEvent("ScaledUp"); }));
  EXPECT_TRUE(WaitServer([&] { return HasEvent("Registered"); }));
  ASSERT_TRUE(WaitServer([&] {
    json st = CrStatus("llama");
    return st.value("replicas", -1) == 2 && st.value("state", "") == "Active";
  })) << Cr("llama").dump();
  json st = CrStatus("llama");
  EXPECT_EQ(st["desiredReplicas"], 2);
  EXPECT_THAT(st.value("lastDecisionReason", ""), HasSubstr("rule 'busy' holds"));
  EXPECT_EQ(st.value("lastDecision", ""), "ScaledUp 1 -> 2");
  EXPECT_FALSE(st.value("lastDecisionTime", "").empty());
  EXPECT_EQ(Condition("llama", "SpecValid")["status"], "True");
  EXPECT_EQ(Condition("llama", "Ready")["status"], "True");
  EXPECT_EQ(Condition("llama", "ScalingActive")["status"], "True");
  EXPECT_EQ(a->actuator->stats().scale_patches, 1);
}

TEST_F(KubeUnitsTest, ConcurrentChangeGetsConflictAndTheStaleDecisionIsNeverApplied) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 5, /*cooldown=*/0)).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload));
  // Another writer moves the scale after we read it.
  auto other = kube::KubeClient::Create(Config(server_.url()));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->PatchScale({"ml", "Deployment", "llama"}, 3, "").ok());

  // We still believe 1 and decide 2: the write's test of 1 fails, re-read (3),
  // re-decided (4).
  a->decider->OnSamples(Busy(kWorkload, 1, clock_.Now()));
  ASSERT_TRUE(WaitServer([&] { return SuccessfulScalePatches() == 1; })) << ServerReplicas();
  EXPECT_EQ(ServerReplicas(), 4);
  std::vector<testing::FakeApiServer::RequestRecord> patches = ScalePatches();
  ASSERT_GE(patches.size(), 2u);
  EXPECT_EQ(json::parse(patches[0].body)[0]["value"], 1);  // the count it was decided on
  EXPECT_EQ(json::parse(patches[0].body)[1]["value"], 2);
  EXPECT_EQ(patches[0].status, 422);
  for (const auto& p : patches) {
    if (p.status == 200) {
      EXPECT_EQ(json::parse(p.body)[0]["value"], 3) << p.body;
      EXPECT_EQ(json::parse(p.body)[1]["value"], 4) << p.body;
    }
  }
  EXPECT_GE(a->actuator->stats().conflicts, 1);
  EXPECT_TRUE(a->observer.WaitFor(kWorkload, [](const auto& s) { return s.replicas == 4; }));
  EXPECT_EQ(ServerReplicas(), 4);
}

// Defect: each scale write carried the resourceVersion of the previous one, which the
// Deployment controller's status update had moved since: 409, a failed decision and a
// Warning FailedScale Event on most scale changes. A normal run has none.
TEST_F(KubeUnitsTest, ControllerStatusUpdatesMakeNoScaleWriteFail) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 4, /*cooldown=*/0)).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload));
  for (int step = 1; step <= 3; ++step) {
    // Fresh samples after each change (a rule acts only on evidence newer than it).
    clock_.Advance(absl::Seconds(1));
    a->decider->OnSamples(Busy(kWorkload, step, clock_.Now()));
    ASSERT_TRUE(WaitServer([&] { return SuccessfulScalePatches() == step; })) << step;
    EXPECT_EQ(ServerReplicas(), step + 1);
    // The automaton has taken the write in before time moves on.
    ASSERT_TRUE(a->observer.WaitFor(kWorkload, [&](const auto& s) {
      return s.replicas == step + 1 && !s.actuation_in_flight;
    }));
    // The Deployment controller reacts to the new count with a status update.
    json d = json::parse(*server_.Get(kDeployment));
    d["status"]["observedGeneration"] = step;
    d["status"]["unavailableReplicas"] = 1;
    ASSERT_TRUE(server_.Apply("/apis/apps/v1/namespaces/ml/deployments", d.dump()).ok());
  }
  ASSERT_TRUE(a->observer.WaitFor(kWorkload, [](const auto& s) { return s.replicas == 4; }));
  for (const auto& p : ScalePatches()) EXPECT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(a->actuator->stats().conflicts, 0);
  EXPECT_TRUE(WaitServer([&] { return HasEvent("ScaledUp"); }));
  EXPECT_FALSE(HasEvent("FailedScale", "Warning"));
}

// A Pod as the fake server holds it: labelled for the Deployment's selector (app=llama),
// Pending, or Running and Ready as a kubelet would report it.
std::string PodJson(const std::string& name, bool running) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"labels", {{"app", "llama"}}}}},
              {"status", {{"phase", running ? "Running" : "Pending"}}}};
  if (running) {
    pod["status"]["podIP"] = "198.18.1.1";
    pod["status"]["conditions"] = {{{"type", "Ready"}, {"status", "True"}}};
  }
  return pod.dump();
}

std::string CalmCrJson() {
  json cr = json::parse(CrJson("llama", "llama", 1, 5, /*cooldown=*/0));
  cr["spec"]["rules"] = {
      {{"id", "calm"},
       {"action", "DECREASE_INSTANCES"},
       {"windowSeconds", 1},
       {"thresholds", {{{"metricType", "CPU_USAGE"}, {"operator", "LESS_THAN"}, {"value", 20}}}}}};
  return cr.dump();
}

std::vector<Podmetric> Calm(const std::string& pod, absl::Time at) {
  std::vector<Podmetric> out = Busy(kWorkload, 1, at);
  out[0].id = pod;
  out[0].in_flight = out[0].request_rate = 0;
  out[0].request_count = 0;
  out[0].cpu_usage = 1;
  out[0].address = "198.18.1.1:8012";
  return out;
}

// Defect 3 end to end with the fake server: two of three replicas stay Pending; the one
// that runs reports, and the workload still scales down (the pod view tells the decider
// the Pending ones cannot report).
TEST_F(KubeUnitsTest, PendingReplicasDoNotBlockScaleDown) {
  const std::string pods = "/api/v1/namespaces/ml/pods";
  ASSERT_TRUE(server_.Apply(pods, PodJson("llama-0", true)).ok());
  ASSERT_TRUE(server_.Apply(pods, PodJson("llama-1", false)).ok());
  ASSERT_TRUE(server_.Apply(pods, PodJson("llama-2", false)).ok());
  auto other = kube::KubeClient::Create(Config(server_.url()));
  ASSERT_TRUE((*other)->PatchScale({"ml", "Deployment", "llama"}, 3, "").ok());
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CalmCrJson()).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload, [](const auto& s) { return s.replicas == 3; }));
  // The pods are watched by the target's selector.
  ASSERT_TRUE(WaitServer([&] { return server_.CountRequests("GET", "pods?") > 0; }));
  ASSERT_TRUE(server_.WaitForWatches(2, absl::Seconds(10)));
  ASSERT_TRUE(a->observer.WaitFor(
      kWorkload, [&](const auto&) { return a->registry.Get(kWorkload).replicas == 3; }));
  for (int i = 0; i < 3 && ServerReplicas() == 3; ++i) {
    clock_.Advance(absl::Seconds(2));
    a->decider->OnSamples(Calm("ml/llama-0", clock_.Now()));
    WaitServer([&] { return ServerReplicas() == 2; }, absl::Seconds(2));
  }
  EXPECT_EQ(ServerReplicas(), 2);
  EXPECT_TRUE(WaitServer([&] { return SuccessfulScalePatches() == 1; }));
}

// Defect 1, the scaler's side: only pods Kubernetes lists take traffic; a pod that
// disappears leaves the balancer's view at once.
TEST_F(KubeUnitsTest, OnlyListedPodsAreAnnouncedToTheBalancer) {
  const std::string pods = "/api/v1/namespaces/ml/pods";
  ASSERT_TRUE(server_.Apply(pods, PodJson("llama-0", true)).ok());
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CalmCrJson()).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload));
  ASSERT_TRUE(server_.WaitForWatches(2, absl::Seconds(10)));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<activation::WorkloadEndpoints> heard;
  const uint64_t listener =
      a->registry.AddListener(kWorkload, [&](const activation::WorkloadEndpoints& s) {
        std::lock_guard<std::mutex> lock(mu);
        heard.push_back(s);
        cv.notify_all();
      });
  auto wait_for = [&](const std::function<bool(const activation::WorkloadEndpoints&)>& pred) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10),
                       [&] { return !heard.empty() && pred(heard.back()); });
  };
  // A sidecar of a pod Kubernetes does not list (a stale announcement): not announced.
  for (const Podmetric& m : Calm("ml/llama-9", clock_.Now())) {
    a->registry.OnSample(m.workload, m.id, m.ready, m.address, m.received_at);
  }
  for (const Podmetric& m : Calm("ml/llama-0", clock_.Now())) {
    a->registry.OnSample(m.workload, m.id, m.ready, m.address, m.received_at);
  }
  ASSERT_TRUE(wait_for([](const auto& s) { return s.ready() == 1; }));
  EXPECT_EQ(a->registry.Get(kWorkload).endpoints.size(), 1u);
  EXPECT_EQ(a->registry.Get(kWorkload).endpoints[0].pod, "ml/llama-0");
  // The pod is deleted: gone from the balancer's view with the watch event.
  ASSERT_TRUE(server_.Delete(pods + "/llama-0").ok());
  EXPECT_TRUE(wait_for([](const auto& s) { return s.endpoints.empty(); }));
  a->registry.RemoveListener(listener);  // before what it writes to goes
}

TEST_F(KubeUnitsTest, ScaleAtZeroIsReadAsZero) {
  ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "idle", 0).ok());
  auto reader = kube::KubeClient::Create(Config(server_.url()));
  ASSERT_TRUE(reader.ok());
  absl::StatusOr<std::string> raw =
      (*reader)->Call("GET", "/apis/apps/v1/namespaces/ml/deployments/idle/scale");
  ASSERT_TRUE(raw.ok()) << raw.status();
  ASSERT_EQ(json::parse(*raw)["spec"], json::object());  // as the real server sends it
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("idle", "idle", 0, 2)).ok());
  ASSERT_TRUE(a->observer.WaitFor("ml/Deployment/idle"));
  std::optional<decide::WorkloadStatus> st = a->Status("ml/Deployment/idle");
  EXPECT_EQ(st->replicas, 0);
  EXPECT_EQ(st->state, decide::State::kScaledToZero);
  EXPECT_EQ(a->Replicas("ml/Deployment/idle").value_or(-1), 0);
  EXPECT_TRUE(WaitServer([&] {
    json c = Condition("idle", "ScalingActive");
    return c.value("reason", "") == "ScaledToZero";
  }));
}

TEST_F(KubeUnitsTest, InvalidSpecIsReportedAndGetsNoAutomatonUntilFixed) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 0)).ok());  // maxReplicas 0
  ASSERT_TRUE(WaitServer([&] { return !Condition("llama", "SpecValid").empty(); }));
  json c = Condition("llama", "SpecValid");
  EXPECT_EQ(c["status"], "False");
  EXPECT_EQ(c["reason"], "InvalidSpec");
  EXPECT_THAT(c.value("message", ""), HasSubstr("maxReplicas"));
  EXPECT_FALSE(a->Has());

  // Fixed: the automaton appears and the condition flips.
  json fixed = json::parse(CrJson("llama", "llama", 1, 3));
  fixed["metadata"]["namespace"] = "ml";
  ASSERT_TRUE(server_.Apply(kCrs, fixed.dump()).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload));
  EXPECT_TRUE(WaitServer([&] { return Condition("llama", "SpecValid")["status"] == "True"; }));
}

TEST_F(KubeUnitsTest, DeletedCustomAutoscalerRemovesItsAutomaton) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 3)).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload));
  ASSERT_TRUE(server_.Delete(absl::StrCat(kCrs, "/llama")).ok());
  ASSERT_TRUE(a->observer.WaitGone(kWorkload));
  EXPECT_EQ(a->Set(kWorkload, 2).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ScalePatches().size(), 0u);
}

TEST_F(KubeUnitsTest, SecondCustomAutoscalerForOneTargetIsRefusedUntilTheFirstGoes) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("first", "llama", 1, 3)).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("second", "llama", 1, 5)).ok());
  ASSERT_TRUE(WaitServer(
      [&] { return Condition("second", "SpecValid").value("reason", "") == "AmbiguousTarget"; }));
  EXPECT_THAT(Condition("second", "SpecValid").value("message", ""), HasSubstr("ml/first"));
  ASSERT_TRUE(server_.Delete(absl::StrCat(kCrs, "/first")).ok());
  EXPECT_TRUE(
      WaitServer([&] { return Condition("second", "SpecValid").value("status", "") == "True"; }));
  // The status is written as the reconciler accepts "second"; the automaton that replaces
  // the first one's comes from the event loop just after.
  EXPECT_TRUE(testing::WaitFor([&] { return a->Has(); }, absl::Seconds(15)));
}

TEST_F(KubeUnitsTest, DryRunNeverPatches) {
  TestOptions o = Options("a");
  o.dry_run = true;
  auto a = Make(o);
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 3)).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload));
  a->decider->OnSamples(Busy(kWorkload, 1, clock_.Now()));
  ASSERT_TRUE(WaitServer([&] {
    return absl::StartsWith(CrStatus("llama").value("lastDecisionReason", ""), "dry run:");
  })) << Cr("llama").dump();
  EXPECT_TRUE(WaitServer([&] { return HasEvent("DryRunScaledUp"); }));
  EXPECT_EQ(a->Set(kWorkload, 2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ScalePatches().size(), 0u);
  EXPECT_EQ(ServerReplicas(), 1);
}

TEST_F(KubeUnitsTest, ThrottlingAndServerErrorsAreRetriedThenSurfacedAsUnavailable) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 3)).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload));

  // A 429 with Retry-After and a 503 on the way: the read still succeeds. Retry-After: 1
  // is honoured: the actuator waits exactly one second of the clock.
  server_.FailNext(1, 429, 1, "deployments/llama/scale");
  server_.FailNext(1, 503, -1, "deployments/llama/scale");
  std::future<absl::StatusOr<int32_t>> got = a->StartReplicas(kWorkload);
  ASSERT_TRUE(AdvanceToWaiter(clock_.Now() + absl::Seconds(1)));
  ASSERT_TRUE(AdvanceToNextWaiter(absl::Milliseconds(100)));  // the 503's backoff
  EXPECT_TRUE(got.get().ok());

  // Down for longer than the retries: kUnavailable, after exactly api_attempts tries.
  server_.FailNext(3, 503, -1, "deployments/llama/scale");
  const int before = server_.CountRequests("GET", "deployments/llama/scale");
  got = a->StartReplicas(kWorkload);
  ASSERT_TRUE(AdvanceToNextWaiter(absl::Milliseconds(100)));
  ASSERT_TRUE(AdvanceToNextWaiter(absl::Milliseconds(100)));
  EXPECT_EQ(got.get().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server_.CountRequests("GET", "deployments/llama/scale") - before, 3);

  // A decision meeting a failing server: two retries, a Warning, a re-read after the
  // decider's backoff, then success.
  server_.FailNext(3, 500, -1, "deployments/llama/scale");
  a->decider->OnSamples(Busy(kWorkload, 1, clock_.Now()));
  ASSERT_TRUE(AdvanceToNextWaiter(absl::Milliseconds(100)));
  ASSERT_TRUE(AdvanceToNextWaiter(absl::Milliseconds(100)));
  EXPECT_TRUE(WaitServer([&] { return HasEvent("FailedScale", "Warning"); }));
  ASSERT_TRUE(AdvanceToWaiter(clock_.Now() + absl::Milliseconds(50)));
  ASSERT_TRUE(WaitServer([&] { return ServerReplicas() == 2; }));
  EXPECT_TRUE(WaitServer([&] { return Condition("llama", "Ready")["status"] == "True"; }));
  EXPECT_GE(a->actuator->stats().api_retries, 4);
}

TEST_F(KubeUnitsTest, OnlyTheLeaderDecidesAndATakeoverRebuildsFromRedis) {
  TestOptions oa = Options("a");
  oa.leadership.leader_elect = true;
  oa.leadership.release_on_stop = false;  // as if it died: b must wait for the lease to expire
  TestOptions ob = Options("b");
  ob.leadership.leader_elect = true;
  auto a = Make(oa);
  ASSERT_TRUE(a->observer.WaitLeading());
  auto b = Make(ob);
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 3)).ok());
  ASSERT_TRUE(a->observer.WaitFor(kWorkload));
  EXPECT_FALSE(b->leadership->leading());
  EXPECT_FALSE(b->Has());

  // All replicas ingest; only the leader acts.
  a->decider->OnSamples(Busy(kWorkload, 1, clock_.Now()));
  b->decider->OnSamples(Busy(kWorkload, 1, clock_.Now()));
  ASSERT_TRUE(WaitServer([&] { return ServerReplicas() == 2; }));
  for (const auto& p : ScalePatches()) EXPECT_EQ(p.authorization, "Bearer token-a");
  EXPECT_EQ(b->leadership->stats().terms, 0);

  // The ingest path has stored busy samples of both pods for the last 20s.
  HiredisClient writer(RedisOptions{"127.0.0.1", redis_.port()}, &clock_);
  store::PodmetricStore store(&writer, &clock_, {});
  std::vector<store::EncodedPodmetric> encoded;
  const absl::Time now = clock_.Now();
  for (int t = 20; t >= 0; --t) {
    for (Podmetric m : Busy(kWorkload, 2, now - absl::Seconds(t))) {
      m.seq = 21 - t;
      encoded.push_back(store::Encode(m));
    }
  }
  std::vector<const store::EncodedPodmetric*> ptrs;
  for (const auto& e : encoded) ptrs.push_back(&e);
  ASSERT_TRUE(store.Write(ptrs).ok());

  // a stops renewing without releasing: b takes over once it has seen the Lease
  // unchanged for a lease duration (1s of the clock, in b's 100 ms rounds), rebuilds its
  // windows from Redis and decides at once, with no live sample.
  a->Stop();
  EXPECT_FALSE(a->leadership->leading());
  ASSERT_TRUE(a->observer.WaitGone(kWorkload));  // a non-leader keeps no automaton
  for (int round = 0; round < 20 && !b->leadership->leading(); ++round) {
    ASSERT_TRUE(AdvanceToWaiter(clock_.Now() + absl::Milliseconds(100))) << round;
  }
  ASSERT_TRUE(b->observer.WaitLeading());
  // b has had no live sample since it leads: only the rebuilt windows can make it act.
  ASSERT_TRUE(WaitServer([&] { return SuccessfulScalePatches() == 2; })) << ServerReplicas();
  EXPECT_EQ(ServerReplicas(), 3);
  std::vector<testing::FakeApiServer::RequestRecord> patches = ScalePatches();
  EXPECT_EQ(patches.back().authorization, "Bearer token-b");
  json lease = json::parse(
      *server_.Get("/apis/coordination.k8s.io/v1/namespaces/zs/leases/zeroscale-scaler"));
  EXPECT_EQ(lease["spec"]["holderIdentity"], "b");
}

}  // namespace
}  // namespace zeroscale::reconcile
