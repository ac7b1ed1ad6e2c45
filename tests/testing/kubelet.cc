#include "tests/testing/kubelet.h"

#include <dirent.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/kube/retry.h"
#include "common/status/status_macros.h"
#include "tests/testing/json_fields.h"
#include "tests/testing/pod_worker.h"
#include "tests/testing/private_network.h"

namespace zeroscale::testing {
namespace {

bool Terminal(const json& pod) {
  const std::string phase = JsonStr(JsonAt(pod, "status"), "phase");
  return phase == "Succeeded" || phase == "Failed";
}

// The first pod address is 198.18.1.1; addresses never repeat within a test binary.
std::string PodAddress(uint32_t n) {
  uint32_t a = (198u << 24) | (18u << 16) | (1u << 8);
  for (uint32_t i = 0; i <= n; ++i) {
    do {
      ++a;
    } while ((a & 0xff) == 0 || (a & 0xff) == 255);
  }
  return absl::StrCat(a >> 24, ".", (a >> 16) & 0xff, ".", (a >> 8) & 0xff, ".", a & 0xff);
}

}  // namespace

class Kubelet::Impl {
 public:
  Impl(KubeControlPlane* cluster, KubeletOptions options)
      : cluster_(cluster), options_(std::move(options)) {}
  ~Impl() { Stop(); }

  absl::Status Start();
  void Stop();

  KubeControlPlane* cluster_;
  KubeletOptions options_;
  std::unique_ptr<KubeApi> node_api_;       // system:node:NAME
  std::unique_ptr<KubeApi> scheduler_api_;  // system:kube-scheduler
  NodeContext node_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, ContainerImage> images_;               // guarded by mu_
  std::map<std::string, json> pods_;                           // by uid; guarded by mu_
  std::map<std::string, std::shared_ptr<PodWorker>> workers_;  // by uid; guarded by mu_
  // Every pod this kubelet ran: ns/name -> directory of its newest incarnation.
  std::map<std::string, std::string> pod_dirs_;  // guarded by mu_
  std::vector<std::string> pod_order_;           // guarded by mu_, ns/name in start order
  bool dirty_ = true;                            // guarded by mu_: reschedule
  bool stopping_ = false;                        // guarded by mu_
  std::atomic<uint32_t> next_ip_{0};
  std::atomic<uint32_t> next_veth_{0};

  kube::CancelToken cancel_;
  std::thread watch_thread_;
  std::thread scheduler_thread_;

