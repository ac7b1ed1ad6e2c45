// A real Kubernetes control plane for tests: etcd (Debian's etcd-server, from PATH),
// kube-apiserver and kube-controller-manager from the directory named by
// ZEROSCALE_KUBE_ASSETS (envtest's convention; it also holds helm). It makes its own PKI
// with the openssl CLI, keeps its data in a temporary directory, and runs with RBAC
// (--authorization-mode=Node,RBAC), NodeRestriction, service-account tokens that
// TokenRequest mints and TokenReview checks, SubjectAccessReview, the CEL validation
// feature gate and an audit log. No scheduler and no kubelet: see kubelet.h.
//
// Inside the test's private network namespace (private_network.h) it listens on fixed
// ports: the API server on 6443 of every address of the namespace (127.0.0.1 for the
// test, 198.18.0.1 for pods), etcd on 127.0.0.1:2379. Elsewhere it takes free loopback
// ports and only 127.0.0.1.
//
// Every process dies with the test (PR_SET_PDEATHSIG, also when the test crashes) and
// is stopped by the destructor.
//
// Thread-safety: after Start, the accessors and the client are thread-safe; Helm,
// AuditEvents and WriteServiceAccountKubeconfig may be called from any thread.
#ifndef ZEROSCALE_TESTS_TESTING_KUBE_CONTROL_PLANE_H_
#define ZEROSCALE_TESTS_TESTING_KUBE_CONTROL_PLANE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kube/config.h"
#include "tests/testing/child_process.h"
#include "tests/testing/command.h"
#include "tests/testing/kube_api.h"

namespace zeroscale::testing {

inline constexpr char kKubeAssetsEnv[] = "ZEROSCALE_KUBE_ASSETS";

// A file's content, "" when it cannot be read (logs and certificates of the harness).
std::string ReadFileOrEmpty(const std::string& path);
inline constexpr char kRequireKubeEnv[] = "ZEROSCALE_REQUIRE_KUBE";

struct ControlPlaneOptions {
  // Holds kube-apiserver, kube-controller-manager and helm. Default: $ZEROSCALE_KUBE_ASSETS.
  std::string assets_dir;
  // Default: a new directory under $TMPDIR (or /tmp), removed by Stop() unless
  // $ZEROSCALE_KEEP_KUBE_DIR is set.
  std::string work_dir;
  // Added to kube-apiserver's command line (a later flag wins).
  std::vector<std::string> extra_apiserver_flags;
  absl::Duration start_timeout = absl::Seconds(90);
};

class KubeControlPlane {
 public:
  // OK when `assets_dir` (default $ZEROSCALE_KUBE_ASSETS) holds the three binaries and
  // etcd and openssl are in PATH; else kFailedPrecondition saying what to install or set.
  static absl::Status CheckPrerequisites(std::string assets_dir = "");

  // Makes the PKI, starts etcd, the API server and the controller manager, and returns
  // once the API server is ready and the controllers run (the default ServiceAccount
  // and the kube-root-ca.crt ConfigMap exist in "default"). About 10 s.
  static absl::StatusOr<std::unique_ptr<KubeControlPlane>> Start(ControlPlaneOptions options = {});
  ~KubeControlPlane();
  void Stop();

  // A client with cluster-admin rights (group system:masters).
  KubeApi& admin() { return *admin_; }
  // Its kubeconfig file, for the programs under test (--kubeconfig) and helm.
  const std::string& admin_kubeconfig() const { return admin_kubeconfig_; }
  // "https://127.0.0.1:6443": the API server from the test's namespace.
  const std::string& server() const { return server_; }
  // How a pod reaches it ("https://198.18.0.1:6443"; the KUBERNETES_SERVICE_* the
  // kubelet stand-in gives containers); the server's certificate names that address.
  const std::string& pod_server() const { return pod_server_; }
  const std::string& ca_file() const { return ca_file_; }
  const std::string& work_dir() const { return work_dir_; }
  const std::string& assets_dir() const { return assets_dir_; }

