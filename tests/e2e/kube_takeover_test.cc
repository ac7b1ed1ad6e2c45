// Lease takeover between two real scaler processes (--backend=kubernetes) against the
// fake API server: one leads and alone writes scales, Events and CR status, and publishes
// its gRPC address on the Lease; the other answers the balancer's ActivationService calls
// with FAILED_PRECONDITION naming that address. When the leader is SIGKILLed (so it
// cannot release the Lease) the other takes over once the Lease expires (--lease-duration
// 2s here), publishes its own address and goes on deciding and serving. Each scaler has
// its own kubeconfig token, so the fake server's request log tells who sent what;
// holders are "<hostname>-<pid>".
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/proxy/test_backend.h"
#include "tests/testing/auth_files.h"
#include "tests/testing/child_process.h"
#include "tests/testing/fake_apiserver.h"
#include "tests/testing/redis_server.h"
#include "zeroscale/v1/activation.grpc.pb.h"

namespace zeroscale {
namespace {

using json = nlohmann::json;
using testing::ChildProcess;
using testing::FakeApiServer;
using testing::FreePort;
using testing::TestClient;
using testing::WaitFor;

constexpr char kDeployment[] = "/apis/apps/v1/namespaces/ml/deployments/llama";
constexpr char kCrs[] =
    "/apis/autoscaler-group.autoscaler/v1alpha1/namespaces/ml/customautoscalers";
constexpr char kCr[] =
    "/apis/autoscaler-group.autoscaler/v1alpha1/namespaces/ml/customautoscalers/llama";
// The kubeconfig context's namespace is where the scalers keep their Lease.
constexpr char kLease[] = "/apis/coordination.k8s.io/v1/namespaces/zs/leases/zeroscale-scaler";
constexpr char kEvents[] = "/api/v1/namespaces/ml/events";

// Lease 2 s, renew deadline 1.5 s, retry 500 ms: a takeover comes within lease + retry
// of the last renewal; the rest is slack for a loaded machine.
constexpr absl::Duration kLeaseDuration = absl::Seconds(2);
constexpr absl::Duration kTakeover = absl::Seconds(20);
constexpr absl::Duration kSettle = absl::Seconds(20);

std::string CrJson(int min_replicas) {
  json rule = {
      {"id", "busy"},
      {"action", "INCREASE_INSTANCES"},
      {"thresholds",
       {{{"metricType", "IN_FLIGHT_REQUESTS"}, {"operator", "GREATER_THAN"}, {"value", 4}}}}};
  json cr = {
      {"apiVersion", "autoscaler-group.autoscaler/v1alpha1"},
      {"kind", "CustomAutoscaler"},
      {"metadata", {{"name", "llama"}, {"namespace", "ml"}}},
      {"spec",
       {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "llama"}}},
        {"minReplicas", min_replicas},
        {"maxReplicas", 5},
        {"rules", json::array({rule})}}}};
  return cr.dump();
}

std::string Hostname() {
  char name[256] = {0};
  ::gethostname(name, sizeof(name) - 1);
  return name;
}

