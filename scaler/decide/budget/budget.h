// Allocation limits checked before a scale-up (seed 000: AllocationPolicy,
// checkResourceLimit): how many replicas of a workload fit (a) its group's budget
// (an AllocationPolicy's limits of nvidia.com/gpu, cpu, memory... summed over the
// replicas of every workload of the group, each replica counting its pod template's
// requests) and (b) the cluster's room for the extended resources it requests (each
// schedulable Node's allocatable minus the requests of the pods scheduled on it), and
// whether the workload's own pods are already Pending because the scheduler found no
// room, in which case adding more would only add Pending pods.
//
// Pure: everything comes in as a snapshot (gathered by the reconciler's informers); the
// answer is as many replicas as fit, between the current count and the wanted one, and
// why not more, in words ("group 'llm' is at its 8 nvidia.com/gpu limit"). A replica
// count already above the budget is never lowered here: limits hold scale-ups back,
// they do not scale down.
//
// What is approximated: the cluster check fits whole replicas into each node's free
// extended resources (so a 2-GPU pod never counts as two halves on two nodes), but it
// does not evaluate taints, affinity or cpu/memory room (the scheduler's Pending pods
// are the backstop for those); replicas of other workloads not yet scheduled are not
// subtracted from the cluster's room (only the group budget counts them).
//
// Thread-safety: pure functions and value types.
#ifndef ZEROSCALE_SCALER_DECIDE_BUDGET_BUDGET_H_
#define ZEROSCALE_SCALER_DECIDE_BUDGET_BUDGET_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/model/quantity.h"

namespace zeroscale::budget {

// A group's budget as the cluster has it.
struct GroupBudget {
  std::string name;        // the group ("llm"): the AllocationPolicy's name
  std::string namespace_;  // where the policy is looked up
  // The AllocationPolicies have not been listed yet: unknown is not unlimited, so the
  // group's scale-ups hold until they are (moments after a term starts).
  bool listed = true;
  // No AllocationPolicy of that name exists: nothing limits the group (and the status
  // says so).
  bool found = false;
  // It exists but cannot be used (a bad quantity), naming the field: treated as absent.
  absl::Status error;
  ResourceAmounts limits;  // milli-units
  bool operator==(const GroupBudget& o) const {
    return name == o.name && namespace_ == o.namespace_ && listed == o.listed && found == o.found &&
           error == o.error && limits == o.limits;
  }
};

// The free extended resources of one schedulable node.
struct NodeRoom {
  std::string name;
  ResourceAmounts free;  // allocatable minus the requests of pods scheduled there
  bool operator==(const NodeRoom& o) const { return name == o.name && free == o.free; }
};

// The cluster's room: its schedulable, ready nodes (cordoned and NotReady ones are left
// out), sorted by name.
struct ClusterCapacity {
  std::vector<NodeRoom> nodes;
  // false while being listed (the informers just started): a scale-up needing an extended
  // resource holds until it is, rather than guess.
  bool listed = true;
  bool operator==(const ClusterCapacity& o) const { return listed == o.listed && nodes == o.nodes; }
};

enum class LimitKind { kNone, kGroup, kCluster, kPending };
// "group", "cluster", "pending" (the metric's label); "" for kNone.
const char* LimitKindName(LimitKind kind);

// Everything the check of one scale-up needs.
struct ScaleUpInputs {
  // What one replica requests (its pod template's requests); empty: nothing to check.
  ResourceAmounts per_replica;
  // The group the workload belongs to; nullopt when none.
  std::optional<GroupBudget> group;
  // What the group's other workloads hold: their desired replicas times their requests.
  ResourceAmounts group_used_by_others;
  // nullopt when not known (no permission to list Nodes and Pods, or not listed yet).
  std::optional<ClusterCapacity> cluster;
  // This workload's replicas that are not on a node yet (wanted, not yet created or not
  // yet bound): they will take room the cluster snapshot still shows free.
  int32_t unplaced = 0;
  // This workload's pods the scheduler could not place (PodScheduled False,
  // Unschedulable), and one of their messages.
  int32_t unschedulable = 0;
  std::string unschedulable_message;
};

struct ScaleUpFit {
  int32_t replicas = 0;  // between the current count and the wanted one
  LimitKind limit = LimitKind::kNone;
  // Why not more ("group 'llm' is at its 8 nvidia.com/gpu limit"); "" when all fit.
  std::string reason;
};

// How many of `wanted` replicas fit, starting from `current` (wanted > current).
ScaleUpFit FitScaleUp(const ScaleUpInputs& in, int32_t current, int32_t wanted);

// The resource an unschedulable pod's message says is lacking ("Insufficient
// nvidia.com/gpu" -> "nvidia.com/gpu"); "" when it names none.
std::string LackingResource(const std::string& scheduler_message);

// `amounts` times `n`, saturating at kMaxQuantityMilli.
ResourceAmounts Times(const ResourceAmounts& amounts, int64_t n);
// a + b per resource, saturating.
void AddTo(ResourceAmounts* a, const ResourceAmounts& b);

}  // namespace zeroscale::budget

#endif  // ZEROSCALE_SCALER_DECIDE_BUDGET_BUDGET_H_
