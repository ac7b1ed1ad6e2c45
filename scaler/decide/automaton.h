// One workload's scaling automaton: explicit states, moved by events, never by polling.
//
// States (decision.h): Active, Holding, ScaledToZero, Waking. Events and transitions:
//
//   from          event                                  to            actuation
//   (new)         registered with n > 0 / n == 0         Holding / ScaledToZero
//   Active        sample or timer, increase rule holds   Active        n -> n+step (<= max)
//   Active        sample or timer, decrease rule holds   Active        n -> n-step (>= max(min,1))
//   Active        to-zero rule holds or keep-alive over, ScaledToZero  n -> 0
//                 minReplicas 0, nothing in flight
//   ScaledToZero  timer: the keep-alive policy's         Waking        0 -> max(1, min)
//                 pre-warm time (adaptive policy)
//   Active        timer: no fresh sample for staleness   Holding       (hold n)
//   Holding       sample (fresh data again)              Active        (then rules as above)
//   Active/Hold.  n outside minReplicas..maxReplicas     same          n -> clamped
//   ScaledToZero  Activate (balancer wake request), or   Waking        0 -> max(1, min)
//                 minReplicas raised above 0
//   Waking        pod ready (ready sample or PodReady)   Active        (wake waiters)
//   Waking        timer: wake timeout                    Waking        (fail waiters)
//   Waking        past the wake timeout, no request for  ScaledToZero  n -> 0
//                 idleTimeoutSeconds, none in flight
//   Waking        a wake cut short by an allocation      Waking        n -> more, as fits
//                 limit: room again (kAllocation)
//   Holding       no pod serves (Kubernetes lists them   Active        (then only the idle
//                 all Pending or not ready)                            timeout can act)
//   any           observed replicas != ours (changed     Active/Hold./ n adopted; 0 means
//                 outside zeroscale)                     ScaledToZero/ ScaledToZero, n > 0
//                                                        Waking        from zero means Waking
//   any           SetReplicas failed                     previous      re-read (GetReplicas):
//                                                                      at once on kAborted
//                                                                      (409), after a backoff
//                                                                      otherwise; then decide
//                                                                      afresh
//
// Idle time is judged by the workload's keep-alive policy (keep_alive/keep_alive.h):
// fixed idleTimeoutSeconds, knative, or the adaptive histogram, which learns from the idle
// gaps between requests the automaton sees and may pre-warm a workload at zero ahead of
// its predicted next request. A pre-warm happens at most once per idle period; once
// pre-warmed, the workload goes back to zero if still idle at the plan's keep_until.
//
// Every transition and every actuation produces a Decision (with a readable reason)
// through the Host. Rules:
// - Any increase beats any decrease. Of several increase rules the largest step wins
//   (the most urgent); of several decrease rules the smallest step (the most cautious).
// - DECREASE_INSTANCES never goes below max(minReplicas, 1): reaching zero is the job of
//   DECREASE_INSTANCES_TO_ZERO and idleTimeoutSeconds, which also check in-flight
//   requests. To-zero acts only when no increase holds and no decrease can still act
//   (a decrease that holds at its floor does not block it: to-zero is the last step).
//   With minReplicas > 0 a to-zero rule brings the workload to minReplicas.
// - Cooldown (cooldownSeconds, per rule) is per direction: an increase waits for its
//   cooldown since the last increase; a decrease or to-zero waits for its cooldown since
//   the last change in either direction, so a scale-up is not undone at once. A change
//   made outside zeroscale counts as a change in both directions.
// - Missing or stale data never lowers replicas: with no fresh sample the automaton
//   holds; with partial data it may scale up but not down. Data is partial when a pod
//   expected to report does not. Given what Kubernetes lists of the target's pods
//   (SetPods), those are the serving pods (Running and Ready) that have reported: a pod
//   still Pending, not ready, or that never reported is not missing data, a serving pod
//   that stopped reporting is; and when no pod serves at all there is nothing to miss,
//   so the idle timeout still applies. Without that list: fresh samples from fewer pods
//   than it has replicas.
// - Allocation limits (budget/budget.h): every scale-up (an increase rule, the climb to
//   minReplicas, a wake from zero, a pre-warm) first asks the Host for the workload's
//   allocation snapshot and goes only as far as fits its group's budget, the cluster's
//   room for the extended resources it requests, and not at all while its own pods are
//   unschedulable. A step that does not fit at all holds and says why ("holding 3
//   replicas: group 'llm' is at its 8 nvidia.com/gpu limit"), recorded once per distinct
//   reason; a wake that does not fit leaves the workload at zero with the wake still
//   requested (the balancer keeps holding its requests) until room appears.
// - While a SetReplicas call is in flight nothing else is decided; its completion
//   re-evaluates from the new state, so a decision is never applied twice.
// - dry_run: every decision is computed, explained and recorded (dry_run = true), none is
//   applied; the replica count follows what is observed. Repeats of the same decision
//   are recorded at most once per dry_run_repeat.
//
// Not thread-safe: driven by the Engine on the decider's loop thread.
#ifndef ZEROSCALE_SCALER_DECIDE_AUTOMATON_H_
#define ZEROSCALE_SCALER_DECIDE_AUTOMATON_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/model/podmetric.h"
#include "common/time/backoff.h"
#include "scaler/decide/budget/budget.h"
#include "scaler/decide/decision.h"
#include "scaler/decide/keep_alive/keep_alive.h"
#include "scaler/decide/window.h"