class KubeTakeover : public ::testing::Test {
 protected:
  // One scaler process, known to the fake server by its token.
  struct Scaler {
    std::string token;
    uint16_t grpc_port = 0;
    uint16_t http_port = 0;
    std::unique_ptr<ChildProcess> process;
    std::string Identity() const { return absl::StrCat(Hostname(), "-", process->pid()); }
    std::string Address() const { return absl::StrCat("127.0.0.1:", grpc_port); }
  };

  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ASSERT_TRUE(redis_.Start().ok());
    dir_ = absl::StrCat(::testing::TempDir(), "/zs-kube-takeover-", ::getpid());
    ASSERT_EQ(::system(("mkdir -p " + dir_).c_str()), 0);
    ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "llama", 1).ok());
    ASSERT_TRUE(server_.Create(kCrs, CrJson(2)).ok());
    for (const char* name : {"a", "b"}) scalers_.push_back(MakeScaler(name));
    // Both at once, so that they really race for the Lease.
    for (Scaler& s : scalers_) ASSERT_TRUE(s.process->Start().ok());
  }

  void TearDown() override {
    for (Scaler& s : scalers_) {
      if (s.process->running()) s.process->Stop();
    }
    if (HasFailure()) {
      for (Scaler& s : scalers_) {
        std::cerr << "--- scaler " << s.token << " log:\n" << s.process->ReadLog() << "\n";
      }
    }
    server_.Stop();
    [[maybe_unused]] int rc = ::system(("rm -rf " + dir_).c_str());
  }

  Scaler MakeScaler(const std::string& name) {
    Scaler s;
    s.token = "token-" + name;
    const std::string kubeconfig = absl::StrCat(dir_, "/kubeconfig-", name);
    std::ofstream(kubeconfig) << "apiVersion: v1\n"
                                 "kind: Config\n"
                                 "clusters:\n"
                                 "- name: fake\n"
                                 "  cluster:\n"
                                 "    server: "
                              << server_.url()
                              << "\n"
                                 "users:\n"
                                 "- name: scaler\n"
                                 "  user:\n"
                                 "    token: "
                              << s.token
                              << "\n"
                                 "contexts:\n"
                                 "- name: fake\n"
                                 "  context:\n"
                                 "    cluster: fake\n"
                                 "    user: scaler\n"
                                 "    namespace: zs\n"
                                 "current-context: fake\n";
    s.grpc_port = FreePort();
    s.http_port = FreePort();
    s.process = std::make_unique<ChildProcess>(
        std::vector<std::string>{ZS_SCALER_BIN, absl::StrCat("--redis=", redis_.address()),
                                 absl::StrCat("--http-listen=127.0.0.1:", s.http_port),
                                 absl::StrCat("--grpc-listen=127.0.0.1:", s.grpc_port),
                                 absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()),
                                 "--backend=kubernetes", "--kubeconfig=" + kubeconfig,
                                 "--leader-elect=true", "--namespace=ml", "--lease-duration=2s",
                                 "--renew-deadline=1500ms", "--retry-period=500ms",
                                 absl::StrCat("--advertise-address=", s.Address()),
                                 "--auth-tokens=" + testing::WriteTestTokens(dir_)},
        absl::StrCat(dir_, "/scaler-", name, ".log"));
    return s;
  }

  // Activate through the scaler's ActivationService, as the balancer calls it.
  static grpc::Status Activate(const Scaler& s) {
    auto stub = v1::ActivationService::NewStub(
        grpc::CreateChannel(s.Address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ctx.AddMetadata("authorization", testing::Bearer(testing::kBalancerToken));
    v1::ActivateRequest req;
    req.set_workload("ml/Deployment/llama");
    v1::WorkloadState state;
    return stub->Activate(&ctx, req, &state);
  }
  // The first message (or the end) of a Watch of the workload.
  static grpc::Status FirstWatch(const Scaler& s) {
    auto stub = v1::ActivationService::NewStub(
        grpc::CreateChannel(s.Address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ctx.AddMetadata("authorization", testing::Bearer(testing::kBalancerToken));
    v1::WatchRequest req;
    req.set_workload("ml/Deployment/llama");
    auto reader = stub->Watch(&ctx, req);
    v1::WorkloadState state;
    if (reader->Read(&state)) {
      ctx.TryCancel();
      reader->Finish();
      return grpc::Status::OK;
    }
    return reader->Finish();
  }
  // The scaler's zeroscale_scaler_leader as its /metrics serves it ("" when unreachable).
  static std::string LeaderGauge(const Scaler& s) {
    try {
      TestClient c(s.http_port);
      const std::string body = c.Send("GET", "/metrics").body;
      const std::string kKey = "\nzeroscale_scaler_leader ";
      const size_t at = body.find(kKey);
      if (at == std::string::npos) return "";
      return body.substr(at + kKey.size(), body.find('\n', at + 1) - at - kKey.size());
    } catch (const std::exception&) {
      return "";
    }
  }
  std::string PublishedAddress() {
    json lease = Object(kLease);
    if (!lease.contains("metadata") || !lease["metadata"].contains("annotations")) return "";
    return lease["metadata"]["annotations"].value("zeroscale.io/grpc-address", "");
  }

  json Object(const std::string& path) {
    absl::StatusOr<std::string> obj = server_.Get(path);
    return obj.ok() ? json::parse(*obj) : json::object();
  }
  int ServerReplicas() {
    json d = Object(kDeployment);
    return d.contains("spec") ? d["spec"].value("replicas", 0) : -1;
  }
  std::string Holder() {
    json lease = Object(kLease);
    return lease.contains("spec") ? lease["spec"].value("holderIdentity", "") : "";
  }
  int Transitions() {
    json lease = Object(kLease);
    return lease.contains("spec") ? lease["spec"].value("leaseTransitions", 0) : -1;
  }
  // Requests of `method` to a path containing `target` sent with `token`.
  int Sent(const std::string& token, const std::string& method, const std::string& target) {
    int n = 0;
    for (const FakeApiServer::RequestRecord& r : server_.requests()) {
      if (r.authorization == "Bearer " + token && r.method == method &&
          absl::StrContains(r.target, target) && r.status < 300) {
        ++n;
      }
    }
    return n;
  }
  // Every write (anything but GET) the scaler with `token` got accepted, except to the
  // Lease, which followers write too when they try to acquire it.
  int NonLeaseWrites(const std::string& token) {
    int n = 0;
    for (const FakeApiServer::RequestRecord& r : server_.requests()) {
      if (r.authorization == "Bearer " + token && r.method != "GET" &&
          !absl::StrContains(r.target, "/leases") && r.status < 300) {
        ++n;
      }
    }
    return n;
  }
  // An Event on the Deployment reported by `identity` whose message contains `text`.
  bool HasEvent(const std::string& identity, const std::string& text) {
    for (const std::string& e : server_.List(kEvents)) {
      json ev = json::parse(e);
      if (ev["involvedObject"].value("name", "") == "llama" &&
          ev["involvedObject"].value("kind", "") == "Deployment" &&
          ev.value("reportingInstance", "") == identity &&
          absl::StrContains(ev.value("message", ""), text)) {
        return true;
      }
    }
    return false;
  }
  json CrStatus() {
    json cr = Object(kCr);
    return cr.contains("status") ? cr["status"] : json::object();
  }

  FakeApiServer server_;
  testing::RedisServer redis_;
  std::string dir_;
  std::vector<Scaler> scalers_;
};

TEST_F(KubeTakeover, OneLeaderDecidesAndTheOtherTakesOverWhenItDies) {
  // --- One leader, the only one that writes.
  std::string holder;
  ASSERT_TRUE(WaitFor(
      [&] {
        holder = Holder();
        return !holder.empty();
      },
      kSettle));
  Scaler* leader = nullptr;
  Scaler* follower = nullptr;
  for (Scaler& s : scalers_) (s.Identity() == holder ? leader : follower) = &s;
  ASSERT_NE(leader, nullptr) << "holder " << holder << " is neither scaler";
  ASSERT_NE(follower, nullptr);
  const int transitions_before = Transitions();

  ASSERT_TRUE(WaitFor([&] { return ServerReplicas() == 2; }, kSettle));
  // No pod sends samples here (the fake server makes no pods, so none serves and nothing
  // is missing either); the bounds still apply, which is what drives the scale.
  ASSERT_TRUE(WaitFor(
      [&] {
        json st = CrStatus();
        return st.value("replicas", 0) == 2 && st.value("desiredReplicas", 0) == 2 &&
               absl::StrContains(st.value("lastDecisionReason", ""), "pods serves");
      },
      kSettle))
      << CrStatus().dump(2);
  EXPECT_TRUE(WaitFor([&] { return HasEvent(leader->Identity(), "minReplicas 2"); }, kSettle));
  EXPECT_GE(Sent(leader->token, "PATCH", "/deployments/llama/scale"), 1);
  // The follower neither watches CustomAutoscalers nor writes anything but Lease attempts.
  EXPECT_EQ(Sent(follower->token, "PATCH", "/scale"), 0);
  EXPECT_EQ(Sent(follower->token, "GET", "customautoscalers"), 0);
  EXPECT_EQ(NonLeaseWrites(follower->token), 0);
  // The follower keeps reading the Lease (every retry period), so it would notice expiry.
  EXPECT_TRUE(WaitFor([&] { return Sent(follower->token, "GET", "/leases/zeroscale-scaler") >= 1; },
                      kSettle));

  // Leadership never moved while both were alive.
  EXPECT_EQ(Transitions(), transitions_before);
  EXPECT_EQ(Holder(), leader->Identity());

  // The leader publishes its address on the Lease and alone serves the balancers; the
  // follower refuses, naming the leader and its address.
  EXPECT_EQ(PublishedAddress(), leader->Address());
  // Each one's /metrics says which one leads.
  EXPECT_TRUE(WaitFor([&] { return LeaderGauge(*leader) == "1" && LeaderGauge(*follower) == "0"; },
                      kSettle))
      << "leader " << LeaderGauge(*leader) << ", follower " << LeaderGauge(*follower);
  const grpc::Status served = Activate(*leader);
  EXPECT_TRUE(served.ok()) << served.error_message();
  const grpc::Status refused = Activate(*follower);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(refused.error_message(), leader->Address()))
      << refused.error_message();
  EXPECT_TRUE(absl::StrContains(refused.error_message(), leader->Identity()))
      << refused.error_message();
  EXPECT_EQ(FirstWatch(*follower).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(FirstWatch(*leader).ok());

  // --- The leader dies without releasing the Lease.
  const int leader_patches = Sent(leader->token, "PATCH", "/scale");
  const std::string old_identity = leader->Identity();
  leader->process->Signal(SIGKILL);
  leader->process->Stop();  // reaps it
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return Holder() == follower->Identity(); }, kTakeover))
      << "holder still " << Holder();
  const absl::Duration takeover = absl::Now() - killed;
  std::cerr << "takeover " << absl::FormatDuration(takeover) << " after SIGKILL\n";
  EXPECT_EQ(Transitions(), transitions_before + 1);
  // Not before the Lease (from the last renewal, at most a retry period before the kill)
  // ran out.
  EXPECT_GE(takeover, kLeaseDuration - absl::Milliseconds(500));
  // The new leader publishes its own address and serves.
  ASSERT_TRUE(WaitFor([&] { return PublishedAddress() == follower->Address(); }, kSettle))
      << PublishedAddress();
  EXPECT_TRUE(WaitFor([&] { return Activate(*follower).ok(); }, kSettle));
  EXPECT_TRUE(WaitFor([&] { return LeaderGauge(*follower) == "1"; }, kSettle))
      << LeaderGauge(*follower);

  // --- The new leader decides: a higher minReplicas reaches the Deployment through it.
  ASSERT_TRUE(server_.Apply(kCrs, CrJson(3)).ok());
  ASSERT_TRUE(WaitFor([&] { return ServerReplicas() == 3; }, kSettle)) << ServerReplicas();
  EXPECT_GE(Sent(follower->token, "PATCH", "/deployments/llama/scale"), 1);
  EXPECT_EQ(Sent(leader->token, "PATCH", "/scale"), leader_patches);
  EXPECT_TRUE(WaitFor([&] { return HasEvent(follower->Identity(), "minReplicas 3"); }, kSettle));
  EXPECT_TRUE(WaitFor(
      [&] {
        json st = CrStatus();
        return st.value("replicas", 0) == 3 && st.value("desiredReplicas", 0) == 3;
      },
      kSettle))
      << CrStatus().dump(2);
  EXPECT_EQ(Holder(), follower->Identity());
  EXPECT_NE(Holder(), old_identity);
}

