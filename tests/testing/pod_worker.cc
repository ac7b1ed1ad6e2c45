#include "tests/testing/pod_worker.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status/status_macros.h"
#include "tests/testing/json_fields.h"
#include "tests/testing/probe.h"

namespace zeroscale::testing {
namespace {

constexpr absl::Duration kTick = absl::Milliseconds(50);
constexpr absl::Duration kRetry = absl::Seconds(1);

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

void MkdirAll(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') ::mkdir(path.substr(0, i).c_str(), 0755);
  }
}

// Written to a temporary name and renamed, so a reader (a container re-reading its
// token) never sees half a file, as the kubelet's atomic writer ensures.
absl::Status WriteAtomically(const std::string& path, absl::string_view content, int mode) {
  MkdirAll(path.substr(0, path.rfind('/')));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    out << content;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  ::chmod(tmp.c_str(), mode);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename to ", path));
  }
  return absl::OkStatus();
}

int ModeOf(const json& j, const char* key, int def) {
  const json& m = JsonAt(j, key);
  return m.is_number_integer() ? m.get<int>() : def;
}

// {"waiting": null, "running": {...}, "terminated": null}: a strategic merge patch
// replaces the state only when the other two are cleared explicitly.
json State(const char* kind, json body) {
  json state = {{"waiting", nullptr}, {"running", nullptr}, {"terminated", nullptr}};
  state[kind] = std::move(body);
  return state;
}

}  // namespace

PodWorker::PodWorker(const NodeContext* node, json pod, std::string dir)
    : node_(node), dir_(std::move(dir)), pod_(std::move(pod)) {
  uid_ = UidOf(pod_);
  name_ = NameOf(pod_);
  ns_ = JsonStr(JsonAt(pod_, "metadata"), "namespace");
  MkdirAll(dir_ + "/logs");
  thread_ = std::thread([this] { Run(); });
}

PodWorker::~PodWorker() {
  Kill();
  if (thread_.joinable()) thread_.join();
}

void PodWorker::Update(json pod) {
  std::lock_guard<std::mutex> lock(mu_);
  pod_ = std::move(pod);
  changed_ = true;
  cv_.notify_all();
}

void PodWorker::Remove() {
  std::lock_guard<std::mutex> lock(mu_);
  removed_ = true;
  cv_.notify_all();
}

void PodWorker::Kill() {
  std::lock_guard<std::mutex> lock(mu_);
  killed_ = true;
  cv_.notify_all();
}

json PodWorker::Pod() {
  std::lock_guard<std::mutex> lock(mu_);
  return pod_;
}

bool PodWorker::Wait(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoNanoseconds(d), [&] { return changed_ || removed_ || killed_; });
  changed_ = false;
  return removed_ || killed_;
}

void PodWorker::Log(const std::string& line) {
  std::ofstream out(dir_ + "/kubelet.log", std::ios::app);
  out << absl::FormatTime("%H:%M:%E3S ", absl::Now(), absl::LocalTimeZone()) << line << "\n";
}

void PodWorker::Run() {
  start_time_ = absl::Now();
  Log(absl::StrCat("pod ", ns_, "/", name_, " uid ", uid_, " bound to ", node_->node_name));
  {
    const json pod = Pod();
    const json& spec = JsonAt(pod, "spec");
    for (const char* list : {"initContainers", "containers"}) {
      if (!JsonAt(spec, list).is_array()) continue;
      for (const json& c : spec[list]) {
        Container container;
        container.spec = c;
        container.name = JsonStr(c, "name");
        container.init = std::string(list) == "initContainers";
        container.backoff = node_->restart_backoff;
        containers_.push_back(std::move(container));
      }
    }
  }
  while (true) {
    bool stop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop = removed_ || killed_;
    }
    if (stop) break;
    if (JsonAt(JsonAt(Pod(), "metadata"), "deletionTimestamp").is_string()) {
      Terminate();
      break;
    }
    Step();
    Report();
    if (Wait(kTick)) continue;
  }
  TearDown();
  done_ = true;
}

