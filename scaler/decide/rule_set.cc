#include "scaler/decide/rule_set.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"

namespace zeroscale::decide {

size_t StoredRules::size() const {
  size_t n = unbound.size();
  for (const auto& [target, rules] : by_target) n += rules.size();
  return n;
}

StoredRules GroupStoredRules(std::vector<ScalingRule> rules) {
  std::sort(rules.begin(), rules.end(),
            [](const ScalingRule& a, const ScalingRule& b) { return a.id < b.id; });
  StoredRules out;
  for (ScalingRule& r : rules) {
    if (r.target.empty()) {
      out.unbound.push_back(std::move(r));
    } else {
      std::string target = r.target;
      out.by_target[target].push_back(std::move(r));
    }
  }
  return out;
}

WorkloadSpec MergeRules(const WorkloadSpec& base, const StoredRules& stored,
                        std::vector<RuleConflict>* conflicts) {
  WorkloadSpec spec = base;
  spec.rule_sources.assign(spec.rules.size(), base.rules_source);
  absl::flat_hash_set<std::string> ids;
  for (const ScalingRule& r : base.rules) ids.insert(r.id);
  auto it = stored.by_target.find(base.workload);
  if (it == stored.by_target.end()) return spec;
  for (const ScalingRule& r : it->second) {
    if (!ids.insert(r.id).second) {
      if (conflicts != nullptr) {
        conflicts->push_back(RuleConflict{r.id, base.rules_source, RuleSource::kRedis});
      }
      continue;
    }
    spec.rules.push_back(r);
    spec.rule_sources.push_back(RuleSource::kRedis);
  }
  return spec;
}

RuleSource SourceOf(const WorkloadSpec& spec, absl::string_view id) {
  for (size_t i = 0; i < spec.rules.size() && i < spec.rule_sources.size(); ++i) {
    if (spec.rules[i].id == id) return spec.rule_sources[i];
  }
  return spec.rules_source;
}

std::vector<RuleRef> RuleRefs(const WorkloadSpec& spec) {
  std::vector<RuleRef> out;
  out.reserve(spec.rules.size());
  for (size_t i = 0; i < spec.rules.size(); ++i) {
    out.push_back(RuleRef{spec.rules[i].id,
                          i < spec.rule_sources.size() ? spec.rule_sources[i] : spec.rules_source,
                          spec.rules[i].action});
  }
  return out;
}

}  // namespace zeroscale::decide
