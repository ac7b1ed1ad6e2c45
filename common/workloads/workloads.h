// The workloads file of the local backend (SPEC.md sections 8 and 9): which commands to
// run as replicas, their bounds and rules, and each workload's route for the balancer.
// YAML or JSON (JSON is valid YAML). Every error names the file, the workload and the
// field, and unknown keys are errors so that a typo does not silently fall back to a
// default. Pure functions over immutable data; thread-safe.
#ifndef ZEROSCALE_COMMON_WORKLOADS_WORKLOADS_H_
#define ZEROSCALE_COMMON_WORKLOADS_WORKLOADS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/model/keep_alive.h"
#include "common/model/scaling_rule.h"

namespace zeroscale::workloads {

// Replaced in `command` arguments and `env` values by the replica's app port.
inline constexpr absl::string_view kPortPlaceholder = "{port}";
// Workloads of the local backend live in this namespace with this kind.
inline constexpr absl::string_view kNamespace = "local";
inline constexpr absl::string_view kKind = "Deployment";
// A local machine runs processes, not a cluster: more is almost certainly a typo.
inline constexpr int32_t kMaxReplicasLimit = 1000;

struct Route {
  std::string host;         // matched against the Host header (port ignored); may be empty
  std::string path_prefix;  // "/demo-model"; may be empty
  bool operator==(const Route& o) const { return host == o.host && path_prefix == o.path_prefix; }
};

// What the sidecar scrapes from the app (its --app-metrics-* flags).
struct AppMetrics {
  std::string path;    // "/metrics" when not given
  std::string preset;  // "", "vllm", "tgi" or "triton"
  std::string series;  // comma-separated extra series
};

struct Workload {
  std::string name;  // DNS label: "demo-model"
  std::string id;    // "local/Deployment/demo-model", the target of its rules
  // argv of one replica; "{port}" anywhere in an argument becomes the app port.
  std::vector<std::string> command;
  uint16_t port = 0;  // 0: a free port per replica
  int32_t min_replicas = 0;
  int32_t max_replicas = 1;
  absl::Duration idle_timeout = absl::ZeroDuration();  // zero: no idle scale-to-zero
  KeepAliveConfig keep_alive;                          // keepAlive: {policy: ...}
  std::optional<Route> route;                          // absent: the balancer skips it
  std::vector<ScalingRule> rules;                      // every target is `id`
  // Optional.
  std::string readiness_path;  // HTTP GET path the sidecar probes; empty: TCP connect
  std::optional<absl::Duration> activation_timeout;  // how long the balancer holds
  std::map<std::string, std::string> env;            // added to the inherited environment
  std::string working_dir;                           // empty: the scaler's
  std::optional<absl::Duration> stop_grace;          // SIGTERM -> SIGKILL; empty: default
  std::optional<AppMetrics> metrics;                 // the sidecar scrapes the app's /metrics
};

// "local/Deployment/<name>".
std::string WorkloadId(absl::string_view name);

// Parses and validates the file's text. `source` names the file in errors
// ("workloads.yaml: workloads[0] (demo-model): maxReplicas must be >= minReplicas").
// kInvalidArgument on any error.
absl::StatusOr<std::vector<Workload>> ParseWorkloads(absl::string_view text,
                                                     absl::string_view source);

// Reads and parses `path`. kFailedPrecondition when the file cannot be read (the
// operator must fix the flag); kInvalidArgument when its content is wrong.
absl::StatusOr<std::vector<Workload>> LoadWorkloadsFile(const std::string& path);

// The workload whose name or id is `name_or_id`, or null.
const Workload* FindWorkload(const std::vector<Workload>& workloads, absl::string_view name_or_id);

}  // namespace zeroscale::workloads

#endif  // ZEROSCALE_COMMON_WORKLOADS_WORKLOADS_H_