namespace zeroscale::decide {

struct DeciderOptions {
  // A pod whose latest sample is older than this is not reporting; with no reporting pod
  // the automaton holds. Must exceed the sidecars' sample interval (default 1s).
  absl::Duration staleness = absl::Seconds(5);
  // Activate waiters are failed (kDeadlineExceeded) when no pod is ready this long after
  // a wake; the automaton keeps waiting.
  absl::Duration wake_timeout = absl::Minutes(5);
  // A balancer traffic report's in-flight count is believed for this long.
  absl::Duration traffic_ttl = absl::Seconds(30);
  // Backoff before re-reading the target after a failed write.
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Seconds(30);
  absl::Duration dry_run_repeat = absl::Minutes(1);
  size_t max_samples_per_pod = 4096;
  bool dry_run = false;
};

// The sample history a workload's rules need: the longest rule window plus the staleness
// (to tell whether the newest sample is fresh).
absl::Duration HistoryNeeded(const WorkloadSpec& spec, absl::Duration staleness);

class Automaton {
 public:
  // What the automaton needs from its owner. Calls happen on the loop thread.
  class Host {
   public:
    virtual ~Host() = default;
    virtual absl::Time Now() const = 0;
    // Completion must come back as OnSetDone(op, ...) / OnGetDone(op, ...), later (never
    // inside the call).
    // Sets `n` replicas, decided on the target having `from`.
    virtual void StartSet(const std::string& workload, int32_t from, int32_t n,
                          const std::string& reason, uint64_t op) = 0;
    virtual void StartGet(const std::string& workload, uint64_t op) = 0;
    // Must call OnTimer(at) once the clock reaches `at`.
    virtual void ScheduleTimer(const std::string& workload, absl::Time at) = 0;
    virtual void Record(const Decision& decision) = 0;
    // What the keep-alive policy learned changed; `state` is KeepAliveModel::ToJson.
    virtual void SaveKeepAlive(const std::string& workload, const std::string& state) {}
    // What the allocation check of this workload's scale-ups needs besides its own pods
    // (its requests, its group's budget and what the group's other workloads hold, the
    // cluster's room); nullopt when it has nothing to check.
    virtual std::optional<budget::ScaleUpInputs> AllocationInputs(
        const std::string& workload) const {
      return std::nullopt;
    }
  };
  using ReadyCallback = std::function<void(absl::Status)>;

  // `spec` must be valid (ValidateWorkloadSpec). `options` and `host` must outlive this.
  Automaton(WorkloadSpec spec, int32_t observed_replicas, const DeciderOptions* options,
            Host* host);
  ~Automaton();

