#include "tests/kube/zeroscale_release.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/status/status_macros.h"
#include "tests/testing/command.h"
#include "tests/testing/json_fields.h"
#include "tests/testing/kube_api.h"

namespace zeroscale::testing {
namespace {

constexpr char kChart[] = ZS_SOURCE_DIR "/charts/zeroscale";
constexpr char kLeaseName[] = "zeroscale-scaler";
// Where the chart mounts the webhook's Secret in the scaler.
constexpr char kWebhookMount[] = "/etc/zeroscale/tls/";

std::string Hostname() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

// The port of a "--flag=HOST:PORT" argument.
std::string PortOf(const std::string& arg) { return arg.substr(arg.rfind(':') + 1); }

bool StartsWithFlag(const std::string& arg, const char* flag) {
  return absl::StartsWith(arg, absl::StrCat(flag, "="));
}

// Whether something accepts TCP connections on address:port now.
bool Accepts(const std::string& address, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
  ::close(fd);
  return ok;
}

absl::Status WaitForAccept(const std::string& address, int port, absl::Duration timeout) {
  if (WaitFor([&] { return Accepts(address, port); }, timeout)) return absl::OkStatus();
  return absl::DeadlineExceededError(absl::StrCat("nothing accepts connections on ", address, ":",
                                                  port, " after ", absl::FormatDuration(timeout)));
}

absl::Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace

std::string ZeroscaleRelease::ServiceAccountUser(const std::string& component) const {
  return absl::StrCat("system:serviceaccount:", options_.ns, ":", options_.release, "-zeroscale-",
                      component);
}

std::string ZeroscaleRelease::ScalerIdentity(int i) const {
  return absl::StrCat(Hostname(), "-", scalers_[i]->pid());
}

absl::StatusOr<std::unique_ptr<ZeroscaleRelease>> ZeroscaleRelease::Start(KubeControlPlane* cluster,
                                                                          ReleaseOptions options) {
  std::unique_ptr<ZeroscaleRelease> r(new ZeroscaleRelease(cluster, std::move(options)));
  ZS_RETURN_IF_ERROR(r->Install());
  return r;
}

ZeroscaleRelease::~ZeroscaleRelease() {
  if (balancer_) balancer_->Kill();
  for (auto& s : scalers_) {
    if (s) s->Kill();
  }
}

absl::StatusOr<std::vector<std::string>> ZeroscaleRelease::RenderedArgs(
    const std::string& deployment) {
  ZS_ASSIGN_OR_RETURN(json d, cluster_->admin().Get(DeploymentRef(options_.ns, deployment)));
  const json& containers = d["spec"]["template"]["spec"]["containers"];
  if (!containers.is_array() || containers.empty() || !containers[0]["args"].is_array()) {
    return absl::InternalError(absl::StrCat("Deployment ", deployment, " has no container args"));
  }
  return containers[0]["args"].get<std::vector<std::string>>();
}

absl::Status ZeroscaleRelease::Install() {
  dir_ = absl::StrCat(cluster_->work_dir(), "/release-", options_.release);
  std::filesystem::create_directories(dir_ + "/webhook");
  // Addresses of their own for the programs, as pods have.
  for (const char* address : {kScalerAddress[0], kScalerAddress[1], kBalancerAddress}) {
    CommandResult r =
        RunCommand({"ip", "addr", "replace", absl::StrCat(address, "/32"), "dev", "lo"});
    if (!r.ok()) return absl::InternalError(absl::StrCat("ip addr add ", address, ": ", r.output));
  }
  ZS_RETURN_IF_ERROR(redis_.Start());

  const std::string& ns = options_.ns;
  const std::string full = absl::StrCat(options_.release, "-zeroscale");
  std::vector<std::string> args = {"install", options_.release,    kChart, "--namespace",
                                   ns,        "--create-namespace"};
  std::vector<std::string> values = {
      // Their pod templates run here as processes (see the header).
      "scaler.replicas=0",
      "balancer.replicas=0",
      // Plain gRPC and admin ports: the processes here are reached by pod addresses, not
      // by the Service names the chart's certificates are issued for (no DNS in these
      // tests). TLS with the chart's certificates: kube_chart_tls_test, e2e_tls_test.
      "tls.enabled=false",
      "redis.enabled=false",
      absl::StrCat("redis.externalAddress=", redis_.address()),
      "scaler.leaderElection.leaseDuration=" + options_.lease_duration,
      "scaler.leaderElection.renewDeadline=" + options_.renew_deadline,
      "scaler.leaderElection.retryPeriod=" + options_.retry_period};
  values.insert(values.end(), options_.values.begin(), options_.values.end());
  for (const std::string& v : values) {
    args.push_back("--set");
    args.push_back(v);
  }
  CommandResult installed = cluster_->Helm(args);
  if (!installed.ok()) return absl::InternalError("helm install: " + installed.output);

  KubeApi& api = cluster_->admin();
  // The webhook's serving certificate, where the chart mounts it.
  ZS_ASSIGN_OR_RETURN(json secret, api.Get({"v1", "Secret", ns, full + "-webhook-tls"}));
  for (const char* key : {"tls.crt", "tls.key"}) {
    std::string decoded;
    if (!absl::Base64Unescape(JsonStr(secret["data"], key), &decoded)) {
      return absl::InternalError(absl::StrCat("webhook Secret: ", key, " is not base64"));
    }
    ZS_RETURN_IF_ERROR(WriteFile(absl::StrCat(dir_, "/webhook/", key), decoded));
  }
  ZS_ASSIGN_OR_RETURN(
      std::string scaler_kubeconfig,
      cluster_->WriteServiceAccountKubeconfig(ns, full + "-scaler", dir_ + "/scaler.kubeconfig"));
  ZS_ASSIGN_OR_RETURN(std::string balancer_kubeconfig,
                      cluster_->WriteServiceAccountKubeconfig(ns, full + "-balancer",
                                                              dir_ + "/balancer.kubeconfig"));

  // The scaler's Service: endpoints are the scaler processes (see SetScalerEndpoints).
  ZS_RETURN_IF_ERROR(api.Patch({"v1", "Service", ns, full + "-scaler"},
                               json::parse(R"({"spec":{"selector":null}})"))
                         .status());

  ZS_ASSIGN_OR_RETURN(std::vector<std::string> scaler_args, RenderedArgs(full + "-scaler"));
  for (int i = 0; i < 2; ++i) {
    const std::string ip = kScalerAddress[i];
    std::vector<std::string> argv = {ZS_SCALER_BIN};
    for (std::string a : scaler_args) {
      if (StartsWithFlag(a, "--grpc-listen") || StartsWithFlag(a, "--http-listen") ||
          StartsWithFlag(a, "--webhook-listen")) {
        a = absl::StrCat(a.substr(0, a.find('=') + 1), ip, ":", PortOf(a));
      } else if (StartsWithFlag(a, "--sidecar-scaler-address")) {
        a = absl::StrCat("--sidecar-scaler-address=", kScalerAddress[1], ":", PortOf(a));
      }
      a = absl::StrReplaceAll(a, {{"$(POD_IP)", ip}, {kWebhookMount, dir_ + "/webhook/"}});
      argv.push_back(a);
    }
    argv.push_back("--kubeconfig=" + scaler_kubeconfig);
    scalers_[i] = std::make_unique<ChildProcess>(argv, absl::StrCat(dir_, "/scaler-", i, ".log"));
  }
  ZS_RETURN_IF_ERROR(scalers_[0]->Start());
  scaler_up_[0] = true;
  ZS_RETURN_IF_ERROR(WaitForLeader(0, absl::Seconds(30)));
  ZS_RETURN_IF_ERROR(scalers_[1]->Start());
  scaler_up_[1] = true;
  for (int i = 0; i < 2; ++i) {
    ZS_RETURN_IF_ERROR(WaitForAccept(kScalerAddress[i], 8443, absl::Seconds(30)));
    ZS_RETURN_IF_ERROR(WaitForAccept(kScalerAddress[i], 9090, absl::Seconds(30)));
  }
  ZS_RETURN_IF_ERROR(SetScalerEndpoints());

  ZS_ASSIGN_OR_RETURN(std::vector<std::string> balancer_args, RenderedArgs(full + "-balancer"));
  // The balancer's identity toward the scaler, as the chart projects it into its pod: a
  // token of its ServiceAccount for audience "zeroscale".
  ZS_ASSIGN_OR_RETURN(std::string balancer_token,
                      api.CreateToken(ns, full + "-balancer", {"zeroscale"}));
  ZS_RETURN_IF_ERROR(WriteFile(dir_ + "/balancer.token", balancer_token));
  std::vector<std::string> argv = {ZS_BALANCER_BIN};
  for (std::string a : balancer_args) {
    if (StartsWithFlag(a, "--token-file")) {
      a = "--token-file=" + dir_ + "/balancer.token";
    } else if (StartsWithFlag(a, "--scaler")) {
      a = absl::StrCat("--scaler=", kScalerAddress[0], ":", PortOf(a));
    } else if (StartsWithFlag(a, "--listen") || StartsWithFlag(a, "--admin-listen")) {
      a = absl::StrCat(a.substr(0, a.find('=') + 1), kBalancerAddress, ":", PortOf(a));
    }
    argv.push_back(a);
  }
  argv.push_back("--kubeconfig=" + balancer_kubeconfig);
  balancer_ = std::make_unique<ChildProcess>(argv, dir_ + "/balancer.log");
  ZS_RETURN_IF_ERROR(balancer_->Start());
  ZS_RETURN_IF_ERROR(WaitForAccept(kBalancerAddress, kBalancerPort, absl::Seconds(30)));
  // It follows the Lease: its calls go to the leader.
  const bool following = WaitFor(
      [&] {
        HttpExchange m = HttpRequestTo(kBalancerAddress, kBalancerAdminPort, "admin", "/metrics",
                                       absl::Seconds(2));
        return absl::StrContains(m.body, "\nzeroscale_balancer_scaler_leader_known 1");
      },
      absl::Seconds(30));
  if (!following) return absl::DeadlineExceededError("the balancer does not follow the Lease");
  return absl::OkStatus();
}

absl::Status ZeroscaleRelease::SetScalerEndpoints() {
  json addresses = json::array();
  for (int i = 0; i < 2; ++i) {
    if (scaler_up_[i]) addresses.push_back({{"ip", kScalerAddress[i]}});
  }
  json subsets = json::array();
  if (!addresses.empty()) {
    subsets.push_back({{"addresses", addresses},
                       {"ports", json::array({{{"name", "grpc"}, {"port", 9090}},
                                              {{"name", "http"}, {"port", 8080}},
                                              {{"name", "webhook"}, {"port", 8443}}})}});
  }
  json endpoints = {
      {"apiVersion", "v1"},
      {"kind", "Endpoints"},
      {"metadata",
       {{"name", absl::StrCat(options_.release, "-zeroscale-scaler")}, {"namespace", options_.ns}}},
      {"subsets", subsets}};
  return cluster_->admin().Apply(endpoints).status();
}

absl::StatusOr<std::string> ZeroscaleRelease::LeaseHolder() {
  absl::StatusOr<json> lease =
      cluster_->admin().Get({"coordination.k8s.io/v1", "Lease", options_.ns, kLeaseName});
  if (absl::IsNotFound(lease.status())) return std::string();
  if (!lease.ok()) return lease.status();
  return JsonStr((*lease)["spec"], "holderIdentity");
}

absl::Status ZeroscaleRelease::WaitForLeader(int i, absl::Duration timeout) {
  const std::string want = ScalerIdentity(i);
  std::string seen;
  const bool ok = WaitFor(
      [&] {
        absl::StatusOr<std::string> holder = LeaseHolder();
        if (holder.ok()) seen = *holder;
        return seen == want;
      },
      timeout);
  if (ok) return absl::OkStatus();
  return absl::DeadlineExceededError(
      absl::StrCat("scaler ", i, " (", want, ") does not hold the Lease after ",
                   absl::FormatDuration(timeout), "; holder: '", seen, "'"));
}

absl::Status ZeroscaleRelease::KillScaler(int i) {
  scalers_[i]->Kill();
  scaler_up_[i] = false;
  return SetScalerEndpoints();
}

absl::Status ZeroscaleRelease::RestartScaler(int i) {
  ZS_RETURN_IF_ERROR(scalers_[i]->Restart());
  ZS_RETURN_IF_ERROR(WaitForAccept(kScalerAddress[i], 8443, absl::Seconds(30)));
  scaler_up_[i] = true;
  return SetScalerEndpoints();
}

std::string ZeroscaleRelease::Logs() const {
  std::string out;
  for (int i = 0; i < 2; ++i) {
    if (scalers_[i]) {
      absl::StrAppend(&out, "\n######## scaler ", i, " (", kScalerAddress[i], ") ########\n",
                      scalers_[i]->ReadLog());
    }
  }
  if (balancer_) absl::StrAppend(&out, "\n######## balancer ########\n", balancer_->ReadLog());
  return out;
}

std::string ModelYaml(const Model& m, const std::string& host) {
  std::string yaml = R"(
apiVersion: v1
kind: Service
metadata: {name: model}
spec:
  selector: {app: model}
  ports: [{name: http, port: 8012, targetPort: 8012}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: model}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: model}}
  template:
    metadata:
      labels: {app: model}
      annotations: {zeroscale.io/port: "8080", zeroscale.io/readiness-path: /ready}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: app
          image: zeroscale.test/app
          args: APP_ARGS
          ports: [{containerPort: 8080}]
          resources: RESOURCES
          readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
---
apiVersion: autoscaler-group.autoscaler/v1alpha1
kind: CustomAutoscaler
metadata: {name: model}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: model}
  minReplicas: MIN
  maxReplicas: MAX
  idleTimeoutSeconds: IDLE
  route: {host: HOST, port: 8012}
)";
  if (!m.rules.empty()) absl::StrAppend(&yaml, "  rules:\n", m.rules);
  return absl::StrReplaceAll(yaml, {{"REPLICAS", absl::StrCat(m.replicas)},
                                    {"APP_ARGS", m.app_args},
                                    {"RESOURCES", m.resources},
                                    {"MIN", absl::StrCat(m.min_replicas)},
                                    {"MAX", absl::StrCat(m.max_replicas)},
                                    {"IDLE", absl::StrCat(m.idle_timeout_seconds)},
                                    {"HOST", host}});
}