void PodWorker::Step() {
  const absl::Time now = absl::Now();
  if (phase_ == "Succeeded" || phase_ == "Failed") return;
  if (!sandbox_) {
    if (now < next_sandbox_try_ || !SetUpSandbox()) return;
  }
  if (!volumes_ready_) {
    if (now < next_volume_try_) return;
    absl::Status s = PrepareVolumes();
    if (!s.ok()) {
      if (volume_error_ != s.message()) Log(absl::StrCat("volumes: ", s.message()));
      volume_error_ = std::string(s.message());
      next_volume_try_ = now + kRetry;
      return;
    }
    volumes_ready_ = true;
    Log("volumes ready");
  }
  RefreshTokens();
  SyncContainers();
}

bool PodWorker::SetUpSandbox() {
  if (ip_.empty()) ip_ = node_->allocate_ip();
  SandboxOptions o;
  o.shim = node_->shim;
  o.pause = node_->pause;
  o.hostname = name_.substr(0, 63);
  o.ip = ip_;
  o.host_ip = node_->host_ip;
  o.veth_name = node_->allocate_veth_name();
  o.log_path = dir_ + "/sandbox.log";
  absl::StatusOr<std::unique_ptr<PodSandbox>> sandbox = PodSandbox::Create(o);
  if (!sandbox.ok()) {
    Log(absl::StrCat("sandbox failed: ", sandbox.status().message()));
    next_sandbox_try_ = absl::Now() + kRetry;
    return false;
  }
  sandbox_ = *std::move(sandbox);
  Log(absl::StrCat("sandbox up: pause pid ", sandbox_->pause_pid(), ", IP ", ip_, " via ",
                   o.veth_name));
  return true;
}

PodContext PodWorker::Context(const json& pod) const {
  PodContext ctx;
  ctx.pod = &pod;
  ctx.pod_ip = ip_;
  ctx.host_ip = node_->host_ip;
  ctx.node_name = node_->node_name;
  ctx.node_allocatable = node_->allocatable;
  return ctx;
}

absl::StatusOr<std::map<std::string, std::string>> PodWorker::DataOf(const std::string& kind,
                                                                     const std::string& name) {
  ZS_ASSIGN_OR_RETURN(json object, node_->api->Get({"v1", kind, ns_, name}));
  std::map<std::string, std::string> out;
  for (const char* field : {"data", "binaryData"}) {
    const json& data = JsonAt(object, field);
    if (!data.is_object()) continue;
    for (const auto& [k, v] : data.items()) {
      std::string value = v.is_string() ? v.get<std::string>() : "";
      if (kind == "Secret" || std::string(field) == "binaryData") {
        std::string decoded;
        absl::Base64Unescape(value, &decoded);
        value = decoded;
      }
      out[k] = value;
    }
  }
  return out;
}

absl::Status PodWorker::PrepareVolumes() {
  tokens_.clear();
  const json pod = Pod();
  const json& volumes = JsonAt(JsonAt(pod, "spec"), "volumes");
  if (!volumes.is_array()) return absl::OkStatus();
  for (const json& v : volumes) {
    const std::string dir = absl::StrCat(dir_, "/volumes/", JsonStr(v, "name"));
    MkdirAll(dir);
    ZS_RETURN_IF_ERROR(WriteVolume(v, dir));
  }
  for (const Token& t : tokens_) ZS_RETURN_IF_ERROR(WriteToken(t));
  return absl::OkStatus();
}

