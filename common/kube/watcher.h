// Informers: an up-to-date view of one kind of Kubernetes object kept with list+watch,
// the way client-go's informers do: list to get a resourceVersion, watch from it,
// advance it with every event and bookmark, re-list on 410 Gone, honour Retry-After on
// 429 and back off with jitter on 5xx and network errors. A re-list is diffed against
// the cache, so the handler sees each change once — nothing lost across the gap,
// nothing repeated.
//
// One implementation, Informer<Traits>, serves every resource; a traits struct says how
// to list and watch it and how to key its objects. CustomAutoscalerWatcher,
// EndpointSliceWatcher, PodWatcher, NodeWatcher and AllocationPolicyWatcher are its
// instances.
//
// Thread-safety: the handler runs on the informer's thread, one call at a time. Start,
// Stop and the accessors may be called from any thread.
#ifndef ZEROSCALE_COMMON_KUBE_WATCHER_H_
#define ZEROSCALE_COMMON_KUBE_WATCHER_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/retry.h"
#include "common/kube/types.h"
#include "common/time/backoff.h"

namespace zeroscale::kube {

enum class WatchEventType { kAdded, kModified, kDeleted };

struct WatcherOptions {
  std::string namespace_;  // "" watches all namespaces
  // Only objects whose labels match ("app=llama,tier"); "" for all.
  std::string label_selector;
  // Only objects whose fields match ("metadata.name=zeroscale-scaler"); "" for all.
  std::string field_selector;
  // Servers end watches after this; client-go picks 5-10 minutes.
  absl::Duration watch_timeout = absl::Minutes(5);
  // Waits after failures; jittered so that many replicas do not hammer a recovering API
  // server in lockstep.
  BackoffPolicy backoff{absl::Milliseconds(500), absl::Seconds(30), 2.0, Jitter::kProportional,
                        0.2};
  Sleeper* sleeper = RealSleeper::Get();  // injectable to observe delays in tests
  // Called on the informer's thread with each failure that leads to a wait (to count
  // it in a metric); may be empty.
  std::function<void(const absl::Status&)> on_error;
  // Called on the informer's thread once, after the handler has seen the first list:
  // from then on the handler's view is the server's, absences included. May be empty.
  std::function<void()> on_synced;
};

struct WatcherStats {
  int lists = 0;
  int watches = 0;
  int gone = 0;    // 410s that forced a re-list
  int errors = 0;  // failures that led to a wait
};

// What an Informer needs to know about a resource. A traits struct provides
//   using Object = ...;                      // the domain type, with resource_version
//                                            // and Key() (unique within the informer)
//   static constexpr char kKind[] = "...";   // for logs
//   static constexpr auto kList = &KubeClient::List...;    // (ns, label_selector,
//                                                          //  field_selector)
//   static constexpr auto kWatch = &KubeClient::Watch...;  // (ns, rv, timeout, on_event,
//                                                          //  cancel, label_selector,
//                                                          //  field_selector)
// Informer<Traits> is instantiated in watcher.cc for the traits below.
template <typename Traits>
class Informer {
 public:
  using Object = typename Traits::Object;
  using Handler = std::function<void(WatchEventType, const Object&)>;

  Informer(KubeClient* client, WatcherOptions options, Handler handler);
  ~Informer();  // stops
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Runs the loop on a thread of its own.
  void Start();
  // Ends the watch in progress and joins the thread.
  void Stop();

  // True once the first list has been delivered; waits up to `timeout` for it.
  bool WaitForSync(absl::Duration timeout);
  // The cached objects, in key order.
  std::vector<Object> Snapshot() const;
  std::string resource_version() const;
  WatcherStats stats() const;

 private:
  void Run();
  absl::Status List();
  absl::Status Watch();
  void Apply(WatchEventType type, const Object& object);
  // Waits after a failure; false when stopping.
  bool WaitAfter(const absl::Status& error);

  KubeClient* const client_;
  const WatcherOptions options_;
  const Handler handler_;
  Backoff backoff_;
  CancelToken cancel_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable synced_cv_;
  bool synced_ = false;
  std::string resource_version_;
  std::map<std::string, Object> cache_;  // by Object::Key()
  WatcherStats stats_;
};

struct CustomAutoscalerTraits {
  using Object = CustomAutoscaler;
  static constexpr char kKind[] = "CustomAutoscaler";
  static constexpr auto kList = &KubeClient::ListCustomAutoscalers;
  static constexpr auto kWatch = &KubeClient::WatchCustomAutoscalers;
};
extern template class Informer<CustomAutoscalerTraits>;
using CustomAutoscalerWatcher = Informer<CustomAutoscalerTraits>;

struct EndpointSliceTraits {
  using Object = EndpointSlice;
  static constexpr char kKind[] = "EndpointSlice";
  static constexpr auto kList = &KubeClient::ListEndpointSlices;
  static constexpr auto kWatch = &KubeClient::WatchEndpointSlices;
};
extern template class Informer<EndpointSliceTraits>;
// Every EndpointSlice of options.namespace_ ("" for all) matching options.label_selector
// (e.g. "kubernetes.io/service-name=llama" for one Service's).
using EndpointSliceWatcher = Informer<EndpointSliceTraits>;

struct LeaseTraits {
  using Object = Lease;
  static constexpr char kKind[] = "Lease";
  static constexpr auto kList = &KubeClient::ListLeases;
  static constexpr auto kWatch = &KubeClient::WatchLeases;
};
extern template class Informer<LeaseTraits>;
// Leases of options.namespace_; options.field_selector "metadata.name=NAME" for one.
using LeaseWatcher = Informer<LeaseTraits>;

struct PodTraits {
  using Object = Pod;
  static constexpr char kKind[] = "Pod";
  static constexpr auto kList = &KubeClient::ListPods;
  static constexpr auto kWatch = &KubeClient::WatchPods;
};
extern template class Informer<PodTraits>;
// The Pods of options.namespace_ matching options.label_selector (a scale target's
// status.selector, "app=llama").
using PodWatcher = Informer<PodTraits>;

struct NodeTraits {
  using Object = Node;
  static constexpr char kKind[] = "Node";
  static constexpr auto kList = &KubeClient::ListNodes;
  static constexpr auto kWatch = &KubeClient::WatchNodes;
};
extern template class Informer<NodeTraits>;
// Every Node (cluster-scoped: options.namespace_ must be "").
using NodeWatcher = Informer<NodeTraits>;

struct AllocationPolicyTraits {
  using Object = AllocationPolicy;
  static constexpr char kKind[] = "AllocationPolicy";
  static constexpr auto kList = &KubeClient::ListAllocationPolicies;
  static constexpr auto kWatch = &KubeClient::WatchAllocationPolicies;
};
extern template class Informer<AllocationPolicyTraits>;
using AllocationPolicyWatcher = Informer<AllocationPolicyTraits>;

}  // namespace zeroscale::kube

#endif  // ZEROSCALE_COMMON_KUBE_WATCHER_H_
