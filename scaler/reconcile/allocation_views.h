// The cluster's side of the allocation limits (decide/budget/budget.h), kept current by
// informers while this replica leads: every AllocationPolicy of the watched namespace(s)
// (the groups' budgets) and, once a workload requests an extended resource, every Node
// and every scheduled pod (each node's free extended resources). Each change reaches the
// decider as a whole snapshot, coalesced to at most one per `min_interval`, so pod churn
// costs one recomputation, not one per event; deciding never waits on the API server.
//
// Until the Nodes and Pods are first listed, scale-ups needing an extended resource hold;
// without the RBAC to list them cluster-wide the cluster's room is never known, and after
// a grace period the decider does without it (group budgets and the workload's own unschedulable
// pods still limit); without the RBAC or the CRD for AllocationPolicies, workloads in a
// group hold their scale-ups and say that the policy is not read yet.
//
// Thread-safety: Start, WatchCapacity and Stop may be called from any thread; the
// informers' handlers only post to the work queue, where the snapshots are built.
#ifndef ZEROSCALE_SCALER_RECONCILE_ALLOCATION_VIEWS_H_
#define ZEROSCALE_SCALER_RECONCILE_ALLOCATION_VIEWS_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/retry.h"
#include "common/kube/types.h"
#include "common/kube/watcher.h"
#include "common/workqueue/work_queue.h"
#include "scaler/decide/budget/budget.h"
#include "scaler/decide/decider.h"

namespace zeroscale::reconcile {

// The groups' budgets as the AllocationPolicies give them.
std::vector<budget::GroupBudget> BudgetsOf(const std::vector<kube::AllocationPolicy>& policies);
// Each schedulable, ready node's allocatable extended resources minus the requests of the
// non-terminal pods scheduled on it (only extended resources: cpu and memory are left to
// the scheduler, and leaving them out keeps the snapshot still while ordinary pods come
// and go).
budget::ClusterCapacity CapacityOf(const std::vector<kube::Node>& nodes,
                                   const std::vector<kube::Pod>& pods);

struct AllocationViewsOptions {
  std::string watch_namespace;  // of the AllocationPolicies; "" = all
  absl::Duration watch_timeout = absl::Minutes(5);
  absl::Duration min_interval = absl::Milliseconds(300);
  // From the capacity informers' start until their first lists, scale-ups needing an
  // extended resource hold; if the lists take longer (no RBAC to list Nodes or Pods),
  // the room is taken as unknown (not checked) and the log says so.
  absl::Duration capacity_grace = absl::Seconds(15);
};

class AllocationViews {
 public:
  // All must outlive it; `worker` runs the snapshots.
  AllocationViews(kube::KubeClient* client, kube::Sleeper* sleeper, WorkQueue* worker,
                  decide::Decider* decider, AllocationViewsOptions options);
  ~AllocationViews();  // stops
  AllocationViews(const AllocationViews&) = delete;
  AllocationViews& operator=(const AllocationViews&) = delete;

  // Starts watching AllocationPolicies (a term's start).
  void Start();
  // Starts watching Nodes and Pods, once per term (a workload requests an extended
  // resource).
  void WatchCapacity();
  // Stops every informer (a term's end); nothing more reaches the decider.
  void Stop();

 private:
  // An informer's options: on its first list `*synced` is set (under mu_) and a snapshot
  // of the policies (capacity false) or of the cluster's room (true) is due.
  kube::WatcherOptions InformerOptions(bool* synced, bool capacity);
  void Changed(bool capacity);  // informer threads
  void CapacityGraceOver(uint64_t generation);
  void Flush(uint64_t generation, bool capacity);

  kube::KubeClient* const client_;
  kube::Sleeper* const sleeper_;
  WorkQueue* const worker_;
  decide::Decider* const decider_;
  const AllocationViewsOptions options_;

  std::mutex mu_;
  uint64_t generation_ = 0;  // bumped by Stop: flushes of an older term do nothing
  bool policies_synced_ = false;
  bool flush_queued_[2] = {false, false};  // [capacity]
  std::unique_ptr<kube::AllocationPolicyWatcher> policies_;
  std::unique_ptr<kube::NodeWatcher> nodes_;
  std::unique_ptr<kube::PodWatcher> pods_;
  bool nodes_synced_ = false, pods_synced_ = false;
};

}  // namespace zeroscale::reconcile

#endif  // ZEROSCALE_SCALER_RECONCILE_ALLOCATION_VIEWS_H_
