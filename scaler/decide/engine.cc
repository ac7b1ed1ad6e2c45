#include "scaler/decide/engine.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::decide {
namespace {

// Collects the decisions one public call causes, restoring any outer collector.
class Collect {
 public:
  Collect(std::vector<Decision>** slot, std::vector<Decision>* out) : slot_(slot), saved_(*slot) {
    *slot = out;
  }
  ~Collect() { *slot_ = saved_; }

 private:
  std::vector<Decision>** slot_;
  std::vector<Decision>* saved_;
};

absl::Status UnknownWorkload(const std::string& workload) {
  return absl::NotFoundError(absl::StrCat("workload '", workload, "' has no autoscaler"));
}

}  // namespace

Engine::Engine(const Clock* clock, Scheduler* scheduler, ReplicaSetter* setter, DecisionSink* sink,
               DeciderOptions options)
    : clock_(clock),
      scheduler_(scheduler),
      setter_(setter),
      sink_(sink),
      options_(options),
      alive_(std::make_shared<Engine*>(this)) {}

Engine::~Engine() {
  alive_.reset();
  automata_.clear();
}

Automaton* Engine::Find(const std::string& workload) const {
  auto it = automata_.find(workload);
  return it == automata_.end() ? nullptr : it->second.get();
}

absl::Status Engine::Upsert(const WorkloadSpec& spec, int32_t observed_replicas) {
  if (absl::Status s = ValidateWorkloadSpec(spec); !s.ok()) return s;
  if (observed_replicas < 0) {
    return absl::InvalidArgumentError("observed replicas must not be negative");
  }
  base_specs_[spec.workload] = spec;
  if (Automaton* a = Find(spec.workload)) {
    ApplyRules(a, spec, /*always=*/true);
    a->OnObservedReplicas(observed_replicas);
    Publish(a);
    return absl::OkStatus();
  }
  Host* host = this;
  auto a = std::make_unique<Automaton>(MergeRules(spec, stored_, nullptr), observed_replicas,
                                       &options_, host);
  Automaton* raw = a.get();
  automata_.emplace(spec.workload, std::move(a));
  ApplyRules(raw, spec, /*always=*/false);
  raw->SetAllocationProblem(AllocationProblem(spec.workload));
  raw->Start();
  Publish(raw);
  return absl::OkStatus();
}

void Engine::ApplyRules(Automaton* a, const WorkloadSpec& base, bool always) {
  std::vector<RuleConflict> conflicts;
  WorkloadSpec merged = MergeRules(base, stored_, &conflicts);
  for (const RuleConflict& c : conflicts) {
    bool known = false;
    for (const RuleConflict& k : a->rule_conflicts()) known = known || k == c;
    if (known) continue;
    ZS_LOG(kWarning, "rule conflict: the same rule id for the same workload from two sources",
           {"workload", base.workload}, {"rule", c.id},
           {"used", std::string(RuleSourceName(c.winner))},
           {"ignored", std::string(RuleSourceName(c.loser))},
           {"key", absl::StrCat("scaling_rule:", c.id)});
  }
  a->SetRuleConflicts(std::move(conflicts));
  const WorkloadSpec& current = a->spec();
  if (always || current.rules != merged.rules || current.rule_sources != merged.rule_sources) {
    a->UpdateSpec(std::move(merged));
  }
}

size_t Engine::SetStoredRules(std::vector<ScalingRule> rules) {
  std::vector<ScalingRule> valid;
  valid.reserve(rules.size());
  for (ScalingRule& r : rules) {
    if (absl::Status s = ValidateScalingRule(r); !s.ok()) {
      ZS_LOG(kWarning, "stored rule ignored: invalid", {"key", absl::StrCat("scaling_rule:", r.id)},
             {"error", std::string(s.message())});
      continue;
    }
    valid.push_back(std::move(r));
  }
  stored_ = GroupStoredRules(std::move(valid));
  for (auto& [workload, a] : automata_) {
    auto base = base_specs_.find(workload);
    if (base == base_specs_.end()) continue;
    ApplyRules(a.get(), base->second, /*always=*/false);
    Publish(a.get());
  }
  return rule_conflicts();
}

size_t Engine::rule_conflicts() const {
  size_t n = 0;
  for (const auto& [workload, a] : automata_) n += a->rule_conflicts().size();
  return n;
}