  // Records the registration and evaluates once (e.g. wakes to minReplicas).
  void Start();
  void UpdateSpec(WorkloadSpec spec);
  // The rule conflicts the engine's merge found (shown in Status()).
  void SetRuleConflicts(std::vector<RuleConflict> conflicts);
  const std::vector<RuleConflict>& rule_conflicts() const { return rule_conflicts_; }

  // Adds a sample to the windows without evaluating (batches evaluate once).
  void AddSample(const Podmetric& m);
  void Evaluate(Trigger trigger);

  void OnTraffic(const TrafficReport& report);
  // `on_ready` gets OK once a pod is ready (at once if the workload is running).
  void Activate(ReadyCallback on_ready);
  void OnPodReady(absl::string_view pod);
  void OnObservedReplicas(int32_t n);
  // What Kubernetes lists of the target's pods; nullopt when that is not known (no pod
  // view: the local backend, or a replica without the RBAC to list pods).
  void SetPods(std::optional<TargetPods> pods);
  void OnTimer(absl::Time at);
  // Restores what the keep-alive policy learned (a new leader; KeepAliveModel::LoadJson).
  absl::Status LoadKeepAlive(absl::string_view state);
  const KeepAliveModel& keep_alive() const { return keep_alive_; }
  void OnSetDone(uint64_t op, absl::Status status);
  void OnGetDone(uint64_t op, absl::StatusOr<int32_t> replicas);

  WorkloadStatus Status() const;
  // Whether Status() changed since MarkPublished() (always true before the first):
  // compares a few fields, so the engine may ask after every event.
  bool StatusChanged() const;
  void MarkPublished();
  const WorkloadSpec& spec() const { return spec_; }
  State state() const { return state_; }
  int32_t replicas() const { return replicas_; }
  // What it is being set to (replicas() when nothing is in flight).
  int32_t desired() const { return op_ == Op::kSet ? pending_target_ : replicas_; }
  // Whether the last evaluation held a scale-up back for an allocation limit.
  bool limited() const { return !limit_.empty(); }
  // Why the workload's group budget cannot be used ("" when it can or there is none),
  // for its status.
  void SetAllocationProblem(std::string problem);
  // How much sample history the rules need (for rebuilding the windows from Redis).
  absl::Duration HistoryNeeded() const;

 private:
  enum class Op { kNone, kSet, kGet };

  void Record(State from, State to, int32_t before, int32_t after, Trigger trigger,
              absl::string_view rule, std::string reason, bool dry_run,
              budget::LimitKind limited_by = budget::LimitKind::kNone);
  // A state change with nothing to apply.
  void Transition(State to, Trigger trigger, std::string reason);
  // Records the decision and sets the replicas (or, in dry-run, only records).
  void Apply(State to, int32_t target, Trigger trigger, absl::string_view rule, std::string reason,
             budget::LimitKind limited_by = budget::LimitKind::kNone);
  // How far a scale-up from replicas_ to `wanted` may go (budget::FitScaleUp with this
  // workload's pods).
  budget::ScaleUpFit FitUp(int32_t wanted) const;
  // A scale-up that does not fit at all: holds and says why, after `context` (what wanted
  // it); recorded as a decision once per distinct reason.
  void HoldForLimit(Trigger trigger, absl::string_view rule, const std::string& context,
                    const budget::ScaleUpFit& fit);
  void Wake(Trigger trigger, std::string reason);
  void EvaluateWaking(absl::Time now, Trigger trigger);
  void EvaluateRunning(absl::Time now, Trigger trigger);
  // Why the data is partial ("" when it is not), with `reporting` pods fresh.
  std::string PartialData(absl::Time now, int reporting) const;
  // True when Kubernetes lists the target's pods and none of them serves.
  bool NothingServes() const { return pods_ && pods_->serving.empty(); }
  // With no metrics to decide on, only the idle timeout can act: to zero when no
  // request came for idleTimeoutSeconds and none is in flight. `context` says why.
  void EvaluateIdle(absl::Time now, Trigger trigger, const std::string& context);
  // Request activity (a sample, a traffic report, a wake request) at `at`.
  // `after_idle`: nothing was in flight before it, so the time since the previous
  // activity was an idle gap.
  void NoteActivity(absl::Time at, bool after_idle);
  // How long after the last request the workload goes to zero (InfiniteDuration: never),
  // by the keep-alive plan and whether this idle period was pre-warmed.
  absl::Duration IdleAfter() const;
  // "no request for 10m (idleTimeoutSeconds 600)", for the scale-to-zero decision.
  std::string IdleReason(absl::Time now) const;
  // At zero: wakes ahead of the predicted next request when the plan says so.
  void MaybePrewarm(absl::Time now, Trigger trigger);
  // Requests the balancer holds or forwards, as its latest fresh report says.
  double BalancerInFlight(absl::Time now) const;
  // Adopts a replica count read from the target; true when it differed.
  bool Adopt(int32_t n, Trigger trigger, absl::string_view why);
  void Resync();
  void NotifyWaiters(const absl::Status& status);
  void Consider(absl::Time deadline) {
    if (deadline < next_) next_ = deadline;
  }
  void ScheduleNext();

