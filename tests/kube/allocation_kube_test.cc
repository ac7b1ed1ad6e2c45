// Allocation limits on the real control plane: the real scaler (--backend=kubernetes)
// against the real API server, with GPU Nodes created as plain API objects (allocatable
// nvidia.com/gpu through the status subresource), an AllocationPolicy with a GPU limit and
// three CustomAutoscalers of one group competing for it. The test plays the scheduler for
// their pods (schedulerName zs-test-scheduler, which the kubelet stand-in leaves alone):
// it binds a pod to a node with room whose taints it tolerates, and otherwise marks it
// Unschedulable with the real scheduler's wording. Nothing sleeps to assert: every wait is
// for a condition, with a deadline.
#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/kube_test_env.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kScheduler[] = "zs-test-scheduler";

// The scheduler's part for the test's GPU pods: two nodes, `a` (4 GPUs) and `b` (8 GPUs,
// tainted dedicated=training:NoSchedule until Untaint()).
class GpuScheduler {
 public:
  GpuScheduler(KubeApi* api, std::string ns, std::string node_a, std::string node_b)
      : api_(api), ns_(std::move(ns)), nodes_{{std::move(node_a), 4}, {std::move(node_b), 8}} {}
  ~GpuScheduler() { Stop(); }
  void Start() {
    thread_ = std::thread([this] {
      while (!stop_) {
        Once();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a polling scheduler
      }
    });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void Untaint() { tainted_ = false; }

 private:
  static int Gpus(const json& pod) {
    int n = 0;
    for (const json& c : pod["spec"]["containers"]) {
      const json& r = c["resources"];
      for (const char* k : {"requests", "limits"}) {
        if (r.contains(k) && r[k].contains("nvidia.com/gpu")) {
          int v = 0;
          if (absl::SimpleAtoi(r[k]["nvidia.com/gpu"].get<std::string>(), &v)) n += v;
          break;
        }
      }
    }
    return n;
  }
  void Once() {
    absl::StatusOr<std::vector<json>> pods = api_->List({"v1", "Pod", ns_, ""});
    if (!pods.ok()) return;
    std::map<std::string, int> used;
    for (const json& p : *pods) {
      const std::string node = p["spec"].value("nodeName", "");
      if (!node.empty()) used[node] += Gpus(p);
    }
    for (const json& p : *pods) {
      if (p["spec"].value("schedulerName", "") != kScheduler ||
          !p["spec"].value("nodeName", "").empty() || p["metadata"].contains("deletionTimestamp")) {
        continue;
      }
      const int need = Gpus(p);
      // The API server adds tolerations of its own (not-ready, unreachable): only ours counts.
      bool tolerates = false;
      if (p["spec"].contains("tolerations")) {
        for (const json& t : p["spec"]["tolerations"])
          tolerates |= t.value("key", "") == "dedicated";
      }
      int insufficient = 0, taint = 0;
      std::string chosen;
      for (const auto& [node, gpus] : nodes_) {
        if (node == nodes_[1].first && tainted_ && !tolerates) {
          ++taint;
        } else if (gpus - used[node] < need) {
          ++insufficient;
        } else if (chosen.empty()) {
          chosen = node;
        }
      }
      const std::string name = NameOf(p);
      if (!chosen.empty()) {
        const json binding = {
            {"apiVersion", "v1"},
            {"kind", "Binding"},
            {"metadata", {{"name", name}}},
            {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", chosen}}}};
        if (api_->Call("POST", absl::StrCat("/api/v1/namespaces/", ns_, "/pods/", name, "/binding"),
                       binding.dump())
                .ok()) {
          used[chosen] += need;
        }
        continue;
      }
      std::vector<std::string> why;
      if (insufficient > 0)
        why.push_back(absl::StrCat(insufficient, " Insufficient nvidia.com/gpu"));
      if (taint > 0) {
        why.push_back(absl::StrCat(taint, " node(s) had untolerated taint {dedicated: training}"));
      }
      const std::string message =
          absl::StrCat("0/2 nodes are available: ", absl::StrJoin(why, ", "), ".");
      bool same = false;
      if (p.contains("status") && p["status"].contains("conditions")) {
        for (const json& c : p["status"]["conditions"]) {
          same |= c.value("type", "") == "PodScheduled" && c.value("message", "") == message;
        }
      }
      if (same) continue;
      (void)api_->Patch({"v1", "Pod", ns_, name},
                        {{"status",
                          {{"conditions", json::array({{{"type", "PodScheduled"},
                                                        {"status", "False"},
                                                        {"reason", "Unschedulable"},
                                                        {"message", message}}})}}}},
                        PatchType::kStrategicMerge, "status");
    }
  }

  KubeApi* const api_;
  const std::string ns_;
  const std::vector<std::pair<std::string, int>> nodes_;
  std::atomic<bool> tainted_{true};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class AllocationKubeTest : public KubeTest {
 protected:
  void TearDown() override {
    if (scheduler_) scheduler_->Stop();
    if (scaler_) scaler_->Stop();
    for (const std::string& node : nodes_) (void)api().Delete({"v1", "Node", "", node});
    KubeTest::TearDown();
  }

  // A Node with `gpus` nvidia.com/gpu allocatable, optionally tainted.
  absl::Status CreateNode(const std::string& name, int gpus, bool tainted) {
    nodes_.push_back(name);
    json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}}}};
    if (tainted) {
      node["spec"]["taints"] =
          json::array({{{"key", "dedicated"}, {"value", "training"}, {"effect", "NoSchedule"}}});
    }
    absl::StatusOr<json> created = api().Create(node);
    if (!created.ok()) return created.status();
    const json resources = {{"nvidia.com/gpu", absl::StrCat(gpus)},
                            {"cpu", "32"},
                            {"memory", "256Gi"},
                            {"pods", "110"}};
    return api()
        .Patch({"v1", "Node", "", name},
               {{"status", {{"capacity", resources}, {"allocatable", resources}}}},
               PatchType::kMerge, "status")
        .status();
  }

