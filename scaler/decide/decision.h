// The vocabulary of scaling decisions: the automaton's states, the Decision record each
// transition produces, the workload description an automaton works from, and the
// interfaces through which decisions leave the decider (sink) and reach the cluster
// (ReplicaSetter). Plain data and pure functions; thread-safe. The interfaces document
// their own threading contracts.
#ifndef ZEROSCALE_SCALER_DECIDE_DECISION_H_
#define ZEROSCALE_SCALER_DECIDE_DECISION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/model/keep_alive.h"
#include "common/model/scaling_rule.h"

namespace zeroscale::decide {

// The automaton's states (see automaton.h for the transitions).
enum class State {
  kActive,        // running, decided by rules on fresh samples
  kHolding,       // running, but no fresh samples: replicas are held, never lowered
  kScaledToZero,  // at zero replicas; only a wake request (or minReplicas > 0) leaves it
  kWaking,        // asked for replicas from zero; waiting for a pod to report ready
};
absl::string_view StateName(State s);  // "Active"
std::optional<State> ParseState(absl::string_view name);

// Where a ScalingRule came from. A workload's effective rules are its spec's (the
// CustomAutoscaler's spec.rules or the workloads file) plus the rules stored in Redis
// under scaling_rule:<id> whose target names it; see rule_set.h for the merge.
enum class RuleSource { kCustomAutoscaler, kWorkloadsFile, kRedis };
absl::string_view RuleSourceName(RuleSource s);  // "customautoscaler", "workloads-file", "redis"

// What made the automaton act.
enum class Trigger {
  kRegistered,        // the workload was added or its spec changed
  kSample,            // a Podmetric arrived
  kTimer,             // a timer the automaton asked for fired
  kActivate,          // the balancer asked to wake the workload
  kPodReady,          // a pod reported ready
  kObservedReplicas,  // the target's replica count changed outside zeroscale
  kActuation,         // a SetReplicas call completed (or failed)
  kPods,              // what Kubernetes lists of the target's pods changed
  kAllocation,        // the group's budget, its other workloads or the cluster's room changed
};
absl::string_view TriggerName(Trigger t);  // "sample"
std::optional<Trigger> ParseTrigger(absl::string_view name);

// One transition of one workload's automaton, with a reason a human can read. This is
// what answers "why does my model have 0 replicas?".
// How a Holding decision begins when the pods that serve have not sent a first sample
// yet: right after a pod turns ready its sidecar's first sample is on its way, so this
// is reported as normal, while samples that stopped coming are a warning.
inline constexpr char kNoSamplesYet[] = "no samples received yet";

struct Decision {
  absl::Time time = absl::UnixEpoch();
  std::string workload;
  State from = State::kActive;
  State to = State::kActive;
  int32_t replicas_before = 0;
  int32_t replicas_after = 0;
  Trigger trigger = Trigger::kSample;
  std::string rule;         // id of the rule that drove it, if one did
  std::string rule_source;  // where that rule came from (RuleSourceName), with `rule`
  std::string reason;       // "rule 'busy' holds: IN_FLIGHT_REQUESTS 7.2 > 4 over 60s: 3 -> 4"
  // Computed and recorded but not applied (--dry-run).
  bool dry_run = false;
  // A scale-up held back by an allocation limit (budget::LimitKindName: "group",
  // "cluster", "pending"); the reason says which. "" otherwise.
  std::string limited_by;