  WorkloadSpec spec_;
  const DeciderOptions* const options_;
  Host* const host_;
  SampleWindow window_;

  State state_;
  int32_t replicas_;
  absl::Time last_up_ = absl::InfinitePast();
  absl::Time last_down_ = absl::InfinitePast();
  // When our own last scale change took effect: rules act again only on samples newer
  // than this.
  absl::Time applied_at_ = absl::InfinitePast();
  absl::Time last_request_;    // registration counts as one: a restart never starts idle
  bool seen_request_ = false;  // a real request, not the registration, set last_request_
  // Whether the latest balancer report / the latest sample showed requests in flight.
  bool traffic_busy_ = false;
  bool sample_busy_ = false;
  absl::Time last_sample_at_ = absl::InfinitePast();
  KeepAliveModel keep_alive_;
  // The last_request_ whose idle period was pre-warmed (one pre-warm per idle period).
  absl::Time prewarmed_for_ = absl::InfinitePast();
  absl::Time traffic_at_ = absl::InfinitePast();
  uint64_t traffic_in_flight_ = 0;

  // The SetReplicas or GetReplicas call in flight.
  Op op_ = Op::kNone;
  uint64_t op_id_ = 0;
  State pending_from_ = State::kActive;
  int32_t pending_target_ = 0;
  absl::Time resync_at_ = absl::InfiniteFuture();  // a re-read is due (after a failure)
  Backoff retry_backoff_;                          // re-reads after failed writes and reads

  bool wake_requested_ = false;
  bool ready_signal_ = false;  // a PodReady arrived while waking
  std::string ready_pod_;
  bool wake_timed_out_ = false;
  absl::Time wake_started_ = absl::InfinitePast();
  std::vector<ReadyCallback> waiters_;

  absl::Time next_ = absl::InfiniteFuture();      // earliest deadline of this evaluation
  absl::Time timer_at_ = absl::InfiniteFuture();  // earliest timer outstanding
  // What Kubernetes lists of the target's pods, and which of them have reported
  // (pruned to the listed ones); see SetPods.
  std::optional<TargetPods> pods_;
  absl::flat_hash_set<std::string> reported_;

  std::optional<Decision> last_decision_;
  uint64_t decisions_ = 0;  // recorded so far: a new one changes the status
  std::string note_;
  // What held the last evaluation's scale-up back ("" when nothing), its kind, and the
  // last one recorded as a decision (so a hold is recorded once, not on every sample).
  std::string limit_;
  budget::LimitKind limit_kind_ = budget::LimitKind::kNone;
  std::string limit_recorded_;
  std::string allocation_problem_;
  // What the last published status showed.
  struct Published {
    State state = State::kActive;
    int32_t replicas = 0;
    int32_t desired = 0;
    bool in_flight = false;
    uint64_t decisions = 0;
    std::string note;
    std::string limit;
    uint64_t rule_changes = 0;
  };
  std::optional<Published> published_;
  std::vector<RuleConflict> rule_conflicts_;
  uint64_t rule_changes_ = 0;  // spec or conflict updates, for StatusChanged()
  // Dry-run repeat suppression.
  std::optional<Decision> last_dry_run_;
};

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_AUTOMATON_H_
