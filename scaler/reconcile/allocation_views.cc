#include "scaler/reconcile/allocation_views.h"

#include <algorithm>
#include <map>
#include <utility>

#include "common/log/log.h"

namespace zeroscale::reconcile {
namespace {

using Priority = WorkQueue::Priority;

// Only pods that hold resources on a node: scheduled and not finished.
constexpr char kScheduledPods[] = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed";

}  // namespace

std::vector<budget::GroupBudget> BudgetsOf(const std::vector<kube::AllocationPolicy>& policies) {
  std::vector<budget::GroupBudget> out;
  out.reserve(policies.size());
  for (const kube::AllocationPolicy& p : policies) {
    budget::GroupBudget b;
    b.name = p.name;
    b.namespace_ = p.namespace_;
    b.found = true;
    b.error = p.spec_error;
    b.limits = p.limits;
    out.push_back(std::move(b));
  }
  return out;
}

budget::ClusterCapacity CapacityOf(const std::vector<kube::Node>& nodes,
                                   const std::vector<kube::Pod>& pods) {
  std::map<std::string, ResourceAmounts> free;
  for (const kube::Node& n : nodes) {
    if (n.unschedulable || !n.ready) continue;
    ResourceAmounts& f = free[n.name];
    for (const auto& [resource, amount] : n.allocatable) {
      if (IsExtendedResource(resource)) f[resource] = amount;
    }
  }
  for (const kube::Pod& p : pods) {
    if (p.node_name.empty() || p.Terminal()) continue;
    auto node = free.find(p.node_name);
    if (node == free.end()) continue;
    for (const auto& [resource, amount] : p.requests) {
      auto f = node->second.find(resource);
      if (f != node->second.end()) f->second -= amount;  // may go below 0: overcommitted
    }
  }
  budget::ClusterCapacity out;
  for (auto& [name, f] : free) out.nodes.push_back(budget::NodeRoom{name, std::move(f)});
  return out;
}

AllocationViews::AllocationViews(kube::KubeClient* client, kube::Sleeper* sleeper,
                                 WorkQueue* worker, decide::Decider* decider,
                                 AllocationViewsOptions options)
    : client_(client),
      sleeper_(sleeper),
      worker_(worker),
      decider_(decider),
      options_(std::move(options)) {}

AllocationViews::~AllocationViews() { Stop(); }

kube::WatcherOptions AllocationViews::InformerOptions(bool* synced, bool capacity) {
  kube::WatcherOptions o;
  o.watch_timeout = options_.watch_timeout;
  o.sleeper = sleeper_;
  o.on_synced = [this, synced, capacity] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      *synced = true;
    }
    Changed(capacity);
  };
  return o;
}

void AllocationViews::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (policies_) return;
  kube::WatcherOptions o = InformerOptions(&policies_synced_, false);
  o.namespace_ = options_.watch_namespace;
  policies_ = std::make_unique<kube::AllocationPolicyWatcher>(
      client_, std::move(o),
      [this](kube::WatchEventType, const kube::AllocationPolicy&) { Changed(false); });
  policies_->Start();
}

void AllocationViews::WatchCapacity() {
  std::lock_guard<std::mutex> lock(mu_);
  if (nodes_) return;
  ZS_LOG(kInfo, "watching Nodes and scheduled Pods for the cluster's free extended resources");
  nodes_ = std::make_unique<kube::NodeWatcher>(
      client_, InformerOptions(&nodes_synced_, true),
      [this](kube::WatchEventType, const kube::Node&) { Changed(true); });
  kube::WatcherOptions o = InformerOptions(&pods_synced_, true);
  o.field_selector = kScheduledPods;
  pods_ = std::make_unique<kube::PodWatcher>(
      client_, std::move(o), [this](kube::WatchEventType, const kube::Pod&) { Changed(true); });
  nodes_->Start();
  pods_->Start();
  budget::ClusterCapacity listing;
  listing.listed = false;
  decider_->SetClusterCapacity(listing);
  worker_->PostAfter(options_.capacity_grace, Priority::kNormal,
                     [this, generation = generation_] { CapacityGraceOver(generation); });
}

void AllocationViews::CapacityGraceOver(uint64_t generation) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (generation != generation_ || (nodes_synced_ && pods_synced_)) return;
  }
  ZS_LOG(kWarning,
         "Nodes and Pods not listed yet (RBAC to list them cluster-wide?): scale-ups are not "
         "checked against the cluster's free extended resources until they are",
         {"waited", absl::FormatDuration(options_.capacity_grace)});
  decider_->SetClusterCapacity(std::nullopt);
}

void AllocationViews::Stop() {
  std::unique_ptr<kube::AllocationPolicyWatcher> policies;
  std::unique_ptr<kube::NodeWatcher> nodes;
  std::unique_ptr<kube::PodWatcher> pods;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    policies = std::move(policies_);
    nodes = std::move(nodes_);
    pods = std::move(pods_);
    policies_synced_ = nodes_synced_ = pods_synced_ = false;
    flush_queued_[0] = flush_queued_[1] = false;
  }
  // Outside the lock: their handlers take it.
  if (policies) policies->Stop();
  if (nodes) nodes->Stop();
  if (pods) pods->Stop();
  // What this term knew is not the next term's: until its informers list again, budgets
  // are unknown (groups hold) and the cluster's room too (not checked).
  if (policies) {
    decider_->SetGroupBudgets(std::nullopt);
    decider_->SetClusterCapacity(std::nullopt);
  }
}

void AllocationViews::Changed(bool capacity) {
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (flush_queued_[capacity]) return;
    flush_queued_[capacity] = true;
    generation = generation_;
  }
  worker_->PostAfter(options_.min_interval, Priority::kNormal,
                     [this, generation, capacity] { Flush(generation, capacity); });
}

void AllocationViews::Flush(uint64_t generation, bool capacity) {
  std::unique_lock<std::mutex> lock(mu_);
  if (generation != generation_) return;
  flush_queued_[capacity] = false;
  if (!capacity) {
    if (!policies_synced_ || !policies_) return;
    std::vector<kube::AllocationPolicy> policies = policies_->Snapshot();
    lock.unlock();
    decider_->SetGroupBudgets(BudgetsOf(policies));
    return;
  }
  if (!nodes_synced_ || !pods_synced_ || !nodes_ || !pods_) return;
  std::vector<kube::Node> nodes = nodes_->Snapshot();
  std::vector<kube::Pod> pods = pods_->Snapshot();
  lock.unlock();
  decider_->SetClusterCapacity(CapacityOf(nodes, pods));
}

}  // namespace zeroscale::reconcile
