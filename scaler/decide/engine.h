// The decision engine: every workload's automaton, samples routed by their `workload`
// field, timers and actuation completions dispatched back to the right automaton.
// Event-driven: a workload is evaluated when one of its events arrives (a sample batch,
// its own timer, a wake request...), never all workloads per tick, so the cost follows
// the sample rate, not the number of workloads.
//
// Not thread-safe: every call must come from the scheduler's thread (or, with a
// ManualScheduler, from the thread that runs it). Decider (decider.h) is the thread-safe
// front that posts calls here. Completions of ReplicaSetter calls may arrive on any
// thread: they are posted to the scheduler. The engine must outlive its scheduler's
// pending tasks or be destroyed on the scheduler's thread (posted completions check a
// liveness token there).
//
// After every event, a workload whose status changed has it pushed to the sink
// (DecisionSink::OnStatus), so reporters never ask the loop.
//
// Allocation limits: the engine keeps what the reconciler learned of each workload's
// requests and group, of the groups' budgets and of the cluster's room, and hands each
// automaton its snapshot when it considers a scale-up (Automaton::Host::AllocationInputs),
// counting what the group's other workloads hold from their automata's desired replicas.
// A change of a budget or of the cluster's room, or a workload of a group moving,
// re-evaluates the workloads a limit held back (Trigger::kAllocation).
//
// Benchmarks and tests can call OnSample and get the decisions it caused synchronously.
#ifndef ZEROSCALE_SCALER_DECIDE_ENGINE_H_
#define ZEROSCALE_SCALER_DECIDE_ENGINE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "common/model/podmetric.h"
#include "common/time/clock.h"
#include "scaler/decide/automaton.h"
#include "scaler/decide/budget/budget.h"
#include "scaler/decide/decision.h"
#include "scaler/decide/rule_set.h"
#include "scaler/decide/scheduler.h"

namespace zeroscale::decide {

class Engine : private Automaton::Host {
 public:
  // All must outlive the engine; `sink` may be null.
  Engine(const Clock* clock, Scheduler* scheduler, ReplicaSetter* setter, DecisionSink* sink,
         DeciderOptions options = {});
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Adds a workload with the replica count its target has now, or updates its spec
  // (keeping its state and windows). kInvalidArgument for an invalid spec. The
  // automaton works from the spec merged with the stored rules (rule_set.h).
  absl::Status Upsert(const WorkloadSpec& spec, int32_t observed_replicas);
  // Replaces every rule stored in Redis (all of them, bound or not; invalid ones are
  // dropped with a log line) and re-merges each workload whose effective rules change.
  // Kept across workloads coming and going, so a workload added later (a new leader's
  // reconciler) gets its stored rules at once. Returns the conflicts over all workloads.
  size_t SetStoredRules(std::vector<ScalingRule> rules);
  // Conflicts between spec and stored rules over all workloads, as of now.
  size_t rule_conflicts() const;
  // Forgets a workload; pending Activate callbacks get kCancelled. False if unknown.
  bool Remove(const std::string& workload);

  // Feeds one sample and evaluates its workload. Returns the decisions it caused (also
  // sent to the sink). Samples of unknown workloads are dropped and counted.
  std::vector<Decision> OnSample(const Podmetric& m);
  // Feeds a batch, evaluating each workload it touches once.
  std::vector<Decision> OnSamples(const std::vector<Podmetric>& batch);
  // Loads history (from Redis, after becoming leader) into a workload's windows and
  // evaluates it. Overlap with samples already held is ignored. kNotFound if unknown.
  absl::Status LoadHistory(const std::string& workload, const std::vector<Podmetric>& samples);

  absl::Status OnTraffic(const std::string& workload, const TrafficReport& report);
  // A wake request from the balancer; `on_ready` is called (on this thread) with OK once
  // a pod is ready, or with an error (kNotFound for an unknown workload, kDeadlineExceeded,
  // kFailedPrecondition in dry-run, kCancelled if the workload is removed).
  void Activate(const std::string& workload, Automaton::ReadyCallback on_ready);
  absl::Status OnPodReady(const std::string& workload, const std::string& pod);
  // The target's replica count as observed (watch, re-list, local backend).
  absl::Status OnObservedReplicas(const std::string& workload, int32_t n);
  // What Kubernetes lists of the target's pods (nullopt: not known).
  absl::Status OnPods(const std::string& workload, std::optional<TargetPods> pods);
  // Restores what a workload's keep-alive policy learned (KeepAliveModel::ToJson, as the
  // sink's OnKeepAlive received it). kNotFound if unknown, kInvalidArgument if malformed.
  absl::Status LoadKeepAlive(const std::string& workload, absl::string_view state);

