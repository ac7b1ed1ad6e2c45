// The Kubernetes backend against the fake API server (real wire format on 127.0.0.1), a
// real Decider on an EventLoop, and a real redis-server for the takeover rebuild. Each
// replica has its own KubeClient with its own token, so the requests tell who wrote.
#include "scaler/reconcile/kubernetes_backend.h"

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "scaler/decide/decider.h"
#include "scaler/decide/scheduler.h"
#include "scaler/store/podmetric_store.h"
#include "tests/testing/fake_apiserver.h"
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

// Polls `cond` until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(15)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
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

// One scaler replica: its own client, Redis connection, decision loop and backend.
struct Replica {
  decide::EventLoop loop;
  std::unique_ptr<HiredisClient> redis;
  std::unique_ptr<KubernetesBackend> backend;
  std::unique_ptr<decide::Decider> decider;

  ~Replica() {
    if (backend) backend->Stop();
    loop.Stop();
  }

  absl::StatusOr<decide::WorkloadStatus> Status(const std::string& workload = kWorkload) {
    auto p = std::make_shared<std::promise<absl::StatusOr<decide::WorkloadStatus>>>();
    auto f = p->get_future();
    decider->GetStatus(
        workload, [p](absl::StatusOr<decide::WorkloadStatus> s) { p->set_value(std::move(s)); });
    if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      return absl::DeadlineExceededError("no answer");
    }
    return f.get();
  }
  bool Has(const std::string& workload = kWorkload) { return Status(workload).ok(); }
  absl::StatusOr<int32_t> Replicas(const std::string& workload) {
    auto p = std::make_shared<std::promise<absl::StatusOr<int32_t>>>();
    auto f = p->get_future();
    backend->GetReplicas(workload, [p](absl::StatusOr<int32_t> n) { p->set_value(n); });
    return f.get();
  }
  absl::Status Set(const std::string& workload, int32_t n) {
    auto p = std::make_shared<std::promise<absl::Status>>();
    auto f = p->get_future();
    backend->SetReplicas(workload, n, "test", [p](absl::Status s) { p->set_value(s); });
    return f.get();
  }
};

class KubernetesBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ASSERT_TRUE(redis_.Start().ok());
    ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "llama", 1).ok());
  }

  KubernetesBackendOptions Options(const std::string& id) {
    KubernetesBackendOptions o;
    o.identity = id;
    o.leader_elect = false;
    o.lease_duration = absl::Seconds(1);
    o.renew_deadline = absl::Milliseconds(600);
    o.retry_period = absl::Milliseconds(100);
    o.resync = absl::Hours(1);
    o.api_backoff.initial = absl::Milliseconds(20);
    return o;
  }

  std::unique_ptr<Replica> Make(const KubernetesBackendOptions& options,
                                decide::DeciderOptions dopts = {}) {
    auto r = std::make_unique<Replica>();
    kube::ClusterConfig cluster;
    cluster.server = server_.url();
    cluster.token = "token-" + options.identity;
    cluster.namespace_ = "zs";
    RedisOptions ro;
    ro.port = redis_.port();
    r->redis = std::make_unique<HiredisClient>(ro, RealClock::Get());
    auto backend = KubernetesBackend::Create(cluster, options, r->redis.get(), RealClock::Get());
    EXPECT_TRUE(backend.ok()) << backend.status();
    if (!backend.ok()) return nullptr;
    r->backend = *std::move(backend);
    dopts.staleness = absl::Seconds(20);
    dopts.retry_initial = absl::Milliseconds(50);
    dopts.retry_max = absl::Milliseconds(200);
    dopts.dry_run = options.dry_run;
    r->loop.Start();
    r->decider = std::make_unique<decide::Decider>(RealClock::Get(), &r->loop, r->backend.get(),
                                                   r->backend.get(), dopts);
    r->backend->Attach(r->decider.get());
    EXPECT_TRUE(r->backend->Start().ok());
    return r;
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

  testing::FakeApiServer server_;
  testing::RedisServer redis_;
};

