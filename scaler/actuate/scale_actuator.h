// Actuation in a cluster: the decider's replica counts applied to the targets' scale
// subresource (deployments/scale, statefulsets/scale). It also re-reads every target
// periodically and tells the decider about counts changed outside zeroscale. Reads and
// writes of one replica run on one worker thread, in order, so a re-read can never
// overtake a write and be mistaken for an outside change. Only while this replica leads
// (leader::Leadership): a write of an old term is refused.
//
// The precondition of a write is the replica count the decision was computed on, not a
// resourceVersion. Each write is one JSON patch: test spec.replicas == from, then set it,
// applied by the API server atomically against the object as it is then. The
// resourceVersion of a Deployment's scale moves with every status update of its
// controller (pods created, becoming ready...), which follows nearly every scale change,
// so a write carrying the version of the previous one got 409 most of the time: a failed
// decision, a FailedScale Event and an extra round trip on the wake path. The count is
// what a decision depends on: a write tested on it lands exactly when the decision is
// still valid and fails exactly when someone else changed the count, so a decision made
// on stale state is never applied, and none twice (a decision applied moves the count
// off its `from`). A failed test comes back as 422, as any invalid patch would: the
// actuator then reads the target: another count is a conflict (kAborted, the decider
// re-reads and decides again); the count written is the write having landed before (a
// retry after a lost answer); the count expected means the server shows it otherwise
// than tested, and the write falls back to read-before-write with that read's
// resourceVersion.
//
// Thread-safety: every public method is thread-safe. Attach before Start; Stop before
// destroying the decider.
#ifndef ZEROSCALE_SCALER_ACTUATE_SCALE_ACTUATOR_H_
#define ZEROSCALE_SCALER_ACTUATE_SCALE_ACTUATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/retry.h"
#include "common/kube/types.h"
#include "common/time/backoff.h"
#include "common/time/clock.h"
#include "common/workqueue/work_queue.h"
#include "scaler/decide/decider.h"
#include "scaler/decide/decision.h"
#include "scaler/leader/leadership.h"

namespace zeroscale::actuate {

struct ScaleActuatorOptions {
  // Never PATCH a scale (the decider, in dry-run too, only records).
  bool dry_run = false;
  // A scale GET/PATCH answered 429/5xx (or not answered) is tried this many times in all
  // before the error goes back to the decider as kUnavailable; Retry-After is honoured
  // up to max_retry_after.
  int api_attempts = 3;
  BackoffPolicy api_backoff{absl::Milliseconds(200), absl::Seconds(5), 2.0, Jitter::kProportional,
                            0.2};
  absl::Duration max_retry_after = absl::Seconds(10);
  // How often each target's scale is re-read to notice replicas changed outside zeroscale.
  absl::Duration resync = absl::Seconds(30);
};

struct ScaleActuatorStats {
  int scale_patches = 0;   // successful scale writes
  int conflicts = 0;       // writes refused because the target's count had changed
  int api_retries = 0;     // scale calls retried after 429/5xx
  int refused_writes = 0;  // writes refused because not leading or dry-run
};

// Hears what the actuator learns about targets (the reporter, for the CR's status).
// Called on the actuator's worker thread; must not block.
class ActuationListener {
 public:
  virtual ~ActuationListener() = default;
  // A scale write completed: OK, or why it failed. Conflicts are not reported: the
  // decider re-reads and decides again.
  virtual void OnScaleWritten(const std::string& workload, const absl::Status& status) = 0;
  // A periodic re-read of the target: OK (with the target's uid), or why it failed.
  virtual void OnTargetRead(const std::string& workload, const absl::Status& status,
                            const std::string& uid) = 0;
};

class ScaleActuator : public decide::ReplicaSetter, public leader::TermListener {
 public:
  // All must outlive the actuator.
  ScaleActuator(kube::KubeClient* client, const leader::Leadership* leadership,
                ScaleActuatorOptions options, Clock* clock);
  ~ScaleActuator() override;  // stops
  ScaleActuator(const ScaleActuator&) = delete;
  ScaleActuator& operator=(const ScaleActuator&) = delete;

  // The decider hears outside changes; `listener` (may be null) the rest.
  void Attach(decide::Decider* decider, ActuationListener* listener);
  void Start();
  void Stop();
  ScaleActuatorStats stats() const;

  // The reconciler's targets. Track adds `workload` with the scale read when its
  // CustomAutoscaler was applied, or takes that read into account when it is tracked
  // already; Untrack forgets it (writes to it get kNotFound).
  void Track(const std::string& workload, const kube::WorkloadRef& ref, const kube::Scale& scale);
  void Untrack(const std::string& workload);

  // decide::ReplicaSetter. `workload` is "<ns>/<Kind>/<name>". Runs on the worker;
  // `done` is called there. kAborted when the target no longer has `from` replicas,
  // kUnavailable after the retries, kFailedPrecondition in dry-run or when not leading,
  // kNotFound for a workload no CustomAutoscaler drives.
  void SetReplicas(const std::string& workload, int32_t from, int32_t n, const std::string& reason,
                   std::function<void(absl::Status)> done) override;
  void GetReplicas(const std::string& workload,
                   std::function<void(absl::StatusOr<int32_t>)> done) override;

  // leader::TermListener: a term starts the periodic re-reads; its end forgets targets.
  void OnTermStart(uint64_t epoch) override;
  void OnTermEnd(uint64_t epoch) override;

 private:
  struct Target {
    kube::WorkloadRef ref;
    // The count last handed to the decider (read, written, or reported as changed), to
    // tell outside changes from what it knows.
    int32_t replicas = 0;
  };

  void DoSet(uint64_t epoch, std::string workload, int32_t from, int32_t n,
             std::function<void(absl::Status)> done, int attempt);
  // Writes `n` if the target has `from`; see the class comment.
  absl::StatusOr<kube::Scale> WriteIfReplicas(const kube::WorkloadRef& ref, int32_t from,
                                              int32_t n);
  void DoGet(uint64_t epoch, std::string workload,
             std::function<void(absl::StatusOr<int32_t>)> done, int attempt);
  void ResyncAll(uint64_t epoch);
  void ResyncOne(uint64_t epoch, const std::string& workload);
  // Records a read of the target the decider did not ask for; true when the replicas
  // changed outside zeroscale. mu_ held.
  bool NoteRead(Target* t, const kube::Scale& scale);
  // The wait before attempt `attempt + 1`, or nullopt when the error is not worth
  // retrying or the attempts are used up.
  std::optional<absl::Duration> RetryDelay(const absl::Status& s, int attempt);
  // A copy of the workload's target (kNotFound when none), so the API call that follows
  // runs without the lock.
  absl::StatusOr<Target> TargetOf(const std::string& workload) const;
  // The same for a call of the term `epoch`: kFailedPrecondition once it is over.
  absl::StatusOr<Target> TargetFor(uint64_t epoch, const std::string& workload) const;
  void Count(int ScaleActuatorStats::*counter);

  kube::KubeClient* const client_;
  const leader::Leadership* const leadership_;
  const ScaleActuatorOptions options_;
  Clock* const clock_;
  decide::Decider* decider_ = nullptr;
  ActuationListener* listener_ = nullptr;
  WorkQueue worker_;
  const UniformRandom uniform_ = DefaultUniform();  // the retries' jitter

  mutable std::mutex mu_;
  std::map<std::string, Target> targets_;  // by workload
  ScaleActuatorStats stats_;
};

}  // namespace zeroscale::actuate

#endif  // ZEROSCALE_SCALER_ACTUATE_SCALE_ACTUATOR_H_