  // A Deployment at 0 replicas whose pods need `gpus` GPUs each (a limit only, as
  // device plugins are used), and its CustomAutoscaler in group llm with `min` replicas.
  std::string Workload(const std::string& name, int gpus, int min, bool tolerates = false,
                       int max = 4, const std::string& group = "llm") {
    return absl::StrReplaceAll(
        R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME}
spec:
  replicas: 0
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      schedulerName: SCHEDULER
      TOLERATIONS
      containers:
        - name: model
          image: zeroscale.test/app
          resources: {limits: {nvidia.com/gpu: "GPUS"}}
---
apiVersion: autoscaler-group.autoscaler/v1alpha1
kind: CustomAutoscaler
metadata: {name: NAME}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: NAME}
  minReplicas: MIN
  maxReplicas: MAX
  ALLOCATION
)",
        {{"NAME", name},
         {"SCHEDULER", kScheduler},
         {"GPUS", absl::StrCat(gpus)},
         {"MIN", absl::StrCat(min)},
         {"MAX", absl::StrCat(max)},
         {"ALLOCATION", group.empty() ? "" : absl::StrCat("allocation: {group: ", group, "}")},
         {"TOLERATIONS", tolerates ? "tolerations: [{key: dedicated, "
                                     "operator: Equal, value: training, "
                                     "effect: NoSchedule}]"
                                   : ""}});
  }

  absl::Status WaitForReplicas(const std::string& name, int replicas) {
    return api()
        .WaitFor(
            DeploymentRef(ns(), name),
            [&](const json& d) { return d["spec"].value("replicas", 0) == replicas; },
            absl::Seconds(60), absl::StrCat(name, " spec.replicas ", replicas))
        .status();
  }

  int Replicas(const std::string& name) {
    absl::StatusOr<json> d = api().Get(DeploymentRef(ns(), name));
    return d.ok() ? (*d)["spec"].value("replicas", 0) : -1;
  }

  // The CustomAutoscaler's condition `type`, once its reason is `reason`.
  absl::StatusOr<json> WaitForCondition(const std::string& name, const std::string& type,
                                        const std::string& reason) {
    json found;
    absl::Status s =
        api()
            .WaitFor(
                {"autoscaler-group.autoscaler/v1alpha1", "CustomAutoscaler", ns(), name},
                [&](const json& ca) {
                  if (!ca.contains("status") || !ca["status"].contains("conditions")) return false;
                  for (const json& c : ca["status"]["conditions"]) {
                    if (c.value("type", "") == type && c.value("reason", "") == reason) {
                      found = c;
                      return true;
                    }
                  }
                  return false;
                },
                absl::Seconds(60), absl::StrCat(name, " condition ", type, " ", reason))
            .status();
    if (!s.ok()) return s;
    return found;
  }

  // "Reason: message" of the namespace's Events about Deployment `name`.
  std::vector<std::string> Events(const std::string& name) {
    std::vector<std::string> out;
    absl::StatusOr<std::vector<json>> events = api().List({"v1", "Event", ns(), ""});
    if (!events.ok()) return out;
    for (const json& e : *events) {
      if (e["involvedObject"].value("name", "") == name &&
          e["involvedObject"].value("kind", "") == "Deployment") {
        out.push_back(absl::StrCat(e.value("reason", ""), ": ", e.value("message", "")));
      }
    }
    return out;
  }

  void InstallCrds() {
    for (const char* crd : {"customautoscalers.yaml", "allocationpolicies.yaml"}) {
      const std::string text =
          ReadFileOrEmpty(absl::StrCat(ZS_SOURCE_DIR "/charts/zeroscale/crds/", crd));
      ASSERT_FALSE(text.empty()) << crd;
      ZS_ASSERT_OK(Apply(text));
    }
  }

  // The real scaler on this namespace with the admin's credentials; returns its HTTP port.
  uint16_t StartScaler() {
    EXPECT_TRUE(redis_.Start().ok());
    const uint16_t http = FreePort();
    scaler_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            ZS_SCALER_BIN, "--backend=kubernetes", "--kubeconfig=" + cluster().admin_kubeconfig(),
            "--namespace=" + ns(), "--redis=" + redis_.address(),
            absl::StrCat("--grpc-listen=127.0.0.1:", FreePort()),
            absl::StrCat("--http-listen=127.0.0.1:", http),
            absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()), "--lease-duration=2s",
            "--renew-deadline=1500ms", "--retry-period=500ms"},
        cluster().work_dir() + "/" + ns() + "-scaler.log");
    PrintOnFailure("the scaler", scaler_->log_path());
    EXPECT_TRUE(scaler_->Start().ok());
    return http;
  }

  std::unique_ptr<ChildProcess> scaler_;
  std::unique_ptr<GpuScheduler> scheduler_;
  std::vector<std::string> nodes_;
  RedisServer redis_;
};