bool RefusedByRbac(const json& e) {
  return e.contains("annotations") && e["annotations"].is_object() &&
         e["annotations"].value("authorization.k8s.io/decision", "") == "forbid";
}

HttpExchange HttpRequestTo(const std::string& address, int port, const std::string& host,
                           const std::string& path, absl::Duration timeout) {
  HttpExchange x;
  const absl::Time deadline = absl::Now() + timeout;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    x.error = std::strerror(errno);
    return x;
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    x.error = absl::StrCat("connect: ", std::strerror(errno));
    ::close(fd);
    return x;
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host, "\r\nConnection: close\r\n\r\n");
  x.sent = absl::Now();
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    x.error = absl::StrCat("send: ", std::strerror(errno));
    ::close(fd);
    return x;
  }
  std::string response;
  char buf[16384];
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      x.error = "timed out";
      break;
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      x.error = absl::StrCat("recv: ", std::strerror(errno));
      break;
    }
    if (n == 0) break;
    if (response.empty()) x.first_byte = absl::Now();
    response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  const size_t head_end = response.find("\r\n\r\n");
  int status = 0;
  if (absl::StartsWith(response, "HTTP/1.") && response.size() > 12 &&
      absl::SimpleAtoi(response.substr(9, 3), &status) && head_end != std::string::npos) {
    x.status = status;
    x.body = response.substr(head_end + 4);
  } else if (x.error.empty()) {
    x.error = absl::StrCat("no HTTP answer (", response.size(), " bytes)");
  }
  return x;
}

}  // namespace zeroscale::testing
