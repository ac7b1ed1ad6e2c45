// One effective rule set per workload, whichever door its rules came in by: the spec's
// rules (a CustomAutoscaler's spec.rules or the workloads file) and the rules stored in
// Redis under scaling_rule:<id> whose `target` names the workload (through RulesService
// or written straight by a seed-style client).
//
// Precedence: the spec wins. The same rule id for the same workload from the spec and
// from Redis is a conflict: the spec's rule is used, the stored one ignored and reported.
// The spec is what an operator declared for the workload (in a cluster, a reviewed
// object), a stored rule is a runtime addition; letting Redis silently override it would
// make the CustomAutoscaler or the file lie. A stored rule without a target (seed 004's
// shape) applies to no workload: nothing says which one it meant.
//
// Pure functions; thread-safe.
#ifndef ZEROSCALE_SCALER_DECIDE_RULE_SET_H_
#define ZEROSCALE_SCALER_DECIDE_RULE_SET_H_

#include <map>
#include <string>
#include <vector>

#include "common/model/scaling_rule.h"
#include "scaler/decide/decision.h"

namespace zeroscale::decide {

// Stored rules by the workload they target; rules without a target apart.
struct StoredRules {
  std::map<std::string, std::vector<ScalingRule>> by_target;  // each sorted by id
  std::vector<ScalingRule> unbound;                           // sorted by id
  size_t size() const;
};

// Groups `rules` (ids unique, as Redis keys are). Keeps the order deterministic.
StoredRules GroupStoredRules(std::vector<ScalingRule> rules);

// The effective spec of `base` with the stored rules for its workload added: spec rules
// first (in their order, with `base.rules_source`), then stored rules by id (source
// redis), minus stored rules whose id the spec already has, which go to `conflicts`.
// Fills the result's rule_sources.
WorkloadSpec MergeRules(const WorkloadSpec& base, const StoredRules& stored,
                        std::vector<RuleConflict>* conflicts);

// The source of the rule with `id` in a merged spec (its rules_source when unmerged).
RuleSource SourceOf(const WorkloadSpec& spec, absl::string_view id);

// The effective rules of a merged spec, for status reports.
std::vector<RuleRef> RuleRefs(const WorkloadSpec& spec);

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_RULE_SET_H_
