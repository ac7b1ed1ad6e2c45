// Where the Kubernetes API server is and how to authenticate to it: in-cluster
// service-account configuration, kubeconfig files, and the scaler's default lookup order
// (--kubeconfig, then in-cluster, then $KUBECONFIG, then ~/.kube/config).
// Pure functions over files and an injectable environment; thread-safe.
#ifndef ZEROSCALE_COMMON_KUBE_CONFIG_H_
#define ZEROSCALE_COMMON_KUBE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/config/flags.h"

namespace zeroscale::kube {

struct ClusterConfig {
  // "https://10.0.0.1:443" or, for tests and `kubectl proxy`, "http://127.0.0.1:8001".
  std::string server;
  // PEM bundle trusted for the server; empty means the system's default roots.
  std::string ca_pem;
  // Client certificate authentication (PEM), both or neither.
  std::string client_cert_pem;
  std::string client_key_pem;
  // A static bearer token, or a file re-read every `token_refresh` because projected
  // service-account tokens rotate under a running process. The file wins when set.
  std::string token;
  std::string token_file;
  absl::Duration token_refresh = absl::Minutes(1);
  bool insecure_skip_tls_verify = false;
  // The namespace this process runs in (in-cluster) or the context's namespace; the
  // default for Leases and the like. "" when unknown.
  std::string namespace_;
  // Where this configuration came from, for logs ("in-cluster", "kubeconfig FILE").
  std::string source;
};

struct InClusterPaths {
  std::string token = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
};

// Needs KUBERNETES_SERVICE_HOST/PORT and a readable token; kFailedPrecondition
// otherwise, naming what is missing. The token is read once to check it and then
// re-read periodically by the client.
absl::StatusOr<ClusterConfig> LoadInClusterConfig(const InClusterPaths& paths,
                                                  const config::EnvLookup& env);

// Reads the current context (or `context` when not empty) of a kubeconfig file.
// Relative file paths inside it resolve against the file's directory, as kubectl does.
// kFailedPrecondition for an unreadable file or a missing context/cluster/user.
absl::StatusOr<ClusterConfig> LoadKubeconfig(const std::string& path,
                                             absl::string_view context = "");
// The same from text; `base_dir` resolves relative paths.
absl::StatusOr<ClusterConfig> ParseKubeconfig(absl::string_view yaml, const std::string& base_dir,
                                              absl::string_view context = "");

// The scaler's lookup order: an explicit kubeconfig path, else in-cluster when
// KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG (first entry), else
// $HOME/.kube/config. kFailedPrecondition when none applies (--backend=auto then
// runs without a cluster) or when the one found is unusable.
absl::StatusOr<ClusterConfig> LoadDefaultConfig(const std::string& kubeconfig_flag,
                                                const config::EnvLookup& env,
                                                const InClusterPaths& paths = {});

}  // namespace zeroscale::kube

#endif  // ZEROSCALE_COMMON_KUBE_CONFIG_H_