bool AnyHas(const std::vector<std::string>& lines, const std::string& a, const std::string& b) {
  for (const std::string& l : lines) {
    if (absl::StrContains(l, a) && absl::StrContains(l, b)) return true;
  }
  return false;
}

TEST_F(AllocationKubeTest, AGroupStopsAtItsGpuLimitAndUnschedulablePodsStopMore) {
  InstallCrds();
  if (HasFatalFailure()) return;
  const std::string policy = R"(
apiVersion: zeroscale.io/v1alpha1
kind: AllocationPolicy
metadata: {name: llm}
spec:
  limits: {nvidia.com/gpu: "LIMIT", memory: 1Ti}
)";
  ASSERT_TRUE(WaitFor(
      [&] {
        return Apply(absl::StrReplaceAll(policy, {{"LIMIT", "6"}})).ok();
      },
      absl::Seconds(30)));
  // What the scaler's pod informer asks for (scheduled, not finished) is a selector this
  // API server takes.
  ZS_ASSERT_OK(api().List({"v1", "Pod", "", ""}, "",
                          "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"));
  const std::string node_a = absl::StrCat(ns(), "-gpu-a"), node_b = absl::StrCat(ns(), "-gpu-b");
  ZS_ASSERT_OK(CreateNode(node_a, 4, false));
  ZS_ASSERT_OK(CreateNode(node_b, 8, true));
  ZS_ASSERT_OK_AND_ASSIGN(std::unique_ptr<KubeApi> scheduler_api,
                          KubeApi::FromKubeconfig(cluster().admin_kubeconfig()));
  scheduler_ = std::make_unique<GpuScheduler>(scheduler_api.get(), ns(), node_a, node_b);
  scheduler_->Start();

  const uint16_t http = StartScaler();
  if (HasFatalFailure()) return;

  // a: 2 replicas of 2 GPUs, 4 of the group's 6; bound to node a, which is then full.
  ZS_ASSERT_OK(Apply(Workload("a", 2, 2)));
  ZS_ASSERT_OK(WaitForReplicas("a", 2));
  // b: wants 2 replicas of 2 GPUs; the group has room for one.
  ZS_ASSERT_OK(Apply(Workload("b", 2, 2)));
  ZS_ASSERT_OK(WaitForReplicas("b", 1));
  ASSERT_TRUE(WaitFor(
      [&] {
        return AnyHas(Events("b"), "WakingFromZero",
                      "0 -> 1 replicas (not 2: group 'llm' is at its 6 nvidia.com/gpu limit");
      },
      absl::Seconds(30)))
      << absl::StrJoin(Events("b"), "\n");
  // Its pod cannot be placed (node a is full, node b tainted): said, and nothing added.
  ZS_ASSERT_OK_AND_ASSIGN(json pending,
                          WaitForCondition("b", "ScalingLimited", "PodsUnschedulable"));
  EXPECT_THAT(pending.value("message", ""),
              HasSubstr("holding 1 replicas: 1 replica Pending for lack of nvidia.com/gpu: not "
                        "adding more"));
  // c (tolerating node b's taint): the group is full, so it holds at zero.
  ZS_ASSERT_OK(Apply(Workload("c", 2, 1, /*tolerates=*/true)));
  ZS_ASSERT_OK_AND_ASSIGN(json full, WaitForCondition("c", "ScalingLimited", "GroupBudget"));
  EXPECT_THAT(full.value("message", ""),
              HasSubstr("holding 0 replicas: group 'llm' is at its 6 nvidia.com/gpu limit"));
  EXPECT_EQ(Replicas("c"), 0);
  EXPECT_TRUE(AnyHas(Events("c"), "ScaleUpLimited", "group 'llm' is at its 6 nvidia.com/gpu"))
      << absl::StrJoin(Events("c"), "\n");

  // The budget grows to 12: c wakes. b was looked at again in the same step (the group's
  // budget and the cluster have room for its second replica), but its Pending pod holds it.
  ZS_ASSERT_OK(Apply(absl::StrReplaceAll(policy, {{"LIMIT", "12"}})));
  ZS_ASSERT_OK(WaitForReplicas("c", 1));
  EXPECT_EQ(Replicas("b"), 1);
  EXPECT_EQ(Replicas("a"), 2);
  // Node b admits everyone: b's pod is placed, and b completes its wake.
  scheduler_->Untaint();
  ZS_ASSERT_OK(WaitForReplicas("b", 2));
  EXPECT_EQ(Replicas("a"), 2);

  // Counted for Prometheus, by reason.
  absl::StatusOr<kube::HttpResponse> metrics = HttpGet("127.0.0.1", http, "/metrics");
  ZS_ASSERT_OK(metrics);
  const std::string b_id = absl::StrCat(ns(), "/Deployment/b");
  bool group = false, pending_counted = false;
  for (absl::string_view line : absl::StrSplit(metrics->body, '\n')) {
    if (!absl::StartsWith(line, "zeroscale_scaleups_limited_total{")) continue;
    group |= absl::StrContains(line, b_id) && absl::StrContains(line, "reason=\"group\"");
    pending_counted |=
        absl::StrContains(line, b_id) && absl::StrContains(line, "reason=\"pending\"");
  }
  EXPECT_TRUE(group) << metrics->body;
  EXPECT_TRUE(pending_counted) << metrics->body;
}

