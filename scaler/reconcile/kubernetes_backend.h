// The Kubernetes side of the scaler in one object: while this replica leads (a
// coordination.k8s.io Lease), it watches CustomAutoscalers and keeps one automaton per
// valid CR in the decider, applies the decider's replica counts to the targets' scale
// subresource with optimistic concurrency, re-reads the targets periodically to notice
// changes made outside zeroscale, and reports back: an Event on the target per decision
// and the CR's status (replicas, state, last decision and reason, conditions).
//
// Leadership: on becoming leader it starts the watch, waits for the first list, upserts
// every valid CR and rebuilds the decider's windows from Redis, so a takeover decides at
// once without warming up. On losing it, it stops the watch, removes every workload from
// the decider and refuses writes, so a non-leader never decides or writes; ingest is not
// affected.
//
// Threads (all the backend's own): the leader elector, a control thread for leadership
// changes and resync ticks, the CR watcher (while leading), a worker for every scale
// and CR call (so the decider's loop never waits on the API server), and a reporter for
// Events and status patches (coalesced per CR).
//
// Thread-safety: every public method is thread-safe. Attach before Start; Stop before
// destroying the decider.
#ifndef ZEROSCALE_SCALER_RECONCILE_KUBERNETES_BACKEND_H_
#define ZEROSCALE_SCALER_RECONCILE_KUBERNETES_BACKEND_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/events.h"
#include "common/kube/leader_election.h"
#include "common/kube/retry.h"
#include "common/kube/types.h"
#include "common/kube/watcher.h"
#include "common/redis/redis.h"
#include "common/time/clock.h"
#include "scaler/decide/decider.h"
#include "scaler/decide/decision.h"
#include "scaler/reconcile/work_queue.h"

namespace zeroscale::reconcile {

struct KubernetesBackendOptions {
  std::string watch_namespace;  // "" = all namespaces
  bool leader_elect = true;
  // "" = the cluster configuration's namespace (in-cluster namespace file or the
  // kubeconfig context), else "default".
  std::string lease_namespace;
  std::string lease_name = "zeroscale-scaler";
  std::string identity;  // "" = "<hostname>-<pid>"
  absl::Duration lease_duration = absl::Seconds(15);
  absl::Duration renew_deadline = absl::Seconds(10);
  absl::Duration retry_period = absl::Seconds(2);
  // Clear the Lease on Stop() so a successor need not wait for it to expire.
  bool release_on_stop = true;
  // How often each target's scale is re-read to notice replicas changed outside zeroscale.
  absl::Duration resync = absl::Seconds(30);
  // Never PATCH a scale (the decider, in dry-run too, only records).
  bool dry_run = false;
  // A scale GET/PATCH answered 429/5xx (or not answered) is tried this many times in all
  // before the error goes back to the decider as kUnavailable; Retry-After is honoured
  // up to max_retry_after.
  int api_attempts = 3;
  kube::BackoffOptions api_backoff{absl::Milliseconds(200), absl::Seconds(5), 2.0, 0.2};
  absl::Duration max_retry_after = absl::Seconds(10);
  // Servers end watches after this.
  absl::Duration watch_timeout = absl::Minutes(5);
  // Events waiting to be written; beyond this the newest are dropped and counted (the
  // status and the decision history still explain).
  size_t max_pending_events = 1000;
  // Waits of the elector and the watcher; tests inject their own.
  kube::Sleeper* sleeper = kube::RealSleeper::Get();
};

struct KubernetesBackendStats {
  int terms = 0;          // times this replica started leading
  int rebuilds = 0;       // successful RebuildFromRedis calls
  int scale_patches = 0;  // successful scale writes
  int conflicts = 0;      // 409s on scale writes
  int api_retries = 0;    // scale calls retried after 429/5xx
  int status_patches = 0;
  int events = 0;
  int dropped_events = 0;
  int refused_writes = 0;  // writes refused because not leading or dry-run
};

class KubernetesBackend : public decide::ReplicaSetter, public decide::DecisionSink {
 public:
  // `rebuild_redis` is a connection of the backend's own (used on its worker thread
  // only); may be null to skip rebuilding. `clock` and `rebuild_redis` must outlive it.
  static absl::StatusOr<std::unique_ptr<KubernetesBackend>> Create(
      const kube::ClusterConfig& cluster, KubernetesBackendOptions options, Redis* rebuild_redis,
      Clock* clock);
  ~KubernetesBackend() override;  // stops
  KubernetesBackend(const KubernetesBackend&) = delete;
  KubernetesBackend& operator=(const KubernetesBackend&) = delete;

  // The decider is built with this object as its ReplicaSetter and DecisionSink, so it
  // is attached afterwards, before Start.
  void Attach(decide::Decider* decider);
  // Starts leader election (or leads at once without it). kFailedPrecondition without
  // a decider.
  absl::Status Start();
  // Stops leading (releasing the Lease when configured) and joins every thread.
  void Stop();
  bool leading() const { return leading_.load(); }
  KubernetesBackendStats stats() const;
  kube::KubeClient* client() { return client_.get(); }
  const std::string& identity() const { return options_.identity; }

  // decide::ReplicaSetter. `workload` is "<ns>/<Kind>/<name>". Runs on the worker;
  // `done` is called there. kAborted on 409, kUnavailable after the retries,
  // kFailedPrecondition in dry-run or when not leading, kNotFound for a workload no
  // CustomAutoscaler drives.
  void SetReplicas(const std::string& workload, int32_t n, const std::string& reason,
                   std::function<void(absl::Status)> done) override;
  void GetReplicas(const std::string& workload,
                   std::function<void(absl::StatusOr<int32_t>)> done) override;