// Rules stored in Redis (seed-style SETs) join the CustomAutoscaler's on the leader, are
// counted and their conflicts shown in its status, and a new leader has them all.
TEST_F(KubeTakeover, StoredRulesReachTheLeaderAndSurviveALeaderChange) {
  std::string holder;
  ASSERT_TRUE(WaitFor(
      [&] {
        holder = Holder();
        return !holder.empty();
      },
      kSettle));
  Scaler* leader = nullptr;
  Scaler* follower = nullptr;
  for (Scaler& s : scalers_) (s.Identity() == holder ? leader : follower) = &s;
  ASSERT_NE(leader, nullptr);
  ASSERT_NE(follower, nullptr);
  auto set_rule = [&](const std::string& id) {
    json rule = {{"id", id},
                 {"action", "INCREASE_INSTANCES"},
                 {"thresholds",
                  {{{"metricType", "CPU_USAGE"}, {"value", 90}, {"operator", "GREATER_THAN"}}}},
                 {"target", "ml/Deployment/llama"}};
    return redis_.Cli(absl::StrCat("SET scaling_rule:", id, " '", rule.dump(), "'"));
  };
  auto conflict = [&] {
    json st = CrStatus();
    if (!st.contains("conditions")) return false;
    for (const json& c : st["conditions"]) {
      if (c.value("type", "") == "RuleConflict" && c.value("status", "") == "True") return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitFor([&] { return CrStatus().value("effectiveRules", 0) == 1; }, kSettle))
      << CrStatus().dump(2);
  ASSERT_EQ(set_rule("grow"), "OK\n");
  ASSERT_TRUE(WaitFor([&] { return CrStatus().value("effectiveRules", 0) == 2; }, kSettle))
      << CrStatus().dump(2);
  // The CR's own 'busy' again in Redis: a conflict, the CR's rule wins.
  ASSERT_EQ(set_rule("busy"), "OK\n");
  ASSERT_TRUE(WaitFor(conflict, kSettle)) << CrStatus().dump(2);
  EXPECT_EQ(CrStatus().value("effectiveRules", 0), 2);

  leader->process->Signal(SIGKILL);
  leader->process->Stop();
  ASSERT_TRUE(WaitFor([&] { return Holder() == follower->Identity(); }, kTakeover));
  // Written by the new leader only (the old one is dead): it has 'grow' from before, the
  // new 'more', and the conflict is gone with the stored 'busy'.
  EXPECT_EQ(redis_.Cli("DEL scaling_rule:busy"), "1\n");
  ASSERT_EQ(set_rule("more"), "OK\n");
  ASSERT_TRUE(
      WaitFor([&] { return CrStatus().value("effectiveRules", 0) == 3 && !conflict(); }, kSettle))
      << CrStatus().dump(2);
}

// Lease timing that would let two replicas lead at once is refused at start.
TEST(KubeLeaseFlags, BadTimingExitsTwoNamingFlagAndValue) {
  struct Case {
    std::vector<std::string> flags;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--lease-duration=4s", "--renew-deadline=5s"}, "--renew-deadline=5s"},
      {{"--renew-deadline=3s", "--retry-period=3s"}, "--retry-period=3s"},
      {{"--lease-duration=500ms"}, "--lease-duration=500ms"},
      {{"--advertise-address=0.0.0.0:9090"}, "--advertise-address=0.0.0.0:9090"},
  };
  for (const Case& c : cases) {
    std::string cmd = absl::StrCat(ZS_SCALER_BIN, " --backend=none");
    for (const std::string& f : c.flags) absl::StrAppend(&cmd, " ", f);
    const std::string out = testing::Shell(absl::StrCat(cmd, "; echo exit=$?"));
    EXPECT_TRUE(absl::StrContains(out, "exit=2")) << cmd << "\n" << out;
    EXPECT_TRUE(absl::StrContains(out, c.expected)) << cmd << "\n" << out;
  }
}

}  // namespace
}  // namespace zeroscale