TEST_F(KubernetesBackendTest, CustomAutoscalerBecomesAnAutomatonWithItsBounds) {
  KubernetesBackendOptions o = Options("a");
  o.resync = absl::Milliseconds(200);
  auto a = Make(o);
  ASSERT_TRUE(Eventually([&] { return a->backend->leading(); }));
  // minReplicas 2 while the target has 1: the automaton raises it to its floor.
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 2, 4)).ok());
  ASSERT_TRUE(Eventually([&] { return a->Has(); }));
  ASSERT_TRUE(Eventually([&] { return ServerReplicas() == 2; }));
  EXPECT_EQ(a->Status()->replicas, 2);

  // Someone sets 9; the resync notices, the automaton adopts it and clamps to maxReplicas.
  auto other = kube::KubeClient::Create(Config(server_.url()));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->PatchScale({"ml", "Deployment", "llama"}, 9, "").ok());
  ASSERT_TRUE(Eventually([&] { return ServerReplicas() == 4; })) << ServerReplicas();
  EXPECT_TRUE(Eventually([&] { return a->Status()->replicas == 4; }));
  EXPECT_TRUE(Eventually([&] { return HasEvent("ExternalScale"); }));
}

TEST_F(KubernetesBackendTest, DecisionBecomesScalePatchEventAndStatus) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 3)).ok());
  ASSERT_TRUE(Eventually([&] { return a->Has(); }));

  a->decider->OnSamples(Busy(kWorkload, 1, absl::Now()));
  ASSERT_TRUE(Eventually([&] { return ServerReplicas() == 2; }));
  std::vector<testing::FakeApiServer::RequestRecord> patches = ScalePatches();
  ASSERT_EQ(patches.size(), 1u);
  EXPECT_EQ(patches[0].target, kScalePath);
  EXPECT_EQ(patches[0].authorization, "Bearer token-a");
  EXPECT_EQ(patches[0].content_type, "application/merge-patch+json");
  json body = json::parse(patches[0].body);
  EXPECT_EQ(body["spec"]["replicas"], 2);
  EXPECT_FALSE(body["metadata"].value("resourceVersion", "").empty());

  EXPECT_TRUE(Eventually([&] { return HasEvent("ScaledUp"); }));
  EXPECT_TRUE(Eventually([&] { return HasEvent("Registered"); }));
  ASSERT_TRUE(Eventually([&] {
    json st = Cr("llama")["status"];
    return st.value("replicas", -1) == 2 && st.value("state", "") == "Active";
  })) << Cr("llama").dump();
  json st = Cr("llama")["status"];
  EXPECT_EQ(st["desiredReplicas"], 2);
  EXPECT_THAT(st.value("lastDecisionReason", ""), HasSubstr("rule 'busy' holds"));
  EXPECT_EQ(st.value("lastDecision", ""), "ScaledUp 1 -> 2");
  EXPECT_FALSE(st.value("lastDecisionTime", "").empty());
  EXPECT_EQ(Condition("llama", "SpecValid")["status"], "True");
  EXPECT_EQ(Condition("llama", "Ready")["status"], "True");
  EXPECT_EQ(Condition("llama", "ScalingActive")["status"], "True");
  EXPECT_EQ(a->backend->stats().scale_patches, 1);
}

TEST_F(KubernetesBackendTest, ConcurrentChangeGetsConflictAndTheStaleDecisionIsNeverApplied) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 3, /*cooldown=*/0)).ok());
  ASSERT_TRUE(Eventually([&] { return a->Has(); }));
  // Another writer moves the scale after we read it.
  auto other = kube::KubeClient::Create(Config(server_.url()));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->PatchScale({"ml", "Deployment", "llama"}, 2, "").ok());

  // We still believe 1 and decide 2: refused with 409, re-read (2), re-decided (3).
  a->decider->OnSamples(Busy(kWorkload, 1, absl::Now()));
  ASSERT_TRUE(Eventually([&] { return ServerReplicas() == 3; })) << ServerReplicas();
  std::vector<testing::FakeApiServer::RequestRecord> patches = ScalePatches();
  ASSERT_GE(patches.size(), 2u);
  EXPECT_EQ(json::parse(patches[0].body)["spec"]["replicas"], 2);
  EXPECT_EQ(patches[0].status, 409);
  for (const auto& p : patches) {
    if (p.status == 200) {
      EXPECT_EQ(json::parse(p.body)["spec"]["replicas"], 3) << p.body;
    }
  }
  EXPECT_GE(a->backend->stats().conflicts, 1);
  EXPECT_TRUE(Eventually([&] { return a->Status()->replicas == 3; }));
  EXPECT_EQ(ServerReplicas(), 3);
}