// Items of a ConfigMap/Secret source: `items` when given (key -> path), else every key.
absl::Status PodWorker::WriteProjection(const json& source, const std::string& dir, int mode) {
  if (source.contains("serviceAccountToken")) {
    const json& t = source["serviceAccountToken"];
    Token token;
    token.file = absl::StrCat(dir, "/", JsonStr(t, "path"));
    token.audience = JsonStr(t, "audience");
    if (JsonAt(t, "expirationSeconds").is_number_integer()) {
      token.expiration_seconds = t["expirationSeconds"].get<int64_t>();
    }
    tokens_.push_back(token);
    return absl::OkStatus();
  }
  if (source.contains("downwardAPI")) {
    const json pod = Pod();
    const PodContext ctx = Context(pod);
    for (const json& item : JsonAt(source["downwardAPI"], "items")) {
      absl::StatusOr<std::string> value =
          item.contains("fieldRef")
              ? FieldRefValue(ctx, JsonStr(item["fieldRef"], "fieldPath"))
              : ResourceFieldRefValue(ctx, "", JsonAt(item, "resourceFieldRef"));
      if (!value.ok()) return value.status();
      ZS_RETURN_IF_ERROR(WriteAtomically(absl::StrCat(dir, "/", JsonStr(item, "path")), *value,
                                         ModeOf(item, "mode", mode)));
    }
    return absl::OkStatus();
  }
  const bool secret = source.contains("secret");
  if (!secret && !source.contains("configMap")) {
    return absl::UnimplementedError(
        absl::StrCat("projected source ", source.dump(), " is not supported"));
  }
  const json& ref = secret ? source["secret"] : source["configMap"];
  const std::string name =
      secret && ref.contains("secretName") ? JsonStr(ref, "secretName") : JsonStr(ref, "name");
  absl::StatusOr<std::map<std::string, std::string>> data =
      DataOf(secret ? "Secret" : "ConfigMap", name);
  if (!data.ok()) {
    if (absl::IsNotFound(data.status()) && JsonAt(ref, "optional").is_boolean() &&
        ref["optional"].get<bool>()) {
      return absl::OkStatus();
    }
    return absl::Status(data.status().code(), absl::StrCat(secret ? "Secret " : "ConfigMap ", name,
                                                           ": ", data.status().message()));
  }
  const int item_mode = ModeOf(ref, "defaultMode", mode);
  if (JsonAt(ref, "items").is_array()) {
    for (const json& item : ref["items"]) {
      auto it = data->find(JsonStr(item, "key"));
      if (it == data->end()) {
        return absl::NotFoundError(absl::StrCat(name, " has no key ", JsonStr(item, "key")));
      }
      ZS_RETURN_IF_ERROR(WriteAtomically(absl::StrCat(dir, "/", JsonStr(item, "path")), it->second,
                                         ModeOf(item, "mode", item_mode)));
    }
  } else {
    for (const auto& [k, v] : *data) {
      ZS_RETURN_IF_ERROR(WriteAtomically(absl::StrCat(dir, "/", k), v, item_mode));
    }
  }
  return absl::OkStatus();
}

absl::Status PodWorker::WriteVolume(const json& v, const std::string& dir) {
  if (v.contains("emptyDir")) return absl::OkStatus();
  if (v.contains("hostPath")) {
    if (JsonStr(v["hostPath"], "type") == "DirectoryOrCreate")
      MkdirAll(JsonStr(v["hostPath"], "path"));
    return absl::OkStatus();
  }
  const int mode = 0644;
  if (v.contains("configMap") || v.contains("secret")) return WriteProjection(v, dir, mode);
  if (v.contains("downwardAPI"))
    return WriteProjection(v, dir, ModeOf(v["downwardAPI"], "defaultMode", mode));
  if (v.contains("projected")) {
    const int projected_mode = ModeOf(v["projected"], "defaultMode", mode);
    for (const json& source : JsonAt(v["projected"], "sources")) {
      ZS_RETURN_IF_ERROR(WriteProjection(source, dir, projected_mode));
    }
    return absl::OkStatus();
  }
  return absl::UnimplementedError(absl::StrCat(
      "volume ", JsonStr(v, "name"), ": its type is not supported by the kubelet stand-in"));
}

absl::Status PodWorker::WriteToken(const Token& token) {
  const json pod = Pod();
  std::string sa = JsonStr(JsonAt(pod, "spec"), "serviceAccountName");
  if (sa.empty()) sa = "default";
  std::vector<std::string> audiences;
  if (!token.audience.empty()) audiences.push_back(token.audience);
  ZS_ASSIGN_OR_RETURN(
      std::string jwt,
      node_->api->CreateToken(ns_, sa, audiences, absl::Seconds(token.expiration_seconds), pod));
  ZS_RETURN_IF_ERROR(WriteAtomically(token.file, jwt, 0644));
  // The kubelet refreshes at 80% of the lifetime.
  for (Token& t : tokens_) {
    if (t.file == token.file) {
      t.refresh_at = absl::Now() + absl::Seconds(token.expiration_seconds) * 0.8;
    }
  }
  Log(absl::StrCat("token for ", sa, " (audience ",
                   token.audience.empty() ? "the API server's" : token.audience, ") at ",
                   token.file));
  return absl::OkStatus();
}

void PodWorker::RefreshTokens() {
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (now < tokens_[i].refresh_at) continue;
    const Token t = tokens_[i];
    if (absl::Status s = WriteToken(t); !s.ok()) {
      Log(absl::StrCat("token refresh failed: ", s.message()));
      tokens_[i].refresh_at = now + kRetry;
    }
  }
}