  absl::Status RegisterNode();
  void WatchLoop();
  void Apply(const std::string& type, const json& pod);
  void SchedulerLoop();
  void ScheduleOnce();
  std::shared_ptr<PodWorker> WorkerOf(absl::string_view ns, absl::string_view pod);
  std::string PodDir(absl::string_view ns, absl::string_view pod) const;
};

absl::Status Kubelet::Impl::Start() {
  ZS_RETURN_IF_ERROR(PrivateNetworkStatus());
  if (options_.root_dir.empty()) options_.root_dir = cluster_->work_dir() + "/kubelet";
  if (options_.shim_path.empty()) options_.shim_path = ZS_POD_SHIM_BIN;
  if (options_.pause_path.empty()) options_.pause_path = ZS_PAUSE_BIN;
  images_ = options_.images;
  ZS_ASSIGN_OR_RETURN(kube::ClusterConfig node_config,
                      cluster_->ClientCertConfig(absl::StrCat("system:node:", options_.node_name),
                                                 {"system:nodes"}));
  ZS_ASSIGN_OR_RETURN(node_api_, KubeApi::Create(node_config));
  ZS_ASSIGN_OR_RETURN(kube::ClusterConfig scheduler_config,
                      cluster_->ClientCertConfig("system:kube-scheduler", {}));
  ZS_ASSIGN_OR_RETURN(scheduler_api_, KubeApi::Create(scheduler_config));

  node_.api = node_api_.get();
  node_.node_name = options_.node_name;
  node_.host_ip = kHostAddress;
  node_.allocatable = options_.allocatable;
  const std::string server = cluster_->pod_server();  // https://198.18.0.1:6443
  const std::string host_port = server.substr(server.find("://") + 3);
  const std::string host = host_port.substr(0, host_port.rfind(':'));
  const std::string port = host_port.substr(host_port.rfind(':') + 1);
  node_.service_env = {{"KUBERNETES_SERVICE_HOST", host},
                       {"KUBERNETES_SERVICE_PORT", port},
                       {"KUBERNETES_SERVICE_PORT_HTTPS", port},
                       {"KUBERNETES_PORT", absl::StrCat("tcp://", host_port)},
                       {"KUBERNETES_PORT_443_TCP", absl::StrCat("tcp://", host_port)},
                       {"KUBERNETES_PORT_443_TCP_PROTO", "tcp"},
                       {"KUBERNETES_PORT_443_TCP_PORT", port},
                       {"KUBERNETES_PORT_443_TCP_ADDR", host}};
  node_.shim = options_.shim_path;
  node_.pause = options_.pause_path;
  node_.restart_backoff = options_.restart_backoff;
  node_.max_restart_backoff = options_.max_restart_backoff;
  node_.find_image = [this](const std::string& image) -> std::optional<ContainerImage> {
    std::lock_guard<std::mutex> lock(mu_);
    const ContainerImage* found = FindImage(images_, image);
    if (found == nullptr) return std::nullopt;
    return *found;
  };
  node_.allocate_ip = [this] { return PodAddress(next_ip_++); };
  node_.allocate_veth_name = [this] { return absl::StrCat("zsp", next_veth_++); };
  ZS_RETURN_IF_ERROR(RegisterNode());
  watch_thread_ = std::thread([this] { WatchLoop(); });
  scheduler_thread_ = std::thread([this] { SchedulerLoop(); });
  return absl::OkStatus();
}

absl::Status Kubelet::Impl::RegisterNode() {
  json labels = {{"kubernetes.io/hostname", options_.node_name},
                 {"kubernetes.io/os", "linux"},
                 {"kubernetes.io/arch", "amd64"}};
  for (const auto& [k, v] : options_.node_labels) labels[k] = v;
  const json node = {{"apiVersion", "v1"},
                     {"kind", "Node"},
                     {"metadata", {{"name", options_.node_name}, {"labels", labels}}}};
  absl::StatusOr<json> created = node_api_->Create(node);
  if (!created.ok() && !absl::IsAborted(created.status())) return created.status();
  const std::string now = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  json conditions = json::array();
  for (const auto& [type, status, reason] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"Ready", "True", "KubeletReady"},
           {"MemoryPressure", "False", "KubeletHasSufficientMemory"},
           {"DiskPressure", "False", "KubeletHasNoDiskPressure"},
           {"PIDPressure", "False", "KubeletHasSufficientPID"}}) {
    conditions.push_back({{"type", type},
                          {"status", status},
                          {"reason", reason},
                          {"lastHeartbeatTime", now},
                          {"lastTransitionTime", now}});
  }
  const json status = {
      {"capacity", options_.allocatable},
      {"allocatable", options_.allocatable},
      {"conditions", conditions},
      {"addresses", json::array({{{"type", "InternalIP"}, {"address", kHostAddress}},
                                 {{"type", "Hostname"}, {"address", options_.node_name}}})},
      {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", 10250}}}}},
      {"nodeInfo",
       {{"machineID", ""},
        {"systemUUID", ""},
        {"bootID", ""},
        {"kernelVersion", ""},
        {"osImage", "zeroscale kubelet stand-in"},
        {"containerRuntimeVersion", "zeroscale-test://1"},
        {"kubeletVersion", "v1.24.0"},
        {"kubeProxyVersion", "v1.24.0"},
        {"operatingSystem", "linux"},
        {"architecture", "amd64"}}}};
  return node_api_
      ->Patch({"v1", "Node", "", options_.node_name}, {{"status", status}}, PatchType::kMerge,
              "status")
      .status();
}

