// What the kubelet stand-in computes from a stored Pod before starting a container, as
// the real kubelet does: resource quantities ("500m", "1Gi"), the Downward API
// (fieldRef, resourceFieldRef), env and envFrom with $(VAR) expansion, and the command
// line from the image table (ENTRYPOINT/CMD against the container's command/args).
// No I/O: ConfigMaps and Secrets come through a lookup the caller provides.
//
// Thread-safety: pure functions.
#ifndef ZEROSCALE_TESTS_TESTING_CONTAINER_SPEC_H_
#define ZEROSCALE_TESTS_TESTING_CONTAINER_SPEC_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace zeroscale::testing {

// An image of the kubelet stand-in's table: a local program standing for it.
struct ContainerImage {
  // ENTRYPOINT: the program (path, or name found in PATH) and its first arguments; used
  // when the container gives no `command`.
  std::vector<std::string> entrypoint;
  // CMD: the arguments when the container gives neither `command` nor `args`.
  std::vector<std::string> cmd;
  // ENV of the image; containers get PATH=/usr/local/sbin:...:/bin unless set here.
  std::vector<std::pair<std::string, std::string>> env;
  std::string working_dir;  // "" : /
};

// A resource quantity in base units (cores, bytes, count): "500m" -> 0.5, "1Gi" ->
// 1073741824, "2" -> 2, "1e3" -> 1000. kInvalidArgument otherwise.
absl::StatusOr<double> ParseQuantity(absl::string_view text);

// Kubernetes' $(VAR) expansion: $(NAME) becomes `lookup(NAME)` when defined and stays as
// written otherwise; $$ is a literal $.
std::string ExpandVars(absl::string_view in,
                       const std::function<std::optional<std::string>(const std::string&)>& lookup);

// Where the values of the Downward API and env references come from.
struct PodContext {
  const nlohmann::json* pod = nullptr;  // as stored, bound to the node
  std::string pod_ip;                   // status.podIP as the kubelet will report it
  std::string host_ip;
  std::string node_name;
  // Node allocatable, the value of a resource with no limit ("cpu" -> "8").
  std::map<std::string, std::string> node_allocatable;
  // A ConfigMap's (kind "ConfigMap") or Secret's (kind "Secret", values decoded) data;
  // kNotFound when the object does not exist.
  std::function<absl::StatusOr<std::map<std::string, std::string>>(const std::string& kind,
                                                                   const std::string& name)>
      lookup_data;
};

// A fieldRef's value: metadata.name, .namespace, .uid, .labels['k'], .annotations['k'],
// spec.nodeName, spec.serviceAccountName, status.podIP, status.podIPs, status.hostIP.
absl::StatusOr<std::string> FieldRefValue(const PodContext& ctx, absl::string_view field_path);

// A resourceFieldRef's value for `container_name` (the ref's containerName wins):
// limits.cpu / requests.cpu / limits.memory / requests.memory / limits and requests of
// ephemeral-storage, divided by the divisor and rounded up; a missing limit is the
// node's allocatable, a missing request is 0 (as the kubelet does).
absl::StatusOr<std::string> ResourceFieldRefValue(const PodContext& ctx,
                                                  const std::string& container_name,
                                                  const nlohmann::json& ref);

// The container's environment: `base` (image ENV and the service variables) overridden
// by envFrom, then env in order, each value $(VAR)-expanded with what is defined before
// it (base included). kInvalidArgument / kNotFound naming the variable when a reference
// cannot be resolved and is not optional.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ContainerEnv(
    const PodContext& ctx, const nlohmann::json& container,
    const std::vector<std::pair<std::string, std::string>>& base);

// The command line: command and args from the container (both $(VAR)-expanded with
// `env`) against the image's ENTRYPOINT and CMD, as Kubernetes combines them.
// kInvalidArgument when nothing names a program.
absl::StatusOr<std::vector<std::string>> ContainerCommand(
    const nlohmann::json& container, const ContainerImage& image,
    const std::vector<std::pair<std::string, std::string>>& env);

// The image table entry for `image`: exact, else without its tag or digest.
const ContainerImage* FindImage(const std::map<std::string, ContainerImage>& images,
                                const std::string& image);

// Sum of the containers' requests (init containers: the largest of each), in base
// units; requests default to limits as the API server stores them.
std::map<std::string, double> PodRequests(const nlohmann::json& pod);

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_CONTAINER_SPEC_H_
