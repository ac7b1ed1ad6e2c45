// Reading fields of Kubernetes objects held as nlohmann JSON, where a field may be
// missing or of another type: no exceptions, an empty value instead.
//
// Thread-safety: pure functions.
#ifndef ZEROSCALE_TESTS_TESTING_JSON_FIELDS_H_
#define ZEROSCALE_TESTS_TESTING_JSON_FIELDS_H_

#include <string>

#include "nlohmann/json.hpp"

namespace zeroscale::testing {

// j[key], or null when `j` is not an object or has no such key.
inline const nlohmann::json& JsonAt(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}

// j[key] as a string; "" when missing or not a string.
inline std::string JsonStr(const nlohmann::json& j, const char* key) {
  const nlohmann::json& v = JsonAt(j, key);
  return v.is_string() ? v.get<std::string>() : "";
}

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_JSON_FIELDS_H_
