// A small Kubernetes API client for what the scaler and the balancer need: the Scale
// subresource of Deployments and StatefulSets (and their pod templates' requests),
// list/watch and status of CustomAutoscalers, list/watch of AllocationPolicies,
// EndpointSlices, Pods, Nodes and Leases, Lease writes and Events.
// Every resource's list and watch go through one code path (a collection path plus an
// optional labelSelector and fieldSelector); the typed methods are thin wrappers over it. Errors
// are absl::Status with codes chosen by what the caller should do:
//   kUnavailable       retry with backoff (5xx, 429 with RetryAfterOf(), network)
//   kAborted           409 Conflict: the object changed (or already exists); re-read
//                      and re-decide, never re-apply blindly
//   kNotFound          404
//   kOutOfRange        410 Gone: the resourceVersion is too old; re-list (IsGone())
//   kPermissionDenied  401/403
//   kInvalidArgument   400/422 or an object that does not parse
//   kFailedPrecondition unusable configuration
// HttpStatusOf() gives the HTTP status behind any of them.
//
// Thread-safety: all methods may be called concurrently.
#ifndef ZEROSCALE_COMMON_KUBE_CLIENT_H_
#define ZEROSCALE_COMMON_KUBE_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kube/config.h"
#include "common/kube/retry.h"
#include "common/kube/transport.h"
#include "common/kube/types.h"
#include "common/time/clock.h"

namespace zeroscale::kube {

// One event of a watch on a collection of T.
template <typename T>
struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark };
  Type type = Type::kAdded;
  // Where the watch has got to: the object's resourceVersion, or the bookmark's.
  std::string resource_version;
  // Empty for bookmarks.
  T object;
};
using CustomAutoscalerWatchEvent = WatchEvent<CustomAutoscaler>;
using EndpointSliceWatchEvent = WatchEvent<EndpointSlice>;
using LeaseWatchEvent = WatchEvent<Lease>;
using PodWatchEvent = WatchEvent<Pod>;
using NodeWatchEvent = WatchEvent<Node>;
using AllocationPolicyWatchEvent = WatchEvent<AllocationPolicy>;

class KubeClient {
 public:
  // `clock` times token re-reads; it must outlive the client.
  static absl::StatusOr<std::unique_ptr<KubeClient>> Create(const ClusterConfig& config,
                                                            Clock* clock = RealClock::Get());
  const ClusterConfig& config() const { return config_; }

  // --- Scale subresource (autoscaling/v1) of apps/v1 Deployments and StatefulSets.
  absl::StatusOr<Scale> GetScale(const WorkloadRef& target);
  // Sets spec.replicas with a merge patch carrying `resource_version`, so the write is
  // refused (kAborted) if anything changed the Scale since it was read. An empty
  // resource_version writes unconditionally. Returns the Scale as written.
  absl::StatusOr<Scale> PatchScale(const WorkloadRef& target, int32_t replicas,
                                   absl::string_view resource_version);
  // Sets spec.replicas to `replicas` only if it is `expected` now: one JSON patch (RFC
  // 6902) whose `test` the API server checks against the object as it is when it applies
  // the patch, atomically, so other writers (the workload's controller updating status
  // bumps the resourceVersion on nearly every scale change) cannot make it fail, and a
  // changed count always does. A failed test is answered 422, like any invalid patch:
  // kInvalidArgument; the caller reads the target to tell (see actuate/). At 0 the
  // server omits spec.replicas, so the test is then on an empty spec.
  absl::StatusOr<Scale> PatchScaleIfReplicas(const WorkloadRef& target, int32_t expected,
                                             int32_t replicas);

  // --- Lists and watches, the same for every resource. `ns` empty means all
  // namespaces; `label_selector` empty means every object, else it is sent as the
  // labelSelector query parameter ("app=llama,tier", as kubectl's -l); likewise
  // `field_selector` ("metadata.name=zeroscale-scaler", as kubectl's --field-selector:
  // RBAC lets a list or watch selecting one name through with a grant for that name only).
  //
  // A list returns the objects and the resourceVersion to watch from.
  //
  // A watch runs from `resource_version`, handing events to `on_event` as they arrive,
  // with bookmarks. It returns OK when the server ends the watch (after `timeout`) or
  // `on_event` returns false; an ERROR event becomes the matching error (410 → IsGone);
  // kCancelled when `cancel` fires; kInvalidArgument for an event that does not parse.

  // --- CustomAutoscalers.
  absl::StatusOr<CustomAutoscalerList> ListCustomAutoscalers(absl::string_view ns,
                                                             absl::string_view label_selector = "",
                                                             absl::string_view field_selector = "");
  absl::Status WatchCustomAutoscalers(
      absl::string_view ns, absl::string_view resource_version, absl::Duration timeout,
      const std::function<bool(const CustomAutoscalerWatchEvent&)>& on_event, CancelToken* cancel,
      absl::string_view label_selector = "", absl::string_view field_selector = "");
  // --- discovery.k8s.io/v1 EndpointSlices.
  absl::StatusOr<EndpointSliceList> ListEndpointSlices(absl::string_view ns,
                                                       absl::string_view label_selector = "",
                                                       absl::string_view field_selector = "");
  absl::Status WatchEndpointSlices(
      absl::string_view ns, absl::string_view resource_version, absl::Duration timeout,
      const std::function<bool(const EndpointSliceWatchEvent&)>& on_event, CancelToken* cancel,
      absl::string_view label_selector = "", absl::string_view field_selector = "");