TEST_F(KubernetesBackendTest, ScaleAtZeroIsReadAsZero) {
  ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "idle", 0).ok());
  auto reader = kube::KubeClient::Create(Config(server_.url()));
  ASSERT_TRUE(reader.ok());
  absl::StatusOr<std::string> raw =
      (*reader)->Call("GET", "/apis/apps/v1/namespaces/ml/deployments/idle/scale");
  ASSERT_TRUE(raw.ok()) << raw.status();
  ASSERT_EQ(json::parse(*raw)["spec"], json::object());  // as the real server sends it
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("idle", "idle", 0, 2)).ok());
  ASSERT_TRUE(Eventually([&] { return a->Has("ml/Deployment/idle"); }));
  absl::StatusOr<decide::WorkloadStatus> st = a->Status("ml/Deployment/idle");
  EXPECT_EQ(st->replicas, 0);
  EXPECT_EQ(st->state, decide::State::kScaledToZero);
  EXPECT_EQ(a->Replicas("ml/Deployment/idle").value_or(-1), 0);
  EXPECT_TRUE(Eventually([&] {
    json c = Condition("idle", "ScalingActive");
    return c.value("reason", "") == "ScaledToZero";
  }));
}

TEST_F(KubernetesBackendTest, InvalidSpecIsReportedAndGetsNoAutomatonUntilFixed) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 0)).ok());  // maxReplicas 0
  ASSERT_TRUE(Eventually([&] { return !Condition("llama", "SpecValid").empty(); }));
  json c = Condition("llama", "SpecValid");
  EXPECT_EQ(c["status"], "False");
  EXPECT_EQ(c["reason"], "InvalidSpec");
  EXPECT_THAT(c.value("message", ""), HasSubstr("maxReplicas"));
  EXPECT_FALSE(a->Has());

  // Fixed: the automaton appears and the condition flips.
  json fixed = json::parse(CrJson("llama", "llama", 1, 3));
  fixed["metadata"]["namespace"] = "ml";
  ASSERT_TRUE(server_.Apply(kCrs, fixed.dump()).ok());
  ASSERT_TRUE(Eventually([&] { return a->Has(); }));
  EXPECT_TRUE(Eventually([&] { return Condition("llama", "SpecValid")["status"] == "True"; }));
}

TEST_F(KubernetesBackendTest, DeletedCustomAutoscalerRemovesItsAutomaton) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 3)).ok());
  ASSERT_TRUE(Eventually([&] { return a->Has(); }));
  ASSERT_TRUE(server_.Delete(absl::StrCat(kCrs, "/llama")).ok());
  ASSERT_TRUE(Eventually([&] { return !a->Has(); }));
  EXPECT_EQ(a->Set(kWorkload, 2).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ScalePatches().size(), 0u);
}

TEST_F(KubernetesBackendTest, SecondCustomAutoscalerForOneTargetIsRefusedUntilTheFirstGoes) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("first", "llama", 1, 3)).ok());
  ASSERT_TRUE(Eventually([&] { return a->Has(); }));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("second", "llama", 1, 5)).ok());
  ASSERT_TRUE(Eventually(
      [&] { return Condition("second", "SpecValid").value("reason", "") == "AmbiguousTarget"; }));
  EXPECT_THAT(Condition("second", "SpecValid").value("message", ""), HasSubstr("ml/first"));
  ASSERT_TRUE(server_.Delete(absl::StrCat(kCrs, "/first")).ok());
  EXPECT_TRUE(
      Eventually([&] { return Condition("second", "SpecValid").value("status", "") == "True"; }));
  EXPECT_TRUE(a->Has());
}

TEST_F(KubernetesBackendTest, DryRunNeverPatches) {
  KubernetesBackendOptions o = Options("a");
  o.dry_run = true;
  auto a = Make(o);
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 3)).ok());
  ASSERT_TRUE(Eventually([&] { return a->Has(); }));
  a->decider->OnSamples(Busy(kWorkload, 1, absl::Now()));
  ASSERT_TRUE(Eventually([&] {
    return absl::StartsWith(Cr("llama")["status"].value("lastDecisionReason", ""), "dry run:");
  })) << Cr("llama").dump();
  EXPECT_TRUE(Eventually([&] { return HasEvent("DryRunScaledUp"); }));
  EXPECT_EQ(a->Set(kWorkload, 2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ScalePatches().size(), 0u);
  EXPECT_EQ(ServerReplicas(), 1);
}

