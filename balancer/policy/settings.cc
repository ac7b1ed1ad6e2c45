#include "balancer/policy/settings.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/json/bounded_json.h"
#include "common/status/quote.h"
#include "common/time/clock.h"
#include "nlohmann/json.hpp"

namespace zeroscale::balancer {
namespace {

using nlohmann::json;

// A positive integer up to `max`. A value of another type is described by its type
// alone: it may be any JSON (say, arrays nested as deep as the parser allows), and the
// error must not render it back.
absl::StatusOr<int64_t> PositiveInt(const json& v, absl::string_view field, int64_t max) {
  const auto error = [&](absl::string_view got) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be a positive integer up to ", max, ", got ", got));
  };
  if (v.is_number_unsigned()) {
    const uint64_t n = v.get<uint64_t>();
    if (n == 0) return error("0");
    if (n > static_cast<uint64_t>(max)) return error(absl::StrCat(n));
    return static_cast<int64_t>(n);
  }
  if (v.is_number_integer()) {
    const int64_t n = v.get<int64_t>();
    if (n <= 0 || n > max) return error(absl::StrCat(n));
    return n;
  }
  if (v.is_number_float()) return error(absl::StrCat(v.get<double>()));
  return error(absl::StrCat("a JSON ", v.type_name()));
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
          "environment: only letters, digits, '.', '_' and '-' are allowed, got ", Quote(env)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SettingsPatch> ParseSettingsPatch(absl::string_view body) {
  json j;
  if (absl::Status s = zeroscale::json::ParseJson(body, zeroscale::json::kSmallDocument, &j);
      !s.ok()) {
    return s;
  }
  if (!j.is_object()) return absl::InvalidArgumentError("body: must be a JSON object");
  SettingsPatch patch;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (key == "environment") {
      if (!v.is_string()) return absl::InvalidArgumentError("environment: must be a string");
      const std::string& env = v.get_ref<const std::string&>();
      if (absl::Status st = ValidateEnvironment(env); !st.ok()) return st;
      patch.environment = env;
    } else if (key == "policy") {
      const std::optional<Policy> p =
          v.is_string() ? ParsePolicy(v.get_ref<const std::string&>()) : std::nullopt;
      if (!p) {
        return absl::InvalidArgumentError(
            absl::StrCat("policy: must be one of round_robin, least_connections, random, got ",
                         v.is_string() ? Quote(v.get_ref<const std::string&>())
                                       : absl::StrCat("a JSON ", v.type_name())));
      }
      patch.policy = *p;
    } else if (key == "max_connections") {
      absl::StatusOr<int64_t> n = PositiveInt(v, key, kMaxMaxConnections);
      if (!n.ok()) return n.status();
      patch.max_connections = *n;
    } else if (key == "timeout_seconds") {
      absl::StatusOr<int64_t> n = PositiveInt(v, key, kMaxTimeoutSeconds);
      if (!n.ok()) return n.status();
      patch.timeout_seconds = *n;
    } else if (key == "updated_at" || key == "id") {
      // Set by the server; accepted so a GET answer can be sent back as is.
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(Shorten(key),
                       ": unknown field; expected environment, policy, max_connections, "
                       "timeout_seconds"));
    }
  }
  return patch;
}

Settings ApplySettingsPatch(const SettingsPatch& patch, const Settings& current) {
  Settings s = current;
  if (patch.environment) s.environment = *patch.environment;
  if (patch.policy) s.policy = *patch.policy;
  if (patch.max_connections) s.max_connections = *patch.max_connections;
  if (patch.timeout_seconds) s.timeout_seconds = *patch.timeout_seconds;
  return s;
}

absl::StatusOr<Settings> ApplySettingsJson(absl::string_view body, const Settings& current) {
  absl::StatusOr<SettingsPatch> patch = ParseSettingsPatch(body);
  if (!patch.ok()) return patch.status();
  return ApplySettingsPatch(*patch, current);
}

}  // namespace zeroscale::balancer
