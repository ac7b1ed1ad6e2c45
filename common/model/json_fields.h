// Typed field access on parsed JSON objects with errors that name the field.
// Internal to common/model; keeps nlohmann out of the public headers.
#ifndef ZEROSCALE_COMMON_MODEL_JSON_FIELDS_H_
#define ZEROSCALE_COMMON_MODEL_JSON_FIELDS_H_

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/json/bounded_json.h"
#include "nlohmann/json.hpp"

namespace zeroscale::json_fields {

inline absl::Status FieldError(const std::string& field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// Each Get* leaves `out` untouched when the field is absent or null.
inline absl::Status GetNumber(const nlohmann::json& obj, const std::string& field, double* out) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number()) return FieldError(field, "must be a number");
  *out = it->get<double>();
  return absl::OkStatus();
}

inline absl::Status GetUint(const nlohmann::json& obj, const std::string& field, uint64_t* out) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (it->is_number_unsigned()) {
    *out = it->get<uint64_t>();
    return absl::OkStatus();
  }
  if (it->is_number_integer()) return FieldError(field, "must not be negative");
  if (it->is_number_float()) {
    const double d = it->get<double>();
    if (std::isfinite(d) && d >= 0 && d == std::floor(d) && d < 1.8e19) {
      *out = static_cast<uint64_t>(d);
      return absl::OkStatus();
    }
  }
  return FieldError(field, "must be a non-negative integer");
}

inline absl::Status GetString(const nlohmann::json& obj, const std::string& field,
                              std::string* out) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return FieldError(field, "must be a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

inline absl::Status GetBool(const nlohmann::json& obj, const std::string& field, bool* out) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) return FieldError(field, "must be true or false");
  *out = it->get<bool>();
  return absl::OkStatus();
}

// Parses a Podmetric or ScalingRule document without throwing, within the limits of
// small documents (common/json); the error quotes the parser's position.
inline absl::Status Parse(absl::string_view text, nlohmann::json* out) {
  return json::ParseJson(text, json::kSmallDocument, out);
}

}  // namespace zeroscale::json_fields

#endif  // ZEROSCALE_COMMON_MODEL_JSON_FIELDS_H_
