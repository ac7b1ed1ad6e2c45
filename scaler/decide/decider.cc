#include "scaler/decide/decider.h"

#include <algorithm>
#include <utility>

#include "common/log/log.h"
#include "scaler/decide/history.h"
#include "scaler/decide/rebuild.h"

namespace zeroscale::decide {

Decider::Decider(const Clock* clock, Scheduler* scheduler, ReplicaSetter* setter,
                 DecisionSink* sink, DeciderOptions options)
    : clock_(clock),
      scheduler_(scheduler),
      staleness_(options.staleness),
      engine_(clock, scheduler, setter, sink, options) {}

void Decider::Upsert(WorkloadSpec spec, int32_t observed_replicas, Done done) {
  if (ValidateWorkloadSpec(spec).ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    history_[spec.workload] = HistoryNeeded(spec, staleness_);
  }
  scheduler_->Post([this, spec = std::move(spec), observed_replicas, done = std::move(done)] {
    absl::Status s = engine_.Upsert(spec, observed_replicas);
    if (done) done(s);
  });
}

void Decider::SetStoredRules(std::vector<ScalingRule> rules, std::function<void(size_t)> done) {
  {
    // Windows rebuilt from Redis must cover the stored rules' windows too.
    std::lock_guard<std::mutex> lock(mu_);
    stored_windows_.clear();
    for (const ScalingRule& r : rules) {
      if (r.target.empty()) continue;
      absl::Duration& w = stored_windows_[r.target];
      w = std::max(w, absl::Seconds(r.window_seconds));
    }
  }
  scheduler_->Post([this, rules = std::move(rules), done = std::move(done)]() mutable {
    const size_t conflicts = engine_.SetStoredRules(std::move(rules));
    if (done) done(conflicts);
  });
}

absl::Duration Decider::StoredRulesWindow(const std::string& workload) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = stored_windows_.find(workload);
  return it == stored_windows_.end() ? absl::ZeroDuration() : it->second;
}

void Decider::Remove(std::string workload) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    history_.erase(workload);
  }
  scheduler_->Post([this, workload = std::move(workload)] { engine_.Remove(workload); });
}

void Decider::SetAllocation(std::string workload, std::optional<Engine::Allocation> allocation) {
  scheduler_->Post([this, workload = std::move(workload), allocation = std::move(allocation)] {
    engine_.SetAllocation(workload, allocation);
  });
}

void Decider::SetGroupBudgets(std::optional<std::vector<budget::GroupBudget>> budgets) {
  scheduler_->Post([this, budgets = std::move(budgets)]() mutable {
    engine_.SetGroupBudgets(std::move(budgets));
  });
}

void Decider::SetClusterCapacity(std::optional<budget::ClusterCapacity> capacity) {
  scheduler_->Post([this, capacity = std::move(capacity)]() mutable {
    engine_.SetClusterCapacity(std::move(capacity));
  });
}

void Decider::OnSamples(std::vector<Podmetric> samples) {
  scheduler_->Post([this, samples = std::move(samples)] { engine_.OnSamples(samples); });
}

void Decider::LoadHistory(std::string workload, std::vector<Podmetric> samples, Done done) {
  scheduler_->Post(
      [this, workload = std::move(workload), samples = std::move(samples), done = std::move(done)] {
        absl::Status s = engine_.LoadHistory(workload, samples);
        if (done) done(s);
      });
}

void Decider::OnTraffic(std::string workload, TrafficReport report) {
  scheduler_->Post([this, workload = std::move(workload), report] {
    (void)engine_.OnTraffic(workload, report);
  });
}

void Decider::Activate(std::string workload, Done on_ready) {
  scheduler_->Post([this, workload = std::move(workload), on_ready = std::move(on_ready)] {
    engine_.Activate(workload, on_ready);
  });
}

void Decider::OnPodReady(std::string workload, std::string pod) {
  scheduler_->Post([this, workload = std::move(workload), pod = std::move(pod)] {
    (void)engine_.OnPodReady(workload, pod);
  });
}

void Decider::OnObservedReplicas(std::string workload, int32_t n) {
  scheduler_->Post(
      [this, workload = std::move(workload), n] { (void)engine_.OnObservedReplicas(workload, n); });
}

void Decider::OnPods(std::string workload, std::optional<TargetPods> pods) {
  scheduler_->Post([this, workload = std::move(workload), pods = std::move(pods)]() mutable {
    (void)engine_.OnPods(workload, std::move(pods));
  });
}

void Decider::GetStatus(std::string workload,
                        std::function<void(absl::StatusOr<WorkloadStatus>)> done) {
  scheduler_->Post([this, workload = std::move(workload), done = std::move(done)] {
    std::optional<WorkloadStatus> s = engine_.GetStatus(workload);
    if (s) {
      done(*std::move(s));
    } else {
      done(absl::NotFoundError("workload '" + workload + "' has no autoscaler"));
    }
  });
}

void Decider::LoadKeepAlive(std::string workload, std::string state, Done done) {
  scheduler_->Post(
      [this, workload = std::move(workload), state = std::move(state), done = std::move(done)] {
        absl::Status s = engine_.LoadKeepAlive(workload, state);
        if (!s.ok()) {
          ZS_LOG(kWarning, "keep-alive state not restored: starting afresh", {"workload", workload},
                 {"error", s.ToString()});
        }
        if (done) done(s);
      });
}

absl::Status Decider::RebuildFromRedis(Redis* redis) {
  std::vector<std::pair<std::string, absl::Duration>> plan;
  {
    std::lock_guard<std::mutex> lock(mu_);
    plan.assign(history_.begin(), history_.end());
    for (auto& [workload, history] : plan) {
      auto it = stored_windows_.find(workload);
      if (it != stored_windows_.end()) history = std::max(history, it->second + staleness_);
    }
  }
  const absl::Time now = clock_->Now();
  for (const auto& [workload, history] : plan) {
    absl::StatusOr<std::vector<Podmetric>> samples =
        LoadWorkloadSamples(redis, workload, now - history, now);
    if (!samples.ok()) return samples.status();
    LoadHistory(workload, *std::move(samples));
    absl::StatusOr<std::string> state = DecisionHistory(redis).ReadKeepAlive(workload);
    if (!state.ok()) return state.status();
    if (!state->empty()) LoadKeepAlive(workload, *std::move(state));
  }
  return absl::OkStatus();
}

}  // namespace zeroscale::decide
