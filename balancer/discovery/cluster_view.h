// What the balancer learns from Kubernetes, turned into what the dispatcher consumes:
// routes from each CustomAutoscaler's `spec.route`, and each routed workload's pod
// addresses from the EndpointSlices of its Service (`spec.route.service`, default the
// scale target's name), at the port `spec.route.port` names (a slice port name or a
// number; default the slice's first port).
//
// The routes file's routes come first and always stand; a CustomAutoscaler's route that
// is malformed or claims a host or prefix already taken is refused alone (reported to
// the `refused` sink), the others still apply. Endpoints are "host:port": ready ones
// take traffic; withdrawn ones are pods Kubernetes took out of service (terminating, or
// no longer ready after having been ready), which the dispatcher removes even when the
// scaler still announces them. A pod not yet ready in its slice is neither: the scaler's
// announcement may already route to it, before Kubernetes' own readiness catches up.
//
// Sinks are called only on change, with the view's lock held, so they see changes in
// order and must not call back into the view.
// Thread-safety: all methods may be called from any thread (each informer has its own).
#ifndef ZEROSCALE_BALANCER_DISCOVERY_CLUSTER_VIEW_H_
#define ZEROSCALE_BALANCER_DISCOVERY_CLUSTER_VIEW_H_

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "balancer/routing/routes.h"
#include "common/kube/types.h"
#include "common/kube/watcher.h"

namespace zeroscale::balancer {

struct ClusterSinks {
  std::function<void(RouteTable)> routes;
  std::function<void(const std::string& workload, std::vector<std::string> ready,
                     std::vector<std::string> withdrawn)>
      endpoints;
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
  struct Emitted {
    std::vector<std::string> ready, withdrawn;
  };

  void RebuildRoutesLocked();
  void RecomputeLocked(const std::string& workload);
  void ForgetWorkloadLocked(const std::string& workload);

  const std::vector<Route> file_routes_;
  const ClusterSinks sinks_;

  mutable std::mutex mu_;
  std::map<std::string, Routed> routed_;                     // by CustomAutoscaler key
  std::map<std::string, kube::EndpointSlice> slices_;        // by namespace/name
  std::map<std::string, std::string> refused_;               // by CustomAutoscaler key
  std::map<std::string, Emitted> emitted_;                   // by workload
  std::map<std::string, std::set<std::string>> seen_ready_;  // by workload: addresses
  std::string last_routes_;  // what was last sent to the routes sink, for change detection
};

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_DISCOVERY_CLUSTER_VIEW_H_
