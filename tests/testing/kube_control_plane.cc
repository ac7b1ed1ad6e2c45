#include "tests/testing/kube_control_plane.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file/read_file.h"
#include "common/status/status_macros.h"
#include "tests/testing/private_network.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::testing {
namespace {

constexpr char kIssuer[] = "https://kubernetes.default.svc.cluster.local";
// Controllers that need a cloud, a node IPAM or a kubelet's cooperation stay off, as in
// ../shared/kube/cluster-example.sh. Without nodelifecycle, the stand-in's Node is never
// marked NotReady nor tainted.
constexpr char kControllers[] =
    "*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-route,-service,"
    "-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ttl,-csrsigning,"
    "-csrapproving,-csrcleaner,-bootstrapsigner,-tokencleaner";

// The components themselves, the kubelet stand-in and the admin's reads would drown
// what tests look for (the programs' own requests).
constexpr char kAuditPolicy[] = R"(apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: ["system:apiserver", "system:kube-controller-manager", "system:kube-scheduler"]
  - level: None
    userGroups: ["system:nodes", "system:serviceaccounts:kube-system"]
  - level: None
    users: ["admin"]
    verbs: ["get", "list", "watch"]
  - level: Metadata
)";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

bool Executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

bool InPath(const std::string& name) {
  for (absl::string_view dir : absl::StrSplit(Env("PATH"), ':')) {
    if (!dir.empty() && Executable(absl::StrCat(dir, "/", name))) return true;
  }
  return false;
}

// A new directory PARENT/PREFIX<pid>-XXXXXX. Directories of that name left by test
// processes that no longer run (killed before they could clean up) are removed first.
absl::StatusOr<std::string> MakeDir(const std::string& parent, const char* prefix) {
  if (DIR* d = ::opendir(parent.c_str())) {
    std::vector<std::string> stale;
    while (dirent* e = ::readdir(d)) {
      absl::string_view name = e->d_name;
      if (!absl::ConsumePrefix(&name, prefix)) continue;
      const size_t dash = name.find('-');
      int pid;
      if (dash == absl::string_view::npos || !absl::SimpleAtoi(name.substr(0, dash), &pid) ||
          pid <= 0) {
        continue;
      }
      if (::kill(pid, 0) != 0 && errno == ESRCH)
        stale.push_back(absl::StrCat(parent, "/", e->d_name));
    }
    ::closedir(d);
    for (const std::string& dir : stale) RunCommand({"rm", "-rf", dir});
  }
  std::string tmpl = absl::StrCat(parent, "/", prefix, ::getpid(), "-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("cannot make a directory in ", parent));
  }
  return tmpl;
}

