// What the balancer learns from Kubernetes, turned into what the dispatcher consumes:
// routes from each CustomAutoscaler's `spec.route`, and each routed workload's pod
// addresses from the EndpointSlices of its Service (`spec.route.service`, default the
// scale target's name), at the port `spec.route.port` names (a slice port name or a
// number; default the slice's first port).
//
// The routes file's routes come first and always stand; a CustomAutoscaler's route that
// is malformed or claims a host or prefix already taken is refused alone (reported to
// the `refused` sink), the others still apply. A routed workload's pods are the
// endpoints of its Service's slices, each with its pod name (targetRef), address at the
// routed port and state (ready; starting: not ready yet; withdrawn: terminating, or no
// longer ready after having been ready); balancer/pods decides what they mean next to the
// scaler's announcements. Until the EndpointSlices have been listed once
// (OnEndpointSlicesSynced) no pods are reported: an empty list would be read as "no pod
// exists".
//
// Only IP slices count: a slice of addressType FQDN (or anything else) lists names the
// proxy cannot connect to, so it is ignored, logged once, and counted (`ignored` sink).
//
// Sinks are called only on change, with the view's lock held, so they see changes in
// order and must not call back into the view.
// Thread-safety: all methods may be called from any thread (each informer has its own).
#ifndef ZEROSCALE_BALANCER_DISCOVERY_CLUSTER_VIEW_H_
#define ZEROSCALE_BALANCER_DISCOVERY_CLUSTER_VIEW_H_

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "balancer/pods/pod_set.h"
#include "balancer/routing/routes.h"
#include "common/kube/types.h"
#include "common/kube/watcher.h"

namespace zeroscale::balancer {

struct ClusterSinks {
  std::function<void(RouteTable)> routes;
  // A routed workload's pods as its slices list them (sorted by address), on every
  // change; nullopt once Kubernetes no longer lists them for the balancer (its
  // CustomAutoscaler or route is gone).
  std::function<void(const std::string& workload, std::optional<std::vector<ListedPod>> pods)> pods;
  // EndpointSlices ignored because their addressType is not IPv4 or IPv6, after a change.
  std::function<void(size_t ignored_now)> ignored;
  // A CustomAutoscaler ("namespace/name") whose route cannot be used, and why; called
  // again with an empty reason once it can. `refused_now` counts the routes refused after
  // this change (for a gauge).
  std::function<void(const std::string& custom_autoscaler, const std::string& reason,
                     size_t refused_now)>
      refused;
};

class ClusterView {
 public:
  ClusterView(std::vector<Route> file_routes, ClusterSinks sinks);
  ClusterView(const ClusterView&) = delete;
  ClusterView& operator=(const ClusterView&) = delete;

  void OnCustomAutoscaler(kube::WatchEventType type, const kube::CustomAutoscaler& ca);
  void OnEndpointSlice(kube::WatchEventType type, const kube::EndpointSlice& slice);
  // The EndpointSlices have been listed once: from now on the slices say which pods exist.
  void OnEndpointSlicesSynced();

  // CustomAutoscalers whose route is refused, with the reason.
  std::map<std::string, std::string> Refused() const;

 private:
  struct Routed {
    std::string workload;  // namespace/Kind/name
    std::string service;   // namespace/service
    std::string port;      // as in spec.route.port
    Route route;
    std::string error;  // the parser's objection to spec.route (bad service or port)
  };
  void RebuildRoutesLocked();
  void RecomputeLocked(const std::string& workload);
  // The pods of `routed`'s slices; `seen` holds the addresses ever seen ready there.
  std::vector<ListedPod> ListLocked(const Routed& routed, std::set<std::string>* seen) const;
  void ForgetWorkloadLocked(const std::string& workload);

  const std::vector<Route> file_routes_;
  const ClusterSinks sinks_;

  mutable std::mutex mu_;
  std::map<std::string, Routed> routed_;                     // by CustomAutoscaler key
  std::map<std::string, kube::EndpointSlice> slices_;        // IP slices by namespace/name
  std::set<std::string> ignored_;                            // non-IP slices by namespace/name
  std::map<std::string, std::string> refused_;               // by CustomAutoscaler key
  std::map<std::string, std::vector<ListedPod>> emitted_;    // by workload
  std::map<std::string, std::set<std::string>> seen_ready_;  // by workload: addresses
  bool slices_synced_ = false;
  std::string last_routes_;  // what was last sent to the routes sink, for change detection
};

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_DISCOVERY_CLUSTER_VIEW_H_