  // --- core/v1 Pods (a scale target's, by its label selector).
  absl::StatusOr<PodList> ListPods(absl::string_view ns, absl::string_view label_selector = "",
                                   absl::string_view field_selector = "");
  absl::Status WatchPods(absl::string_view ns, absl::string_view resource_version,
                         absl::Duration timeout,
                         const std::function<bool(const PodWatchEvent&)>& on_event,
                         CancelToken* cancel, absl::string_view label_selector = "",
                         absl::string_view field_selector = "");

  // --- core/v1 Nodes (cluster-scoped: `ns` is ignored).
  absl::StatusOr<NodeList> ListNodes(absl::string_view ns = "",
                                     absl::string_view label_selector = "",
                                     absl::string_view field_selector = "");
  absl::Status WatchNodes(absl::string_view ns, absl::string_view resource_version,
                          absl::Duration timeout,
                          const std::function<bool(const NodeWatchEvent&)>& on_event,
                          CancelToken* cancel, absl::string_view label_selector = "",
                          absl::string_view field_selector = "");

  // --- zeroscale.io/v1alpha1 AllocationPolicies.
  absl::StatusOr<AllocationPolicyList> ListAllocationPolicies(
      absl::string_view ns, absl::string_view label_selector = "",
      absl::string_view field_selector = "");
  absl::Status WatchAllocationPolicies(
      absl::string_view ns, absl::string_view resource_version, absl::Duration timeout,
      const std::function<bool(const AllocationPolicyWatchEvent&)>& on_event, CancelToken* cancel,
      absl::string_view label_selector = "", absl::string_view field_selector = "");

  // What one replica of a Deployment or StatefulSet requests (its pod template's
  // PodRequests), read from the workload object.
  absl::StatusOr<ResourceAmounts> GetPodTemplateRequests(const WorkloadRef& target);

  // Merge-patches a CustomAutoscaler's status subresource.
  absl::StatusOr<CustomAutoscaler> PatchCustomAutoscalerStatus(
      absl::string_view ns, absl::string_view name, const CustomAutoscalerStatus& status);

  // --- coordination.k8s.io/v1 Leases.
  absl::StatusOr<Lease> GetLease(absl::string_view ns, absl::string_view name);
  // kAborted when it already exists (someone else created it first).
  absl::StatusOr<Lease> CreateLease(const Lease& lease);
  // PUT with lease.resource_version: kAborted when another holder wrote it meanwhile.
  absl::StatusOr<Lease> UpdateLease(const Lease& lease);
  // Lists and watches, as above (the balancer follows the scaler's Lease by name).
  absl::StatusOr<LeaseList> ListLeases(absl::string_view ns, absl::string_view label_selector = "",
                                       absl::string_view field_selector = "");
  absl::Status WatchLeases(absl::string_view ns, absl::string_view resource_version,
                           absl::Duration timeout,
                           const std::function<bool(const LeaseWatchEvent&)>& on_event,
                           CancelToken* cancel, absl::string_view label_selector = "",
                           absl::string_view field_selector = "");

  // --- core/v1 Events, in the involved object's namespace.
  absl::StatusOr<Event> CreateEvent(const Event& event);
  // Bumps count and lastTimestamp of an existing Event (repeats of one explanation).
  absl::StatusOr<Event> PatchEventSeries(absl::string_view ns, absl::string_view name,
                                         int32_t count, absl::Time last_timestamp);

  // --- Escape hatch: any request, with the error mapping above; returns the body.
  absl::StatusOr<std::string> Call(absl::string_view method, absl::string_view path,
                                   absl::string_view body = "",
                                   absl::string_view content_type = "application/json");

  // Paths, exposed for tests and messages.
  static absl::StatusOr<std::string> ScalePath(const WorkloadRef& target);
  static std::string CustomAutoscalersPath(absl::string_view ns);
  static std::string EndpointSlicesPath(absl::string_view ns);
  static std::string LeasesPath(absl::string_view ns);
  static std::string PodsPath(absl::string_view ns);
  static std::string NodesPath(absl::string_view ns = "");
  static std::string AllocationPoliciesPath(absl::string_view ns);
  // `collection` with the query of a list (watch false) or of a watch from
  // `resource_version` that the server ends after `timeout`; the selectors are
  // percent-encoded.
  static std::string CollectionTarget(absl::string_view collection,
                                      absl::string_view label_selector, bool watch = false,
                                      absl::string_view resource_version = "",
                                      absl::Duration timeout = absl::ZeroDuration(),
                                      absl::string_view field_selector = "");

 private:
  KubeClient(ClusterConfig config, std::unique_ptr<Transport> transport);

  ClusterConfig config_;
  std::unique_ptr<Transport> transport_;
};

// The error for a non-2xx response: the code as above, the server's Status message,
// the HTTP status and Retry-After attached (see retry.h). Exposed for tests.
absl::Status StatusFromHttp(int http_status, absl::string_view body,
                            absl::string_view retry_after_header, absl::string_view what);

}  // namespace zeroscale::kube

#endif  // ZEROSCALE_COMMON_KUBE_CLIENT_H_