bool Engine::Remove(const std::string& workload) {
  base_specs_.erase(workload);
  const std::string group = GroupOf(workload);
  allocations_.erase(workload);
  group_desired_.erase(workload);
  // What it held is free for the rest of its group.
  if (!group.empty()) ReevaluateLimited(group, workload);
  if (automata_.erase(workload) == 0) return false;
  if (sink_ != nullptr) sink_->OnRemoved(workload);
  return true;
}

void Engine::Publish(Automaton* a) {
  if (!a->StatusChanged()) return;
  const std::string& workload = a->spec().workload;
  if (const std::string group = GroupOf(workload); !group.empty()) {
    auto [it, added] = group_desired_.try_emplace(workload, a->desired());
    if (!added && it->second != a->desired()) {
      it->second = a->desired();
      // Marked first: the others' evaluation may publish this one again.
      if (sink_ != nullptr) sink_->OnStatus(a->Status());
      a->MarkPublished();
      ReevaluateLimited(group, workload);
      return;
    }
  }
  if (sink_ == nullptr) {
    a->MarkPublished();
    return;
  }
  sink_->OnStatus(a->Status());
  a->MarkPublished();
}

std::string Engine::GroupOf(const std::string& workload) const {
  auto it = allocations_.find(workload);
  if (it == allocations_.end() || it->second.group.empty()) return "";
  return absl::StrCat(it->second.namespace_, "/", it->second.group);
}

std::string Engine::AllocationProblem(const std::string& workload) const {
  auto it = allocations_.find(workload);
  if (it == allocations_.end() || it->second.group.empty() || !budgets_known_) return "";
  const Allocation& a = it->second;
  auto b = budgets_.find(GroupOf(workload));
  if (b == budgets_.end() || !b->second.found) {
    return absl::StrCat("group '", a.group, "': no AllocationPolicy '", a.group, "' in namespace ",
                        a.namespace_, ": scale-ups are not limited by a group budget");
  }
  if (!b->second.error.ok()) {
    return absl::StrCat("group '", a.group, "': AllocationPolicy ", a.namespace_, "/", a.group,
                        " cannot be used (", b->second.error.message(),
                        "): scale-ups are not limited by a group budget");
  }
  return "";
}

std::optional<budget::ScaleUpInputs> Engine::AllocationInputs(const std::string& workload) const {
  auto it = allocations_.find(workload);
  if (it == allocations_.end()) return std::nullopt;
  budget::ScaleUpInputs in;
  in.per_replica = it->second.per_replica;
  in.cluster = capacity_;
  const std::string group = GroupOf(workload);
  if (group.empty()) return in;
  budget::GroupBudget& b = in.group.emplace();
  b.name = it->second.group;
  b.namespace_ = it->second.namespace_;
  if (!budgets_known_) {
    b.listed = false;
  } else if (auto known = budgets_.find(group); known != budgets_.end()) {
    b = known->second;
  }
  for (const auto& [other, alloc] : allocations_) {
    if (other == workload || alloc.group != it->second.group ||
        alloc.namespace_ != it->second.namespace_) {
      continue;
    }
    Automaton* a = Find(other);
    if (a == nullptr) continue;
    budget::AddTo(&in.group_used_by_others, budget::Times(alloc.per_replica, a->desired()));
  }
  return in;
}

void Engine::ReevaluateLimited(const std::string& group, const std::string& except) {
  std::vector<Automaton*> limited;
  for (const auto& [workload, a] : automata_) {
    if (workload == except || !a->limited()) continue;
    if (!group.empty() && GroupOf(workload) != group) continue;
    limited.push_back(a.get());
  }
  for (Automaton* a : limited) {
    a->Evaluate(Trigger::kAllocation);
    Publish(a);
  }
}

void Engine::SetAllocation(const std::string& workload, std::optional<Allocation> allocation) {
  auto it = allocations_.find(workload);
  if (!allocation) {
    if (it == allocations_.end()) return;
    const std::string group = GroupOf(workload);
    allocations_.erase(it);
    group_desired_.erase(workload);
    if (!group.empty()) ReevaluateLimited(group, workload);
  } else {
    if (it != allocations_.end() && it->second == *allocation) return;
    const std::string old_group = GroupOf(workload);
    allocations_[workload] = *std::move(allocation);
    group_desired_.erase(workload);
    if (!old_group.empty() && old_group != GroupOf(workload)) {
      ReevaluateLimited(old_group, workload);
    }
  }
  if (Automaton* a = Find(workload)) {
    a->SetAllocationProblem(AllocationProblem(workload));
    a->Evaluate(Trigger::kAllocation);
    Publish(a);
  }
}