  // A configuration authenticating with a client certificate made for `user` in
  // `groups` (e.g. "system:node:zs-node-0" in "system:nodes": what the kubelet stand-in
  // uses so that the Node authorizer and NodeRestriction apply to it).
  absl::StatusOr<kube::ClusterConfig> ClientCertConfig(absl::string_view user,
                                                       const std::vector<std::string>& groups);

  // A serving certificate signed by the cluster CA (so ca_file() is its caBundle), for
  // `sans` ("IP:127.0.0.1,DNS:localhost"); written as <work dir>/pki/<name>.crt/.key.
  struct CertFiles {
    std::string cert;
    std::string key;
  };
  absl::StatusOr<CertFiles> IssueServingCertificate(absl::string_view name, absl::string_view sans);

  // Mints a token of ServiceAccount `ns`/`name` (TokenRequest; the API server's audience
  // unless `audiences`) and writes a kubeconfig using it, with `ns` as its namespace.
  // `path` "" picks one in the work dir. Returns the path. The ServiceAccount must exist.
  absl::StatusOr<std::string> WriteServiceAccountKubeconfig(
      absl::string_view ns, absl::string_view name, std::string path = "",
      const std::vector<std::string>& audiences = {}, absl::Duration expiration = absl::Hours(2));
  // A kubeconfig for the API server with a given token (or none).
  absl::StatusOr<std::string> WriteTokenKubeconfig(const std::string& path, absl::string_view token,
                                                   absl::string_view ns);

  // Runs helm (from the assets) against this cluster: `kubeconfig` (default: the
  // admin's), its own HOME and cache in the work dir.
  CommandResult Helm(const std::vector<std::string>& args, std::string kubeconfig = "",
                     absl::Duration timeout = absl::Minutes(3));

  // The API server's audit events (audit.k8s.io/v1 Event JSON, level Metadata: verb,
  // user, objectRef, responseStatus.code, ...) that `filter` accepts, oldest first.
  // Left out: the control plane's own components, the kubelet stand-in (system:nodes,
  // system:kube-scheduler) and the admin's reads (get, list, watch).
  absl::StatusOr<std::vector<json>> AuditEvents(
      const std::function<bool(const json&)>& filter = nullptr) const;

  // Polls AuditEvents(filter) until at least `count` match (the API server writes an
  // event as the response completes, so just after a call it may not be there yet).
  absl::StatusOr<std::vector<json>> WaitForAuditEvents(
      const std::function<bool(const json&)>& filter, size_t count,
      absl::Duration timeout = absl::Seconds(10)) const;

  // The last `lines` lines of a component's log ("etcd", "kube-apiserver",
  // "kube-controller-manager", "audit"), for failure messages.
  std::string LogTail(absl::string_view component, int lines = 40) const;

 private:
  KubeControlPlane() = default;
  absl::Status StartAll(const ControlPlaneOptions& options);
  absl::Status MakePki();
  absl::Status StartEtcd();
  absl::Status StartApiServer(const ControlPlaneOptions& options);
  absl::Status StartControllerManager();
  absl::Status WriteCertKubeconfig(const std::string& path, const std::string& name);

  std::string assets_dir_;
  std::string work_dir_;
  std::string pki_dir_;
  bool remove_work_dir_ = false;
  uint16_t etcd_port_ = 0;
  uint16_t etcd_peer_port_ = 0;
  uint16_t apiserver_port_ = 0;
  bool private_network_ = false;
  std::string server_;
  std::string pod_server_;
  std::string ca_file_;
  std::string admin_kubeconfig_;
  std::unique_ptr<ChildProcess> etcd_;
  std::unique_ptr<ChildProcess> apiserver_;
  std::unique_ptr<ChildProcess> controller_manager_;
  std::unique_ptr<KubeApi> admin_;
};

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_KUBE_CONTROL_PLANE_H_