absl::Status WriteFile(const std::string& path, absl::string_view content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

std::string Tail(const std::string& text, int lines) {
  std::vector<absl::string_view> all = absl::StrSplit(text, '\n');
  const size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  return absl::StrJoin(all.begin() + from, all.end(), "\n");
}

// Generates a P-256 key and a certificate for `subject` signed by the CA in `dir`;
// `san` makes it a serving certificate too.
absl::Status SignCertificate(const std::string& dir, const std::string& name,
                             const std::string& subject, const std::string& san = "") {
  const std::string base = absl::StrCat(dir, "/", name);
  ZS_RETURN_IF_ERROR(
      RunCommandOk({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", base + ".key", "-out", base + ".csr", "-subj", subject}));
  ZS_RETURN_IF_ERROR(WriteFile(
      base + ".ext", san.empty() ? "extendedKeyUsage=clientAuth\n"
                                 : absl::StrCat("subjectAltName=", san,
                                                "\nextendedKeyUsage=serverAuth,clientAuth\n")));
  ZS_RETURN_IF_ERROR(
      RunCommandOk({"openssl", "x509", "-req", "-in", base + ".csr", "-CA", dir + "/ca.crt",
                    "-CAkey", dir + "/ca.key", "-CAcreateserial", "-out", base + ".crt", "-days",
                    "3650", "-extfile", base + ".ext"}));
  ::unlink((base + ".csr").c_str());
  ::unlink((base + ".ext").c_str());
  return absl::OkStatus();
}

std::string KubeconfigYaml(const std::string& server, const std::string& ca_file,
                           const std::string& user_fields, absl::string_view ns) {
  return absl::StrCat(
      "apiVersion: v1\nkind: Config\nclusters:\n- name: zs\n  cluster:\n", "    server: ", server,
      "\n    certificate-authority: ", ca_file, "\nusers:\n- name: user\n  user:\n", user_fields,
      "contexts:\n- name: zs\n  context:\n    cluster: zs\n    user: user\n",
      ns.empty() ? "" : absl::StrCat("    namespace: ", ns, "\n"), "current-context: zs\n");
}

// Serialises certificate generation (the CA serial file) across threads.
std::mutex& PkiMutex() {
  static std::mutex mu;
  return mu;
}

}  // namespace

std::string ReadFileOrEmpty(const std::string& path) {
  return ReadFileToString(path, "file").value_or("");
}

absl::Status KubeControlPlane::CheckPrerequisites(std::string assets_dir) {
  if (assets_dir.empty()) assets_dir = Env(kKubeAssetsEnv);
  if (assets_dir.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        kKubeAssetsEnv,
        " is not set: set it to a directory holding kube-apiserver, kube-controller-manager "
        "and helm (see the README, Tests) to run the tests against a real control plane"));
  }
  std::vector<std::string> missing;
  for (const char* b : {"kube-apiserver", "kube-controller-manager", "helm"}) {
    if (!Executable(absl::StrCat(assets_dir, "/", b))) {
      missing.push_back(absl::StrCat(assets_dir, "/", b));
    }
  }
  if (!InPath("etcd")) missing.push_back("etcd in PATH (Debian package etcd-server)");
  if (!InPath("openssl")) missing.push_back("openssl in PATH");
  if (!missing.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("missing for the Kubernetes tests: ", absl::StrJoin(missing, ", ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<KubeControlPlane>> KubeControlPlane::Start(
    ControlPlaneOptions options) {
  if (options.assets_dir.empty()) options.assets_dir = Env(kKubeAssetsEnv);
  ZS_RETURN_IF_ERROR(CheckPrerequisites(options.assets_dir));
  std::unique_ptr<KubeControlPlane> cp(new KubeControlPlane());
  absl::Status s = cp->StartAll(options);
  if (!s.ok()) {
    std::string logs;
    for (const char* c : {"etcd", "kube-apiserver", "kube-controller-manager"}) {
      absl::StrAppend(&logs, "\n--- ", c, " (last lines) ---\n", cp->LogTail(c, 25));
    }
    cp->Stop();
    return absl::Status(s.code(), absl::StrCat(s.message(), logs));
  }
  return cp;
}

absl::Status KubeControlPlane::StartAll(const ControlPlaneOptions& options) {
  assets_dir_ = options.assets_dir;
  if (options.work_dir.empty()) {
    const std::string tmp = Env("TMPDIR").empty() ? "/tmp" : Env("TMPDIR");
    ZS_ASSIGN_OR_RETURN(work_dir_, MakeDir(tmp, "zs-kube-cluster-"));
    remove_work_dir_ = Env("ZEROSCALE_KEEP_KUBE_DIR").empty();
  } else {
    work_dir_ = options.work_dir;
    ::mkdir(work_dir_.c_str(), 0755);
  }
  pki_dir_ = work_dir_ + "/pki";
  ::mkdir(pki_dir_.c_str(), 0700);
  private_network_ = PrivateNetworkStatus().ok();
  if (private_network_) {
    etcd_port_ = 2379;
    etcd_peer_port_ = 2380;
    apiserver_port_ = 6443;
  } else {
    etcd_port_ = FreePort();
    etcd_peer_port_ = FreePort();
    apiserver_port_ = FreePort();
  }
  server_ = absl::StrCat("https://127.0.0.1:", apiserver_port_);
  pod_server_ =
      private_network_ ? absl::StrCat("https://", kHostAddress, ":", apiserver_port_) : server_;
  ca_file_ = pki_dir_ + "/ca.crt";
  ZS_RETURN_IF_ERROR(MakePki());
  ZS_RETURN_IF_ERROR(StartEtcd());
  ZS_RETURN_IF_ERROR(StartApiServer(options));
  return StartControllerManager();
}

absl::Status KubeControlPlane::MakePki() {
  std::lock_guard<std::mutex> lock(PkiMutex());
  const std::string& p = pki_dir_;
  ZS_RETURN_IF_ERROR(
      RunCommandOk({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p + "/ca.key", "-out",
                    p + "/ca.crt", "-days", "3650", "-subj", "/CN=zeroscale-test-ca"}));
  ZS_RETURN_IF_ERROR(SignCertificate(
      p, "apiserver", "/CN=kube-apiserver",
      absl::StrCat("IP:127.0.0.1,IP:", kHostAddress,
                   ",IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
                   "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")));
  ZS_RETURN_IF_ERROR(SignCertificate(p, "admin", "/O=system:masters/CN=admin"));
  ZS_RETURN_IF_ERROR(SignCertificate(p, "kcm", "/CN=system:kube-controller-manager"));
  // Service-account tokens are signed with RSA, as in most clusters.
  ZS_RETURN_IF_ERROR(RunCommandOk({"openssl", "genrsa", "-out", p + "/sa.key", "2048"}));
  ZS_RETURN_IF_ERROR(
      RunCommandOk({"openssl", "rsa", "-in", p + "/sa.key", "-pubout", "-out", p + "/sa.pub"}));
  ZS_RETURN_IF_ERROR(WriteFile(p + "/audit-policy.yaml", kAuditPolicy));
  admin_kubeconfig_ = work_dir_ + "/admin.kubeconfig";
  ZS_RETURN_IF_ERROR(WriteCertKubeconfig(admin_kubeconfig_, "admin"));
  return WriteCertKubeconfig(work_dir_ + "/kcm.kubeconfig", "kcm");
}

absl::Status KubeControlPlane::WriteCertKubeconfig(const std::string& path,
                                                   const std::string& name) {
  return WriteFile(
      path, KubeconfigYaml(server_, ca_file_,
                           absl::StrCat("    client-certificate: ", pki_dir_, "/", name,
                                        ".crt\n    client-key: ", pki_dir_, "/", name, ".key\n"),
                           ""));
}

absl::Status KubeControlPlane::StartEtcd() {
  // On tmpfs when there is one: etcd fsyncs every write, the slowest part of a test
  // cluster on a disk, and nothing here needs to survive the test.
  std::string data_parent = work_dir_;
  if (Executable("/dev/shm") && ::access("/dev/shm", W_OK) == 0) data_parent = "/dev/shm";
  ZS_ASSIGN_OR_RETURN(std::string data_dir, MakeDir(data_parent, "zs-etcd-"));
  const std::string client = absl::StrCat("http://127.0.0.1:", etcd_port_);
  const std::string peer = absl::StrCat("http://127.0.0.1:", etcd_peer_port_);
  etcd_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"etcd", "--name=zs", "--data-dir=" + data_dir,
                               "--listen-client-urls=" + client,
                               "--advertise-client-urls=" + client, "--listen-peer-urls=" + peer,
                               "--initial-advertise-peer-urls=" + peer,
                               "--initial-cluster=zs=" + peer, "--logger=zap", "--log-level=warn"},
      work_dir_ + "/etcd.log");
  ZS_RETURN_IF_ERROR(WriteFile(work_dir_ + "/etcd-data-dir", data_dir));
  ZS_RETURN_IF_ERROR(etcd_->Start());
  if (!WaitFor([&] { return TcpPortOpen(etcd_port_) || !etcd_->running(); }, absl::Seconds(30)) ||
      !etcd_->running()) {
    return absl::UnavailableError("etcd did not start listening");
  }
  return absl::OkStatus();
}

absl::Status KubeControlPlane::StartApiServer(const ControlPlaneOptions& options) {
  const std::string& p = pki_dir_;
  std::vector<std::string> argv = {
      assets_dir_ + "/kube-apiserver",
      absl::StrCat("--etcd-servers=http://127.0.0.1:", etcd_port_),
      absl::StrCat("--bind-address=", private_network_ ? "0.0.0.0" : "127.0.0.1"),
      absl::StrCat("--secure-port=", apiserver_port_),
      absl::StrCat("--advertise-address=", private_network_ ? kHostAddress : "127.0.0.1"),
      "--endpoint-reconciler-type=none",
      "--tls-cert-file=" + p + "/apiserver.crt",
      "--tls-private-key-file=" + p + "/apiserver.key",
      "--client-ca-file=" + p + "/ca.crt",
      "--service-account-key-file=" + p + "/sa.pub",
      "--service-account-signing-key-file=" + p + "/sa.key",
      absl::StrCat("--service-account-issuer=", kIssuer),
      "--authorization-mode=Node,RBAC",
      "--service-cluster-ip-range=10.0.0.0/24",
      "--allow-privileged=true",
      "--profiling=false",
      "--enable-admission-plugins=NodeRestriction",
      "--feature-gates=CustomResourceValidationExpressions=true",
      "--audit-policy-file=" + p + "/audit-policy.yaml",
      "--audit-log-path=" + work_dir_ + "/audit.log",
      "--audit-log-maxsize=0",
      // Webhooks and aggregated APIs registered by Service reach an endpoint of the
      // Service (its Endpoints object) instead of its ClusterIP, which nothing routes
      // here (no kube-proxy). The chart's webhook registration is used as it is.
      "--enable-aggregator-routing=true",
  };
  argv.insert(argv.end(), options.extra_apiserver_flags.begin(),
              options.extra_apiserver_flags.end());
  apiserver_ = std::make_unique<ChildProcess>(argv, work_dir_ + "/kube-apiserver.log");
  ZS_RETURN_IF_ERROR(apiserver_->Start());

  kube::ClusterConfig config;
  config.server = server_;
  config.ca_pem = ReadFileOrEmpty(p + "/ca.crt");
  config.client_cert_pem = ReadFileOrEmpty(p + "/admin.crt");
  config.client_key_pem = ReadFileOrEmpty(p + "/admin.key");
  config.source = "admin";
  ZS_ASSIGN_OR_RETURN(admin_, KubeApi::Create(config));
  const absl::Time deadline = absl::Now() + options.start_timeout;
  while (true) {
    absl::StatusOr<kube::HttpResponse> r = admin_->Raw("GET", "/readyz");
    if (r.ok() && r->status == 200) return absl::OkStatus();
    if (!apiserver_->running()) return absl::UnavailableError("kube-apiserver exited");
    if (absl::Now() > deadline) return absl::DeadlineExceededError("kube-apiserver never ready");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

absl::Status KubeControlPlane::StartControllerManager() {
  const std::string kc = work_dir_ + "/kcm.kubeconfig";
  const uint16_t port = private_network_ ? 10257 : FreePort();
  controller_manager_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{
          assets_dir_ + "/kube-controller-manager", "--kubeconfig=" + kc,
          "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
          "--bind-address=127.0.0.1", absl::StrCat("--secure-port=", port),
          "--cert-dir=" + work_dir_ + "/kcm-certs", "--leader-elect=false",
          "--use-service-account-credentials=true",
          "--service-account-private-key-file=" + pki_dir_ + "/sa.key",
          "--root-ca-file=" + ca_file_, absl::StrCat("--controllers=", kControllers)},
      work_dir_ + "/kube-controller-manager.log");
  ZS_RETURN_IF_ERROR(controller_manager_->Start());
  // The service-account and root-CA publisher controllers have run: namespaces are usable.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    if (admin_->Get({"v1", "ServiceAccount", "default", "default"}).ok() &&
        admin_->Get({"v1", "ConfigMap", "default", "kube-root-ca.crt"}).ok()) {
      return absl::OkStatus();
    }
    if (!controller_manager_->running()) {
      return absl::UnavailableError("kube-controller-manager exited");
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          "kube-controller-manager never made the default ServiceAccount");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

KubeControlPlane::~KubeControlPlane() { Stop(); }

void KubeControlPlane::Stop() {
  admin_.reset();
  for (auto* p : {&controller_manager_, &apiserver_, &etcd_}) {
    if (*p) (*p)->Stop(absl::Seconds(5));
    p->reset();
  }
  if (work_dir_.empty()) return;
  const std::string etcd_dir = ReadFileOrEmpty(work_dir_ + "/etcd-data-dir");
  if (!etcd_dir.empty()) RunCommand({"rm", "-rf", etcd_dir});
  if (remove_work_dir_) RunCommand({"rm", "-rf", work_dir_});
  work_dir_.clear();
}

absl::StatusOr<kube::ClusterConfig> KubeControlPlane::ClientCertConfig(
    absl::string_view user, const std::vector<std::string>& groups) {
  std::string name = absl::StrCat("user-", user);
  for (char& c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
  }
  std::string subject;
  for (const std::string& g : groups) absl::StrAppend(&subject, "/O=", g);
  absl::StrAppend(&subject, "/CN=", user);
  {
    std::lock_guard<std::mutex> lock(PkiMutex());
    if (ReadFileOrEmpty(absl::StrCat(pki_dir_, "/", name, ".crt")).empty()) {
      ZS_RETURN_IF_ERROR(SignCertificate(pki_dir_, name, subject));
    }
  }
  kube::ClusterConfig config;
  config.server = server_;
  config.ca_pem = ReadFileOrEmpty(ca_file_);
  config.client_cert_pem = ReadFileOrEmpty(absl::StrCat(pki_dir_, "/", name, ".crt"));
  config.client_key_pem = ReadFileOrEmpty(absl::StrCat(pki_dir_, "/", name, ".key"));
  config.source = absl::StrCat("client certificate of ", user);
  return config;
}

absl::StatusOr<KubeControlPlane::CertFiles> KubeControlPlane::IssueServingCertificate(
    absl::string_view name, absl::string_view sans) {
  const std::string file = absl::StrCat("serving-", name);
  std::lock_guard<std::mutex> lock(PkiMutex());
  ZS_RETURN_IF_ERROR(
      SignCertificate(pki_dir_, file, absl::StrCat("/CN=", name), std::string(sans)));
  return CertFiles{absl::StrCat(pki_dir_, "/", file, ".crt"),
                   absl::StrCat(pki_dir_, "/", file, ".key")};
}

absl::StatusOr<std::string> KubeControlPlane::WriteTokenKubeconfig(const std::string& path,
                                                                   absl::string_view token,
                                                                   absl::string_view ns) {
  ZS_RETURN_IF_ERROR(WriteFile(
      path,
      KubeconfigYaml(server_, ca_file_,
                     token.empty() ? "    {}\n" : absl::StrCat("    token: ", token, "\n"), ns)));
  ::chmod(path.c_str(), 0600);
  return path;
}

absl::StatusOr<std::string> KubeControlPlane::WriteServiceAccountKubeconfig(
    absl::string_view ns, absl::string_view name, std::string path,
    const std::vector<std::string>& audiences, absl::Duration expiration) {
  ZS_ASSIGN_OR_RETURN(std::string token, admin_->CreateToken(ns, name, audiences, expiration));
  if (path.empty()) path = absl::StrCat(work_dir_, "/sa-", ns, "-", name, ".kubeconfig");
  return WriteTokenKubeconfig(path, token, ns);
}

CommandResult KubeControlPlane::Helm(const std::vector<std::string>& args, std::string kubeconfig,
                                     absl::Duration timeout) {
  if (kubeconfig.empty()) kubeconfig = admin_kubeconfig_;
  const std::string home = work_dir_ + "/helm";
  ::mkdir(home.c_str(), 0700);
  std::vector<std::string> argv = {assets_dir_ + "/helm"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandOptions options;
  options.timeout = timeout;
  options.env = {{"HOME", home},
                 {"KUBECONFIG", kubeconfig},
                 {"HELM_CACHE_HOME", home + "/cache"},
                 {"HELM_CONFIG_HOME", home + "/config"},
                 {"HELM_DATA_HOME", home + "/data"}};
  return RunCommand(argv, options);
}

absl::StatusOr<std::vector<json>> KubeControlPlane::AuditEvents(
    const std::function<bool(const json&)>& filter) const {
  std::ifstream in(work_dir_ + "/audit.log");
  if (!in) return absl::NotFoundError("no audit log");
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line)) {
    json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (event.is_discarded()) continue;  // a line being written
    if (!filter || filter(event)) out.push_back(std::move(event));
  }
  return out;
}

absl::StatusOr<std::vector<json>> KubeControlPlane::WaitForAuditEvents(
    const std::function<bool(const json&)>& filter, size_t count, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    ZS_ASSIGN_OR_RETURN(std::vector<json> events, AuditEvents(filter));
    if (events.size() >= count) return events;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("waited ", absl::FormatDuration(timeout),
                                                      " for ", count, " audit events; found ",
                                                      events.size()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string KubeControlPlane::LogTail(absl::string_view component, int lines) const {
  const std::string file = component == "audit" ? work_dir_ + "/audit.log"
                                                : absl::StrCat(work_dir_, "/", component, ".log");
  return Tail(ReadFileOrEmpty(file), lines);
}

}  // namespace zeroscale::testing
