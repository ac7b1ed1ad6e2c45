// Internal to zs_kube (included only by its .cc files, so nlohmann stays a private
// dependency): the JSON-object parsers behind types.h, which the client's one list and
// watch code path uses for every resource, and the one list parser they share.
// Pure functions; thread-safe.
#ifndef ZEROSCALE_COMMON_KUBE_JSON_INTERNAL_H_
#define ZEROSCALE_COMMON_KUBE_JSON_INTERNAL_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/kube/types.h"
#include "nlohmann/json.hpp"

namespace zeroscale::kube::internal {

// Parses one object of a resource (a list item or a watch event's object).
template <typename T>
using ObjectDecoder = absl::StatusOr<T> (*)(const nlohmann::json& object);

absl::StatusOr<CustomAutoscaler> CustomAutoscalerFromObject(const nlohmann::json& object);
absl::StatusOr<EndpointSlice> EndpointSliceFromObject(const nlohmann::json& object);
absl::StatusOr<Lease> LeaseFromObject(const nlohmann::json& object);
absl::StatusOr<Pod> PodFromObject(const nlohmann::json& object);
absl::StatusOr<Node> NodeFromObject(const nlohmann::json& object);
absl::StatusOr<AllocationPolicy> AllocationPolicyFromObject(const nlohmann::json& object);

// A list body: metadata.resourceVersion and each of `items` through `decode`.
template <typename T>
absl::StatusOr<ObjectList<T>> ObjectListFromObject(const nlohmann::json& list,
                                                   ObjectDecoder<T> decode) {
  ObjectList<T> out;
  if (!list.is_object()) return absl::InvalidArgumentError("list is not a JSON object");
  auto meta = list.find("metadata");
  if (meta != list.end() && meta->is_object()) {
    auto rv = meta->find("resourceVersion");
    if (rv != meta->end() && !rv->is_null()) {
      if (!rv->is_string()) {
        return absl::InvalidArgumentError("metadata.resourceVersion: must be a string");
      }
      out.resource_version = rv->get<std::string>();
    }
  }
  auto items = list.find("items");
  if (items != list.end() && items->is_array()) {
    out.items.reserve(items->size());
    for (const nlohmann::json& item : *items) {
      absl::StatusOr<T> object = decode(item);
      if (!object.ok()) return object.status();
      out.items.push_back(*std::move(object));
    }
  }
  return out;
}

}  // namespace zeroscale::kube::internal

#endif  // ZEROSCALE_COMMON_KUBE_JSON_INTERNAL_H_
