// Lease takeover between two real scaler processes (--backend=kubernetes) against the
// fake API server: one leads and alone writes scales, Events and CR status; when it is
// SIGKILLed (so it cannot release the Lease) the other takes over once the Lease expires
// and goes on deciding. Each scaler has its own kubeconfig token, so the fake server's
// request log tells who sent what; holders are "<hostname>-<pid>".
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"
#include "tests/testing/fake_apiserver.h"
#include "tests/testing/redis_server.h"

namespace zeroscale {
namespace {

using json = nlohmann::json;
using testing::ChildProcess;
using testing::FakeApiServer;
using testing::FreePort;
using testing::WaitFor;

constexpr char kDeployment[] = "/apis/apps/v1/namespaces/ml/deployments/llama";
constexpr char kCrs[] =
    "/apis/autoscaler-group.autoscaler/v1alpha1/namespaces/ml/customautoscalers";
constexpr char kCr[] =
    "/apis/autoscaler-group.autoscaler/v1alpha1/namespaces/ml/customautoscalers/llama";
// The kubeconfig context's namespace is where the scalers keep their Lease.
constexpr char kLease[] = "/apis/coordination.k8s.io/v1/namespaces/zs/leases/zeroscale-scaler";
constexpr char kEvents[] = "/api/v1/namespaces/ml/events";

// Lease 15 s, renew deadline 10 s, retry 2 s (the scaler's defaults): a takeover comes
// within lease + retry of the last renewal; the rest is slack for a loaded machine.
constexpr absl::Duration kTakeover = absl::Seconds(40);
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
    std::unique_ptr<ChildProcess> process;
    std::string Identity() const { return absl::StrCat(Hostname(), "-", process->pid()); }
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
    s.process = std::make_unique<ChildProcess>(
        std::vector<std::string>{ZS_SCALER_BIN, absl::StrCat("--redis=", redis_.address()),
                                 absl::StrCat("--http-listen=127.0.0.1:", FreePort()),
                                 absl::StrCat("--grpc-listen=127.0.0.1:", FreePort()),
                                 absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()),
                                 "--backend=kubernetes", "--kubeconfig=" + kubeconfig,
                                 "--leader-elect=true", "--namespace=ml"},
        absl::StrCat(dir_, "/scaler-", name, ".log"));
    return s;
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
  // No pod sends samples here, so the automaton holds on missing data ("Holding");
  // the bounds still apply, which is what drives the scale.
  ASSERT_TRUE(WaitFor(
      [&] {
        json st = CrStatus();
        return st.value("state", "") == "Holding" &&
               absl::StrContains(st.value("lastDecisionReason", ""), "minReplicas 2");
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
  // Not before the Lease (15 s from the last renewal, at most 2 s before the kill) ran out.
  EXPECT_GE(takeover, absl::Seconds(12));

  // --- The new leader decides: a higher minReplicas reaches the Deployment through it.
  ASSERT_TRUE(server_.Apply(kCrs, CrJson(3)).ok());
  ASSERT_TRUE(WaitFor([&] { return ServerReplicas() == 3; }, kSettle)) << ServerReplicas();
  EXPECT_GE(Sent(follower->token, "PATCH", "/deployments/llama/scale"), 1);
  EXPECT_EQ(Sent(leader->token, "PATCH", "/scale"), leader_patches);
  EXPECT_TRUE(WaitFor([&] { return HasEvent(follower->Identity(), "minReplicas 3"); }, kSettle));
  EXPECT_TRUE(WaitFor(
      [&] {
        json st = CrStatus();
        return st.value("state", "") == "Holding" && st.value("replicas", 0) == 3 &&
               absl::StrContains(st.value("lastDecisionReason", ""), "minReplicas 3");
      },
      kSettle))
      << CrStatus().dump(2);
  EXPECT_EQ(Holder(), follower->Identity());
  EXPECT_NE(Holder(), old_identity);
}

}  // namespace
}  // namespace zeroscale
