#include "tests/testing/kube_test_env.h"

#include <cstdlib>
#include <mutex>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"
#include "common/time/clock.h"
#include "tests/testing/json_fields.h"
#include "tests/testing/private_network.h"

namespace zeroscale::testing {
namespace {

struct EnvState {
  std::mutex mu;
  bool tried = false;
  std::unique_ptr<KubeEnvironment> env;
  std::string why;
  bool skip = false;
};

EnvState& State() {
  static EnvState* state = new EnvState();
  return *state;
}

std::map<std::string, ContainerImage> DefaultImages() {
  return {
      {"zeroscale.test/app", {{ZS_KUBE_TEST_APP_BIN}, {}, {}, ""}},
      {"ghcr.io/zeroscale/zeroscale-sidecar", {{ZS_SIDECAR_BIN}, {}, {}, ""}},
      {"ghcr.io/zeroscale/zeroscale-scaler", {{ZS_SCALER_BIN}, {}, {}, ""}},
      {"ghcr.io/zeroscale/zeroscale-balancer", {{ZS_BALANCER_BIN}, {}, {}, ""}},
      {"redis", {{"redis-server", "--protected-mode", "no"}, {}, {}, ""}},
  };
}

std::string NamespaceName(absl::string_view prefix) {
  std::string name;
  for (char c : prefix) {
    const char l = absl::ascii_tolower(static_cast<unsigned char>(c));
    name.push_back(absl::ascii_isalnum(static_cast<unsigned char>(l)) ? l : '-');
  }
  while (!name.empty() && name.front() == '-') name.erase(0, 1);
  if (name.size() > 40) name.resize(40);
  while (!name.empty() && name.back() == '-') name.pop_back();
  if (name.empty()) name = "test";
  static std::mt19937 rng(std::random_device{}());
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  absl::StrAppend(&name, "-");
  for (int i = 0; i < 5; ++i) name.push_back(kChars[rng() % 36]);
  return name;
}

}  // namespace

bool KubeEnvironment::Required() {
  const char* v = std::getenv(kRequireKubeEnv);
  return v != nullptr && std::string(v) == "1";
}

KubeEnvironment* KubeEnvironment::Get(std::string* why, bool* skip) {
  EnvState& s = State();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.tried) {
    s.tried = true;
    absl::Status prerequisites = KubeControlPlane::CheckPrerequisites();
    if (prerequisites.ok()) prerequisites = PrivateNetworkStatus();
    if (!prerequisites.ok()) {
      s.why = std::string(prerequisites.message());
      s.skip = true;
    } else {
      auto env = std::unique_ptr<KubeEnvironment>(new KubeEnvironment());
      absl::StatusOr<std::unique_ptr<KubeControlPlane>> cluster = KubeControlPlane::Start();
      if (!cluster.ok()) {
        s.why = absl::StrCat("the control plane did not start: ", cluster.status().ToString());
      } else {
        env->cluster_ = *std::move(cluster);
        KubeletOptions options;
        options.allocatable["nvidia.com/gpu"] = "1";
        options.images = DefaultImages();
        absl::StatusOr<std::unique_ptr<Kubelet>> kubelet =
            Kubelet::Start(env->cluster_.get(), options);
        if (!kubelet.ok()) {
          s.why = absl::StrCat("the kubelet stand-in did not start: ", kubelet.status().ToString());
        } else {
          env->kubelet_ = *std::move(kubelet);
          s.env = std::move(env);
        }
      }
    }
  }
  if (why != nullptr) *why = s.why;
  if (skip != nullptr) *skip = s.skip;
  return s.env.get();
}

void KubeEnvironment::Shutdown() {
  if (kubelet_) kubelet_->Stop();
  kubelet_.reset();
  if (cluster_) cluster_->Stop();
  cluster_.reset();
}

// Shuts the environment down after the last test (registered by zs_kube_test_main).
class KubeGlobalEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    EnvState& s = State();
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.env) s.env->Shutdown();
    s.env.reset();
  }
};

::testing::Environment* NewKubeGlobalEnvironment() { return new KubeGlobalEnvironment(); }

void KubeTest::SetUp() {
  std::string why;
  bool skip = false;
  env_ = KubeEnvironment::Get(&why, &skip);
  if (env_ == nullptr) {
    if (skip && !KubeEnvironment::Required()) {
      GTEST_SKIP() << why << " (with " << kRequireKubeEnv << "=1 this is a failure)";
    }
    FAIL() << why;
  }
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  absl::StatusOr<std::string> ns = CreateNamespace(info != nullptr ? info->name() : "test");
  ASSERT_TRUE(ns.ok()) << ns.status();
  ns_ = *ns;
}

absl::StatusOr<std::string> KubeTest::CreateNamespace(absl::string_view prefix) {
  const std::string name = NamespaceName(prefix);
  ZS_RETURN_IF_ERROR(
      api()
          .Create({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}})
          .status());
  namespaces_.push_back(name);
  // Pods are refused until the ServiceAccount controller has made "default"; the root
  // CA ConfigMap feeds every pod's service-account volume.
  for (const ObjectRef& ref : {ObjectRef{"v1", "ServiceAccount", name, "default"},
                               ObjectRef{"v1", "ConfigMap", name, "kube-root-ca.crt"}}) {
    ZS_RETURN_IF_ERROR(
        api()
            .WaitFor(
                ref, [](const json&) { return true; }, absl::Seconds(30), "it to exist")
            .status());
  }
  return name;
}

