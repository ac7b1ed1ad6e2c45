// What the scaler knows of each workload's pods for the balancer: which pods exist,
// where their proxies listen, and whether their apps are ready. Backends report pods
// and addresses (the local backend knows its processes; in Kubernetes the balancer
// takes addresses from EndpointSlices), and every ingested sample reports its pod's
// readiness, so a woken pod is announced the moment its sidecar says ready.
// Listeners (the ActivationService's Watch streams) hear every change.
//
// Thread-safe. Listeners are called without the registry's lock held, on the thread
// that made the change; they must not block.
#ifndef ZEROSCALE_SCALER_ACTIVATION_ENDPOINT_REGISTRY_H_
#define ZEROSCALE_SCALER_ACTIVATION_ENDPOINT_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace zeroscale::activation {

struct Endpoint {
  std::string pod;      // <namespace>/<pod name>
  std::string address;  // host:port of the pod's sidecar proxy; empty when unknown
  bool ready = false;
  bool operator==(const Endpoint& o) const {
    return pod == o.pod && address == o.address && ready == o.ready;
  }
};

struct WorkloadEndpoints {
  std::string workload;
  int32_t replicas = 0;             // as the backend last reported
  std::vector<Endpoint> endpoints;  // sorted by pod
  int32_t ready() const;
};

class EndpointRegistry {
 public:
  using Listener = std::function<void(const WorkloadEndpoints&)>;

  // The backend's view: the workload's pods and addresses now. Pods not listed are
  // removed; readiness already learned from samples is kept.
  void SetPods(const std::string& workload, int32_t replicas, std::vector<Endpoint> pods);
  // From a sample. Returns true when this flipped the pod to ready. A pod unknown to the
  // backend is added, with the address its sidecar announces (Kubernetes: the pod IP), so
  // the balancer can route to it at once. An empty `address` keeps the known one.
  bool OnSample(absl::string_view workload, absl::string_view pod, bool ready,
                absl::string_view address = "");
  // Drops the workload (it is no longer managed).
  void Remove(const std::string& workload);

  WorkloadEndpoints Get(const std::string& workload) const;
  std::vector<WorkloadEndpoints> All() const;

  // Registers a listener for one workload, or all when `workload` is empty. Returns an
  // id for RemoveListener.
  uint64_t AddListener(std::string workload, Listener listener);
  void RemoveListener(uint64_t id);

 private:
  struct Entry {
    int32_t replicas = 0;
    std::map<std::string, Endpoint> pods;
  };
  static WorkloadEndpoints Snapshot(const std::string& workload, const Entry& e);
  void Notify(const WorkloadEndpoints& state);

  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, Entry> workloads_;
  std::mutex listeners_mu_;
  uint64_t next_listener_ = 1;
  std::map<uint64_t, std::pair<std::string, Listener>> listeners_;
};

}  // namespace zeroscale::activation

#endif  // ZEROSCALE_SCALER_ACTIVATION_ENDPOINT_REGISTRY_H_
