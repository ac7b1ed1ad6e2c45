#include "common/model/podmetric.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/model/json_fields.h"
#include "common/model/scaling_rule.h"
#include "common/status/quote.h"
#include "common/status/status_macros.h"
#include "common/time/clock.h"
#include "nlohmann/json.hpp"

namespace zeroscale {
namespace {

using json_fields::FieldError;

absl::Status CheckValue(const char* field, double v) {
  if (std::isnan(v)) return FieldError(field, "must be a number, not NaN");
  if (std::isinf(v)) return FieldError(field, "must be finite");
  if (v < 0) return FieldError(field, absl::StrCat("must not be negative (got ", v, ")"));
  return absl::OkStatus();
}

absl::Status CheckName(const char* field, const std::string& v, size_t max) {
  if (v.size() > max) {
    return FieldError(field, absl::StrCat("is ", v.size(), " bytes, longer than ", max));
  }
  for (unsigned char c : v) {
    if (c <= ' ' || c == 0x7f) {
      return FieldError(field, "must not contain spaces or control characters");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPercent(const char* field, const std::optional<double>& v) {
  if (!v.has_value()) return absl::OkStatus();
  ZS_RETURN_IF_ERROR(CheckValue(field, *v));
  if (*v > 100) return FieldError(field, absl::StrCat("is a percentage, got ", *v));
  return absl::OkStatus();
}

absl::Status CheckAppMetrics(const std::map<std::string, double>& metrics) {
  if (metrics.size() > kMaxAppMetrics) {
    return FieldError(
        "appMetrics",
        absl::StrCat("holds ", metrics.size(), " series, more than the limit of ", kMaxAppMetrics));
  }
  for (const auto& [name, value] : metrics) {
    if (!IsAppMetricName(name)) {
      return FieldError("appMetrics", absl::StrCat(Quote(name),
                                                   " is not a Prometheus series name "
                                                   "([a-zA-Z_:][a-zA-Z0-9_:]*, at most ",
                                                   kMaxAppMetricNameLength, " bytes)"));
    }
    if (!std::isfinite(value)) {
      return FieldError("appMetrics", absl::StrCat(name, " must be finite"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool Podmetric::operator==(const Podmetric& o) const {
  return id == o.id && cpu_usage == o.cpu_usage && memory_usage == o.memory_usage &&
         disk_usage == o.disk_usage && average_response_time == o.average_response_time &&
         received_at == o.received_at && workload == o.workload &&
         request_count == o.request_count && request_rate == o.request_rate &&
         in_flight == o.in_flight && p99_response_time == o.p99_response_time &&
         cpu_cores == o.cpu_cores && memory_bytes == o.memory_bytes && disk_bytes == o.disk_bytes &&
         disk_read_bytes_per_second == o.disk_read_bytes_per_second &&
         disk_write_bytes_per_second == o.disk_write_bytes_per_second &&
         sampled_at == o.sampled_at && ready == o.ready && seq == o.seq && dropped == o.dropped &&
         address == o.address && gpu_usage == o.gpu_usage &&
         gpu_memory_usage == o.gpu_memory_usage && gpu_memory_bytes == o.gpu_memory_bytes &&
         app_metrics == o.app_metrics;
}

absl::Status ValidatePodmetric(const Podmetric& m, absl::Time now) {
  if (m.id.empty()) return FieldError("id", "must not be empty");
  ZS_RETURN_IF_ERROR(CheckName("id", m.id, kMaxPodIdLength));
  ZS_RETURN_IF_ERROR(CheckName("workload", m.workload, 2 * kMaxPodIdLength));
  if (!m.workload.empty() && std::count(m.workload.begin(), m.workload.end(), '/') != 2) {
    return FieldError("workload", absl::StrCat("must look like <namespace>/<kind>/<name>, got ",
                                               Quote(m.workload)));
  }
  ZS_RETURN_IF_ERROR(CheckValue("cpuUsage", m.cpu_usage));
  ZS_RETURN_IF_ERROR(CheckValue("memoryUsage", m.memory_usage));
  ZS_RETURN_IF_ERROR(CheckValue("diskUsage", m.disk_usage));
  ZS_RETURN_IF_ERROR(CheckValue("averageResponseTime", m.average_response_time));
  ZS_RETURN_IF_ERROR(CheckValue("requestRate", m.request_rate));
  ZS_RETURN_IF_ERROR(CheckValue("inFlight", m.in_flight));
  ZS_RETURN_IF_ERROR(CheckValue("p99ResponseTime", m.p99_response_time));
  ZS_RETURN_IF_ERROR(CheckValue("cpuCores", m.cpu_cores));
  ZS_RETURN_IF_ERROR(CheckValue("memoryBytes", m.memory_bytes));
  ZS_RETURN_IF_ERROR(CheckValue("diskBytes", m.disk_bytes));
  ZS_RETURN_IF_ERROR(CheckValue("diskReadBytesPerSecond", m.disk_read_bytes_per_second));
  ZS_RETURN_IF_ERROR(CheckValue("diskWriteBytesPerSecond", m.disk_write_bytes_per_second));
  if (!m.address.empty()) {
    const size_t colon = m.address.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(absl::string_view(m.address).substr(colon + 1), &port) || port < 1 ||
        port > 65535 || m.address.size() > 262) {
      return FieldError("address",
                        absl::StrCat("must look like HOST:PORT, got ", Quote(m.address)));
    }
    ZS_RETURN_IF_ERROR(CheckName("address", m.address, 262));
  }
  ZS_RETURN_IF_ERROR(CheckPercent("gpuUsage", m.gpu_usage));
  ZS_RETURN_IF_ERROR(CheckPercent("gpuMemoryUsage", m.gpu_memory_usage));
  if (m.gpu_memory_bytes.has_value()) {
    ZS_RETURN_IF_ERROR(CheckValue("gpuMemoryBytes", *m.gpu_memory_bytes));
  }
  ZS_RETURN_IF_ERROR(CheckAppMetrics(m.app_metrics));
  if (m.sampled_at != absl::InfinitePast() && m.sampled_at > now + kMaxClockSkew) {
    return FieldError("sampledAt", absl::StrCat("is in the future (", FormatRfc3339(m.sampled_at),
                                                " > now ", FormatRfc3339(now), ")"));
  }
  return absl::OkStatus();
}

std::string FieldOfError(const absl::Status& status) {
  const absl::string_view msg = status.message();
  const size_t colon = msg.find(':');
  if (colon == absl::string_view::npos) return "";
  const absl::string_view field = msg.substr(0, colon);
  for (char c : field) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '[' && c != ']' && c != '.') {
      return "";
    }
  }
  return std::string(field);
}

std::string PodmetricToJson(const Podmetric& m) {
  nlohmann::ordered_json j;
  j["id"] = m.id;
  j["cpuUsage"] = m.cpu_usage;
  j["memoryUsage"] = m.memory_usage;
  j["diskUsage"] = m.disk_usage;
  j["averageResponseTime"] = m.average_response_time;
  j["receivedAt"] = FormatRfc3339(m.received_at);
  if (!m.workload.empty()) j["workload"] = m.workload;
  j["requestCount"] = m.request_count;
  j["requestRate"] = m.request_rate;
  j["inFlight"] = m.in_flight;
  j["p99ResponseTime"] = m.p99_response_time;
  if (m.cpu_cores != 0) j["cpuCores"] = m.cpu_cores;
  if (m.memory_bytes != 0) j["memoryBytes"] = m.memory_bytes;
  if (m.disk_bytes != 0) j["diskBytes"] = m.disk_bytes;
  if (m.disk_read_bytes_per_second != 0) {
    j["diskReadBytesPerSecond"] = m.disk_read_bytes_per_second;
  }
  if (m.disk_write_bytes_per_second != 0) {
    j["diskWriteBytesPerSecond"] = m.disk_write_bytes_per_second;
  }
  if (m.sampled_at != absl::InfinitePast()) j["sampledAt"] = FormatRfc3339(m.sampled_at);
  j["ready"] = m.ready;
  if (m.seq != 0) j["seq"] = m.seq;
  if (m.dropped != 0) j["dropped"] = m.dropped;
  if (!m.address.empty()) j["address"] = m.address;
  if (m.gpu_usage.has_value()) j["gpuUsage"] = *m.gpu_usage;
  if (m.gpu_memory_usage.has_value()) j["gpuMemoryUsage"] = *m.gpu_memory_usage;
  if (m.gpu_memory_bytes.has_value()) j["gpuMemoryBytes"] = *m.gpu_memory_bytes;
  if (!m.app_metrics.empty()) {
    nlohmann::ordered_json app = nlohmann::ordered_json::object();
    for (const auto& [name, value] : m.app_metrics) app[name] = value;
    j["appMetrics"] = std::move(app);
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

absl::Status GetTime(const nlohmann::json& obj, const std::string& field, absl::Time* out) {
  std::string text;
  ZS_RETURN_IF_ERROR(json_fields::GetString(obj, field, &text));
  if (text.empty()) return absl::OkStatus();
  absl::StatusOr<absl::Time> t = ParseRfc3339(text);
  if (!t.ok()) return FieldError(field, t.status().message());
  *out = *t;
  return absl::OkStatus();
}

absl::Status GetOptionalNumber(const nlohmann::json& obj, const std::string& field,
                               std::optional<double>* out) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  double v = 0;
  ZS_RETURN_IF_ERROR(json_fields::GetNumber(obj, field, &v));
  *out = v;
  return absl::OkStatus();
}

// Reads at most kMaxAppMetrics + 1 series, so validation can name an oversized map
// without this copying all of it.
absl::Status GetAppMetrics(const nlohmann::json& obj, std::map<std::string, double>* out) {
  auto it = obj.find("appMetrics");
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_object()) return FieldError("appMetrics", "must be an object of numbers");
  for (auto e = it->begin(); e != it->end() && out->size() <= kMaxAppMetrics; ++e) {
    if (!e.value().is_number()) {
      return FieldError("appMetrics", absl::StrCat(Quote(e.key()), " must be a number"));
    }
    (*out)[e.key()] = e.value().get<double>();
  }
  return absl::OkStatus();
}

absl::StatusOr<Podmetric> FromObject(const nlohmann::json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("a Podmetric must be a JSON object");
  using json_fields::GetBool;
  using json_fields::GetNumber;
  using json_fields::GetString;
  using json_fields::GetUint;
  Podmetric m;
  ZS_RETURN_IF_ERROR(GetString(j, "id", &m.id));
  ZS_RETURN_IF_ERROR(GetNumber(j, "cpuUsage", &m.cpu_usage));
  ZS_RETURN_IF_ERROR(GetNumber(j, "memoryUsage", &m.memory_usage));
  ZS_RETURN_IF_ERROR(GetNumber(j, "diskUsage", &m.disk_usage));
  ZS_RETURN_IF_ERROR(GetNumber(j, "averageResponseTime", &m.average_response_time));
  ZS_RETURN_IF_ERROR(GetTime(j, "receivedAt", &m.received_at));
  ZS_RETURN_IF_ERROR(GetString(j, "workload", &m.workload));
  ZS_RETURN_IF_ERROR(GetUint(j, "requestCount", &m.request_count));
  ZS_RETURN_IF_ERROR(GetNumber(j, "requestRate", &m.request_rate));
  ZS_RETURN_IF_ERROR(GetNumber(j, "inFlight", &m.in_flight));
  ZS_RETURN_IF_ERROR(GetNumber(j, "p99ResponseTime", &m.p99_response_time));
  ZS_RETURN_IF_ERROR(GetNumber(j, "cpuCores", &m.cpu_cores));
  ZS_RETURN_IF_ERROR(GetNumber(j, "memoryBytes", &m.memory_bytes));
  ZS_RETURN_IF_ERROR(GetNumber(j, "diskBytes", &m.disk_bytes));
  ZS_RETURN_IF_ERROR(GetNumber(j, "diskReadBytesPerSecond", &m.disk_read_bytes_per_second));
  ZS_RETURN_IF_ERROR(GetNumber(j, "diskWriteBytesPerSecond", &m.disk_write_bytes_per_second));
  ZS_RETURN_IF_ERROR(GetTime(j, "sampledAt", &m.sampled_at));
  ZS_RETURN_IF_ERROR(GetBool(j, "ready", &m.ready));
  ZS_RETURN_IF_ERROR(GetUint(j, "seq", &m.seq));
  ZS_RETURN_IF_ERROR(GetUint(j, "dropped", &m.dropped));
  ZS_RETURN_IF_ERROR(GetString(j, "address", &m.address));
  ZS_RETURN_IF_ERROR(GetOptionalNumber(j, "gpuUsage", &m.gpu_usage));
  ZS_RETURN_IF_ERROR(GetOptionalNumber(j, "gpuMemoryUsage", &m.gpu_memory_usage));
  ZS_RETURN_IF_ERROR(GetOptionalNumber(j, "gpuMemoryBytes", &m.gpu_memory_bytes));
  ZS_RETURN_IF_ERROR(GetAppMetrics(j, &m.app_metrics));
  return m;
}

}  // namespace

absl::StatusOr<Podmetric> PodmetricFromJson(absl::string_view json) {
  nlohmann::json j;
  ZS_RETURN_IF_ERROR(json_fields::Parse(json, &j));
  return FromObject(j);
}

absl::StatusOr<std::vector<Podmetric>> PodmetricsFromJsonBody(absl::string_view body,
                                                              size_t max_items) {
  nlohmann::json j;
  ZS_RETURN_IF_ERROR(json_fields::Parse(body, &j));
  std::vector<Podmetric> out;
  if (j.is_array() && j.size() > max_items) {
    return absl::ResourceExhaustedError(absl::StrCat("body: an array of ", j.size(),
                                                     " samples, more than the limit of ", max_items,
                                                     " per request"));
  }
  if (!j.is_array()) {
    ZS_ASSIGN_OR_RETURN(Podmetric m, FromObject(j));
    out.push_back(std::move(m));
    return out;
  }
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    absl::StatusOr<Podmetric> m = FromObject(j[i]);
    if (!m.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("[", i, "].", m.status().message()));
    }
    out.push_back(*std::move(m));
  }
  return out;
}

}  // namespace zeroscale