void PodWorker::SyncContainers() {
  const std::string policy = [&] {
    const std::string p = JsonStr(JsonAt(Pod(), "spec"), "restartPolicy");
    return p.empty() ? std::string("Always") : p;
  }();
  // Init containers in order: each must succeed before the next one, and all before the
  // app containers.
  for (Container& c : containers_) {
    if (!c.init) continue;
    if (c.process) ReapContainer(c);
    if (c.finished) {
      if (JsonAt(c.terminated, "exitCode").get<int>() == 0) continue;
      if (policy == "Never") {
        phase_ = "Failed";
        return;
      }
      c.finished = false;  // retried with backoff
    }
    if (!c.process && absl::Now() >= c.next_start) StartContainer(c);
    return;
  }
  bool all_finished = true;
  bool all_succeeded = true;
  for (Container& c : containers_) {
    if (c.init) continue;
    if (c.process) ReapContainer(c);
    if (c.process) {
      RunProbes(c);
      if (absl::Now() >= c.kill_deadline) c.process->Kill();
    } else if (c.finished) {
      const int code = JsonAt(c.terminated, "exitCode").get<int>();
      const bool restart = policy == "Always" || (policy == "OnFailure" && code != 0);
      if (restart) {
        c.finished = false;
      } else {
        all_succeeded = all_succeeded && code == 0;
        continue;
      }
    }
    all_finished = false;
    if (!c.process && absl::Now() >= c.next_start) StartContainer(c);
  }
  if (all_finished) {
    phase_ = all_succeeded ? "Succeeded" : "Failed";
    Log(absl::StrCat("every container has finished: ", phase_));
    if (sandbox_) sandbox_->Destroy();
  }
}

void PodWorker::StartContainer(Container& c) {
  const json pod = Pod();
  const std::string image_name = JsonStr(c.spec, "image");
  const std::optional<ContainerImage> image = node_->find_image(image_name);
  if (!image) {
    c.waiting_reason = c.waiting_reason == "ErrImagePull" ? "ImagePullBackOff" : "ErrImagePull";
    c.waiting_message =
        absl::StrCat("image \"", image_name, "\" is not in the kubelet stand-in's image table");
    c.next_start = absl::Now() + kRetry;
    return;
  }
  auto config_error = [&](const absl::Status& s) {
    c.waiting_reason = "CreateContainerConfigError";
    c.waiting_message = std::string(s.message());
    c.next_start = absl::Now() + kRetry;
    Log(absl::StrCat("container ", c.name, ": ", s.message()));
  };
  EnvList base = image->env;
  bool has_path = false;
  for (const auto& [k, v] : base) has_path = has_path || k == "PATH";
  if (!has_path)
    base.emplace_back("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  base.emplace_back("HOSTNAME", name_.substr(0, 63));
  base.emplace_back("HOME", "/root");
  base.insert(base.end(), node_->service_env.begin(), node_->service_env.end());
  PodContext ctx = Context(pod);
  ctx.lookup_data = [this](const std::string& kind, const std::string& name) {
    return DataOf(kind, name);
  };
  absl::StatusOr<EnvList> env = ContainerEnv(ctx, c.spec, base);
  if (!env.ok()) return config_error(env.status());
  absl::StatusOr<std::vector<std::string>> argv = ContainerCommand(c.spec, *image, *env);
  if (!argv.ok()) return config_error(argv.status());

  ContainerStart start;
  start.shim = node_->shim;
  start.sandbox_pid = sandbox_->pause_pid();
  const json& share = JsonAt(JsonAt(pod, "spec"), "shareProcessNamespace");
  start.own_pid_namespace = !(share.is_boolean() && share.get<bool>());
  const json& volumes = JsonAt(JsonAt(pod, "spec"), "volumes");
  for (const json& m : JsonAt(c.spec, "volumeMounts")) {
    ContainerStart::Mount mount;
    mount.target = JsonStr(m, "mountPath");
    mount.read_only = JsonAt(m, "readOnly").is_boolean() && m["readOnly"].get<bool>();
    mount.source = absl::StrCat(dir_, "/volumes/", JsonStr(m, "name"));
    for (const json& v : volumes) {
      if (JsonStr(v, "name") != JsonStr(m, "name")) continue;
      if (v.contains("hostPath")) mount.source = JsonStr(v["hostPath"], "path");
      // Kubernetes mounts these read-only whatever the mount says.
      if (v.contains("configMap") || v.contains("secret") || v.contains("downwardAPI") ||
          v.contains("projected")) {
        mount.read_only = true;
      }
    }
    if (!JsonStr(m, "subPath").empty()) absl::StrAppend(&mount.source, "/", JsonStr(m, "subPath"));
    start.mounts.push_back(mount);
  }
  start.working_dir =
      JsonStr(c.spec, "workingDir").empty() ? image->working_dir : JsonStr(c.spec, "workingDir");
  start.argv = *argv;
  start.env = *env;
  start.log_path = absl::StrCat(dir_, "/logs/", c.name, ".log");
  absl::StatusOr<std::unique_ptr<ContainerProcess>> process = ContainerProcess::Start(start);
  if (!process.ok()) {
    c.waiting_reason = "RunContainerError";
    c.waiting_message = std::string(process.status().message());
    c.next_start = absl::Now() + kRetry;
    return;
  }
  c.process = *std::move(process);
  c.env = *env;
  c.started_at = absl::Now();
  if (c.runs > 0) ++c.restarts;
  ++c.runs;
  c.terminated = nullptr;
  c.waiting_reason.clear();
  c.ready = false;
  c.kill_deadline = absl::InfiniteFuture();
  auto probe = [&](const char* key) {
    Probe p;
    p.handler = JsonAt(c.spec, key);
    const ProbeTiming t = TimingOf(p.handler);
    p.initial_delay = t.initial_delay;
    p.period = t.period;
    p.timeout = t.timeout;
    p.success_threshold = t.success_threshold;
    p.failure_threshold = t.failure_threshold;
    p.next = c.started_at + t.initial_delay;
    return p;
  };
  c.readiness = probe("readinessProbe");
  c.liveness = probe("livenessProbe");
  c.startup = probe("startupProbe");
  c.started = c.startup.handler.is_null();
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_[c.name] = {c.process->shim_pid(), c.env};
  }
  Log(absl::StrCat("started container ", c.name, " (run ", c.runs, ", shim pid ",
                   c.process->shim_pid(), "): ", absl::StrJoin(*argv, " ")));
}

