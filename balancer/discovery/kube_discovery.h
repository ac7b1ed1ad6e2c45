// Runs the two informers (CustomAutoscalers, EndpointSlices) that feed a ClusterView, so
// that in a cluster the balancer routes by the CustomAutoscalers' spec.route and sends
// traffic to the pods their EndpointSlices list. The informers list, watch, re-list
// after 410 Gone and back off on errors on their own threads.
//
// Thread-safety: Start, WaitForSync and Stop from one thread; the sinks are called on
// the informers' threads (see ClusterView).
#ifndef ZEROSCALE_BALANCER_DISCOVERY_KUBE_DISCOVERY_H_
#define ZEROSCALE_BALANCER_DISCOVERY_KUBE_DISCOVERY_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "balancer/discovery/cluster_view.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/watcher.h"

namespace zeroscale::balancer {

class KubeDiscovery {
 public:
  // `ns` "" watches all namespaces. `on_error` (may be empty) hears each list/watch
  // failure, which the informers retry. kFailedPrecondition for an unusable configuration.
  static absl::StatusOr<std::unique_ptr<KubeDiscovery>> Create(
      const kube::ClusterConfig& cluster, const std::string& ns, std::vector<Route> file_routes,
      ClusterSinks sinks, std::function<void(const absl::Status&)> on_error = nullptr);
  ~KubeDiscovery();  // stops
  KubeDiscovery(const KubeDiscovery&) = delete;
  KubeDiscovery& operator=(const KubeDiscovery&) = delete;

  void Start();
  // True once both informers delivered their first list (waits up to `timeout`).
  bool WaitForSync(absl::Duration timeout);
  void Stop();
  const ClusterView& view() const { return view_; }

 private:
  KubeDiscovery(std::unique_ptr<kube::KubeClient> client, const std::string& ns,
                std::vector<Route> file_routes, ClusterSinks sinks,
                std::function<void(const absl::Status&)> on_error);

  std::unique_ptr<kube::KubeClient> client_;
  ClusterView view_;
  std::unique_ptr<kube::CustomAutoscalerWatcher> autoscalers_;
  std::unique_ptr<kube::EndpointSliceWatcher> slices_;
};

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_DISCOVERY_KUBE_DISCOVERY_H_
