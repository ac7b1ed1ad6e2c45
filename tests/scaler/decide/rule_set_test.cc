// The merge of spec rules and stored rules into one effective set per workload: pure
// functions, no I/O.
#include "scaler/decide/rule_set.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/scaler/decide/test_util.h"

namespace zeroscale::decide {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::kWorkload;
using testing::Rule;

ScalingRule Stored(const std::string& id, const std::string& target) {
  ScalingRule r =
      Rule(id, Action::kIncreaseInstances, MetricType::kCpuUsage, Operator::kGreaterThan, 80);
  r.target = target;
  return r;
}

WorkloadSpec Base(std::vector<ScalingRule> rules, RuleSource source) {
  WorkloadSpec s;
  s.workload = kWorkload;
  s.max_replicas = 3;
  s.rules = std::move(rules);
  s.rules_source = source;
  return s;
}

std::vector<std::string> Ids(const WorkloadSpec& s) {
  std::vector<std::string> out;
  for (const ScalingRule& r : s.rules) out.push_back(r.id);
  return out;
}

TEST(GroupStoredRules, ByTargetSortedAndUnboundApart) {
  StoredRules g = GroupStoredRules({Stored("b", kWorkload), Stored("x", ""), Stored("a", kWorkload),
                                    Stored("c", "ns/Deployment/other")});
  ASSERT_EQ(g.by_target.size(), 2u);
  EXPECT_EQ(g.by_target[kWorkload][0].id, "a");
  EXPECT_EQ(g.by_target[kWorkload][1].id, "b");
  ASSERT_EQ(g.unbound.size(), 1u);
  EXPECT_EQ(g.unbound[0].id, "x");
  EXPECT_EQ(g.size(), 4u);
}

TEST(MergeRules, SpecRulesFirstThenStoredRulesForThisWorkloadOnly) {
  StoredRules g = GroupStoredRules(
      {Stored("z", kWorkload), Stored("other", "ns/Deployment/other"), Stored("free", "")});
  std::vector<RuleConflict> conflicts;
  WorkloadSpec m =
      MergeRules(Base({Stored("busy", "")}, RuleSource::kWorkloadsFile), g, &conflicts);
  EXPECT_THAT(Ids(m), ElementsAre("busy", "z"));
  EXPECT_THAT(m.rule_sources, ElementsAre(RuleSource::kWorkloadsFile, RuleSource::kRedis));
  EXPECT_THAT(conflicts, IsEmpty());
  EXPECT_EQ(SourceOf(m, "z"), RuleSource::kRedis);
  EXPECT_EQ(SourceOf(m, "busy"), RuleSource::kWorkloadsFile);
  std::vector<RuleRef> refs = RuleRefs(m);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[1].id, "z");
  EXPECT_EQ(refs[1].source, RuleSource::kRedis);
  EXPECT_TRUE(ValidateWorkloadSpec(m).ok());
}

TEST(MergeRules, SameIdFromSpecAndRedisIsAConflictTheSpecWins) {
  ScalingRule spec_rule = Stored("busy", kWorkload);
  ScalingRule stored_rule = Stored("busy", kWorkload);
  stored_rule.thresholds[0].value = 1;  // different content: the spec's is kept
  std::vector<RuleConflict> conflicts;
  WorkloadSpec m = MergeRules(Base({spec_rule}, RuleSource::kCustomAutoscaler),
                              GroupStoredRules({stored_rule}), &conflicts);
  ASSERT_EQ(m.rules.size(), 1u);
  EXPECT_EQ(m.rules[0], spec_rule);
  EXPECT_THAT(m.rule_sources, ElementsAre(RuleSource::kCustomAutoscaler));
  EXPECT_THAT(conflicts,
              ElementsAre(RuleConflict{"busy", RuleSource::kCustomAutoscaler, RuleSource::kRedis}));
}

TEST(MergeRules, NothingStored) {
  WorkloadSpec m =
      MergeRules(Base({Stored("a", "")}, RuleSource::kWorkloadsFile), StoredRules{}, nullptr);
  EXPECT_THAT(Ids(m), ElementsAre("a"));
  EXPECT_THAT(m.rule_sources, ElementsAre(RuleSource::kWorkloadsFile));
  // An unmerged spec answers with its rules_source.
  EXPECT_EQ(SourceOf(Base({Stored("a", "")}, RuleSource::kWorkloadsFile), "a"),
            RuleSource::kWorkloadsFile);
}

TEST(RuleSourceName, Names) {
  EXPECT_EQ(RuleSourceName(RuleSource::kCustomAutoscaler), "customautoscaler");
  EXPECT_EQ(RuleSourceName(RuleSource::kWorkloadsFile), "workloads-file");
  EXPECT_EQ(RuleSourceName(RuleSource::kRedis), "redis");
}

}  // namespace
}  // namespace zeroscale::decide