void PodWorker::ReapContainer(Container& c) {
  const std::optional<int> code = c.process->Poll();
  if (!code) return;
  const absl::Time now = absl::Now();
  Log(absl::StrCat("container ", c.name, " exited with ", *code));
  c.terminated = {{"exitCode", *code},
                  {"reason", *code == 0 ? "Completed" : "Error"},
                  {"startedAt", Rfc3339(c.started_at)},
                  {"finishedAt", Rfc3339(now)}};
  if (*code >= 128) c.terminated["signal"] = *code - 128;
  c.last_terminated = c.terminated;
  c.process.reset();
  c.ready = false;
  c.finished = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.erase(c.name);
  }
  // Restart backoff: doubled for each quick exit, back to the first delay after a run
  // longer than twice the maximum.
  if (now - c.started_at > 2 * node_->max_restart_backoff) c.backoff = node_->restart_backoff;
  c.next_start = now + c.backoff;
  c.backoff = std::min(c.backoff * 2, node_->max_restart_backoff);
  c.waiting_reason = "CrashLoopBackOff";
  c.waiting_message = absl::StrCat("back-off restarting failed container ", c.name);
}

bool PodWorker::RunProbe(Container& c, Probe& p, const char* kind) {
  const absl::Time now = absl::Now();
  if (p.handler.is_null() || now < p.next) return false;
  p.next = now + p.period;
  ProbeTarget target;
  target.pod_ip = ip_;
  target.container = &c.spec;
  const pid_t shim = c.process->shim_pid();
  const EnvList env = c.env;
  const std::string shim_path = node_->shim;
  target.exec = [&](const std::vector<std::string>& argv, absl::Duration timeout) {
    return ExecInContainer(shim_path, shim, argv, env, timeout).exit_code;
  };
  const ProbeOutcome out = RunHandler(p.handler, target, p.timeout);
  if (out.success) {
    p.failures = 0;
    ++p.successes;
  } else {
    p.successes = 0;
    ++p.failures;
    if (p.failures == p.failure_threshold) {
      Log(absl::StrCat(kind, " probe of ", c.name, " failed ", p.failures,
                       " times: ", out.message));
    }
  }
  return true;
}

