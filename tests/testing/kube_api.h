// A Kubernetes REST client for tests, over the project's kube::Transport: any object as
// JSON (nlohmann) or YAML, addressed by apiVersion/kind/namespace/name, with the
// resource path found by API discovery (so CustomResourceDefinitions work once
// established). Create, get, list, server-side apply, patch (merge, strategic, JSON),
// delete with options, raw watch streams, polling waits with a deadline, and the
// TokenRequest / TokenReview / SubjectAccessReview calls.
//
// Errors are those of kube::StatusFromHttp (kNotFound for 404, kAborted for 409,
// kPermissionDenied for 401/403, kInvalidArgument for 400/422 ...), carrying the API
// server's message; kube::HttpStatusOf gives the HTTP status.
//
// Thread-safety: all methods may be called concurrently.
#ifndef ZEROSCALE_TESTS_TESTING_KUBE_API_H_
#define ZEROSCALE_TESTS_TESTING_KUBE_API_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kube/config.h"
#include "common/kube/retry.h"
#include "common/kube/transport.h"
#include "nlohmann/json.hpp"

namespace zeroscale::testing {

using json = nlohmann::json;

// Names one object (or, with an empty name, one collection).
struct ObjectRef {
  std::string api_version;  // "v1", "apps/v1", "autoscaler-group.autoscaler/v1alpha1"
  std::string kind;         // "Deployment"
  std::string ns;           // "" for cluster-scoped objects
  std::string name;

  // From an object's apiVersion, kind and metadata.
  static ObjectRef Of(const json& object);
  std::string ToString() const;  // "apps/v1 Deployment ns/name"
};

inline ObjectRef PodRef(std::string ns, std::string name) {
  return {"v1", "Pod", std::move(ns), std::move(name)};
}
inline ObjectRef DeploymentRef(std::string ns, std::string name) {
  return {"apps/v1", "Deployment", std::move(ns), std::move(name)};
}

enum class PatchType { kMerge, kStrategicMerge, kJson };

struct DeleteOptions {
  std::optional<int64_t> grace_period_seconds;
  std::string propagation_policy;  // "", "Background", "Foreground", "Orphan"
  std::string uid_precondition;    // delete only this incarnation of the object
};

// A watch event: type is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
using WatchHandler = std::function<bool(const std::string& type, const json& object)>;

// Helpers on object JSON, safe on missing fields.
std::string NameOf(const json& object);
std::string UidOf(const json& object);
// status.conditions[type=`type`].status == "True".
bool HasCondition(const json& object, absl::string_view type, absl::string_view status = "True");
// The condition object of that type, or null.
json ConditionOf(const json& object, absl::string_view type);

class KubeApi {
 public:
  static absl::StatusOr<std::unique_ptr<KubeApi>> Create(const kube::ClusterConfig& config);
  static absl::StatusOr<std::unique_ptr<KubeApi>> FromKubeconfig(const std::string& path);
  ~KubeApi();

  // Any request; a 2xx body parsed as JSON (null when empty), else the mapped error.
  absl::StatusOr<json> Call(absl::string_view method, absl::string_view path,
                            absl::string_view body = "",
                            absl::string_view content_type = "application/json");
  // Any request, the raw response whatever its status (for asserting on 403s and the like).
  absl::StatusOr<kube::HttpResponse> Raw(absl::string_view method, absl::string_view path,
                                         absl::string_view body = "",
                                         absl::string_view content_type = "application/json");

  // "/apis/apps/v1/namespaces/ns/deployments[/name[/subresource]]" by discovery.
  absl::StatusOr<std::string> PathOf(const ObjectRef& ref, absl::string_view subresource = "");

