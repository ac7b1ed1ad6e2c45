// Decides whether a pod gets the zeroscale sidecar and builds the JSON Patch that adds
// it, from the pod's annotations and owner references alone (no HTTP, no Kubernetes
// calls). The rule, also in the README:
//   - `zeroscale.io/inject: "false"` never injects;
//   - `zeroscale.io/inject: "true"` injects, and needs a valid `zeroscale.io/port`;
//   - without `zeroscale.io/inject`, a pod that names `zeroscale.io/port` is injected: the
//     webhook registration's namespaceSelector (`zeroscale.io/injection: enabled`) or
//     objectSelector chose to call the webhook, and the port says which app to front;
//   - a pod that already has a `zeroscale-sidecar` container is left alone.
// The sidecar measures the app through the pod's shared process namespace: the patch sets
// `spec.shareProcessNamespace: true`, and a pod that sets it false (or uses hostPID) is
// not injected. The app container's CPU and memory limits reach the sidecar through the
// Downward API; that container is the one `zeroscale.io/container` names, else the one
// declaring the app's port, else the first.
// A bad annotation value injects nothing and says why in a warning, so pod creation is
// never blocked by a configuration mistake.
//
// Thread-safety: pure functions.
#ifndef ZEROSCALE_SCALER_WEBHOOK_SIDECAR_PATCH_H_
#define ZEROSCALE_SCALER_WEBHOOK_SIDECAR_PATCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json_fwd.hpp"

namespace zeroscale::webhook {

inline constexpr char kSidecarName[] = "zeroscale-sidecar";
// The sidecar's identity toward the scaler: a service-account token for audience
// "zeroscale" that the kubelet mints bound to the pod (TokenRequest), rotates before it
// expires and mounts here; the sidecar sends it on every stream (--token-file).
inline constexpr char kTokenVolume[] = "zeroscale-sidecar-token";
inline constexpr char kTokenDir[] = "/var/run/secrets/zeroscale.io/serviceaccount";
inline constexpr char kTokenPath[] = "/var/run/secrets/zeroscale.io/serviceaccount/token";

struct InjectorOptions {
  std::string sidecar_image;   // see DefaultSidecarImage()
  std::string scaler_address;  // the sidecar's --scaler, HOST:PORT
  // PEM CA bundle the sidecar verifies the scaler's certificate with (its
  // ZEROSCALE_SCALER_CA_DATA, i.e. --scaler-ca-data); empty: the sidecar talks plain text.
  std::string scaler_ca_data;
  // Small: the sidecar idles at ~12 MiB. No CPU limit, because throttling the proxy
  // would add latency to every request of the app.
  std::string cpu_request = "20m";
  std::string memory_request = "32Mi";
  std::string memory_limit = "64Mi";
  int64_t run_as_user = 65532;  // the distroless "nonroot" user of the sidecar image
  // Life of the projected token; the kubelet renews it at 80%.
  int64_t token_expiration_seconds = 3600;
};

// ghcr.io/zeroscale/zeroscale-sidecar:<this build's version>
std::string DefaultSidecarImage();

struct Injection {
  bool inject = false;
  std::string patch;        // the JSON Patch document when `inject`
  std::string skip_reason;  // a metric label when not: see the .cc for the set
  std::vector<std::string> warnings;
  std::string workload;  // <namespace>/<Kind>/<name>; "" when none could be derived
};

// `pod` is a Pod object; `pod_namespace` is the AdmissionRequest's namespace (a pod
// being created may not carry one itself).
Injection PlanInjection(const nlohmann::json& pod, const std::string& pod_namespace,
                        const InjectorOptions& options);

// RFC 6901 escaping of one reference token ("zeroscale.io/x" -> "zeroscale.io~1x").
std::string JsonPointerToken(const std::string& key);

}  // namespace zeroscale::webhook

#endif  // ZEROSCALE_SCALER_WEBHOOK_SIDECAR_PATCH_H_
