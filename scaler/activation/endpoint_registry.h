// What the scaler knows of each workload's pods for the balancer: which pods exist,
// where their proxies listen, and whether their apps are ready. Listeners (the
// ActivationService's Watch streams) hear every change at once.
//
// Two sources. The local backend knows its processes and lists them (SetPods):
// authoritative, samples only add readiness. In Kubernetes, pods are announced by their
// sidecars' samples (address and readiness), so a woken pod takes traffic the moment its
// sidecar reports ready; but an announcement is valid only for a pod that exists: while
// Kubernetes lists the target's pods (SetPodView) only for a listed pod, otherwise for a
// lease renewed by each fresh sample (a pod that stops reporting leaves when it runs out).
// And a workload whose target is at zero replicas (SetReplicas) has no pods to send to,
// whatever was announced before.
//
// Thread-safe. Listeners are called without the registry's lock held, on the thread
// that made the change (the `timers` scheduler's for lease expiry); they must not block.
#ifndef ZEROSCALE_SCALER_ACTIVATION_ENDPOINT_REGISTRY_H_
#define ZEROSCALE_SCALER_ACTIVATION_ENDPOINT_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/time/clock.h"
#include "scaler/decide/decision.h"
#include "scaler/decide/scheduler.h"

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
  int32_t replicas = 0;             // as the backend or the decider last reported
  std::vector<Endpoint> endpoints;  // sorted by pod
  int32_t ready() const;
};

struct EndpointRegistryOptions {
  // Without a pod view, an announcement lasts this long after the pod's latest sample
  // (the decider's staleness: a pod silent longer is not reporting).
  absl::Duration lease = absl::Seconds(5);
};

// It is also a decide::DecisionSink: the decider's status says how many replicas each
// target has (SetReplicas), and when a workload stops being managed (Remove).
class EndpointRegistry : public decide::DecisionSink {
 public:
  using Listener = std::function<void(const WorkloadEndpoints&)>;

  // `timers` runs lease expiry (at the earliest lease end); may be null, then Expire()
  // must be called. Both must outlive the registry.
  explicit EndpointRegistry(const Clock* clock = RealClock::Get(),
                            decide::Scheduler* timers = nullptr,
                            EndpointRegistryOptions options = {});

  // The local backend's view: the workload's pods and addresses now. Pods not listed are
  // removed; readiness already learned from samples is kept; samples of pods not listed
  // are ignored from now on.
  void SetPods(const std::string& workload, int32_t replicas, std::vector<Endpoint> pods);
  // What Kubernetes lists of the workload's pods (not being deleted); announced pods not
  // listed are removed. nullopt: no view any more (announcements live on their lease).
  void SetPodView(const std::string& workload, std::optional<std::vector<std::string>> pods);
  // The target's replica count as the decider knows it. At zero the workload has no pods.
  void SetReplicas(const std::string& workload, int32_t replicas);
  // From a sample received at `at` (InfinitePast: now). Returns true when this flipped the
  // pod to ready. A pod unknown so far is added (Kubernetes: with the address its sidecar
  // announces, the pod IP) when it may be: see the class comment. An empty `address`
  // keeps the known one.
  bool OnSample(absl::string_view workload, absl::string_view pod, bool ready,
                absl::string_view address = "", absl::Time at = absl::InfinitePast());
  // Drops the workload (it is no longer managed).
  void Remove(const std::string& workload);
  // Removes announcements whose lease ran out; the timer calls it. How many went.
  size_t Expire();

  // decide::DecisionSink.
  void Record(const decide::Decision&) override {}
  void OnStatus(const decide::WorkloadStatus& status) override {
    SetReplicas(status.workload, status.replicas);
  }
  void OnRemoved(const std::string& workload) override { Remove(workload); }

  WorkloadEndpoints Get(const std::string& workload) const;
  std::vector<WorkloadEndpoints> All() const;

  // Registers a listener for one workload, or all when `workload` is empty. Returns an
  // id for RemoveListener.
  uint64_t AddListener(std::string workload, Listener listener);
  void RemoveListener(uint64_t id);

 private:
  struct Pod {
    Endpoint endpoint;
    absl::Time seen = absl::InfinitePast();  // newest sample
  };
  struct Entry {
    int32_t replicas = 0;
    bool at_zero = false;       // the decider says the target has 0 replicas
    bool backend_pods = false;  // SetPods: the list is the backend's, not announcements
    std::optional<std::set<std::string>> view;  // what Kubernetes lists
    std::map<std::string, Pod> pods;
    // Announced but not (yet) listed: the watch may lag behind a sidecar's first sample.
    std::map<std::string, Pod> unlisted;
  };
  static WorkloadEndpoints Snapshot(const std::string& workload, const Entry& e);
  // Whether `e`'s pods live on leases (Kubernetes without a view).
  static bool Leased(const Entry& e) { return !e.backend_pods && !e.view; }
  void ScheduleExpiry(absl::Time at);  // mu_ held
  void Notify(const std::vector<WorkloadEndpoints>& states);

  const Clock* const clock_;
  decide::Scheduler* const timers_;
  const EndpointRegistryOptions options_;

  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, Entry> workloads_;
  absl::Time expiry_at_ = absl::InfiniteFuture();  // the timer outstanding
  std::mutex listeners_mu_;
  uint64_t next_listener_ = 1;
  std::map<uint64_t, std::pair<std::string, Listener>> listeners_;
};

}  // namespace zeroscale::activation

#endif  // ZEROSCALE_SCALER_ACTIVATION_ENDPOINT_REGISTRY_H_
