#include "balancer/discovery/kube_discovery.h"

#include <algorithm>
#include <utility>

namespace zeroscale::balancer {

absl::StatusOr<std::unique_ptr<KubeDiscovery>> KubeDiscovery::Create(
    const kube::ClusterConfig& cluster, const std::string& ns, std::vector<Route> file_routes,
    ClusterSinks sinks, std::function<void(const absl::Status&)> on_error) {
  absl::StatusOr<std::unique_ptr<kube::KubeClient>> client = kube::KubeClient::Create(cluster);
  if (!client.ok()) return client.status();
  return std::unique_ptr<KubeDiscovery>(new KubeDiscovery(
      *std::move(client), ns, std::move(file_routes), std::move(sinks), std::move(on_error)));
}

KubeDiscovery::KubeDiscovery(std::unique_ptr<kube::KubeClient> client, const std::string& ns,
                             std::vector<Route> file_routes, ClusterSinks sinks,
                             std::function<void(const absl::Status&)> on_error)
    : client_(std::move(client)), view_(std::move(file_routes), std::move(sinks)) {
  kube::WatcherOptions options;
  options.namespace_ = ns;
  options.on_error = std::move(on_error);
  autoscalers_ = std::make_unique<kube::CustomAutoscalerWatcher>(
      client_.get(), options, [this](kube::WatchEventType type, const kube::CustomAutoscaler& ca) {
        view_.OnCustomAutoscaler(type, ca);
      });
  // Only slices that belong to a Service: routes name Services.
  kube::WatcherOptions slice_options = options;
  slice_options.label_selector = kube::kServiceNameLabel;
  slice_options.on_synced = [this] { view_.OnEndpointSlicesSynced(); };
  slices_ = std::make_unique<kube::EndpointSliceWatcher>(
      client_.get(), slice_options,
      [this](kube::WatchEventType type, const kube::EndpointSlice& s) {
        view_.OnEndpointSlice(type, s);
      });
}

KubeDiscovery::~KubeDiscovery() { Stop(); }

void KubeDiscovery::Start() {
  autoscalers_->Start();
  slices_->Start();
}

bool KubeDiscovery::WaitForSync(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  return autoscalers_->WaitForSync(timeout) &&
         slices_->WaitForSync(std::max(absl::ZeroDuration(), deadline - absl::Now()));
}

void KubeDiscovery::Stop() {
  slices_->Stop();
  autoscalers_->Stop();
}

}  // namespace zeroscale::balancer
