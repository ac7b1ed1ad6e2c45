#include "scaler/reconcile/reconciler.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "scaler/decide/automaton.h"
#include "scaler/decide/rebuild.h"
#include "scaler/reconcile/spec.h"

namespace zeroscale::reconcile {
namespace {

using Priority = WorkQueue::Priority;

bool SameSpec(const decide::WorkloadSpec& a, const decide::WorkloadSpec& b) {
  return a.workload == b.workload && a.min_replicas == b.min_replicas &&
         a.max_replicas == b.max_replicas && a.idle_timeout == b.idle_timeout && a.rules == b.rules;
}

}  // namespace

Reconciler::Reconciler(kube::KubeClient* client, const leader::Leadership* leadership,
                       decide::Decider* decider, actuate::ScaleActuator* actuator,
                       report::KubeReporter* reporter, Redis* rebuild_redis,
                       ReconcilerOptions options, Clock* clock)
    : client_(client),
      leadership_(leadership),
      decider_(decider),
      actuator_(actuator),
      reporter_(reporter),
      rebuild_redis_(rebuild_redis),
      options_(std::move(options)),
      clock_(clock),
      sleeper_(clock),
      worker_(clock),
      pod_views_(
          client, &sleeper_,
          [this](const std::string& workload, const std::optional<decide::TargetPods>& pods) {
            decider_->OnPods(workload, pods);
            if (options_.on_pods) options_.on_pods(workload, pods);
          }),
      allocation_views_(client, &sleeper_, &worker_, decider,
                        AllocationViewsOptions{options_.watch_namespace, options_.watch_timeout}) {}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::Start() { worker_.Start(); }

void Reconciler::Stop() {
  if (watcher_) {
    watcher_->Stop();
    watcher_.reset();
  }
  allocation_views_.Stop();
  worker_.Stop();
  // The worker is gone, with whatever it had not run: nothing of the last term may
  // outlive it in the decider.
  Cleanup();
}

ReconcilerStats Reconciler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Reconciler::OnTermStart(uint64_t epoch) {
  ZS_LOG(kInfo, "watching CustomAutoscalers",
         {"namespace", options_.watch_namespace.empty() ? "(all)" : options_.watch_namespace});
  kube::WatcherOptions wo;
  wo.namespace_ = options_.watch_namespace;
  wo.watch_timeout = options_.watch_timeout;
  wo.sleeper = &sleeper_;
  // Queued behind the reconciles of the first list, so every CR listed is in the decider
  // when the windows are rebuilt.
  wo.on_synced = [this, epoch] {
    worker_.Post(Priority::kNormal, [this, epoch] { Rebuild(epoch); });
  };
  watcher_ = std::make_unique<kube::CustomAutoscalerWatcher>(
      client_, std::move(wo),
      [this, epoch](kube::WatchEventType type, const kube::CustomAutoscaler& ca) {
        worker_.Post(Priority::kNormal, [this, epoch, type, ca] { Reconcile(epoch, type, ca); });
      });
  watcher_->Start();
  allocation_views_.Start();
  worker_.PostAfter(options_.resync, Priority::kNormal, [this, epoch] { RetryUnapplied(epoch); });
}

void Reconciler::OnTermEnd(uint64_t epoch) {
  if (watcher_) {
    watcher_->Stop();
    watcher_.reset();
  }
  allocation_views_.Stop();
  // Ahead of anything a next term queues, so no automaton of this term survives it.
  worker_.Post(Priority::kUrgent, [this] { Cleanup(); });
}

void Reconciler::Cleanup() {
  std::vector<std::string> workloads;
  for (const auto& [workload, owner] : owners_) workloads.push_back(workload);
  pod_views_.Clear();
  owners_.clear();
  crs_.clear();
  rebuilt_ = false;
  for (std::string& w : workloads) decider_->Remove(std::move(w));
}

void Reconciler::Report(const CrState& cr) {
  report::CustomAutoscalerReport r;
  r.namespace_ = cr.object.namespace_;
  r.name = cr.object.name;
  r.generation = cr.object.generation;
  r.spec = cr.spec;
  r.spec_reason = cr.spec_reason;
  r.target = cr.target;
  if (cr.applied) r.workload = cr.workload;
  r.target_ref = cr.object.Target();
  r.target_uid = cr.target_uid;
  r.conditions = cr.object.status.conditions;
  reporter_->Update(std::move(r));
}

void Reconciler::Reconcile(uint64_t epoch, kube::WatchEventType type,
                           const kube::CustomAutoscaler& ca) {
  if (!leadership_->Current(epoch)) return;
  const std::string key = ca.Key();
  if (type == kube::WatchEventType::kDeleted) {
    Forget(epoch, key);
    return;
  }
  absl::StatusOr<decide::WorkloadSpec> spec = WorkloadSpecFrom(ca);
  CrState& cr = crs_[key];
  cr.object = ca;
  const std::string wanted = spec.ok() ? spec->workload : "";
  std::string released;  // a workload this CR no longer drives
  if (!cr.workload.empty() && cr.workload != wanted) {
    released = cr.workload;
    owners_.erase(released);
    actuator_->Untrack(released);
    pod_views_.Forget(released);
    cr.workload.clear();
    cr.applied.reset();
    cr.allocation.reset();
  }
  bool newly_refused = false;
  if (!spec.ok()) {
    newly_refused = cr.spec != spec.status();
    cr.spec = spec.status();
    cr.spec_reason = "InvalidSpec";
    cr.target = absl::OkStatus();
  } else {
    auto owner = owners_.find(wanted);
    if (owner != owners_.end() && owner->second != key) {
      absl::Status refused = absl::FailedPreconditionError(
          absl::StrCat("spec.scaleTargetRef: ", wanted, " is already driven by CustomAutoscaler ",
                       owner->second));
      newly_refused = cr.spec != refused;
      cr.spec = refused;
      cr.spec_reason = "AmbiguousTarget";
      spec = refused;
    } else if (owner != owners_.end() && cr.applied && SameSpec(*cr.applied, *spec) &&
               cr.allocation && cr.allocation->group == ca.spec.allocation_group) {
      // Nothing the automaton cares about changed (our own status write, say).
      Report(cr);
      return;
    }
  }
  if (!spec.ok()) Report(cr);
  if (!released.empty()) {
    decider_->Remove(released);
    RetryAmbiguous(epoch, released);
  }
  if (!spec.ok()) {
    if (newly_refused) {
      ZS_LOG(kWarning, "CustomAutoscaler not applied", {"customautoscaler", key},
             {"error", spec.status().ToString()});
    }
    return;
  }
  Apply(epoch, key, *spec);
}

void Reconciler::Apply(uint64_t epoch, const std::string& key, const decide::WorkloadSpec& spec) {
  CrState& cr = crs_[key];
  const kube::WorkloadRef ref = cr.object.Target();
  absl::StatusOr<kube::Scale> scale = client_->GetScale(ref);
  cr.spec = absl::OkStatus();
  if (!scale.ok()) {
    ZS_LOG(kWarning, "cannot read the scale target", {"customautoscaler", key},
           {"target", spec.workload}, {"error", scale.status().ToString()});
    cr.target = scale.status();
    Report(cr);
    // A missing target is retried periodically (it may be created later); API trouble
    // sooner.
    if (absl::IsUnavailable(scale.status())) RetryLater(epoch, key, scale.status());
    return;
  }
  cr.target = absl::OkStatus();
  cr.target_uid = scale->uid;
  cr.workload = spec.workload;
  cr.applied = spec;
  const bool is_new = owners_.emplace(spec.workload, key).second;
  // The actuator and the reporter know the target before the automaton exists, so its
  // first decision already has somewhere to go.
  actuator_->Track(spec.workload, ref, *scale);
  Report(cr);
  // Before the Upsert, so the automaton's first evaluation (a wake to minReplicas) is
  // already checked against the limits.
  UpdateAllocation(cr, spec.workload);
  decider_->Upsert(spec, scale->spec_replicas);
  // After the Upsert, so the automaton exists when its pods arrive.
  pod_views_.Watch(spec.workload, ref.namespace_, scale->selector);
  if (is_new) {
    ZS_LOG(kInfo, "CustomAutoscaler applied", {"customautoscaler", key}, {"target", spec.workload},
           {"replicas", absl::StrCat(scale->spec_replicas)});
    // A CR that appears mid-term gets its windows from Redis too.
    if (rebuilt_) LoadHistory(spec.workload, spec);
  }
}

void Reconciler::UpdateAllocation(CrState& cr, const std::string& workload) {
  decide::Engine::Allocation a;
  a.group = cr.object.spec.allocation_group;
  a.namespace_ = cr.object.namespace_;
  absl::StatusOr<ResourceAmounts> requests = client_->GetPodTemplateRequests(cr.object.Target());
  if (requests.ok()) {
    a.per_replica = *std::move(requests);
  } else if (cr.allocation) {
    a.per_replica = cr.allocation->per_replica;  // keep what was read before
  } else {
    // Without them nothing counts against the budget or the cluster's room; the
    // scheduler's Pending pods still stop scale-ups.
    ZS_LOG(kWarning, "cannot read the scale target's pod template requests", {"workload", workload},
           {"error", requests.status().ToString()});
  }
  for (const auto& [resource, amount] : a.per_replica) {
    if (amount > 0 && IsExtendedResource(resource)) allocation_views_.WatchCapacity();
  }
  if (cr.allocation && *cr.allocation == a) return;
  cr.allocation = a;
  decider_->SetAllocation(workload, std::move(a));
}

void Reconciler::RefreshAllocations(uint64_t epoch) {
  if (!leadership_->Current(epoch)) return;
  for (auto& [key, cr] : crs_) {
    if (!cr.applied || !cr.allocation) continue;
    bool matters = !cr.allocation->group.empty();
    for (const auto& [resource, amount] : cr.allocation->per_replica) {
      matters = matters || (amount > 0 && IsExtendedResource(resource));
    }
    if (matters) UpdateAllocation(cr, cr.workload);
  }
}

void Reconciler::RetryLater(uint64_t epoch, const std::string& key, const absl::Status& error) {
  absl::Duration delay = options_.api_backoff.Delay(0, uniform_());
  if (std::optional<absl::Duration> ra = kube::RetryAfterOf(error)) {
    delay = std::min(*ra, options_.max_retry_after);
  }
  const std::string rv = crs_[key].object.resource_version;
  worker_.PostAfter(delay, Priority::kNormal, [this, epoch, key, rv] {
    auto it = crs_.find(key);
    if (it == crs_.end() || it->second.object.resource_version != rv || it->second.applied) {
      return;
    }
    Reconcile(epoch, kube::WatchEventType::kModified, it->second.object);
  });
}

void Reconciler::Forget(uint64_t epoch, const std::string& key) {
  auto it = crs_.find(key);
  if (it == crs_.end()) return;
  std::string released;
  const std::string workload = it->second.workload;
  auto owner = owners_.find(workload);
  if (!workload.empty() && owner != owners_.end() && owner->second == key) {
    owners_.erase(owner);
    actuator_->Untrack(workload);
    pod_views_.Forget(workload);
    released = workload;
  }
  crs_.erase(it);
  reporter_->Forget(key);
  ZS_LOG(kInfo, "CustomAutoscaler deleted", {"customautoscaler", key});
  if (!released.empty()) {
    decider_->Remove(released);
    RetryAmbiguous(epoch, released);
  }
}

void Reconciler::RetryAmbiguous(uint64_t epoch, const std::string& workload) {
  // The oldest-named CR that was refused for this target may have it now.
  for (const auto& [key, cr] : crs_) {
    if (cr.spec_reason == "AmbiguousTarget" && !cr.spec.ok() &&
        cr.object.Target().Id() == workload) {
      worker_.Post(Priority::kNormal, [this, epoch, ca = cr.object] {
        Reconcile(epoch, kube::WatchEventType::kModified, ca);
      });
      return;
    }
  }
}

void Reconciler::RetryUnapplied(uint64_t epoch) {
  if (!leadership_->Current(epoch)) return;
  for (const auto& [key, cr] : crs_) {
    if (cr.spec.ok() && !cr.applied) {
      worker_.Post(Priority::kNormal, [this, epoch, ca = cr.object] {
        Reconcile(epoch, kube::WatchEventType::kModified, ca);
      });
    }
  }
  RefreshAllocations(epoch);
  worker_.PostAfter(options_.resync, Priority::kNormal, [this, epoch] { RetryUnapplied(epoch); });
}

void Reconciler::Rebuild(uint64_t epoch) {
  if (!leadership_->Current(epoch)) return;
  rebuilt_ = true;
  if (rebuild_redis_ == nullptr) return;
  const absl::Time start = clock_->Now();
  absl::Status s = decider_->RebuildFromRedis(rebuild_redis_);
  if (!s.ok()) {
    // The windows then fill from live samples; nothing is decided on missing data.
    ZS_LOG(kWarning, "cannot rebuild the decision windows from Redis", {"error", s.ToString()});
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.rebuilds;
  }
  ZS_LOG(kInfo, "decision windows rebuilt from Redis",
         {"took", absl::FormatDuration(clock_->Now() - start)});
}

void Reconciler::LoadHistory(const std::string& workload, const decide::WorkloadSpec& spec) {
  if (rebuild_redis_ == nullptr) return;
  // Options are fixed when the decider is built, so reading them here is race-free.
  const absl::Duration staleness = decider_->engine().options().staleness;
  const absl::Duration need = std::max(decide::HistoryNeeded(spec, staleness),
                                       decider_->StoredRulesWindow(workload) + staleness);
  const absl::Time now = clock_->Now();
  absl::StatusOr<std::vector<Podmetric>> samples =
      decide::LoadWorkloadSamples(rebuild_redis_, workload, now - need, now);
  if (!samples.ok()) {
    ZS_LOG(kWarning, "cannot load a workload's samples from Redis", {"workload", workload},
           {"error", samples.status().ToString()});
    return;
  }
  if (!samples->empty()) decider_->LoadHistory(workload, *std::move(samples));
}

}  // namespace zeroscale::reconcile
