// The stored-rule watcher and RulesService's conflict check against a real redis-server:
// what a reload hands to the engine, what it reports, and that a write is heard.
#include <condition_variable>
#include <mutex>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "scaler/rules/rules_service.h"
#include "scaler/rules/stored_rules_watcher.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::rules {
namespace {

using ::testing::HasSubstr;

class StoredRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    options_.port = server_.port();
    redis_ = std::make_unique<HiredisClient>(options_, RealClock::Get());
    store_ = std::make_unique<store::RuleStore>(redis_.get());
  }
  std::unique_ptr<StoredRulesWatcher> Watcher(absl::Duration reload = absl::Hours(1)) {
    StoredRulesWatcherOptions o;
    o.redis = options_;
    o.reload_interval = reload;
    watch_redis_ = std::make_unique<HiredisClient>(options_, RealClock::Get());
    return std::make_unique<StoredRulesWatcher>(
        o, watch_redis_.get(),
        [this](std::vector<ScalingRule> rules) {
          std::lock_guard<std::mutex> lock(mu_);
          applied_.push_back(std::move(rules));
          cv_.notify_all();
        },
        &registry_, RealClock::Get());
  }
  static ScalingRule Rule(const std::string& id, const std::string& target) {
    ScalingRule r;
    r.id = id;
    r.target = target;
    r.thresholds = {{MetricType::kCpuUsage, 80, Operator::kGreaterThan}};
    return r;
  }
  size_t Applied() {
    std::lock_guard<std::mutex> lock(mu_);
    return applied_.size();
  }

  testing::RedisServer server_;
  RedisOptions options_;
  std::unique_ptr<HiredisClient> redis_, watch_redis_;
  std::unique_ptr<store::RuleStore> store_;
  prometheus::Registry registry_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<ScalingRule>> applied_;
};

TEST_F(StoredRulesTest, ReloadHandsOverValidRulesOnlyWhenTheyChangeAndReportsTheRest) {
  ASSERT_TRUE(store_->Create(Rule("a", "ml/Deployment/x")).ok());
  ASSERT_TRUE(store_->Create(Rule("free", "")).ok());
  server_.Cli(R"(SET scaling_rule:bad '{"id":"bad","action":"GROW"}')");
  auto w = Watcher();
  ASSERT_TRUE(w->Reload("start").ok());
  ASSERT_EQ(Applied(), 1u);
  EXPECT_EQ(applied_[0].size(), 2u);  // the bound and the unbound rule; the engine sorts
  ASSERT_TRUE(w->Reload("periodic").ok());
  EXPECT_EQ(Applied(), 1u);  // nothing changed: nothing handed over
  StoredRulesSnapshot s = w->Snapshot();
  ASSERT_EQ(s.malformed.size(), 1u);
  EXPECT_EQ(s.malformed[0].key, "scaling_rule:bad");
  EXPECT_THAT(s.malformed[0].error, HasSubstr("action"));
  nlohmann::json j = nlohmann::json::parse(w->SnapshotJson());
  EXPECT_EQ(j["unboundRules"][0]["id"], "free");
  EXPECT_EQ(j["rules"][0]["target"], "ml/Deployment/x");
  ASSERT_TRUE(store_->Delete("a").ok());
  ASSERT_TRUE(w->Reload("periodic").ok());
  ASSERT_EQ(Applied(), 2u);
  EXPECT_EQ(applied_[1].size(), 1u);
}

TEST_F(StoredRulesTest, RedisAwayKeepsTheLastSetAndSaysWhy) {
  ASSERT_TRUE(store_->Create(Rule("a", "ml/Deployment/x")).ok());
  auto w = Watcher();
  ASSERT_TRUE(w->Reload("start").ok());
  server_.Kill();
  EXPECT_FALSE(w->Reload("periodic").ok());
  EXPECT_EQ(Applied(), 1u);
  EXPECT_FALSE(w->Snapshot().error.empty());
  EXPECT_EQ(w->Snapshot().rules.size(), 1u);
}

TEST_F(StoredRulesTest, AStraightSetIsHeardWithoutWaitingForTheReload) {
  auto w = Watcher(absl::Hours(1));  // the periodic reload never comes in this test
  w->Start();
  {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !applied_.empty(); }));
  }
  // Subscribed once the watcher says how it hears changes.
  for (int i = 0; i < 100 && w->Snapshot().notifications != "keyspace"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(w->Snapshot().notifications, "keyspace");
  server_.Cli(
      R"(SET scaling_rule:g '{"id":"g","action":"INCREASE_INSTANCES","thresholds":[{"metricType":"CPU_USAGE","value":1,"operator":"GREATER_THAN"}],"target":"ml/Deployment/x"}')");
  std::unique_lock<std::mutex> lock(mu_);
  ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(10),
                           [&] { return !applied_.empty() && applied_.back().size() == 1; }));
  EXPECT_EQ(applied_.back()[0].id, "g");
  lock.unlock();
  w->Stop();
}

TEST_F(StoredRulesTest, RulesServiceRefusesAnIdTheWorkloadHasFromAnotherSource) {
  RulesServiceImpl service(store_.get(), nullptr, [](const std::string& target, const std::string& id) {
    return target == "ml/Deployment/x" && id == "busy" ? std::string("customautoscaler")
                                                       : std::string();
  });
  v1::ScalingRule req;
  req.set_id("busy");
  req.set_action(v1::INCREASE_INSTANCES);
  v1::Threshold* t = req.add_thresholds();
  t->set_metric_type(v1::CPU_USAGE);
  t->set_operator_(v1::GREATER_THAN);
  t->set_value(80);
  req.set_target("ml/Deployment/x");
  v1::ScalingRule resp;
  grpc::Status s = service.CreateRule(nullptr, &req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(s.error_message(), HasSubstr("customautoscaler"));
  EXPECT_EQ(server_.Cli("EXISTS scaling_rule:busy"), "0\n");
  // Another workload, or no target at all, is fine.
  req.set_target("ml/Deployment/y");
  EXPECT_TRUE(service.CreateRule(nullptr, &req, &resp).ok());
  req.set_target("ml/Deployment/x");
  EXPECT_EQ(service.UpdateRule(nullptr, &req, &resp).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  req.set_target("");
  EXPECT_TRUE(service.UpdateRule(nullptr, &req, &resp).ok());
  // Taken in Redis: the existing message names the key.
  s = service.CreateRule(nullptr, &req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(s.error_message(), HasSubstr("scaling_rule:busy"));
}

}  // namespace
}  // namespace zeroscale::rules
