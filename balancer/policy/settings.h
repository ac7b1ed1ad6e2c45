// The balancer's settings per environment (seed 004's loadbalancer_settings table):
// policy, max_connections (per workload), timeout_seconds (upstream), updated_at. JSON
// field names are the table's column names. Plain values; thread-compatible.
#ifndef ZEROSCALE_BALANCER_POLICY_SETTINGS_H_
#define ZEROSCALE_BALANCER_POLICY_SETTINGS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "balancer/policy/policy.h"

namespace zeroscale::balancer {

inline constexpr char kDefaultEnvironment[] = "default";
inline constexpr int64_t kMaxMaxConnections = 1000000;
inline constexpr int64_t kMaxTimeoutSeconds = 86400;

struct Settings {
  std::string environment = kDefaultEnvironment;
  Policy policy = Policy::kRoundRobin;
  int64_t max_connections = 1000;
  int64_t timeout_seconds = 60;
  absl::Time updated_at = absl::UnixEpoch();

  bool operator==(const Settings& o) const {
    return environment == o.environment && policy == o.policy &&
           max_connections == o.max_connections && timeout_seconds == o.timeout_seconds &&
           updated_at == o.updated_at;
  }
};

// {"environment", "policy", "max_connections", "timeout_seconds", "updated_at"}.
std::string SettingsToJson(const Settings& s);

// Validates an environment name: 1..50 characters (the table's VARCHAR(50)) of
// [A-Za-z0-9._-], since it becomes part of a Redis key.
absl::Status ValidateEnvironment(absl::string_view environment);

// A PUT body: the fields it sets, each validated.
struct SettingsPatch {
  std::optional<std::string> environment;
  std::optional<Policy> policy;
  std::optional<int64_t> max_connections;
  std::optional<int64_t> timeout_seconds;
};

// Parses a PUT body (a JSON object within common/json's limits for small documents).
// Errors are kInvalidArgument with a message that starts with the offending field's name
// ("policy: ...", "max_connections: ...", "body: ..."); an oversized body is
// kResourceExhausted.
absl::StatusOr<SettingsPatch> ParseSettingsPatch(absl::string_view body);

// `current` with the fields `patch` sets replaced.
Settings ApplySettingsPatch(const SettingsPatch& patch, const Settings& current);

// Applies a PUT body to `current`: fields present replace the current values, absent
// ones keep them; `updated_at` in the body is ignored (the server sets it). Errors are
// kInvalidArgument with a message that starts with the offending field's name
// ("policy: ...", "max_connections: ...") so clients can point at it.
absl::StatusOr<Settings> ApplySettingsJson(absl::string_view body, const Settings& current);

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_POLICY_SETTINGS_H_