  absl::StatusOr<json> Get(const ObjectRef& ref, absl::string_view subresource = "");
  // POST. `ns` fills metadata.namespace of a namespaced object that names none.
  absl::StatusOr<json> Create(json object, absl::string_view ns = "");
  // Parses `yaml` (one document) and creates it.
  absl::StatusOr<json> CreateYaml(absl::string_view yaml, absl::string_view ns = "");
  // PUT of a whole object (metadata.resourceVersion, when set, is the precondition).
  absl::StatusOr<json> Replace(const json& object, absl::string_view subresource = "");
  // Server-side apply (field manager "zeroscale-tests", conflicts forced): creates or
  // updates to what `object` says.
  absl::StatusOr<json> Apply(json object, absl::string_view ns = "");
  // The same with dryRun=All (`kubectl apply --server-side --dry-run=server`): validated,
  // defaulted and admitted by the API server as a real apply would be, stored nowhere.
  // Returns the object as it would be stored.
  absl::StatusOr<json> DryRunApply(json object, absl::string_view ns = "");
  // Every document of a manifest, applied in order; each CustomResourceDefinition is
  // waited for until Established, so later documents may be its custom resources.
  // Returns the applied objects.
  absl::StatusOr<std::vector<json>> ApplyManifest(absl::string_view yaml,
                                                  absl::string_view ns = "");
  absl::StatusOr<json> Patch(const ObjectRef& ref, const json& patch,
                             PatchType type = PatchType::kMerge,
                             absl::string_view subresource = "");
  // OK when deleted or already gone.
  absl::Status Delete(const ObjectRef& ref, const DeleteOptions& options = {});
  // ref.name empty: the collection. Selectors as kubectl's -l and --field-selector.
  absl::StatusOr<std::vector<json>> List(const ObjectRef& collection,
                                         absl::string_view label_selector = "",
                                         absl::string_view field_selector = "");
  // The list's items and its resourceVersion (to watch from).
  absl::StatusOr<json> ListObject(const ObjectRef& collection,
                                  absl::string_view label_selector = "",
                                  absl::string_view field_selector = "");
  // Watches a collection from `resource_version` (with bookmarks) until the server ends
  // it after `timeout`, `handler` returns false, or `cancel` fires (kCancelled).
  // An ERROR event ends it with the mapped error (410: kOutOfRange).
  absl::Status Watch(const ObjectRef& collection, absl::string_view resource_version,
                     absl::Duration timeout, const WatchHandler& handler,
                     kube::CancelToken* cancel = nullptr, absl::string_view label_selector = "",
                     absl::string_view field_selector = "");

  // Polls (every 100 ms) until the object exists and `condition` holds; returns it.
  // kDeadlineExceeded after `timeout`, naming `what` and showing the object as last seen.
  absl::StatusOr<json> WaitFor(const ObjectRef& ref,
                               const std::function<bool(const json&)>& condition,
                               absl::Duration timeout, absl::string_view what = "");
  // Polls until `condition` holds for the list; returns the items.
  absl::StatusOr<std::vector<json>> WaitForList(
      const ObjectRef& collection, const std::function<bool(const std::vector<json>&)>& condition,
      absl::Duration timeout, absl::string_view what = "", absl::string_view label_selector = "");
  // Polls until a Get answers 404.
  absl::Status WaitForDeletion(const ObjectRef& ref, absl::Duration timeout);

  // Sets a Deployment's or StatefulSet's replicas through its scale subresource.
  absl::StatusOr<json> Scale(const ObjectRef& ref, int32_t replicas);

  // TokenRequest for a ServiceAccount: a token for `audiences` (the API server's own
  // when empty), valid `expiration` (the API server may extend short ones to its
  // minimum of 10 minutes), bound to a Pod when `bound_pod` names one (name and uid).
  absl::StatusOr<std::string> CreateToken(absl::string_view ns, absl::string_view service_account,
                                          const std::vector<std::string>& audiences = {},
                                          absl::Duration expiration = absl::Hours(1),
                                          const json& bound_pod = nullptr);
  // TokenReview: the review's status (authenticated, user, audiences, error).
  absl::StatusOr<json> ReviewToken(absl::string_view token,
                                   const std::vector<std::string>& audiences = {});
  // SubjectAccessReview of `user` (with `groups`) doing verb on resource.
  absl::StatusOr<bool> CanI(absl::string_view user, const std::vector<std::string>& groups,
                            absl::string_view verb, absl::string_view group,
                            absl::string_view resource, absl::string_view ns = "",
                            absl::string_view subresource = "");

  const kube::ClusterConfig& config() const { return config_; }

 private:
  struct ResourceInfo {
    std::string plural;
    bool namespaced = false;
  };
  KubeApi(kube::ClusterConfig config, std::unique_ptr<kube::Transport> transport);
  absl::StatusOr<ResourceInfo> Discover(absl::string_view api_version, absl::string_view kind);
  absl::StatusOr<json> ApplyWith(json object, absl::string_view ns, bool dry_run);
  absl::StatusOr<kube::HttpResponse> Send(kube::HttpRequest request);

  kube::ClusterConfig config_;
  std::unique_ptr<kube::Transport> transport_;
  std::mutex mu_;
  // "apps/v1" -> kind -> resource.
  std::map<std::string, std::map<std::string, ResourceInfo>> discovery_;
};

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_KUBE_API_H_