void KubeTest::TearDown() {
  if (env_ == nullptr) return;
  if (HasFailure()) {
    for (const std::string& n : namespaces_) std::cerr << Diagnostics(n);
    for (const auto& [title, path] : failure_files_) {
      std::cerr << "\n######## " << title << " (" << path << ") ########\n"
                << ReadFileOrEmpty(path);
    }
  }
  failure_files_.clear();
  for (const std::string& n : namespaces_) {
    // Terminating first, so no controller makes new pods; then every pod removed at
    // once, so their processes stop now rather than after their grace periods.
    (void)api().Delete({"v1", "Namespace", "", n});
    absl::StatusOr<std::vector<json>> pods = api().List({"v1", "Pod", n, ""});
    if (!pods.ok()) continue;
    for (const json& p : *pods) {
      DeleteOptions force;
      force.grace_period_seconds = 0;
      (void)api().Delete(PodRef(n, NameOf(p)), force);
    }
  }
  namespaces_.clear();
}

absl::StatusOr<std::vector<json>> KubeTest::Apply(absl::string_view yaml) {
  return api().ApplyManifest(yaml, ns_);
}

absl::StatusOr<std::vector<json>> KubeTest::WaitForReadyPods(absl::string_view selector, int count,
                                                             absl::Duration timeout) {
  return api().WaitForList(
      {"v1", "Pod", ns_, ""},
      [&](const std::vector<json>& pods) {
        if (static_cast<int>(pods.size()) != count) return false;
        for (const json& p : pods) {
          if (!HasCondition(p, "Ready") || p["metadata"].contains("deletionTimestamp"))
            return false;
        }
        return true;
      },
      timeout, absl::StrCat(count, " Ready pods matching ", selector), selector);
}

absl::StatusOr<std::vector<json>> KubeTest::Endpoints(absl::string_view service) {
  ZS_ASSIGN_OR_RETURN(std::vector<json> slices,
                      api().List({"discovery.k8s.io/v1", "EndpointSlice", ns_, ""},
                                 absl::StrCat("kubernetes.io/service-name=", service)));
  std::vector<json> out;
  for (const json& slice : slices) {
    if (!slice.contains("endpoints") || !slice["endpoints"].is_array()) continue;
    for (const json& e : slice["endpoints"]) {
      const json& c = e.value("conditions", json::object());
      for (const json& address : e.value("addresses", json::array())) {
        out.push_back({{"address", address},
                       {"ready", c.value("ready", false)},
                       {"serving", c.value("serving", false)},
                       {"terminating", c.value("terminating", false)},
                       {"pod", e.contains("targetRef") ? JsonStr(e["targetRef"], "name") : ""},
                       {"nodeName", JsonStr(e, "nodeName")}});
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<json>> KubeTest::WaitForEndpoints(
    absl::string_view service, const std::function<bool(const std::vector<json>&)>& condition,
    absl::Duration timeout, absl::string_view what) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::vector<json>> last = absl::UnknownError("not listed yet");
  while (true) {
    last = Endpoints(service);
    if (last.ok() && condition(*last)) return last;
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("waited ", absl::FormatDuration(timeout), " for the endpoints of Service ",
                   service, what.empty() ? "" : absl::StrCat(" (", what, ")"),
                   "; last seen: ", last.ok() ? json(*last).dump() : last.status().ToString()));
}

absl::StatusOr<kube::HttpResponse> KubeTest::Http(absl::string_view method, absl::string_view host,
                                                  int port, absl::string_view path,
                                                  absl::Duration timeout) {
  kube::ClusterConfig config;
  config.server = absl::StrCat("http://", host, ":", port);
  ZS_ASSIGN_OR_RETURN(std::unique_ptr<kube::Transport> transport,
                      kube::Transport::Create(config, RealClock::Get()));
  kube::HttpRequest req;
  req.method = std::string(method);
  req.target = std::string(path);
  req.timeout = timeout;
  return transport->Do(req);
}

std::string KubeTest::Diagnostics(absl::string_view ns) {
  if (ns.empty()) ns = ns_;
  std::string out = absl::StrCat("\n######## namespace ", ns, " ########\n");
  absl::StatusOr<std::vector<json>> pods = api().List({"v1", "Pod", std::string(ns), ""});
  if (pods.ok()) {
    for (const json& p : *pods) {
      absl::StrAppend(&out, "pod ", NameOf(p), " status: ", p.value("status", json()).dump(), "\n");
    }
  }
  absl::StatusOr<std::vector<json>> events = api().List({"v1", "Event", std::string(ns), ""});
  if (events.ok()) {
    for (const json& e : *events) {
      absl::StrAppend(&out, "event ", JsonStr(e, "type"), " ", JsonStr(e, "reason"), " ",
                      e.contains("involvedObject") ? JsonStr(e["involvedObject"], "name") : "",
                      ": ", JsonStr(e, "message"), "\n");
    }
  }
  absl::StrAppend(&out, kubelet().Logs(ns));
  return out;
}

void KubeTest::PrintOnFailure(std::string title, std::string path) {
  failure_files_.emplace_back(std::move(title), std::move(path));
}

std::string PodIP(const json& pod) {
  return pod.contains("status") ? JsonStr(pod["status"], "podIP") : "";
}

}  // namespace zeroscale::testing