  bool operator==(const Decision& o) const;
};

// Deterministic JSON, camelCase like the rest of the Redis layout.
std::string DecisionToJson(const Decision& d);
// kInvalidArgument naming the field when the JSON does not describe a Decision.
absl::StatusOr<Decision> DecisionFromJson(absl::string_view json);

// What an automaton knows of its target besides the rules: the CustomAutoscaler spec (or
// the local backend's workloads file entry).
struct WorkloadSpec {
  std::string workload;  // <namespace>/<kind>/<name>
  int32_t min_replicas = 1;
  int32_t max_replicas = 1;
  absl::Duration idle_timeout = absl::ZeroDuration();  // zero: no idle scale-to-zero
  // How idle time turns into scale to zero, and pre-warming (keep_alive/keep_alive.h).
  KeepAliveConfig keep_alive;
  // Rules whose target is this workload (an empty target is taken to mean it).
  std::vector<ScalingRule> rules;
  // Where `rules` came from: the door that passed the spec (the reconciler or the local
  // backend). The engine adds the stored rules and fills `rule_sources`.
  RuleSource rules_source = RuleSource::kCustomAutoscaler;
  // Parallel to `rules` once merged (rule_set.h); empty: every rule is `rules_source`.
  std::vector<RuleSource> rule_sources;
};

// kInvalidArgument naming the field: negative or inverted bounds, max 0, invalid rules,
// rules bound to another workload.
absl::Status ValidateWorkloadSpec(const WorkloadSpec& spec);

// What Kubernetes lists of a workload's pods (by its target's selector), so the decider
// can tell data that is missing from pods that cannot report: the pods that exist (not
// being deleted), and of those the ones that serve (Running and Ready), which are the
// ones expected to report. Ids are "<namespace>/<pod>", sorted.
struct TargetPods {
  std::vector<std::string> existing;
  std::vector<std::string> serving;
  // Every pod the target's selector matches, terminating ones too: whose samples (a
  // draining pod's last ones) may name this workload.
  std::vector<std::string> members;
  // Of the existing pods: those not yet on a node, and of those the ones the scheduler
  // could not place (PodScheduled False, Unschedulable), with one of their messages
  // ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu.").
  std::vector<std::string> unscheduled;
  std::vector<std::string> unschedulable;
  std::string unschedulable_message;
  bool operator==(const TargetPods& o) const {
    return existing == o.existing && serving == o.serving && members == o.members &&
           unscheduled == o.unscheduled && unschedulable == o.unschedulable &&
           unschedulable_message == o.unschedulable_message;
  }
};

// The balancer's view of a workload's traffic. It knows about requests no sidecar sees
// yet: those it holds while the workload is at zero or waking.
struct TrafficReport {
  absl::Time at = absl::UnixEpoch();
  uint64_t requests = 0;   // requests received since its previous report
  uint64_t in_flight = 0;  // requests it holds or is forwarding now
};

// One of a workload's effective rules, as status reports show it.
struct RuleRef {
  std::string id;
  RuleSource source = RuleSource::kCustomAutoscaler;
  Action action = Action::kIncreaseInstances;
  bool operator==(const RuleRef& o) const {
    return id == o.id && source == o.source && action == o.action;
  }
};

// The same rule id for the same workload from two doors: `winner` is used, the rule
// from `loser` is ignored (and reported).
struct RuleConflict {
  std::string id;
  RuleSource winner = RuleSource::kCustomAutoscaler;
  RuleSource loser = RuleSource::kRedis;
  bool operator==(const RuleConflict& o) const {
    return id == o.id && winner == o.winner && loser == o.loser;
  }
};

// A snapshot of one workload's automaton, for status reporting (CustomAutoscaler status,
// /workloads, the balancer's view of replicas).
struct WorkloadStatus {
  std::string workload;
  State state = State::kActive;
  int32_t replicas = 0;  // what the target has, as far as the automaton knows
  int32_t desired = 0;   // what it is being set to (== replicas when nothing is in flight)
  bool actuation_in_flight = false;
  std::optional<Decision> last_decision;
  // Why the latest evaluation changed nothing, when something held it back ("partial
  // data", "in cooldown", "requests in flight"); empty otherwise.
  std::string note;
  // The rules in effect, with where each came from, and the conflicts the merge found.
  std::vector<RuleRef> rules;
  std::vector<RuleConflict> rule_conflicts;
  // While a scale-up is held back by an allocation limit: what holds it ("holding 3
  // replicas: group 'llm' is at its 8 nvidia.com/gpu limit ...") and which kind of limit
  // (budget::LimitKindName); empty otherwise.
  std::string limit;
  std::string limited_by;
  // The workload names an allocation group whose budget cannot be used (no such
  // AllocationPolicy, or an invalid one): scale-ups are not limited by it. "" otherwise.
  std::string allocation_problem;
  bool operator==(const WorkloadStatus& o) const;
};

// Receives every Decision. Called on the decider's loop thread, so implementations
// must be quick (or hand off to their own thread) and need no locking of their own
// unless they are shared with other threads.
class DecisionSink {
 public:
  virtual ~DecisionSink() = default;
  virtual void Record(const Decision& decision) = 0;
  // The workload's snapshot changed (state, replicas, desired, actuation, last decision
  // or note): state pushed from the loop, so nobody has to ask the loop for it.
  virtual void OnStatus(const WorkloadStatus& status) {}
  // The workload is no longer managed.
  virtual void OnRemoved(const std::string& workload) {}
  // What the workload's keep-alive policy learned changed (at most once a minute):
  // `state` is KeepAliveModel::ToJson, to persist so that a new leader continues it.
  virtual void OnKeepAlive(const std::string& workload, const std::string& state) {}
};

// Applies replica counts to the target (Kubernetes scale subresource, local processes).
// Calls may come from the decider's loop thread; `done` may be called from any thread,
// including synchronously inside the call. Counts are absolute, so repeating a call is
// harmless; the decider never has more than one call in flight per workload.
class ReplicaSetter {
 public:
  virtual ~ReplicaSetter() = default;
  // Sets the target's replicas to `n`, a decision computed on the target having `from`.
  // A setter that shares the target with others (Kubernetes) applies it only while the
  // target still has `from`, so a decision made on outdated replicas is never applied:
  // `done` then gets kAborted, and the decider re-reads and re-decides rather than
  // retrying the old decision. Other errors: the decider re-reads after a backoff.
  virtual void SetReplicas(const std::string& workload, int32_t from, int32_t n,
                           const std::string& reason, std::function<void(absl::Status)> done) = 0;
  // Reads the target's current replica count (after a conflict or a failed write).
  virtual void GetReplicas(const std::string& workload,
                           std::function<void(absl::StatusOr<int32_t>)> done) = 0;
};

// Sends each Decision to several sinks (log, metrics, Events, Redis history).
class FanoutSink : public DecisionSink {
 public:
  explicit FanoutSink(std::vector<DecisionSink*> sinks) : sinks_(std::move(sinks)) {}
  void Record(const Decision& decision) override {
    for (DecisionSink* s : sinks_) s->Record(decision);
  }
  void OnStatus(const WorkloadStatus& status) override {
    for (DecisionSink* s : sinks_) s->OnStatus(status);
  }
  void OnRemoved(const std::string& workload) override {
    for (DecisionSink* s : sinks_) s->OnRemoved(workload);
  }
  void OnKeepAlive(const std::string& workload, const std::string& state) override {
    for (DecisionSink* s : sinks_) s->OnKeepAlive(workload, state);
  }

 private:
  std::vector<DecisionSink*> sinks_;
};

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_DECISION_H_