void Kubelet::Impl::Apply(const std::string& type, const json& pod) {
  const std::string uid = UidOf(pod);
  if (uid.empty()) return;
  std::shared_ptr<PodWorker> removed;  // joined after the lock is released
  std::lock_guard<std::mutex> lock(mu_);
  dirty_ = true;
  cv_.notify_all();
  auto worker = workers_.find(uid);
  if (type == "DELETED") {
    pods_.erase(uid);
    if (worker != workers_.end()) {
      worker->second->Remove();
      removed = std::move(worker->second);
      workers_.erase(worker);
    }
    return;
  }
  pods_[uid] = pod;
  if (JsonStr(JsonAt(pod, "spec"), "nodeName") != options_.node_name) return;
  if (worker != workers_.end()) {
    worker->second->Update(pod);
    return;
  }
  if (stopping_ || Terminal(pod)) return;
  const std::string ns = JsonStr(JsonAt(pod, "metadata"), "namespace");
  const std::string key = absl::StrCat(ns, "/", NameOf(pod));
  const std::string dir =
      absl::StrCat(options_.root_dir, "/pods/", ns, "_", NameOf(pod), "_", uid.substr(0, 8));
  pod_dirs_[key] = dir;
  pod_order_.push_back(key);
  workers_[uid] = std::make_shared<PodWorker>(&node_, pod, dir);
}

void Kubelet::Impl::WatchLoop() {
  const ObjectRef pods{"v1", "Pod", "", ""};
  while (!cancel_.cancelled()) {
    absl::StatusOr<json> list = scheduler_api_->ListObject(pods);
    if (!list.ok()) {
      kube::RealSleeper().Sleep(absl::Seconds(1), &cancel_);
      continue;
    }
    std::map<std::string, json> seen;
    for (const json& p : JsonAt(*list, "items")) seen[UidOf(p)] = p;
    std::vector<json> gone;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [uid, p] : pods_) {
        if (!seen.count(uid)) gone.push_back(p);
      }
    }
    for (const json& p : gone) Apply("DELETED", p);
    for (const auto& [uid, p] : seen) Apply("MODIFIED", p);
    std::string rv = JsonStr(JsonAt(*list, "metadata"), "resourceVersion");
    while (!cancel_.cancelled()) {
      absl::Status s = scheduler_api_->Watch(
          pods, rv, absl::Minutes(5),
          [&](const std::string& type, const json& object) {
            const std::string v = JsonStr(JsonAt(object, "metadata"), "resourceVersion");
            if (!v.empty()) rv = v;
            if (type != "BOOKMARK") Apply(type, object);
            return true;
          },
          &cancel_);
      if (!s.ok()) break;  // re-list (410 Gone and errors alike)
    }
  }
}

void Kubelet::Impl::SchedulerLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Retries every second: a failed binding, a pod that fits after all.
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return dirty_ || stopping_; });
      if (stopping_) return;
      dirty_ = false;
    }
    ScheduleOnce();
  }
}

