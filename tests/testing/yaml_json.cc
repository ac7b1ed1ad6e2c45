#include "tests/testing/yaml_json.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "yaml-cpp/yaml.h"

namespace zeroscale::testing {
namespace {

using json = nlohmann::json;

bool IsNull(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// YAML 1.1 booleans as go-yaml reads them (the one-letter y/n forms excepted: they are
// far more often meant as strings).
int BoolValue(const std::string& s) {
  static const char* const kTrue[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
  static const char* const kFalse[] = {"false", "False", "FALSE", "no", "No",
                                       "NO",    "off",   "Off",   "OFF"};
  for (const char* t : kTrue) {
    if (s == t) return 1;
  }
  for (const char* f : kFalse) {
    if (s == f) return 0;
  }
  return -1;
}

bool LooksNumeric(const std::string& s) {
  if (s.empty()) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i >= s.size()) return false;
  // "1_000", "0x1F", dates and versions stay strings unless strtod/strtoll take them whole.
  return absl::ascii_isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.';
}

json Scalar(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted: always a string
  if (IsNull(s)) return nullptr;
  if (const int b = BoolValue(s); b >= 0) return b == 1;
  if (LooksNumeric(s)) {
    int64_t i;
    if (absl::SimpleAtoi(s, &i)) return i;
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (end == s.c_str() + s.size() && std::isfinite(d)) return d;
  }
  if (s == ".inf" || s == ".Inf" || s == "+.inf") return std::numeric_limits<double>::infinity();
  return s;
}

json Convert(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return Scalar(node);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : node) out.push_back(Convert(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = Convert(kv.second);
      return out;
    }
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<std::vector<nlohmann::json>> YamlDocumentsToJson(absl::string_view yaml) {
  std::vector<json> out;
  try {
    for (const YAML::Node& doc : YAML::LoadAll(std::string(yaml))) {
      json j = Convert(doc);
      if (!j.is_null()) out.push_back(std::move(j));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("YAML does not parse: ", e.what()));
  }
  return out;
}

absl::StatusOr<nlohmann::json> YamlToJson(absl::string_view yaml) {
  absl::StatusOr<std::vector<json>> docs = YamlDocumentsToJson(yaml);
  if (!docs.ok()) return docs.status();
  if (docs->size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected one YAML document, found ", docs->size()));
  }
  return docs->empty() ? json(nullptr) : std::move(docs->front());
}

}  // namespace zeroscale::testing