TEST_F(KubernetesBackendTest, ThrottlingAndServerErrorsAreRetriedThenSurfacedAsUnavailable) {
  auto a = Make(Options("a"));
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 3)).ok());
  ASSERT_TRUE(Eventually([&] { return a->Has(); }));

  // A 429 with Retry-After and a 503 on the way: the write still lands.
  server_.FailNext(1, 429, 1, "deployments/llama/scale");
  server_.FailNext(1, 503, -1, "deployments/llama/scale");
  const absl::Time start = absl::Now();
  EXPECT_TRUE(a->Replicas(kWorkload).ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));  // Retry-After: 1 honoured

  // Down for longer than the retries: kUnavailable, after exactly api_attempts tries.
  server_.FailNext(3, 503, -1, "deployments/llama/scale");
  const int before = server_.CountRequests("GET", "deployments/llama/scale");
  EXPECT_EQ(a->Replicas(kWorkload).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server_.CountRequests("GET", "deployments/llama/scale") - before, 3);

  // A decision meeting a failing server: a Warning, Ready=False, then success.
  server_.FailNext(3, 500, -1, "deployments/llama/scale");
  a->decider->OnSamples(Busy(kWorkload, 1, absl::Now()));
  EXPECT_TRUE(Eventually([&] { return HasEvent("FailedScale", "Warning"); }));
  ASSERT_TRUE(Eventually([&] { return ServerReplicas() == 2; }));
  EXPECT_TRUE(Eventually([&] { return Condition("llama", "Ready")["status"] == "True"; }));
  EXPECT_GE(a->backend->stats().api_retries, 4);
}

TEST_F(KubernetesBackendTest, OnlyTheLeaderDecidesAndATakeoverRebuildsFromRedis) {
  KubernetesBackendOptions oa = Options("a");
  oa.leader_elect = true;
  oa.release_on_stop = false;  // as if it died: b must wait for the lease to expire
  KubernetesBackendOptions ob = Options("b");
  ob.leader_elect = true;
  auto a = Make(oa);
  ASSERT_TRUE(Eventually([&] { return a->backend->leading(); }));
  auto b = Make(ob);
  ASSERT_TRUE(server_.Create(kCrs, CrJson("llama", "llama", 1, 3)).ok());
  ASSERT_TRUE(Eventually([&] { return a->Has(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(b->backend->leading());
  EXPECT_FALSE(b->Has());

  // All replicas ingest; only the leader acts.
  a->decider->OnSamples(Busy(kWorkload, 1, absl::Now()));
  b->decider->OnSamples(Busy(kWorkload, 1, absl::Now()));
  ASSERT_TRUE(Eventually([&] { return ServerReplicas() == 2; }));
  for (const auto& p : ScalePatches()) EXPECT_EQ(p.authorization, "Bearer token-a");
  EXPECT_EQ(b->backend->stats().terms, 0);

  // The ingest path has stored busy samples of both pods for the last 20s.
  HiredisClient writer(RedisOptions{"127.0.0.1", redis_.port()}, RealClock::Get());
  store::PodmetricStore store(&writer, RealClock::Get(), {});
  std::vector<store::EncodedPodmetric> encoded;
  const absl::Time now = absl::Now();
  for (int t = 20; t >= 0; --t) {
    for (Podmetric m : Busy(kWorkload, 2, now - absl::Seconds(t))) {
      m.seq = 21 - t;
      encoded.push_back(store::Encode(m));
    }
  }
  std::vector<const store::EncodedPodmetric*> ptrs;
  for (const auto& e : encoded) ptrs.push_back(&e);
  ASSERT_TRUE(store.Write(ptrs).ok());

  // a stops renewing without releasing: b takes over once the lease expires, rebuilds
  // its windows from Redis and decides at once, with no live sample.
  a->backend->Stop();
  EXPECT_FALSE(a->backend->leading());
  EXPECT_FALSE(a->Has());  // a non-leader keeps no automaton
  ASSERT_TRUE(Eventually([&] { return b->backend->leading(); }, absl::Seconds(10)));
  ASSERT_TRUE(Eventually([&] { return b->backend->stats().rebuilds == 1; }));
  ASSERT_TRUE(Eventually([&] { return ServerReplicas() == 3; })) << ServerReplicas();
  std::vector<testing::FakeApiServer::RequestRecord> patches = ScalePatches();
  EXPECT_EQ(patches.back().authorization, "Bearer token-b");
  json lease = json::parse(
      *server_.Get("/apis/coordination.k8s.io/v1/namespaces/zs/leases/zeroscale-scaler"));
  EXPECT_EQ(lease["spec"]["holderIdentity"], "b");
}

}  // namespace
}  // namespace zeroscale::reconcile
