// YAML to JSON for Kubernetes manifests written in tests: one document or a stream of
// them ("---"), each a JSON value as the API server would read it. Scalars resolve as
// sigs.k8s.io/yaml does for what manifests use: plain true/false/yes/no/on/off are
// booleans, plain ~/null/empty are null, plain integers and floats are numbers, quoted
// scalars and everything else are strings. Anchors and aliases resolve; merge keys
// ("<<") are not supported.
//
// Thread-safety: pure functions.
#ifndef ZEROSCALE_TESTS_TESTING_YAML_JSON_H_
#define ZEROSCALE_TESTS_TESTING_YAML_JSON_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace zeroscale::testing {

// Exactly one document (JSON is YAML, so JSON text works too). kInvalidArgument with
// yaml-cpp's line and column when it does not parse, or when the text holds several
// documents.
absl::StatusOr<nlohmann::json> YamlToJson(absl::string_view yaml);

// Every non-empty document of a stream, in order.
absl::StatusOr<std::vector<nlohmann::json>> YamlDocumentsToJson(absl::string_view yaml);

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_YAML_JSON_H_