  // decide::DecisionSink: queues an Event on the target and a status update of its CR.
  // Never blocks on the network.
  void Record(const decide::Decision& decision) override;

 private:
  // One scale target driven by one CustomAutoscaler. Worker thread (reads under mu_).
  struct Target {
    kube::WorkloadRef ref;
    std::string owner;  // CR key, namespace/name
    std::string uid;    // of the workload, for Events
    // The resourceVersion writes carry: that of the scale the decider's view is based
    // on. It advances only with reads the decider adopts (its own GetReplicas, our
    // successful writes) or reads that show the count it already believes, so a write
    // decided on outdated replicas always gets 409.
    std::string resource_version;
    int32_t replicas = 0;  // the count last handed to the decider
    bool stale = false;    // an outside change was reported; writes must re-read first
    absl::Status last_write;
  };
  // What is known of one CustomAutoscaler. Guarded by mu_.
  struct CrState {
    kube::CustomAutoscaler object;
    std::string workload;  // the workload it drives; "" when none
    std::optional<decide::WorkloadSpec> applied;
    absl::Status spec;
    std::string spec_reason = "InvalidSpec";
    absl::Status target;
    std::vector<kube::Condition> conditions;  // as last written
    std::string last_patch;
  };
  struct PendingEvent {
    uint64_t epoch = 0;
    kube::ObjectReference target;
    decide::Decision decision;
  };

  KubernetesBackend(KubernetesBackendOptions options, Redis* rebuild_redis, Clock* clock,
                    std::unique_ptr<kube::KubeClient> client);

  // Control thread.
  void ControlLoop();
  void BeginTerm(uint64_t term_losses);
  void EndTerm();
  // True when the term that began after `term_losses` losses is over (or stopping).
  bool TermAborted(uint64_t term_losses);
  void OnLeadershipChange(bool leading);

  // Worker thread.
  void Reconcile(uint64_t epoch, kube::WatchEventType type, const kube::CustomAutoscaler& ca);
  void Forget(uint64_t epoch, const std::string& cr_key);
  // Gives a CR refused for targeting `workload` (already driven) another chance.
  void RetryAmbiguous(uint64_t epoch, const std::string& workload);
  // Records a read of the target the decider did not ask for; true when the replicas
  // changed outside zeroscale. mu_ held.
  bool NoteRead(Target* t, const kube::Scale& scale);
  void Rebuild(uint64_t epoch);
  void LoadHistory(const std::string& workload, const decide::WorkloadSpec& spec);
  void ResyncAll(uint64_t epoch);
  void ResyncOne(uint64_t epoch, const std::string& workload);
  void DoSet(uint64_t epoch, std::string workload, int32_t n,
             std::function<void(absl::Status)> done, int attempt);
  void DoGet(uint64_t epoch, std::string workload,
             std::function<void(absl::StatusOr<int32_t>)> done, int attempt);
  void Cleanup();
  // The wait before attempt `attempt + 1`, or nullopt when the error is not worth
  // retrying or the attempts are used up.
  std::optional<absl::Duration> RetryDelay(const absl::Status& s, int attempt);
  absl::Duration NextDelay(const absl::Status& s, int attempt);
  // A copy of the workload's target (kNotFound when no CustomAutoscaler drives it), so
  // the API call that follows runs without the lock.
  absl::StatusOr<Target> TargetOf(const std::string& workload) const;
  bool Current(uint64_t epoch) const { return leading_.load() && epoch_.load() == epoch; }

  // Reporter thread.
  void MarkDirty(const std::string& cr_key);  // mu_ held
  void WriteEvent(const PendingEvent& e);
  void WriteStatus(const std::string& cr_key);

  KubernetesBackendOptions options_;
  Redis* const rebuild_redis_;
  Clock* const clock_;
  std::unique_ptr<kube::KubeClient> client_;
  kube::EventRecorder recorder_;
  decide::Decider* decider_ = nullptr;
  std::unique_ptr<kube::LeaderElector> elector_;

  WorkQueue worker_;
  WorkQueue reporter_;
  absl::BitGen gen_;  // worker thread

  // Leadership. leading_ drops at once when leadership is lost, so writes stop before
  // the control thread has wound the term down; epoch_ tells tasks of an old term.
  std::atomic<bool> leading_{false};
  std::atomic<uint64_t> epoch_{0};
  std::mutex control_mu_;
  std::condition_variable control_cv_;
  bool want_leading_ = false;
  uint64_t losses_ = 0;  // leadership losses so far; a lose-and-regain ends the term too
  bool stopping_ = false;
  bool started_ = false;
  std::thread control_;
  std::unique_ptr<kube::CustomAutoscalerWatcher> watcher_;  // control thread
  bool rebuilt_ = false;                                    // worker thread
  std::atomic<bool> resync_queued_{false};

  mutable std::mutex mu_;
  std::map<std::string, Target> targets_;  // by workload
  std::map<std::string, CrState> crs_;     // by namespace/name
  std::set<std::string> dirty_;            // CRs with a status write queued
  size_t pending_events_ = 0;
  KubernetesBackendStats stats_;
};

}  // namespace zeroscale::reconcile

#endif  // ZEROSCALE_SCALER_RECONCILE_KUBERNETES_BACKEND_H_
