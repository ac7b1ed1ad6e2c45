#include "balancer/policy/settings.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/time/clock.h"
#include "nlohmann/json.hpp"

namespace zeroscale::balancer {
namespace {

using nlohmann::json;

absl::StatusOr<int64_t> PositiveInt(const json& v, absl::string_view field, int64_t max) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) {
    if (v.is_number_float() && v.get<double>() <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": must be a positive integer, got ", v.dump()));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be a positive integer, got ", v.dump()));
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(max)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be at most ", max));
  }
  const int64_t n = v.get<int64_t>();
  if (n <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be a positive integer, got ", n));
  }
  if (n > max) return absl::InvalidArgumentError(absl::StrCat(field, ": must be at most ", max));
  return n;
}

}  // namespace

std::string SettingsToJson(const Settings& s) {
  json j = {{"environment", s.environment},
            {"policy", std::string(PolicyName(s.policy))},
            {"max_connections", s.max_connections},
            {"timeout_seconds", s.timeout_seconds},
            {"updated_at", FormatRfc3339(s.updated_at)}};
  return j.dump();
}

absl::Status ValidateEnvironment(absl::string_view env) {
  if (env.empty() || env.size() > 50) {
    return absl::InvalidArgumentError("environment: must be 1 to 50 characters");
  }
  for (char c : env) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment: only letters, digits, '.', '_' and '-' are allowed, got \"", env, "\""));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Settings> ApplySettingsJson(absl::string_view body, const Settings& current) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("body: not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("body: must be a JSON object");
  Settings s = current;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (key == "environment") {
      if (!v.is_string()) return absl::InvalidArgumentError("environment: must be a string");
      const std::string env = v.get<std::string>();
      if (absl::Status st = ValidateEnvironment(env); !st.ok()) return st;
      s.environment = env;
    } else if (key == "policy") {
      if (!v.is_string()) {
        return absl::InvalidArgumentError(
            "policy: must be one of round_robin, least_connections, random");
      }
      const std::optional<Policy> p = ParsePolicy(v.get<std::string>());
      if (!p) {
        return absl::InvalidArgumentError(
            absl::StrCat("policy: unknown policy \"", v.get<std::string>(),
                         "\"; expected round_robin, least_connections or random"));
      }
      s.policy = *p;
    } else if (key == "max_connections") {
      absl::StatusOr<int64_t> n = PositiveInt(v, key, kMaxMaxConnections);
      if (!n.ok()) return n.status();
      s.max_connections = *n;
    } else if (key == "timeout_seconds") {
      absl::StatusOr<int64_t> n = PositiveInt(v, key, kMaxTimeoutSeconds);
      if (!n.ok()) return n.status();
      s.timeout_seconds = *n;
    } else if (key == "updated_at" || key == "id") {
      // Set by the server; accepted so a GET answer can be sent back as is.
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(key,
                       ": unknown field; expected environment, policy, max_connections, "
                       "timeout_seconds"));
    }
  }
  return s;
}

}  // namespace zeroscale::balancer
