#include "scaler/decide/budget/budget.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace zeroscale::budget {
namespace {

int64_t SaturatingAdd(int64_t a, int64_t b) {
  return a > kMaxQuantityMilli - b ? kMaxQuantityMilli : a + b;
}

int64_t Get(const ResourceAmounts& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? 0 : it->second;
}

std::string Amount(const std::string& resource, int64_t milli) {
  return absl::StrCat(FormatQuantityMilli(resource, milli), " ", resource);
}

std::string Replicas(int64_t n) { return absl::StrCat(n, n == 1 ? " replica" : " replicas"); }

// One candidate answer; the smallest wins.
struct Bound {
  int64_t replicas = std::numeric_limits<int64_t>::max();
  LimitKind kind = LimitKind::kNone;
  std::string reason;
};

Bound GroupBound(const ScaleUpInputs& in) {
  Bound b;
  if (!in.group) return b;
  if (!in.group->listed) {
    b.replicas = 0;
    b.kind = LimitKind::kGroup;
    b.reason = absl::StrCat("group '", in.group->name, "': its AllocationPolicy is not read yet");
    return b;
  }
  if (!in.group->found || !in.group->error.ok()) return b;
  for (const auto& [resource, limit] : in.group->limits) {
    const int64_t per = Get(in.per_replica, resource);
    if (per <= 0) continue;  // a limit on something this workload does not request
    const int64_t others = Get(in.group_used_by_others, resource);
    const int64_t fit = limit > others ? (limit - others) / per : 0;
    if (fit >= b.replicas) continue;
    b.replicas = fit;
    b.kind = LimitKind::kGroup;
    b.reason = absl::StrCat("group '", in.group->name, "' is at its ", Amount(resource, limit),
                            " limit (other workloads of the group hold ",
                            FormatQuantityMilli(resource, others), ", one replica needs ",
                            FormatQuantityMilli(resource, per), ")");
  }
  return b;
}

Bound ClusterBound(const ScaleUpInputs& in) {
  Bound b;
  if (!in.cluster) return b;
  std::vector<std::pair<std::string, int64_t>> needs;
  for (const auto& [resource, per] : in.per_replica) {
    if (per > 0 && IsExtendedResource(resource)) needs.emplace_back(resource, per);
  }
  if (needs.empty()) return b;
  if (!in.cluster->listed) {
    b.replicas = 0;
    b.kind = LimitKind::kCluster;
    b.reason = absl::StrCat("the cluster's free ", needs.front().first, " is not read yet");
    return b;
  }
  // Whole replicas per node: a pod is never split across nodes.
  int64_t fit = 0;
  ResourceAmounts free_total;
  for (const NodeRoom& node : in.cluster->nodes) {
    int64_t on_node = std::numeric_limits<int64_t>::max();
    for (const auto& [resource, per] : needs) {
      const int64_t free = std::max<int64_t>(0, Get(node.free, resource));
      free_total[resource] = SaturatingAdd(free_total[resource], free);
      on_node = std::min(on_node, free / per);
    }
    fit = std::min<int64_t>(fit + on_node, std::numeric_limits<int32_t>::max());
  }
  const int64_t room = std::max<int64_t>(0, fit - std::max(0, in.unplaced));
  b.replicas = room;  // more replicas, on top of the current ones
  b.kind = LimitKind::kCluster;
  std::vector<std::string> need_text, free_text;
  for (const auto& [resource, per] : needs) {
    need_text.push_back(Amount(resource, per));
    free_text.push_back(Amount(resource, free_total[resource]));
  }
  b.reason = absl::StrCat(
      "the cluster has room for ", room == 0 ? "no" : absl::StrCat(room), " more ",
      room == 1 ? "replica" : "replicas", " needing ", absl::StrJoin(need_text, " + "), " (",
      absl::StrJoin(free_text, ", "), " free on ", in.cluster->nodes.size(), " schedulable ",
      in.cluster->nodes.size() == 1 ? "node" : "nodes",
      in.unplaced > 0 ? absl::StrCat(", ", Replicas(in.unplaced), " of it not placed yet") : "",
      ")");
  return b;
}

}  // namespace

const char* LimitKindName(LimitKind kind) {
  switch (kind) {
    case LimitKind::kNone:
      return "";
    case LimitKind::kGroup:
      return "group";
    case LimitKind::kCluster:
      return "cluster";
    case LimitKind::kPending:
      return "pending";
  }
  return "";
}

std::string LackingResource(const std::string& message) {
  static constexpr char kInsufficient[] = "Insufficient ";
  const size_t at = message.find(kInsufficient);
  if (at == std::string::npos) return "";
  const size_t start = at + sizeof(kInsufficient) - 1;
  size_t end = start;
  while (end < message.size() && message[end] != ',' && message[end] != ' ' &&
         message[end] != '\n' && end - start < 253) {
    ++end;
  }
  std::string resource = message.substr(start, end - start);
  while (!resource.empty() && resource.back() == '.') resource.pop_back();
  return resource;
}

ResourceAmounts Times(const ResourceAmounts& amounts, int64_t n) {
  ResourceAmounts out;
  for (const auto& [resource, amount] : amounts) {
    out[resource] = n <= 0 || amount <= 0            ? 0
                    : amount > kMaxQuantityMilli / n ? kMaxQuantityMilli
                                                     : amount * n;
  }
  return out;
}

void AddTo(ResourceAmounts* a, const ResourceAmounts& b) {
  for (const auto& [resource, amount] : b) (*a)[resource] = SaturatingAdd((*a)[resource], amount);
}

ScaleUpFit FitScaleUp(const ScaleUpInputs& in, int32_t current, int32_t wanted) {
  ScaleUpFit out;
  out.replicas = std::max(current, wanted);
  if (wanted <= current) return out;
  // Pods the scheduler already could not place: more of them would only wait too.
  if (in.unschedulable > 0) {
    const std::string lacking = LackingResource(in.unschedulable_message);
    out.replicas = current;
    out.limit = LimitKind::kPending;
    out.reason = absl::StrCat(
        Replicas(in.unschedulable), " Pending ",
        lacking.empty()
            ? absl::StrCat("(unschedulable: ", in.unschedulable_message.substr(0, 200), ")")
            : absl::StrCat("for lack of ", lacking),
        ": not adding more");
    return out;
  }
  Bound group = GroupBound(in);  // total replicas of this workload
  Bound cluster = ClusterBound(in);
  if (cluster.kind != LimitKind::kNone) {
    cluster.replicas =
        std::min<int64_t>(cluster.replicas + current, std::numeric_limits<int32_t>::max());
  }
  const Bound& tightest = cluster.replicas < group.replicas ? cluster : group;
  if (tightest.kind == LimitKind::kNone || tightest.replicas >= wanted) return out;
  out.replicas = static_cast<int32_t>(std::max<int64_t>(current, tightest.replicas));
  out.limit = tightest.kind;
  out.reason = tightest.reason;
  return out;
}

}  // namespace zeroscale::budget
