// The thread-safe front of the decision engine: ingest threads, gRPC handlers, watches
// and backends call it from anywhere; every call is posted to the scheduler's thread,
// which owns the Engine and all automata, so no automaton is ever locked. Results come
// back through callbacks, called on the scheduler's thread.
//
// Production: an EventLoop (started by the caller). Tests: a ManualScheduler and a
// FakeClock; RunPending() then runs everything posted, deterministically.
//
// Thread-safety: all methods are thread-safe. engine() is for the scheduler's thread.
#ifndef ZEROSCALE_SCALER_DECIDE_DECIDER_H_
#define ZEROSCALE_SCALER_DECIDE_DECIDER_H_

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model/podmetric.h"
#include "common/redis/redis.h"
#include "scaler/decide/engine.h"

namespace zeroscale::decide {

class Decider {
 public:
  using Done = std::function<void(absl::Status)>;

  // All must outlive the decider; `sink` may be null. Stop the scheduler (or drain it)
  // before destroying the decider.
  Decider(const Clock* clock, Scheduler* scheduler, ReplicaSetter* setter, DecisionSink* sink,
          DeciderOptions options = {});

  void Upsert(WorkloadSpec spec, int32_t observed_replicas, Done done = nullptr);
  void Remove(std::string workload);
  // Every rule stored in Redis (Engine::SetStoredRules); `done` gets the number of
  // conflicts between spec and stored rules after the merge.
  void SetStoredRules(std::vector<ScalingRule> rules, std::function<void(size_t)> done = nullptr);
  // The longest window of the stored rules targeting `workload` (zero: none), so the
  // history rebuilt from Redis covers them too.
  absl::Duration StoredRulesWindow(const std::string& workload) const;
  void OnSamples(std::vector<Podmetric> samples);
  void LoadHistory(std::string workload, std::vector<Podmetric> samples, Done done = nullptr);
  void OnTraffic(std::string workload, TrafficReport report);
  void Activate(std::string workload, Done on_ready);
  void OnPodReady(std::string workload, std::string pod);
  void OnObservedReplicas(std::string workload, int32_t n);
  void OnPods(std::string workload, std::optional<TargetPods> pods);
  // Restores a workload's keep-alive state (see Engine::LoadKeepAlive).
  void LoadKeepAlive(std::string workload, std::string state, Done done = nullptr);
  // Allocation limits (Engine::SetAllocation, SetGroupBudgets, SetClusterCapacity).
  void SetAllocation(std::string workload, std::optional<Engine::Allocation> allocation);
  void SetGroupBudgets(std::optional<std::vector<budget::GroupBudget>> budgets);
  void SetClusterCapacity(std::optional<budget::ClusterCapacity> capacity);
  void GetStatus(std::string workload, std::function<void(absl::StatusOr<WorkloadStatus>)> done);

  // Rebuilds the windows of every workload from Redis (a new leader's first step), so
  // the rules see full windows at once, and restores what each keep-alive policy learned
  // (zeroscale:keepalive:<w>; a malformed state is logged and the policy starts afresh).
  // Blocks the CALLING thread on Redis (never the loop): reads what each workload needs,
  // then posts the samples. `redis` is used only on the calling thread. Returns the first
  // error; workloads read before it are loaded.
  absl::Status RebuildFromRedis(Redis* redis);

  Engine& engine() { return engine_; }

 private:
  const Clock* const clock_;
  Scheduler* const scheduler_;
  const absl::Duration staleness_;
  Engine engine_;
  // History each workload needs, mirrored here so a rebuild can plan its reads without
  // waiting for the loop.
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, absl::Duration> history_;
  // The longest window of the stored rules targeting each workload.
  absl::flat_hash_map<std::string, absl::Duration> stored_windows_;
};

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_DECIDER_H_