void Engine::SetGroupBudgets(std::optional<std::vector<budget::GroupBudget>> budgets) {
  std::map<std::string, budget::GroupBudget> by_key;
  for (budget::GroupBudget& b : budgets ? *budgets : std::vector<budget::GroupBudget>{}) {
    const std::string key = absl::StrCat(b.namespace_, "/", b.name);
    by_key[key] = std::move(b);
  }
  if (budgets_known_ == budgets.has_value() && by_key == budgets_) return;
  budgets_known_ = budgets.has_value();
  budgets_ = std::move(by_key);
  std::vector<Automaton*> grouped;
  for (const auto& [workload, a] : automata_) {
    if (!GroupOf(workload).empty()) grouped.push_back(a.get());
  }
  for (Automaton* a : grouped) {
    a->SetAllocationProblem(AllocationProblem(a->spec().workload));
    // A budget that grew lets a held scale-up go; one that shrank limits the next.
    if (a->limited()) a->Evaluate(Trigger::kAllocation);
    Publish(a);
  }
}

void Engine::SetClusterCapacity(std::optional<budget::ClusterCapacity> capacity) {
  if (capacity == capacity_) return;
  capacity_ = std::move(capacity);
  ReevaluateLimited("", "");
}

std::vector<Decision> Engine::OnSample(const Podmetric& m) {
  std::vector<Decision> out;
  Collect c(&collect_, &out);
  Automaton* a = Find(m.workload);
  if (a == nullptr) {
    ++unrouted_samples_;
    return out;
  }
  a->AddSample(m);
  a->Evaluate(Trigger::kSample);
  Publish(a);
  return out;
}

std::vector<Decision> Engine::OnSamples(const std::vector<Podmetric>& batch) {
  std::vector<Decision> out;
  Collect c(&collect_, &out);
  // Evaluated in order of first appearance, so runs are deterministic.
  std::vector<Automaton*> touched;
  absl::flat_hash_set<Automaton*> seen;
  for (const Podmetric& m : batch) {
    Automaton* a = Find(m.workload);
    if (a == nullptr) {
      ++unrouted_samples_;
      continue;
    }
    a->AddSample(m);
    if (seen.insert(a).second) touched.push_back(a);
  }
  for (Automaton* a : touched) {
    a->Evaluate(Trigger::kSample);
    Publish(a);
  }
  return out;
}

absl::Status Engine::LoadHistory(const std::string& workload,
                                 const std::vector<Podmetric>& samples) {
  Automaton* a = Find(workload);
  if (a == nullptr) return UnknownWorkload(workload);
  for (const Podmetric& m : samples) a->AddSample(m);
  a->Evaluate(Trigger::kSample);
  Publish(a);
  return absl::OkStatus();
}

absl::Status Engine::OnTraffic(const std::string& workload, const TrafficReport& report) {
  Automaton* a = Find(workload);
  if (a == nullptr) return UnknownWorkload(workload);
  a->OnTraffic(report);
  return absl::OkStatus();
}

void Engine::Activate(const std::string& workload, Automaton::ReadyCallback on_ready) {
  Automaton* a = Find(workload);
  if (a == nullptr) {
    if (on_ready) on_ready(UnknownWorkload(workload));
    return;
  }
  a->Activate(std::move(on_ready));
  Publish(a);
}

absl::Status Engine::OnPodReady(const std::string& workload, const std::string& pod) {
  Automaton* a = Find(workload);
  if (a == nullptr) return UnknownWorkload(workload);
  a->OnPodReady(pod);
  Publish(a);
  return absl::OkStatus();
}

absl::Status Engine::OnObservedReplicas(const std::string& workload, int32_t n) {
  Automaton* a = Find(workload);
  if (a == nullptr) return UnknownWorkload(workload);
  if (n < 0) return absl::InvalidArgumentError("observed replicas must not be negative");
  a->OnObservedReplicas(n);
  Publish(a);
  return absl::OkStatus();
}

