// RuleStore against a real redis-server: CRUD on scaling_rule:<id> as the seed writes it.
#include "scaler/store/rule_store.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::store {
namespace {

using ::testing::HasSubstr;

class RuleStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    RedisOptions o;
    o.port = server_.port();
    redis_ = std::make_unique<HiredisClient>(o, &clock_);
    store_ = std::make_unique<RuleStore>(redis_.get());
  }
  static ScalingRule Rule(const std::string& id, const std::string& target) {
    ScalingRule r;
    r.id = id;
    r.target = target;
    r.thresholds = {{MetricType::kCpuUsage, 80, Operator::kGreaterThan}};
    return r;
  }
  testing::RedisServer server_;
  testing::FakeClock clock_;
  std::unique_ptr<HiredisClient> redis_;
  std::unique_ptr<RuleStore> store_;
};

TEST_F(RuleStoreTest, CreateGetUpdateDelete) {
  ASSERT_TRUE(store_->Create(Rule("busy", "ml/Deployment/a")).ok());
  EXPECT_EQ(store_->Create(Rule("busy", "ml/Deployment/a")).code(),
            absl::StatusCode::kAlreadyExists);
  auto got = store_->Get("busy");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, Rule("busy", "ml/Deployment/a"));
  ScalingRule changed = Rule("busy", "ml/Deployment/a");
  changed.thresholds[0].value = 90;
  ASSERT_TRUE(store_->Update(changed).ok());
  EXPECT_EQ(store_->Get("busy")->thresholds[0].value, 90);
  EXPECT_EQ(store_->Update(Rule("nope", "")).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Delete("busy").ok());
  EXPECT_EQ(store_->Get("busy").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete("busy").code(), absl::StatusCode::kNotFound);
}

TEST_F(RuleStoreTest, StoresTheSeedJsonUnderTheSeedKey) {
  ASSERT_TRUE(store_->Create(Rule("busy", "")).ok());
  EXPECT_THAT(server_.Cli("GET scaling_rule:busy"),
              HasSubstr(R"({"id":"busy","action":"INCREASE_INSTANCES","thresholds":[)"));
}

TEST_F(RuleStoreTest, ReadsRulesWrittenBySeedCode) {
  ASSERT_TRUE(redis_
                  ->Command({"SET", "scaling_rule:seed",
                             R"({"id":"seed","action":"DECREASE_INSTANCES","thresholds":)"
                             R"([{"metricType":"CPU_USAGE","value":5,"operator":"LESS_THAN"}]})"})
                  .ok());
  auto got = store_->Get("seed");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->action, Action::kDecreaseInstances);
}

TEST_F(RuleStoreTest, InvalidRulesAreRefusedAndNotStored) {
  ScalingRule r = Rule("empty", "");
  r.thresholds.clear();
  absl::Status s = store_->Create(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("thresholds"));
  EXPECT_EQ(server_.Cli("EXISTS scaling_rule:empty"), "0\n");
  EXPECT_EQ(store_->Create(Rule("", "")).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RuleStoreTest, ListFiltersByTargetAndSkipsUnreadable) {
  ASSERT_TRUE(store_->Create(Rule("a", "ml/Deployment/x")).ok());
  ASSERT_TRUE(store_->Create(Rule("b", "ml/Deployment/y")).ok());
  ASSERT_TRUE(store_->Create(Rule("c", "ml/Deployment/x")).ok());
  ASSERT_TRUE(redis_->Command({"SET", "scaling_rule:junk", "{not json"}).ok());
  // Valid JSON, invalid rule; the id of another key; not a string at all.
  ASSERT_TRUE(redis_
                  ->Command({"SET", "scaling_rule:nosteps",
                             R"({"id":"nosteps","action":"INCREASE_INSTANCES","thresholds":[]})"})
                  .ok());
  ASSERT_TRUE(redis_
                  ->Command({"SET", "scaling_rule:other",
                             R"({"id":"a","action":"INCREASE_INSTANCES","thresholds":[)"
                             R"({"metricType":"CPU_USAGE","value":1,"operator":"LESS_THAN"}]})"})
                  .ok());
  ASSERT_TRUE(redis_->Command({"HSET", "scaling_rule:hash", "f", "v"}).ok());
  std::vector<SkippedRule> skipped;
  auto all = store_->List("", &skipped);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  ASSERT_EQ(skipped.size(), 4u);
  EXPECT_EQ(skipped[0].key, "scaling_rule:hash");
  EXPECT_THAT(skipped[0].error, HasSubstr("not a string"));
  EXPECT_EQ(skipped[1].key, "scaling_rule:junk");
  EXPECT_EQ(skipped[2].key, "scaling_rule:nosteps");
  EXPECT_THAT(skipped[2].error, HasSubstr("thresholds"));
  EXPECT_EQ(skipped[3].key, "scaling_rule:other");
  EXPECT_THAT(skipped[3].error, HasSubstr("id: 'a'"));
  // Bounded: more keys than the limit is an error, not unbounded memory.
  EXPECT_EQ(store_->List("", nullptr, 2).status().code(), absl::StatusCode::kResourceExhausted);
  auto x = store_->List("ml/Deployment/x");
  ASSERT_EQ(x->size(), 2u);
  EXPECT_EQ((*x)[0].id, "a");
  EXPECT_EQ((*x)[1].id, "c");
}

TEST_F(RuleStoreTest, UnreadableRuleIsDataLoss) {
  ASSERT_TRUE(redis_->Command({"SET", "scaling_rule:junk", "[]"}).ok());
  EXPECT_EQ(store_->Get("junk").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace zeroscale::store