void Kubelet::Impl::ScheduleOnce() {
  std::vector<json> pending;
  std::map<std::string, double> used;
  int pods_on_node = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [uid, pod] : pods_) {
      const std::string node = JsonStr(JsonAt(pod, "spec"), "nodeName");
      if (node == options_.node_name) {
        if (Terminal(pod)) continue;
        ++pods_on_node;
        for (const auto& [k, v] : PodRequests(pod)) used[k] += v;
      } else if (node.empty() &&
                 !JsonAt(JsonAt(pod, "metadata"), "deletionTimestamp").is_string()) {
        const std::string scheduler = JsonStr(JsonAt(pod, "spec"), "schedulerName");
        if (scheduler.empty() || scheduler == "default-scheduler") pending.push_back(pod);
      }
    }
  }
  // Oldest first, as the scheduler's queue (without priorities) would have them.
  std::sort(pending.begin(), pending.end(), [](const json& a, const json& b) {
    return std::make_pair(JsonStr(JsonAt(a, "metadata"), "creationTimestamp"), NameOf(a)) <
           std::make_pair(JsonStr(JsonAt(b, "metadata"), "creationTimestamp"), NameOf(b));
  });
  for (const json& pod : pending) {
    const std::string ns = JsonStr(JsonAt(pod, "metadata"), "namespace");
    const std::string name = NameOf(pod);
    std::vector<std::string> reasons;
    const std::map<std::string, double> requests = PodRequests(pod);
    for (const auto& [resource, amount] : requests) {
      if (amount <= 0) continue;
      auto it = options_.allocatable.find(resource);
      const double have =
          it == options_.allocatable.end() ? 0 : ParseQuantity(it->second).value_or(0);
      if (used[resource] + amount > have + 1e-9)
        reasons.push_back(absl::StrCat("Insufficient ", resource));
    }
    auto pods_cap = options_.allocatable.find("pods");
    if (pods_cap != options_.allocatable.end() &&
        pods_on_node + 1 > ParseQuantity(pods_cap->second).value_or(0)) {
      reasons.push_back("Too many pods");
    }
    const json& selector = JsonAt(JsonAt(pod, "spec"), "nodeSelector");
    if (selector.is_object()) {
      for (const auto& [k, v] : selector.items()) {
        std::string have;
        if (k == "kubernetes.io/hostname") have = options_.node_name;
        if (k == "kubernetes.io/os") have = "linux";
        if (k == "kubernetes.io/arch") have = "amd64";
        auto label = options_.node_labels.find(k);
        if (label != options_.node_labels.end()) have = label->second;
        if (!v.is_string() || have != v.get<std::string>()) {
          reasons.push_back("node(s) didn't match Pod's node affinity/selector");
          break;
        }
      }
    }
    if (reasons.empty()) {
      const json binding = {
          {"apiVersion", "v1"},
          {"kind", "Binding"},
          {"metadata", {{"name", name}, {"uid", UidOf(pod)}}},
          {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", options_.node_name}}}};
      absl::StatusOr<json> bound = scheduler_api_->Call(
          "POST", absl::StrCat("/api/v1/namespaces/", ns, "/pods/", name, "/binding"),
          binding.dump());
      if (bound.ok()) {
        ++pods_on_node;
        for (const auto& [k, v] : requests) used[k] += v;
        std::lock_guard<std::mutex> lock(mu_);
        auto it = pods_.find(UidOf(pod));
        if (it != pods_.end()) it->second["spec"]["nodeName"] = options_.node_name;
      }
      continue;
    }
    const std::string message =
        absl::StrCat("0/1 nodes are available: 1 ", absl::StrJoin(reasons, ", 1 "), ".");
    const json current = ConditionOf(pod, "PodScheduled");
    if (JsonStr(current, "status") == "False" && JsonStr(current, "message") == message) continue;
    const json condition = {
        {"type", "PodScheduled"},
        {"status", "False"},
        {"reason", "Unschedulable"},
        {"message", message},
        {"lastProbeTime", nullptr},
        {"lastTransitionTime",
         absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone())}};
    (void)scheduler_api_->Patch(PodRef(ns, name),
                                {{"status", {{"conditions", json::array({condition})}}}},
                                PatchType::kStrategicMerge, "status");
  }
}

void Kubelet::Impl::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  cancel_.Cancel();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (scheduler_thread_.joinable()) scheduler_thread_.join();
  std::map<std::string, std::shared_ptr<PodWorker>> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (auto& [uid, w] : workers) w->Kill();
  workers.clear();  // joins
}