void PodWorker::RunProbes(Container& c) {
  if (!c.started) {
    if (RunProbe(c, c.startup, "startup")) {
      if (c.startup.successes >= 1) {
        c.started = true;
        c.readiness.next = c.liveness.next = absl::Now();
      } else if (c.startup.failures >= c.startup.failure_threshold) {
        c.process->Signal(SIGTERM);
        c.kill_deadline = absl::Now() + absl::Seconds(2);
      }
    }
    return;
  }
  if (c.readiness.handler.is_null()) {
    c.ready = true;
  } else if (RunProbe(c, c.readiness, "readiness")) {
    if (c.readiness.successes >= c.readiness.success_threshold) c.ready = true;
    if (c.readiness.failures >= c.readiness.failure_threshold) c.ready = false;
  }
  if (RunProbe(c, c.liveness, "liveness") && c.liveness.failures == c.liveness.failure_threshold &&
      c.kill_deadline == absl::InfiniteFuture()) {
    Log(absl::StrCat("container ", c.name, " failed its liveness probe: restarting it"));
    c.process->Signal(SIGTERM);
    const json& grace = JsonAt(JsonAt(Pod(), "spec"), "terminationGracePeriodSeconds");
    c.kill_deadline =
        absl::Now() + absl::Seconds(grace.is_number_integer() ? grace.get<int>() : 30);
  }
}

void PodWorker::Terminate() {
  json pod = Pod();
  auto grace_of = [](const json& p) {
    const json& g = JsonAt(JsonAt(p, "metadata"), "deletionGracePeriodSeconds");
    return absl::Seconds(g.is_number_integer() ? g.get<int64_t>() : 30);
  };
  absl::Duration grace = grace_of(pod);
  absl::Time deadline = absl::Now() + grace;
  Log(absl::StrCat("terminating: grace period ", absl::FormatDuration(grace)));
  for (Container& c : containers_) {
    if (!c.process) continue;
    const json& pre_stop = JsonAt(JsonAt(c.spec, "lifecycle"), "preStop");
    if (pre_stop.is_null()) continue;
    ProbeTarget target;
    target.pod_ip = ip_;
    target.container = &c.spec;
    const pid_t shim = c.process->shim_pid();
    target.exec = [&](const std::vector<std::string>& argv, absl::Duration timeout) {
      return ExecInContainer(node_->shim, shim, argv, c.env, timeout).exit_code;
    };
    const ProbeOutcome out =
        RunHandler(pre_stop, target, std::max(deadline - absl::Now(), absl::Seconds(1)));
    Log(absl::StrCat("preStop of ", c.name, out.success ? " done" : ": " + out.message));
  }
  for (Container& c : containers_) {
    if (!c.process) continue;
    c.process->Signal(SIGTERM);
    Log(absl::StrCat("SIGTERM to ", c.name));
  }
  bool killed_now = false;
  while (true) {
    bool running = false;
    for (Container& c : containers_) {
      if (c.process) ReapContainer(c);
      running = running || c.process != nullptr;
    }
    for (Container& c : containers_) c.finished = true;  // nothing restarts now
    Report();
    if (!running) break;
    // A second delete may shorten the grace period.
    const json newer = Pod();
    if (grace_of(newer) < grace) {
      grace = grace_of(newer);
      deadline = std::min(deadline, absl::Now() + grace);
    }
    if (absl::Now() >= deadline || killed_now) {
      for (Container& c : containers_) {
        if (!c.process) continue;
        Log(absl::StrCat("SIGKILL to ", c.name, " after the grace period"));
        c.process->Kill();
      }
      killed_now = true;
    }
    if (Wait(kTick)) killed_now = true;
  }
  TearDown();
  bool removed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    removed = removed_ || killed_;
  }
  if (removed) return;
  DeleteOptions options;
  options.grace_period_seconds = 0;
  options.uid_precondition = uid_;
  absl::Status s = node_->api->Delete(PodRef(ns_, name_), options);
  Log(absl::StrCat("deleted from the API: ", s.ok() ? "OK" : s.ToString()));
}

