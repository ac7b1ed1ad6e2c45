// Which pods a workload may send to. The balancer hears of a workload's pods from two
// sources: the scaler's announcements (each sidecar reports its pod's address and its
// app's readiness, the moment it changes) and, in a cluster, the workload's
// EndpointSlices (the pods Kubernetes lists, and whether it counts them ready or is
// taking them out of service). Announcements are fast but can outlive their pod: a pod
// deleted without a last word from its sidecar stays announced as long as the scaler
// remembers it. So, when Kubernetes lists a workload's pods, it decides which pods
// exist, and the announcements only say more about those pods:
//
//   - a pod that has left the slices, or that they mark terminating (or no longer ready
//     after having been ready), takes no traffic whatever the scaler says;
//   - a listed pod whose sidecar announces ready takes traffic at the announced address
//     (the sidecar's proxy), even before Kubernetes counts it ready: the sidecar's
//     report usually comes first, and that is the fast path of a wake from zero;
//   - a listed pod whose sidecar announces not ready takes none, even when Kubernetes
//     counts it ready (its app is still loading the model, or the pod is draining);
//   - a listed pod Kubernetes counts ready that no sidecar speaks for takes traffic at
//     its slice address (a pod without the sidecar).
//
// Without Kubernetes (the local backend, or a routes file without discovery) the
// announcements alone decide. An announcement and a listed pod are the same pod when
// their pod names ("namespace/name", from the slice endpoint's targetRef) are equal; when
// either has no name, when their addresses are equal or, failing that, their IPs (the
// slice's port may be the app's while the sidecar announces its proxy port).
//
// Value types and pure functions; thread-safe.
#ifndef ZEROSCALE_BALANCER_PODS_POD_SET_H_
#define ZEROSCALE_BALANCER_PODS_POD_SET_H_

#include <string>
#include <vector>

#include "balancer/activation/scaler_client.h"

namespace zeroscale::balancer {

// Where Kubernetes stands on one listed pod.
enum class ListedState {
  kReady,      // ready and not terminating
  kStarting,   // not ready yet (never seen ready): an announcement may route to it
  kWithdrawn,  // terminating, or no longer ready after having been ready
};

// One pod as the workload's EndpointSlices list it.
struct ListedPod {
  std::string pod;      // "namespace/name" from the endpoint's targetRef; "" when not a pod
  std::string ip;       // canonical text form (see CanonicalIp)
  std::string address;  // "ip:port" ("[ip]:port" for IPv6) at the route's port
  ListedState state = ListedState::kStarting;
  bool operator==(const ListedPod& o) const {
    return pod == o.pod && ip == o.ip && address == o.address && state == o.state;
  }
};

// The addresses ("host:port") a workload may send to, without duplicates. `listed` null
// means Kubernetes does not list this workload's pods: the announcements alone decide.
std::vector<std::string> RoutableAddresses(const std::vector<EndpointInfo>& announced,
                                           const std::vector<ListedPod>* listed);

// The canonical text form of an IPv4 or IPv6 literal ("fd00:0::1" -> "fd00::1"); "" when
// `text` is not one.
std::string CanonicalIp(const std::string& text);

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_PODS_POD_SET_H_