// No group: the cluster's free GPUs alone limit a wake, in whole replicas per node, and a
// Node added with room lets the wake go on.
TEST_F(AllocationKubeTest, TheClustersFreeGpusLimitAWake) {
  InstallCrds();
  if (HasFatalFailure()) return;
  // 4 GPUs here; the kubelet stand-in's node has 1, too few for a 2-GPU replica.
  ZS_ASSERT_OK(CreateNode(absl::StrCat(ns(), "-gpu-4"), 4, false));
  StartScaler();
  if (HasFatalFailure()) return;
  // Nobody places these pods (no scheduler serves their schedulerName): they stay unplaced.
  ZS_ASSERT_OK(Apply(Workload("d", 2, 5, false, /*max=*/5, /*group=*/"")));
  ZS_ASSERT_OK(WaitForReplicas("d", 2));
  ASSERT_TRUE(WaitFor(
      [&] {
        return AnyHas(Events("d"), "WakingFromZero",
                      "0 -> 2 replicas (not 5: the cluster has room for 2 more replicas needing 2 "
                      "nvidia.com/gpu");
      },
      absl::Seconds(30)))
      << absl::StrJoin(Events("d"), "\n");
  // Its two replicas not placed yet take that room: it holds.
  ZS_ASSERT_OK_AND_ASSIGN(json held, WaitForCondition("d", "ScalingLimited", "ClusterCapacity"));
  EXPECT_THAT(held.value("message", ""), HasSubstr("2 replicas of it not placed yet"));
  // Another node with room: the wake goes on as far as it fits (2 more).
  ZS_ASSERT_OK(CreateNode(absl::StrCat(ns(), "-gpu-4b"), 4, false));
  ZS_ASSERT_OK(WaitForReplicas("d", 4));
}

}  // namespace
}  // namespace zeroscale::testing