void PodWorker::TearDown() {
  for (Container& c : containers_) {
    if (c.process) {
      c.process->Kill();
      ReapContainer(c);
    }
  }
  if (sandbox_) {
    sandbox_->Destroy();
    sandbox_.reset();
    Log("sandbox torn down");
  }
}

json PodWorker::ContainerStatus(const Container& c) const {
  json s = {{"name", c.name},
            {"image", JsonStr(c.spec, "image")},
            {"imageID", absl::StrCat("zeroscale-test://", JsonStr(c.spec, "image"))},
            {"restartCount", c.restarts},
            {"ready", c.process != nullptr && c.ready},
            {"started", c.process != nullptr && c.started}};
  if (c.process) {
    s["state"] = State("running", {{"startedAt", Rfc3339(c.started_at)}});
    s["containerID"] = absl::StrCat("zeroscale-test://", c.process->shim_pid());
  } else if (c.finished && !c.terminated.is_null()) {
    s["state"] = State("terminated", c.terminated);
  } else {
    json waiting = {{"reason", c.waiting_reason.empty() ? "ContainerCreating" : c.waiting_reason}};
    if (!c.waiting_message.empty()) waiting["message"] = c.waiting_message;
    s["state"] = State("waiting", waiting);
  }
  if (!c.last_terminated.is_null() && !(c.finished && !c.terminated.is_null())) {
    s["lastState"] = State("terminated", c.last_terminated);
  }
  return s;
}

json PodWorker::StatusJson() {
  const json pod = Pod();
  json init_statuses = json::array();
  json statuses = json::array();
  bool initialized = true;
  bool all_ready = true;
  bool all_ran = true;
  for (const Container& c : containers_) {
    if (c.init) {
      init_statuses.push_back(ContainerStatus(c));
      initialized = initialized && c.finished && JsonAt(c.terminated, "exitCode") == 0;
    } else {
      statuses.push_back(ContainerStatus(c));
      all_ready = all_ready && c.process != nullptr && c.ready;
      all_ran = all_ran && c.runs > 0;
    }
  }
  if (phase_ == "Pending" && initialized && all_ran && sandbox_) phase_ = "Running";
  const absl::Time now = absl::Now();
  auto condition = [&](const std::string& type, bool value) {
    const std::string status = value ? "True" : "False";
    auto it = conditions_.find(type);
    if (it == conditions_.end() || it->second.first != status) conditions_[type] = {status, now};
    return json{{"type", type},
                {"status", status},
                {"lastProbeTime", nullptr},
                {"lastTransitionTime", Rfc3339(conditions_[type].second)}};
  };
  json conditions =
      json::array({condition("Initialized", initialized), condition("ContainersReady", all_ready),
                   condition("Ready", all_ready), condition("PodScheduled", true)});
  json status = {{"phase", phase_},
                 {"hostIP", node_->host_ip},
                 {"startTime", Rfc3339(start_time_)},
                 {"conditions", conditions},
                 {"containerStatuses", statuses}};
  if (!init_statuses.empty()) status["initContainerStatuses"] = init_statuses;
  if (sandbox_ || phase_ != "Pending") {
    status["podIP"] = ip_;
    status["podIPs"] = json::array({{{"ip", ip_}}});
  }
  return status;
}

void PodWorker::Report() {
  json status = StatusJson();
  const std::string text = status.dump();
  if (text == last_report_) return;
  absl::StatusOr<json> out = node_->api->Patch(PodRef(ns_, name_), {{"status", status}},
                                               PatchType::kStrategicMerge, "status");
  if (!out.ok()) {
    Log(absl::StrCat("status update failed: ", out.status().ToString()));
    return;
  }
  last_report_ = text;
}

CommandResult PodWorker::Exec(const std::string& container, const std::vector<std::string>& argv,
                              absl::Duration timeout) {
  pid_t shim;
  EnvList env;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(container);
    if (it == running_.end()) return {-1, absl::StrCat("container ", container, " is not running")};
    shim = it->second.first;
    env = it->second.second;
  }
  return ExecInContainer(node_->shim, shim, argv, env, timeout);
}

absl::Status PodWorker::Signal(const std::string& container, int sig) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(container);
  if (it == running_.end()) {
    return absl::NotFoundError(absl::StrCat("container ", container, " is not running"));
  }
  ::kill(it->second.first, sig);
  return absl::OkStatus();
}

}  // namespace zeroscale::testing