std::shared_ptr<PodWorker> Kubelet::Impl::WorkerOf(absl::string_view ns, absl::string_view pod) {
  // The running incarnation of ns/pod (mu_ held by the caller).
  for (auto& [uid, w] : workers_) {
    if (w->ns() == ns && w->name() == pod && !w->done()) return w;
  }
  return nullptr;
}

std::string Kubelet::Impl::PodDir(absl::string_view ns, absl::string_view pod) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pod_dirs_.find(absl::StrCat(ns, "/", pod));
  return it == pod_dirs_.end() ? "" : it->second;
}

Kubelet::Kubelet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Kubelet::~Kubelet() { Stop(); }

absl::StatusOr<std::unique_ptr<Kubelet>> Kubelet::Start(KubeControlPlane* cluster,
                                                        KubeletOptions options) {
  auto impl = std::make_unique<Impl>(cluster, std::move(options));
  ZS_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Kubelet>(new Kubelet(std::move(impl)));
}

void Kubelet::Stop() { impl_->Stop(); }

const std::string& Kubelet::node_name() const { return impl_->options_.node_name; }

void Kubelet::SetImage(const std::string& name, ContainerImage image) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->images_[name] = std::move(image);
}

std::string Kubelet::ContainerLogPath(absl::string_view ns, absl::string_view pod,
                                      absl::string_view container) const {
  const std::string dir = impl_->PodDir(ns, pod);
  return dir.empty() ? "" : absl::StrCat(dir, "/logs/", container, ".log");
}

std::string Kubelet::ContainerLog(absl::string_view ns, absl::string_view pod,
                                  absl::string_view container) const {
  const std::string path = ContainerLogPath(ns, pod, container);
  return path.empty() ? "" : ReadFileOrEmpty(path);
}

std::string Kubelet::Logs(absl::string_view ns) const {
  std::vector<std::pair<std::string, std::string>> pods;
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    for (const std::string& key : impl_->pod_order_) {
      if (!ns.empty() && !absl::StartsWith(key, absl::StrCat(ns, "/"))) continue;
      pods.emplace_back(key, impl_->pod_dirs_[key]);
    }
  }
  std::string out;
  for (const auto& [key, dir] : pods) {
    absl::StrAppend(&out, "===== pod ", key, ": kubelet =====\n",
                    ReadFileOrEmpty(dir + "/kubelet.log"));
    const std::string sandbox = ReadFileOrEmpty(dir + "/sandbox.log");
    if (!sandbox.empty()) absl::StrAppend(&out, "----- sandbox -----\n", sandbox);
    std::vector<std::string> files;
    if (DIR* d = ::opendir((dir + "/logs").c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') files.push_back(e->d_name);
      }
      ::closedir(d);
    }
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) {
      absl::StrAppend(&out, "----- container ", f.substr(0, f.rfind('.')), " -----\n",
                      ReadFileOrEmpty(absl::StrCat(dir, "/logs/", f)));
    }
  }
  return out;
}

CommandResult Kubelet::Exec(absl::string_view ns, absl::string_view pod,
                            absl::string_view container, const std::vector<std::string>& argv,
                            absl::Duration timeout) {
  std::shared_ptr<PodWorker> w;
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    w = impl_->WorkerOf(ns, pod);
  }
  if (w == nullptr) return {-1, absl::StrCat("pod ", ns, "/", pod, " does not run here")};
  return w->Exec(std::string(container), argv, timeout);
}

absl::Status Kubelet::SignalContainer(absl::string_view ns, absl::string_view pod,
                                      absl::string_view container, int sig) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  std::shared_ptr<PodWorker> w = impl_->WorkerOf(ns, pod);
  if (w == nullptr)
    return absl::NotFoundError(absl::StrCat("pod ", ns, "/", pod, " does not run here"));
  return w->Signal(std::string(container), sig);
}

}  // namespace zeroscale::testing
