// The Podmetric domain type (SPEC.md section 2): validation and its JSON mapping,
// with the spec's exact field names and a deterministic serialisation, so writing the
// same sample twice yields the same Redis member. Pure functions; thread-safe.
#ifndef ZEROSCALE_COMMON_MODEL_PODMETRIC_H_
#define ZEROSCALE_COMMON_MODEL_PODMETRIC_H_

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace zeroscale {

struct Podmetric {
  std::string id;  // <namespace>/<pod name>
  double cpu_usage = 0;
  double memory_usage = 0;
  double disk_usage = 0;
  double average_response_time = 0;
  absl::Time received_at = absl::UnixEpoch();

  // Extensions; zero values are omitted from JSON except where noted.
  std::string workload;  // <namespace>/<kind>/<name>
  uint64_t request_count = 0;
  double request_rate = 0;
  double in_flight = 0;
  double p99_response_time = 0;
  double cpu_cores = 0;
  double memory_bytes = 0;
  double disk_bytes = 0;
  double disk_read_bytes_per_second = 0;
  double disk_write_bytes_per_second = 0;
  absl::Time sampled_at = absl::InfinitePast();  // InfinitePast: not set
  bool ready = false;
  uint64_t seq = 0;      // 0: not set
  uint64_t dropped = 0;  // samples the sidecar dropped before this one
  std::string address;   // host:port of the pod's sidecar proxy; empty: not announced
  // GPUs the pod's processes use (NVML); absent where the node has no GPU or no NVML,
  // so "no GPU data" is never read as an idle GPU.
  std::optional<double> gpu_usage;         // percent of compute
  std::optional<double> gpu_memory_usage;  // percent of the GPUs' memory
  std::optional<double> gpu_memory_bytes;
  // Series scraped from the model server's Prometheus endpoint, by series name (at most
  // kMaxAppMetrics; a series missing from a scrape is absent, never 0). Ordered, so the
  // JSON stays deterministic.
  std::map<std::string, double> app_metrics;

  bool operator==(const Podmetric& o) const;
};

inline constexpr size_t kMaxPodIdLength = 317;  // 63 (namespace) + 1 + 253 (name)
inline constexpr size_t kMaxAppMetrics = 64;
// How far in the future a sampledAt may lie before the sample is refused.
inline constexpr absl::Duration kMaxClockSkew = absl::Minutes(5);

// Checks the spec's rules: finite, non-negative values, a sane id, no timestamp
// far in the future, GPU percentages within 0..100, at most kMaxAppMetrics appMetrics
// with Prometheus series names and finite values (which may be negative: gauges). The error
// (kInvalidArgument) starts with the JSON field name.
absl::Status ValidatePodmetric(const Podmetric& m, absl::Time now);

// The JSON field a validation error is about ("cpuUsage"), or "" when unknown.
std::string FieldOfError(const absl::Status& status);

// Deterministic JSON: fixed field order, seed fields always present, extensions
// present when set (ready always, since false is meaningful).
std::string PodmetricToJson(const Podmetric& m);

// Parses one JSON object. Unknown fields are ignored (forward compatibility); a field
// of the wrong type is an error naming it. Values are not range-checked here.
absl::StatusOr<Podmetric> PodmetricFromJson(absl::string_view json);

// Parses a POST /metrics body: one object or an array of them. Fails on the first
// malformed item, naming its index; an array of more than `max_items` is
// kResourceExhausted before any item is converted.
absl::StatusOr<std::vector<Podmetric>> PodmetricsFromJsonBody(
    absl::string_view body, size_t max_items = std::numeric_limits<size_t>::max());

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_MODEL_PODMETRIC_H_
