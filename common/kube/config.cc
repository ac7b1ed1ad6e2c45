#include "common/kube/config.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file/read_file.h"
#include "yaml-cpp/yaml.h"

namespace zeroscale::kube {
namespace {

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return absl::StrCat(base_dir, "/", path);
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// A kubeconfig list entry by name: [{name: X, <key>: {...}}].
YAML::Node FindNamed(const YAML::Node& list, const std::string& name, const char* key) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const YAML::Node& item : list) {
    if (item["name"] && item["name"].as<std::string>() == name) return item[key];
  }
  return YAML::Node();
}

std::string Str(const YAML::Node& map, const char* key) {
  if (!map || !map.IsMap()) return "";
  const YAML::Node v = map[key];
  return v && v.IsScalar() ? v.as<std::string>() : "";
}

// `<key>-data` (base64 PEM) wins over `<key>` (a file path), as in kubectl.
absl::StatusOr<std::string> PemField(const YAML::Node& map, const std::string& key,
                                     const std::string& base_dir) {
  const std::string data = Str(map, (key + "-data").c_str());
  if (!data.empty()) {
    std::string pem;
    if (!absl::Base64Unescape(data, &pem)) {
      return absl::FailedPreconditionError(absl::StrCat(key, "-data is not valid base64"));
    }
    return pem;
  }
  const std::string file = Str(map, key.c_str());
  if (file.empty()) return std::string();
  return ReadFileToString(Resolve(base_dir, file), key);
}

}  // namespace

absl::StatusOr<ClusterConfig> LoadInClusterConfig(const InClusterPaths& paths,
                                                  const config::EnvLookup& env) {
  const auto host = env("KUBERNETES_SERVICE_HOST");
  const auto port = env("KUBERNETES_SERVICE_PORT");
  if (!host || host->empty() || !port || port->empty()) {
    return absl::FailedPreconditionError(
        "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
        "must be set");
  }
  ClusterConfig c;
  c.source = "in-cluster";
  // An IPv6 service address needs brackets in a URL.
  const std::string h = absl::StrContains(*host, ':') ? absl::StrCat("[", *host, "]") : *host;
  c.server = absl::StrCat("https://", h, ":", *port);
  auto token = ReadFileToString(paths.token, "service-account token");
  if (!token.ok()) return token.status();
  if (absl::StripAsciiWhitespace(*token).empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("service-account token ", paths.token, " is empty"));
  }
  c.token_file = paths.token;
  auto ca = ReadFileToString(paths.ca, "cluster CA");
  if (!ca.ok()) return ca.status();
  c.ca_pem = *std::move(ca);
  // The namespace file is optional; without it callers name namespaces explicitly.
  auto ns = ReadFileToString(paths.namespace_file, "namespace file");
  if (ns.ok()) c.namespace_ = std::string(absl::StripAsciiWhitespace(*ns));
  return c;
}

