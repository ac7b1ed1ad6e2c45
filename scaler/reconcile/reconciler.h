// The CustomAutoscaler reconciler: desired state in, automata out. While this replica
// leads it watches CustomAutoscalers and keeps one automaton per valid CR in the decider
// (with the spec the CR asks for and the replicas its target has), hands each target to
// the actuator, and tells the reporter what it knows of each CR (a refused spec, a
// missing target) so its status says so. It also keeps a view of each target's pods
// (PodViews, by the selector of the target's scale subresource) for the decider and for
// whoever else listens (options.on_pods: the endpoint registry). A term starts by
// rebuilding the decider's windows from Redis once the first list is in, so a takeover
// decides at once without warming up; it ends by removing every workload from the
// decider. Ingest is not affected.
//
// Allocation limits: before a CR's automaton starts, the reconciler reads what one
// replica of its target requests (the pod template) and tells the decider, with the CR's
// spec.allocation.group; AllocationViews keeps the groups' budgets and the cluster's free
// extended resources current. Template requests are read again at every resync for
// workloads where they matter (in a group, or requesting an extended resource).
//
// Threads: a worker of its own for every reconcile and every API call it makes, the CR
// watcher while leading, and one pod informer per target.
//
// Thread-safety: every public method is thread-safe. Stop before destroying the decider.
#ifndef ZEROSCALE_SCALER_RECONCILE_RECONCILER_H_
#define ZEROSCALE_SCALER_RECONCILE_RECONCILER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/retry.h"
#include "common/kube/types.h"
#include "common/kube/watcher.h"
#include "common/redis/redis.h"
#include "common/time/backoff.h"
#include "common/time/clock.h"
#include "common/workqueue/work_queue.h"
#include "scaler/actuate/scale_actuator.h"
#include "scaler/decide/decider.h"
#include "scaler/leader/leadership.h"
#include "scaler/reconcile/allocation_views.h"
#include "scaler/reconcile/pod_views.h"
#include "scaler/report/kube_reporter.h"

namespace zeroscale::reconcile {

struct ReconcilerOptions {
  std::string watch_namespace;  // "" = all namespaces
  // Servers end watches after this.
  absl::Duration watch_timeout = absl::Minutes(5);
  // How often CRs whose target could not be read are tried again.
  absl::Duration resync = absl::Seconds(30);
  // A target read answered 429/5xx is tried again after this backoff (or Retry-After).
  BackoffPolicy api_backoff{absl::Milliseconds(200), absl::Seconds(5), 2.0, Jitter::kProportional,
                            0.2};
  absl::Duration max_retry_after = absl::Seconds(10);
  // Also hears what Kubernetes lists of each target's pods (the decider always does), on
  // an informer's thread; may be empty.
  PodViews::Listener on_pods;
};

struct ReconcilerStats {
  int rebuilds = 0;  // successful rebuilds of the decider's windows from Redis
};

class Reconciler : public leader::TermListener {
 public:
  // All must outlive the reconciler; `rebuild_redis` is a connection of its own (used on
  // its worker only) and may be null to skip rebuilding.
  Reconciler(kube::KubeClient* client, const leader::Leadership* leadership,
             decide::Decider* decider, actuate::ScaleActuator* actuator,
             report::KubeReporter* reporter, Redis* rebuild_redis, ReconcilerOptions options,
             Clock* clock);
  ~Reconciler() override;  // stops
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  void Start();
  void Stop();
  ReconcilerStats stats() const;

  // leader::TermListener.
  void OnTermStart(uint64_t epoch) override;
  void OnTermEnd(uint64_t epoch) override;

 private:
  // What is known of one CustomAutoscaler. Worker thread.
  struct CrState {
    kube::CustomAutoscaler object;
    std::string workload;  // the workload it drives; "" when none
    std::optional<decide::WorkloadSpec> applied;
    absl::Status spec;
    std::string spec_reason = "InvalidSpec";
    absl::Status target;
    std::string target_uid;
    // What the decider was told of its allocation (group and template requests).
    std::optional<decide::Engine::Allocation> allocation;
  };

  // Worker thread.
  void Reconcile(uint64_t epoch, kube::WatchEventType type, const kube::CustomAutoscaler& ca);
  // Applies a valid spec: reads the target, hands it to the actuator and the decider.
  void Apply(uint64_t epoch, const std::string& key, const decide::WorkloadSpec& spec);
  void RetryLater(uint64_t epoch, const std::string& key, const absl::Status& error);
  void Forget(uint64_t epoch, const std::string& cr_key);
  // Gives a CR refused for targeting `workload` (already driven) another chance.
  void RetryAmbiguous(uint64_t epoch, const std::string& workload);
  void RetryUnapplied(uint64_t epoch);
  void Rebuild(uint64_t epoch);
  void LoadHistory(const std::string& workload, const decide::WorkloadSpec& spec);
  void Cleanup();
  void Report(const CrState& cr);
  // Reads the target's pod template requests and tells the decider the CR's allocation
  // (when it changed); starts the capacity informers for extended resources.
  void UpdateAllocation(CrState& cr, const std::string& workload);
  void RefreshAllocations(uint64_t epoch);

  kube::KubeClient* const client_;
  const leader::Leadership* const leadership_;
  decide::Decider* const decider_;
  actuate::ScaleActuator* const actuator_;
  report::KubeReporter* const reporter_;
  Redis* const rebuild_redis_;
  const ReconcilerOptions options_;
  Clock* const clock_;
  kube::ClockSleeper sleeper_;  // the watcher's waits
  WorkQueue worker_;
  const UniformRandom uniform_ = DefaultUniform();  // the retries' jitter
  PodViews pod_views_;                              // worker thread
  AllocationViews allocation_views_;

  // The CR watcher of the current term; created and destroyed by the leadership's
  // control thread.
  std::unique_ptr<kube::CustomAutoscalerWatcher> watcher_;

  // Worker thread.
  std::map<std::string, CrState> crs_;         // by namespace/name
  std::map<std::string, std::string> owners_;  // workload -> the CR driving it
  bool rebuilt_ = false;

  mutable std::mutex mu_;
  ReconcilerStats stats_;
};

}  // namespace zeroscale::reconcile

#endif  // ZEROSCALE_SCALER_RECONCILE_RECONCILER_H_