  // --- Allocation limits (budget/budget.h).
  // What one replica of `workload` requests and the group it belongs to ("" for none;
  // its policy is looked up in `ns`). nullopt: nothing to check (the default).
  struct Allocation {
    std::string group;
    std::string namespace_;
    ResourceAmounts per_replica;
    bool operator==(const Allocation& o) const {
      return group == o.group && namespace_ == o.namespace_ && per_replica == o.per_replica;
    }
  };
  void SetAllocation(const std::string& workload, std::optional<Allocation> allocation);
  // Every group's budget (all AllocationPolicies); nullopt: not known (before the first
  // list, or after a term ended), when a workload in a group holds its scale-ups.
  void SetGroupBudgets(std::optional<std::vector<budget::GroupBudget>> budgets);
  // The cluster's room; nullopt when not known (then only budgets and Pending pods
  // limit scale-ups).
  void SetClusterCapacity(std::optional<budget::ClusterCapacity> capacity);

  std::optional<WorkloadStatus> GetStatus(const std::string& workload) const;
  // What the workload's keep-alive policy learned (KeepAliveModel::ToJson).
  std::optional<std::string> KeepAliveState(const std::string& workload) const;
  // How far back to read samples from Redis to fill this workload's windows.
  std::optional<absl::Duration> HistoryNeeded(const std::string& workload) const;
  std::vector<std::string> Workloads() const;
  size_t size() const { return automata_.size(); }
  uint64_t unrouted_samples() const { return unrouted_samples_; }
  const DeciderOptions& options() const { return options_; }

 private:
  // Automaton::Host.
  absl::Time Now() const override { return clock_->Now(); }
  void StartSet(const std::string& workload, int32_t from, int32_t n, const std::string& reason,
                uint64_t op) override;
  void StartGet(const std::string& workload, uint64_t op) override;
  void ScheduleTimer(const std::string& workload, absl::Time at) override;
  void Record(const Decision& decision) override;
  void SaveKeepAlive(const std::string& workload, const std::string& state) override;
  std::optional<budget::ScaleUpInputs> AllocationInputs(const std::string& workload) const override;

  // "<namespace>/<group>" of a workload's group; "" when none.
  std::string GroupOf(const std::string& workload) const;
  // Why the workload's group budget cannot be used, "" when it can (or no group).
  std::string AllocationProblem(const std::string& workload) const;
  // Re-evaluates the workloads a limit held back (of `group` only, unless it is "").
  void ReevaluateLimited(const std::string& group, const std::string& except);

  Automaton* Find(const std::string& workload) const;
  // Merges `base` with the stored rules into `a`'s spec when the rules differ (or
  // `always`); logs conflicts that are new.
  void ApplyRules(Automaton* a, const WorkloadSpec& base, bool always);
  // Hands the automaton's status to the sink when it changed.
  void Publish(Automaton* a);

  const Clock* const clock_;
  Scheduler* const scheduler_;
  ReplicaSetter* const setter_;
  DecisionSink* const sink_;
  const DeciderOptions options_;
  absl::flat_hash_map<std::string, std::unique_ptr<Automaton>> automata_;
  // Each workload's spec as its door passed it, before the stored rules are added.
  absl::flat_hash_map<std::string, WorkloadSpec> base_specs_;
  StoredRules stored_;
  uint64_t unrouted_samples_ = 0;
  std::vector<Decision>* collect_ = nullptr;                  // decisions of the call in progress
  absl::flat_hash_map<std::string, Allocation> allocations_;  // by workload
  std::map<std::string, budget::GroupBudget> budgets_;        // by "<namespace>/<name>"
  bool budgets_known_ = false;
  std::optional<budget::ClusterCapacity> capacity_;
  // The desired replicas last published of each workload in a group: when one moves,
  // the others held back by the group's budget look again.
  absl::flat_hash_map<std::string, int32_t> group_desired_;
  // Posted completions hold a weak reference; a destroyed engine ignores them.
  std::shared_ptr<Engine*> alive_;
};

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_ENGINE_H_
