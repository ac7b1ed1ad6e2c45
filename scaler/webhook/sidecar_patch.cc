#include "scaler/webhook/sidecar_patch.h"

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/config/flags.h"
#include "common/model/podmetric.h"
#include "common/prom/presets.h"
#include "common/status/quote.h"
#include "nlohmann/json.hpp"

namespace zeroscale::webhook {
namespace {

using json = nlohmann::json;

constexpr char kInject[] = "zeroscale.io/inject";
constexpr char kPort[] = "zeroscale.io/port";
constexpr char kProxyPort[] = "zeroscale.io/proxy-port";
constexpr char kSampleInterval[] = "zeroscale.io/sample-interval";
constexpr char kDiskPaths[] = "zeroscale.io/disk-paths";
constexpr char kReadinessPath[] = "zeroscale.io/readiness-path";
constexpr char kWorkload[] = "zeroscale.io/workload";
constexpr char kContainer[] = "zeroscale.io/container";
constexpr char kMetricsPath[] = "zeroscale.io/metrics-path";
constexpr char kMetricsPreset[] = "zeroscale.io/metrics-preset";
constexpr char kGpuMetrics[] = "zeroscale.io/gpu-metrics";
constexpr char kMetricsSeries[] = "zeroscale.io/metrics-series";
// The path scraped when a preset or series is named without a path.
constexpr char kDefaultMetricsPath[] = "/metrics";
constexpr char kInjected[] = "zeroscale.io/injected";
constexpr int kDefaultProxyPort = 8012;
constexpr int kAdminPort = 8013;  // the sidecar's --admin-listen default

// Skip reasons, the label values of zeroscale_webhook_skipped_total.
constexpr char kOptedOut[] = "opted_out";
constexpr char kNotRequested[] = "not_requested";
constexpr char kAlreadyInjected[] = "already_injected";
constexpr char kMissingPort[] = "missing_port";
constexpr char kInvalidAnnotation[] = "invalid_annotation";
constexpr char kPortConflict[] = "port_conflict";
constexpr char kNotShared[] = "process_namespace_not_shared";
constexpr char kHostPid[] = "host_pid";

// Why the sidecar was not injected, worded for `kubectl` users who see the warning.
std::string NotInjected(absl::string_view why) {
  return absl::StrCat("zeroscale sidecar not injected: ", why);
}

std::string BadValue(absl::string_view key, absl::string_view value, absl::string_view expected) {
  return NotInjected(absl::StrCat("annotation ", key, ": ", Quote(value), " is not ", expected));
}

const json* Find(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string StringAt(const json& j, const char* key) {
  const json* v = Find(j, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

// Collects the sidecar's settings from the annotations; the first bad one ends it.
class Settings {
 public:
  Settings(const json& annotations, Injection* out) : annotations_(annotations), out_(out) {}

  // Annotations are strings (CheckTypes() refused the rest).
  std::optional<std::string> Get(const char* key) const {
    const json* v = Find(annotations_, key);
    if (v == nullptr || !v->is_string()) return std::nullopt;
    return v->get<std::string>();
  }

  // Kubernetes only has string annotations; any other JSON value under one of ours (its
  // nesting bounded by the parser, its size by the request) is refused by name, never
  // rendered back.
  bool CheckTypes() {
    for (const char* key :
         {kInject, kPort, kProxyPort, kSampleInterval, kDiskPaths, kReadinessPath, kWorkload,
          kContainer, kMetricsPath, kMetricsPreset, kMetricsSeries, kGpuMetrics}) {
      const json* v = Find(annotations_, key);
      if (v != nullptr && !v->is_string()) {
        return Fail(NotInjected(absl::StrCat("annotation ", key, ": is a JSON ", v->type_name(),
                                             ", not a string")),
                    kInvalidAnnotation);
      }
    }
    return true;
  }

  bool Fail(std::string warning, const char* reason) {
    out_->warnings.push_back(std::move(warning));
    out_->skip_reason = reason;
    return false;
  }

  bool Port(const char* key, int def, int* port) {
    const std::optional<std::string> v = Get(key);
    if (!v) {
      *port = def;
      return def > 0;
    }
    int p = 0;
    if (!absl::SimpleAtoi(*v, &p) || p < 1 || p > 65535) {
      return Fail(BadValue(key, *v, "a port number (1-65535)"), kInvalidAnnotation);
    }
    *port = p;
    return true;
  }

  // A value checked by `valid`, or `def` when the annotation is absent.
  bool Text(const char* key, const std::string& def, bool (*valid)(const std::string&),
            absl::string_view expected, std::string* out) {
    const std::optional<std::string> v = Get(key);
    if (!v) {
      *out = def;
      return true;
    }
    if (!valid(*v)) return Fail(BadValue(key, *v, expected), kInvalidAnnotation);
    *out = *v;
    return true;
  }

 private:
  const json& annotations_;
  Injection* const out_;
};

bool ValidInterval(const std::string& v) {
  absl::StatusOr<absl::Duration> d = config::ParseDuration(v);
  return d.ok() && *d >= absl::Milliseconds(100);
}

bool ValidPathList(const std::string& v) {
  if (v.empty()) return false;
  for (absl::string_view p : absl::StrSplit(v, ',')) {
    if (!absl::StartsWith(p, "/")) return false;
  }
  return true;
}

bool ValidHttpPath(const std::string& v) {
  if (!absl::StartsWith(v, "/")) return false;
  for (char c : v) {
    // Would break the request line; the sidecar refuses them too.
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  return true;
}

bool ValidPreset(const std::string& v) {
  return !v.empty() && prom::AppMetricsPresetSeries(v).ok();
}

bool ValidBool(const std::string& v) { return v == "true" || v == "false"; }

bool ValidSeriesList(const std::string& v) {
  absl::StatusOr<std::vector<std::string>> series = prom::SeriesToForward("", v, kMaxAppMetrics);
  return series.ok() && !series->empty();
}

bool ValidWorkload(const std::string& v) {
  const std::vector<absl::string_view> parts = absl::StrSplit(v, '/');
  if (parts.size() != 2 && parts.size() != 3) return false;
  for (absl::string_view p : parts) {
    if (p.empty()) return false;
  }
  return true;
}

// <namespace>/<Kind>/<name> of the pod's controller: a ReplicaSet named after its
// Deployment plus "-<pod-template-hash>" stands for that Deployment.
std::string WorkloadFromOwner(const json& metadata, const std::string& ns) {
  const json* refs = Find(metadata, "ownerReferences");
  if (refs == nullptr || !refs->is_array()) return "";
  for (const json& ref : *refs) {
    const json* controller = Find(ref, "controller");
    if (controller == nullptr || !controller->is_boolean() || !controller->get<bool>()) continue;
    std::string kind = StringAt(ref, "kind"), name = StringAt(ref, "name");
    if (kind.empty() || name.empty()) return "";
    const json* labels = Find(metadata, "labels");
    const std::string hash = labels != nullptr ? StringAt(*labels, "pod-template-hash") : "";
    if (kind == "ReplicaSet" && !hash.empty() && absl::EndsWith(name, absl::StrCat("-", hash)) &&
        name.size() > hash.size() + 1) {
      kind = "Deployment";
      name.resize(name.size() - hash.size() - 1);
    }
    return absl::StrCat(ns, "/", kind, "/", name);
  }
  return "";
}

json EnvFrom(const char* name, const char* field) {
  return {{"name", name}, {"valueFrom", {{"fieldRef", {{"fieldPath", field}}}}}};
}

// A container's resource through the Downward API. Without a limit it yields the node's
// allocatable, which is indeed all the app may use.
json EnvFromResource(const char* name, const std::string& container, const char* resource,
                     const char* divisor) {
  return {{"name", name},
          {"valueFrom",
           {{"resourceFieldRef",
             {{"containerName", container}, {"resource", resource}, {"divisor", divisor}}}}}};
}

// `app_container` is measured by the sidecar; "" when the pod has no container to name.
json SidecarContainer(const InjectorOptions& o, const std::vector<std::string>& args,
                      int proxy_port, const std::string& app_container, bool gpu_metrics) {
  json env = json::array({EnvFrom("POD_NAME", "metadata.name"),
                          EnvFrom("POD_NAMESPACE", "metadata.namespace"),
                          EnvFrom("POD_IP", "status.podIP")});
  if (!app_container.empty()) {
    // Read by the sidecar as --cpu-limit-millicores and --memory-limit-bytes.
    env.push_back(
        EnvFromResource("ZEROSCALE_CPU_LIMIT_MILLICORES", app_container, "limits.cpu", "1m"));
    env.push_back(
        EnvFromResource("ZEROSCALE_MEMORY_LIMIT_BYTES", app_container, "limits.memory", "1"));
  }
  if (gpu_metrics) {
    // The NVIDIA container runtime mounts the driver's NVML library (capability "utility",
    // nothing to compute with) and the device nodes into a container asking so; the device
    // plugin only does it for the container requesting nvidia.com/gpu, the app. "all":
    // which GPUs the app was given is decided after admission; the sidecar reports only
    // the pod's own processes on them. Opt-in: it lets the sidecar see every GPU of the
    // node, and clusters that refuse this variable from unprivileged containers
    // (accept-nvidia-visible-devices-envvar-when-unprivileged = false) give it nothing:
    // the sidecar then logs once that it has no GPU metrics.
    env.push_back({{"name", "NVIDIA_VISIBLE_DEVICES"}, {"value", "all"}});
    env.push_back({{"name", "NVIDIA_DRIVER_CAPABILITIES"}, {"value", "utility"}});
  }
  // An environment variable rather than an argument: a CA bundle is a kilobyte or more of
  // PEM, and the sidecar reads every flag from ZEROSCALE_<FLAG> too.
  if (!o.scaler_ca_data.empty()) {
    env.push_back({{"name", "ZEROSCALE_SCALER_CA_DATA"}, {"value", o.scaler_ca_data}});
  }
  return {
      {"name", kSidecarName},
      {"image", o.sidecar_image},
      {"imagePullPolicy", "IfNotPresent"},
      {"args", args},
      {"env", std::move(env)},
      {"volumeMounts",
       json::array({{{"name", kTokenVolume}, {"mountPath", kTokenDir}, {"readOnly", true}}})},
      {"ports",
       json::array(
           {{{"name", "zeroscale"}, {"containerPort", proxy_port}, {"protocol", "TCP"}},
            {{"name", "zeroscale-admin"}, {"containerPort", kAdminPort}, {"protocol", "TCP"}}})},
      {"resources",
       {{"requests", {{"cpu", o.cpu_request}, {"memory", o.memory_request}}},
        {"limits", {{"memory", o.memory_limit}}}}},
      {"livenessProbe",
       {{"httpGet", {{"path", "/healthz"}, {"port", "zeroscale-admin"}}},
        {"periodSeconds", 10},
        {"failureThreshold", 3}}},
      // /readyz is 200 only while the app is ready and the sidecar is not draining: a
      // sidecar told to stop makes the pod unready within two seconds, well inside its
      // drain (--drain-timeout, 5 s), so every client of the pod's Service (the
      // EndpointSlices the balancer reads, kube-proxy) stops sending before it exits.
      {"readinessProbe",
       {{"httpGet", {{"path", "/readyz"}, {"port", "zeroscale-admin"}}},
        {"periodSeconds", 1},
        {"failureThreshold", 2}}},
      {"securityContext",
       {{"runAsNonRoot", true},
        {"runAsUser", o.run_as_user},
        {"runAsGroup", o.run_as_user},
        {"readOnlyRootFilesystem", true},
        {"allowPrivilegeEscalation", false},
        {"privileged", false},
        {"capabilities", {{"drop", json::array({"ALL"})}}},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
  };
}

bool DeclaresPort(const json& container, int port) {
  const json* ports = Find(container, "ports");
  if (ports == nullptr || !ports->is_array()) return false;
  for (const json& p : *ports) {
    const json* n = Find(p, "containerPort");
    if (n != nullptr && n->is_number_integer() && n->get<int>() == port) return true;
  }
  return false;
}

// True when some container of the pod already declares `port`.
bool PortTaken(const json& containers, int port) {
  if (!containers.is_array()) return false;
  for (const json& c : containers) {
    if (DeclaresPort(c, port)) return true;
  }
  return false;
}

// The container the sidecar measures: the one `zeroscale.io/container` names, else the
// one that declares the app's port, else the first; "" when there is none.
std::string AppContainer(const json* containers, int app_port,
                         const std::optional<std::string>& named) {
  if (named) return *named;
  if (containers == nullptr || !containers->is_array() || containers->empty()) return "";
  for (const json& c : *containers) {
    if (DeclaresPort(c, app_port)) return StringAt(c, "name");
  }
  return StringAt(containers->front(), "name");
}

bool HasContainer(const json* containers, const std::string& name) {
  if (containers == nullptr || !containers->is_array()) return false;
  for (const json& c : *containers) {
    if (StringAt(c, "name") == name) return true;
  }
  return false;
}

bool IsTrue(const json* spec, const char* key) {
  const json* v = spec != nullptr ? Find(*spec, key) : nullptr;
  return v != nullptr && v->is_boolean() && v->get<bool>();
}

// The projected volume of the sidecar's token (see kTokenVolume).
json TokenVolume(const InjectorOptions& o) {
  return {{"name", kTokenVolume},
          {"projected",
           {{"sources", json::array({{{"serviceAccountToken",
                                       {{"audience", "zeroscale"},
                                        {"expirationSeconds", o.token_expiration_seconds},
                                        {"path", "token"}}}}})}}}};
}

// The JSON Patch adding `container` and its token volume to the pod, sharing the pod's
// process namespace so the sidecar sees the app's processes, and marking it injected.
std::string PatchAdding(const json& container, const json& volume, const json* spec,
                        const json* containers) {
  json patch = json::array();
  const json* volumes = spec != nullptr && spec->is_object() ? Find(*spec, "volumes") : nullptr;
  if (volumes != nullptr && volumes->is_array()) {
    patch.push_back({{"op", "add"}, {"path", "/spec/volumes/-"}, {"value", volume}});
  } else if (spec != nullptr && spec->is_object()) {
    patch.push_back({{"op", "add"}, {"path", "/spec/volumes"}, {"value", json::array({volume})}});
  }
  if (containers != nullptr && containers->is_array()) {
    patch.push_back({{"op", "add"}, {"path", "/spec/containers/-"}, {"value", container}});
  } else if (spec != nullptr && spec->is_object()) {
    patch.push_back(
        {{"op", "add"}, {"path", "/spec/containers"}, {"value", json::array({container})}});
  } else {
    patch.push_back({{"op", "add"},
                     {"path", "/spec"},
                     {"value",
                      {{"containers", json::array({container})},
                       {"volumes", json::array({volume})},
                       {"shareProcessNamespace", true}}}});
  }
  if (spec != nullptr && spec->is_object() && !IsTrue(spec, "shareProcessNamespace")) {
    patch.push_back({{"op", "add"}, {"path", "/spec/shareProcessNamespace"}, {"value", true}});
  }
  // The annotations map exists: it holds the required zeroscale.io/port.
  patch.push_back({{"op", "add"},
                   {"path", absl::StrCat("/metadata/annotations/", JsonPointerToken(kInjected))},
                   {"value", "true"}});
  return patch.dump();
}

}  // namespace

std::string DefaultSidecarImage() {
  return absl::StrCat("ghcr.io/zeroscale/zeroscale-sidecar:", ZS_VERSION);
}

std::string JsonPointerToken(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

Injection PlanInjection(const json& pod, const std::string& pod_namespace,
                        const InjectorOptions& options) {
  Injection out;
  static const json kEmpty = json::object();
  const json* metadata = Find(pod, "metadata");
  const json* annotations = metadata != nullptr ? Find(*metadata, "annotations") : nullptr;
  const json& ann = annotations != nullptr && annotations->is_object() ? *annotations : kEmpty;
  const json* spec = Find(pod, "spec");
  const json* containers = spec != nullptr ? Find(*spec, "containers") : nullptr;
  Settings settings(ann, &out);
  if (!settings.CheckTypes()) return out;

  const std::optional<std::string> inject = settings.Get(kInject);
  if (inject && *inject == "false") {
    out.skip_reason = kOptedOut;
    return out;
  }
  if (inject && *inject != "true") {
    settings.Fail(BadValue(kInject, *inject, "\"true\" or \"false\""), kInvalidAnnotation);
    return out;
  }
  if (containers != nullptr && containers->is_array()) {
    for (const json& c : *containers) {
      if (StringAt(c, "name") == kSidecarName) {
        out.skip_reason = kAlreadyInjected;
        return out;
      }
    }
  }
  if (!settings.Get(kPort)) {
    if (!inject) {
      out.skip_reason = kNotRequested;
      return out;
    }
    settings.Fail(NotInjected(absl::StrCat("annotation ", kPort, " (the app's port) is missing")),
                  kMissingPort);
    return out;
  }
  std::string ns = pod_namespace;
  if (ns.empty() && metadata != nullptr) ns = StringAt(*metadata, "namespace");
  if (ns.empty()) ns = "default";
  int app_port = 0, proxy_port = 0;
  std::string interval, disk_paths, readiness_path, workload;
  std::string metrics_path, metrics_preset, metrics_series, gpu_metrics;
  if (!settings.Port(kPort, 0, &app_port) ||
      !settings.Port(kProxyPort, kDefaultProxyPort, &proxy_port) ||
      !settings.Text(kSampleInterval, "1s", ValidInterval, "a duration of at least 100ms",
                     &interval) ||
      !settings.Text(kDiskPaths, "", ValidPathList, "a comma-separated list of absolute paths",
                     &disk_paths) ||
      !settings.Text(kReadinessPath, "", ValidHttpPath, "an HTTP path starting with /",
                     &readiness_path) ||
      !settings.Text(kWorkload, "", ValidWorkload, "<namespace>/<Kind>/<name> or <Kind>/<name>",
                     &workload) ||
      !settings.Text(kMetricsPath, "", ValidHttpPath, "an HTTP path starting with /",
                     &metrics_path) ||
      !settings.Text(kMetricsPreset, "", ValidPreset,
                     absl::StrCat("one of ", absl::StrJoin(prom::AppMetricsPresetNames(), ", ")),
                     &metrics_preset) ||
      !settings.Text(kMetricsSeries, "", ValidSeriesList,
                     absl::StrCat("a comma-separated list of at most ", kMaxAppMetrics,
                                  " Prometheus metric names"),
                     &metrics_series) ||
      !settings.Text(kGpuMetrics, "false", ValidBool, "true or false", &gpu_metrics)) {
    return out;
  }
  // A path alone forwards the endpoint's gauges; a preset or series alone scrapes /metrics.
  if (metrics_path.empty() && (!metrics_preset.empty() || !metrics_series.empty())) {
    metrics_path = kDefaultMetricsPath;
  }
  if (!metrics_preset.empty() && !metrics_series.empty() &&
      !prom::SeriesToForward(metrics_preset, metrics_series, kMaxAppMetrics).ok()) {
    settings.Fail(NotInjected(absl::StrCat("annotations ", kMetricsPreset, " and ", kMetricsSeries,
                                           " name more than ", kMaxAppMetrics, " series together")),
                  kInvalidAnnotation);
    return out;
  }
  if (proxy_port == app_port || proxy_port == kAdminPort || app_port == kAdminPort) {
    settings.Fail(
        NotInjected(absl::StrCat("the app's port ", app_port, " (", kPort, "), the proxy port ",
                                 proxy_port, " (", kProxyPort, ") and the sidecar's admin port ",
                                 kAdminPort, " must all differ")),
        kPortConflict);
    return out;
  }
  if (containers != nullptr && PortTaken(*containers, proxy_port)) {
    settings.Fail(NotInjected(absl::StrCat("a container already uses port ", proxy_port,
                                           "; choose another with ", kProxyPort)),
                  kPortConflict);
    return out;
  }
  const std::optional<std::string> named = settings.Get(kContainer);
  if (named && !HasContainer(containers, *named)) {
    settings.Fail(BadValue(kContainer, *named, "the name of one of the pod's containers"),
                  kInvalidAnnotation);
    return out;
  }
  // The sidecar measures the app through the pod's shared process namespace.
  const json* share = spec != nullptr ? Find(*spec, "shareProcessNamespace") : nullptr;
  if (share != nullptr && share->is_boolean() && !share->get<bool>()) {
    settings.Fail(NotInjected("spec.shareProcessNamespace is false, and the sidecar measures the "
                              "app's processes through the shared process namespace"),
                  kNotShared);
    return out;
  }
  if (IsTrue(spec, "hostPID")) {
    settings.Fail(NotInjected("spec.hostPID is true, which Kubernetes does not allow together "
                              "with the spec.shareProcessNamespace the sidecar needs"),
                  kHostPid);
    return out;
  }
  if (workload.empty()) {
    if (metadata != nullptr) workload = WorkloadFromOwner(*metadata, ns);
  } else if (std::count(workload.begin(), workload.end(), '/') == 1) {
    workload = absl::StrCat(ns, "/", workload);
  }
  out.workload = workload;

  std::vector<std::string> args = {
      absl::StrCat("--scaler=", options.scaler_address),
      absl::StrCat("--app-port=", app_port),
      absl::StrCat("--proxy-port=", proxy_port),
      "--pod=$(POD_NAMESPACE)/$(POD_NAME)",
      absl::StrCat("--sample-interval=", interval),
      absl::StrCat("--advertise-address=$(POD_IP):", proxy_port),
      "--measure=processes",
      absl::StrCat("--token-file=", kTokenPath),
  };
  if (!workload.empty()) {
    args.push_back(absl::StrCat("--workload=", workload));
  } else {
    out.warnings.push_back(absl::StrCat(
        "zeroscale sidecar injected without a workload: the pod has no controller owner; set "
        "the annotation ",
        kWorkload, " so its metrics drive a workload's scaling"));
  }
  if (!disk_paths.empty()) args.push_back(absl::StrCat("--disk-paths=", disk_paths));
  if (!readiness_path.empty()) args.push_back(absl::StrCat("--readiness-path=", readiness_path));
  if (!metrics_path.empty()) args.push_back(absl::StrCat("--app-metrics-path=", metrics_path));
  if (!metrics_preset.empty()) {
    args.push_back(absl::StrCat("--app-metrics-preset=", metrics_preset));
  }
  if (!metrics_series.empty()) {
    args.push_back(absl::StrCat("--app-metrics-series=", metrics_series));
  }

  out.patch = PatchAdding(
      SidecarContainer(options, args, proxy_port, AppContainer(containers, app_port, named),
                       gpu_metrics == "true"),
      TokenVolume(options), spec, containers);
  out.inject = true;
  return out;
}

}  // namespace zeroscale::webhook
