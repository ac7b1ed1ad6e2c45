// Reporting in a cluster: what the decider does, as users see it with kubectl. Every
// decision becomes an Event on the scale target, and every CustomAutoscaler's status
// (replicas, desired, state, last decision and reason, conditions) is kept current. The
// reporter only hears: the reconciler tells it what it knows of each CustomAutoscaler,
// the actuator how writes and re-reads went, the decider its decisions and each
// workload's status as it changes (pushed from the decider's loop, never asked for); it
// writes on a thread of its own, coalescing status writes per CustomAutoscaler, so
// neither the loop nor any other caller ever waits on it or on the API server. Only
// while this replica leads.
//
// Thread-safety: every public method is thread-safe.
#ifndef ZEROSCALE_SCALER_REPORT_KUBE_REPORTER_H_
#define ZEROSCALE_SCALER_REPORT_KUBE_REPORTER_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/events.h"
#include "common/kube/types.h"
#include "common/time/clock.h"
#include "common/workqueue/work_queue.h"
#include "scaler/actuate/scale_actuator.h"
#include "scaler/decide/decision.h"
#include "scaler/leader/leadership.h"

namespace zeroscale::report {

struct KubeReporterOptions {
  bool dry_run = false;
  // The Events' reportingInstance: this replica's identity.
  std::string identity;
  // Events waiting to be written; beyond this the newest are dropped and counted (the
  // status and the decision history still explain).
  size_t max_pending_events = 1000;
  absl::Duration max_retry_after = absl::Seconds(10);
};

struct KubeReporterStats {
  int status_patches = 0;
  int events = 0;
  int dropped_events = 0;
};

// What the reconciler knows of one CustomAutoscaler.
struct CustomAutoscalerReport {
  std::string namespace_;
  std::string name;
  int64_t generation = 0;
  // Not OK when the spec is refused; `spec_reason` is then the condition's reason
  // ("InvalidSpec", "AmbiguousTarget").
  absl::Status spec;
  std::string spec_reason = "InvalidSpec";
  // Not OK when the target cannot be read (kNotFound: it does not exist).
  absl::Status target;
  // The workload it drives once applied; "" while none.
  std::string workload;
  kube::WorkloadRef target_ref;
  std::string target_uid;
  // The conditions the object carries: a new leader keeps its predecessor's transition
  // times.
  std::vector<kube::Condition> conditions;

  std::string Key() const { return namespace_ + "/" + name; }
};

class KubeReporter : public decide::DecisionSink,
                     public leader::TermListener,
                     public actuate::ActuationListener {
 public:
  // All must outlive the reporter.
  KubeReporter(kube::KubeClient* client, const leader::Leadership* leadership,
               KubeReporterOptions options, Clock* clock);
  ~KubeReporter() override;  // stops
  KubeReporter(const KubeReporter&) = delete;
  KubeReporter& operator=(const KubeReporter&) = delete;

  void Start();
  void Stop();
  KubeReporterStats stats() const;

  // From the reconciler: the CustomAutoscaler as it now stands, or gone.
  void Update(CustomAutoscalerReport report);
  void Forget(const std::string& key);

  // decide::DecisionSink: queues an Event on the target and a status update of its CR.
  void Record(const decide::Decision& decision) override;
  // decide::DecisionSink: the automaton's snapshot, for the CR's status.
  void OnStatus(const decide::WorkloadStatus& status) override;
  void OnRemoved(const std::string& workload) override;
  // actuate::ActuationListener.
  void OnScaleWritten(const std::string& workload, const absl::Status& status) override;
  void OnTargetRead(const std::string& workload, const absl::Status& status,
                    const std::string& uid) override;
  // leader::TermListener: a term's end forgets every CustomAutoscaler.
  void OnTermStart(uint64_t epoch) override {}
  void OnTermEnd(uint64_t epoch) override;

 private:
  struct CrState {
    CustomAutoscalerReport report;
    std::vector<kube::Condition> conditions;  // as last written
    std::string last_patch;
  };
  struct WorkloadState {
    std::string owner;  // CR key
    kube::WorkloadRef ref;
    std::string uid;
    absl::Status last_write;  // the last scale write's failure, if it failed
  };
  struct PendingEvent {
    uint64_t epoch = 0;
    kube::ObjectReference target;
    decide::Decision decision;
  };

  void MarkDirty(const std::string& cr_key);  // mu_ held
  void WriteEvent(const PendingEvent& e);
  void WriteStatus(const std::string& cr_key);

  kube::KubeClient* const client_;
  const leader::Leadership* const leadership_;
  const KubeReporterOptions options_;
  Clock* const clock_;
  kube::EventRecorder recorder_;
  WorkQueue writer_;

  mutable std::mutex mu_;
  std::map<std::string, CrState> crs_;              // by namespace/name
  std::map<std::string, WorkloadState> workloads_;  // by workload, of applied CRs
  // The decider's latest snapshot of each workload it manages.
  std::map<std::string, decide::WorkloadStatus> statuses_;
  std::set<std::string> dirty_;  // CRs with a status write queued
  size_t pending_events_ = 0;
  KubeReporterStats stats_;
};

}  // namespace zeroscale::report

#endif  // ZEROSCALE_SCALER_REPORT_KUBE_REPORTER_H_