absl::Status Engine::OnPods(const std::string& workload, std::optional<TargetPods> pods) {
  Automaton* a = Find(workload);
  if (a == nullptr) return UnknownWorkload(workload);
  a->SetPods(std::move(pods));
  Publish(a);
  return absl::OkStatus();
}

absl::Status Engine::LoadKeepAlive(const std::string& workload, absl::string_view state) {
  Automaton* a = Find(workload);
  if (a == nullptr) return UnknownWorkload(workload);
  absl::Status s = a->LoadKeepAlive(state);
  Publish(a);
  return s;
}

void Engine::SaveKeepAlive(const std::string& workload, const std::string& state) {
  if (sink_ != nullptr) sink_->OnKeepAlive(workload, state);
}

std::optional<std::string> Engine::KeepAliveState(const std::string& workload) const {
  Automaton* a = Find(workload);
  if (a == nullptr) return std::nullopt;
  return a->keep_alive().ToJson();
}

std::optional<WorkloadStatus> Engine::GetStatus(const std::string& workload) const {
  Automaton* a = Find(workload);
  if (a == nullptr) return std::nullopt;
  return a->Status();
}

std::optional<absl::Duration> Engine::HistoryNeeded(const std::string& workload) const {
  Automaton* a = Find(workload);
  if (a == nullptr) return std::nullopt;
  return a->HistoryNeeded();
}

std::vector<std::string> Engine::Workloads() const {
  std::vector<std::string> out;
  out.reserve(automata_.size());
  for (const auto& [name, a] : automata_) out.push_back(name);
  return out;
}

void Engine::StartSet(const std::string& workload, int32_t from, int32_t n,
                      const std::string& reason, uint64_t op) {
  std::weak_ptr<Engine*> alive = alive_;
  Scheduler* scheduler = scheduler_;
  setter_->SetReplicas(workload, from, n, reason,
                       [alive, scheduler, workload, op](absl::Status status) {
                         scheduler->Post([alive, workload, op, status = std::move(status)] {
                           std::shared_ptr<Engine*> engine = alive.lock();
                           if (!engine) return;
                           if (Automaton* a = (*engine)->Find(workload)) {
                             a->OnSetDone(op, status);
                             (*engine)->Publish(a);
                           }
                         });
                       });
}

void Engine::StartGet(const std::string& workload, uint64_t op) {
  std::weak_ptr<Engine*> alive = alive_;
  Scheduler* scheduler = scheduler_;
  setter_->GetReplicas(workload,
                       [alive, scheduler, workload, op](absl::StatusOr<int32_t> replicas) {
                         scheduler->Post([alive, workload, op, replicas = std::move(replicas)] {
                           std::shared_ptr<Engine*> engine = alive.lock();
                           if (!engine) return;
                           if (Automaton* a = (*engine)->Find(workload)) {
                             a->OnGetDone(op, replicas);
                             (*engine)->Publish(a);
                           }
                         });
                       });
}

void Engine::ScheduleTimer(const std::string& workload, absl::Time at) {
  std::weak_ptr<Engine*> alive = alive_;
  scheduler_->RunAt(at, [alive, workload, at] {
    std::shared_ptr<Engine*> engine = alive.lock();
    if (!engine) return;
    // A workload removed (or replaced) since is simply evaluated or ignored.
    if (Automaton* a = (*engine)->Find(workload)) {
      a->OnTimer(at);
      (*engine)->Publish(a);
    }
  });
}

// Logged at debug only: the wiring's sink logs decisions for operators.
void Engine::Record(const Decision& d) {
  ZS_LOG(kDebug, "scaling decision", {"workload", d.workload},
         {"from", std::string(StateName(d.from))}, {"to", std::string(StateName(d.to))},
         {"replicasBefore", absl::StrCat(d.replicas_before)},
         {"replicasAfter", absl::StrCat(d.replicas_after)},
         {"trigger", std::string(TriggerName(d.trigger))}, {"reason", d.reason},
         {"dryRun", d.dry_run ? "true" : "false"});
  if (sink_ != nullptr) sink_->Record(d);
  if (collect_ != nullptr) collect_->push_back(d);
}

}  // namespace zeroscale::decide