absl::StatusOr<ClusterConfig> ParseKubeconfig(absl::string_view yaml, const std::string& base_dir,
                                              absl::string_view context) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::FailedPreconditionError(absl::StrCat("kubeconfig is not valid YAML: ", e.what()));
  }
  if (!root.IsMap()) return absl::FailedPreconditionError("kubeconfig is not a YAML mapping");
  try {
    std::string ctx_name(context);
    if (ctx_name.empty()) ctx_name = Str(root, "current-context");
    if (ctx_name.empty()) {
      return absl::FailedPreconditionError("kubeconfig has no current-context");
    }
    const YAML::Node ctx = FindNamed(root["contexts"], ctx_name, "context");
    if (!ctx || !ctx.IsMap()) {
      return absl::FailedPreconditionError(
          absl::StrCat("kubeconfig has no context named '", ctx_name, "'"));
    }
    const std::string cluster_name = Str(ctx, "cluster");
    const YAML::Node cluster = FindNamed(root["clusters"], cluster_name, "cluster");
    if (!cluster || !cluster.IsMap()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "kubeconfig context '", ctx_name, "' names unknown cluster '", cluster_name, "'"));
    }
    ClusterConfig c;
    c.source = "kubeconfig";
    c.server = Str(cluster, "server");
    if (c.server.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("kubeconfig cluster '", cluster_name, "' has no server"));
    }
    while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
    const std::string insecure = Str(cluster, "insecure-skip-tls-verify");
    c.insecure_skip_tls_verify = insecure == "true" || insecure == "True";
    auto ca = PemField(cluster, "certificate-authority", base_dir);
    if (!ca.ok()) return ca.status();
    c.ca_pem = *std::move(ca);
    c.namespace_ = Str(ctx, "namespace");

    const std::string user_name = Str(ctx, "user");
    if (!user_name.empty()) {
      const YAML::Node user = FindNamed(root["users"], user_name, "user");
      if (!user || !user.IsMap()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "kubeconfig context '", ctx_name, "' names unknown user '", user_name, "'"));
      }
      if (user["exec"] || user["auth-provider"]) {
        // Plugins run arbitrary programs; a daemon should use a token or certificate.
        if (Str(user, "token").empty() && Str(user, "tokenFile").empty() &&
            Str(user, "client-certificate").empty() &&
            Str(user, "client-certificate-data").empty()) {
          return absl::FailedPreconditionError(
              absl::StrCat("kubeconfig user '", user_name,
                           "' authenticates with an exec or auth-provider plugin, which is not "
                           "supported; use a token or client certificate"));
        }
      }
      c.token = Str(user, "token");
      const std::string token_file = Str(user, "tokenFile");
      if (!token_file.empty()) c.token_file = Resolve(base_dir, token_file);
      auto cert = PemField(user, "client-certificate", base_dir);
      if (!cert.ok()) return cert.status();
      auto key = PemField(user, "client-key", base_dir);
      if (!key.ok()) return key.status();
      c.client_cert_pem = *std::move(cert);
      c.client_key_pem = *std::move(key);
      if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "kubeconfig user '", user_name, "' needs both a client certificate and a key"));
      }
    }
    return c;
  } catch (const YAML::Exception& e) {
    return absl::FailedPreconditionError(absl::StrCat("kubeconfig: ", e.what()));
  }
}

absl::StatusOr<ClusterConfig> LoadKubeconfig(const std::string& path, absl::string_view context) {
  auto text = ReadFileToString(path, "kubeconfig");
  if (!text.ok()) return text.status();
  auto c = ParseKubeconfig(*text, DirOf(path), context);
  if (!c.ok()) {
    return absl::Status(c.status().code(), absl::StrCat(path, ": ", c.status().message()));
  }
  c->source = absl::StrCat("kubeconfig ", path);
  return c;
}

absl::StatusOr<ClusterConfig> LoadDefaultConfig(const std::string& kubeconfig_flag,
                                                const config::EnvLookup& env,
                                                const InClusterPaths& paths) {
  if (!kubeconfig_flag.empty()) return LoadKubeconfig(kubeconfig_flag);
  const auto host = env("KUBERNETES_SERVICE_HOST");
  if (host && !host->empty()) return LoadInClusterConfig(paths, env);
  const auto kubeconfig = env("KUBECONFIG");
  if (kubeconfig && !kubeconfig->empty()) {
    // KUBECONFIG is a ':'-separated list; the first existing file holds the context here.
    for (absl::string_view p : absl::StrSplit(*kubeconfig, ':', absl::SkipEmpty())) {
      std::ifstream probe{std::string(p)};
      if (probe) return LoadKubeconfig(std::string(p));
    }
  }
  const auto home = env("HOME");
  if (home && !home->empty()) {
    const std::string p = absl::StrCat(*home, "/.kube/config");
    std::ifstream probe(p);
    if (probe) return LoadKubeconfig(p);
  }
  return absl::FailedPreconditionError(
      "no Kubernetes configuration found: not in a cluster, no --kubeconfig, $KUBECONFIG "
      "or ~/.kube/config");
}

}  // namespace zeroscale::kube
