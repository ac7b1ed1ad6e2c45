// Stored ScalingRules drive decisions, end to end: the real scaler (--backend=local) and
// sidecars, a real redis-server. A rule comes in through RulesService or as seed 004
// writes it (`SET scaling_rule:<id> <JSON>`, the seed's field names plus `target`), and
// scales the workload; updates and deletes take effect; a conflict with the workloads
// file, a malformed value and a rule without a target are reported; the effective set
// survives a scaler restart.
//
// The workload's file rule 'quiet' lowers replicas while nothing is in flight; the stored
// rule 'grow' raises them on the same evidence, and any increase beats any decrease, so
// the replica count says which rules are in effect without generating load.
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"
#include "zeroscale/v1/rules.grpc.pb.h"

namespace zeroscale {
namespace {

using testing::ChildProcess;
using testing::FreePort;
using ::testing::HasSubstr;
using testing::Shell;
using testing::WaitFor;

constexpr char kWorkload[] = "local/Deployment/m";

// Seed 004's JSON (id, action, thresholds of metricType/value/operator) plus target.
std::string SeedRule(const std::string& id, const std::string& action, const std::string& op,
                     double value) {
  return absl::StrCat(R"({"id":")", id, R"(","action":")", action,
                      R"(","thresholds":[{"metricType":"IN_FLIGHT_REQUESTS","value":)", value,
                      R"(,"operator":")", op, R"("}],"target":")", kWorkload,
                      R"(","windowSeconds":1})");
}

class StoredRules : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    dir_ = absl::StrCat(::testing::TempDir(), "/zs-stored-rules-", ::getpid());
    Shell("mkdir -p " + dir_);
    file_ = dir_ + "/workloads.yaml";
    std::ofstream(file_) << "workloads:\n"
                            "  - name: m\n"
                            "    command: [\"python3\", \"" ZS_SOURCE_DIR
                            "/demo/model_server.py\", \"--port\", \"{port}\",\n"
                            "              \"--load-seconds\", \"0.2\"]\n"
                            "    port: 0\n"
                            "    minReplicas: 1\n"
                            "    maxReplicas: 3\n"
                            "    readinessPath: /ready\n"
                            "    rules:\n"
                            "      - id: quiet\n"
                            "        action: DECREASE_INSTANCES\n"
                            "        thresholds: [{metricType: IN_FLIGHT_REQUESTS, operator: "
                            "LESS_THAN, value: 1}]\n"
                            "        windowSeconds: 1\n";
    http_ = FreePort();
    grpc_ = FreePort();
    StartScaler();
  }

  void StartScaler() {
    scaler_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        ZS_SCALER_BIN, absl::StrCat("--redis=", redis_.address()),
        absl::StrCat("--http-listen=127.0.0.1:", http_),
        absl::StrCat("--grpc-listen=127.0.0.1:", grpc_),
        absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()), "--backend=local",
        "--workloads=" + file_, "--sidecar-bin=" ZS_SIDECAR_BIN, "--replica-log-dir=" + dir_,
        // Seed-style clients (redis-cli, a RulesService client without a token), as the
        // seed used them: no credentials.
        "--insecure"});
    ASSERT_TRUE(scaler_->Start().ok());
    ASSERT_TRUE(
        WaitFor([&] { return testing::HttpGetStatus(http_, "/readyz") == 200; }, absl::Seconds(20)))
        << scaler_->ReadLog();
    stub_ = v1::RulesService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (scaler_) scaler_->Stop();
    Shell("rm -rf " + dir_);
  }

  nlohmann::json Get(const std::string& path) {
    return nlohmann::json::parse(Shell(absl::StrCat("curl -s http://127.0.0.1:", http_, path)),
                                 nullptr, false);
  }
  nlohmann::json Status() {
    nlohmann::json all = Get("/workloads");
    if (all.is_array()) {
      for (auto& w : all) {
        if (w["workload"] == kWorkload) return w;
      }
    }
    return nlohmann::json::object();
  }
  int Replicas() {
    nlohmann::json s = Status();
    return s.contains("replicas") && !s["actuationInFlight"].get<bool>() ? s["replicas"].get<int>()
                                                                         : -1;
  }
  // The source of the effective rule `id`, "" when the workload does not have it.
  std::string SourceOf(const std::string& id) {
    nlohmann::json s = Status();
    if (!s.contains("rules")) return "";
    for (auto& r : s["rules"]) {
      if (r["id"] == id) return r["source"];
    }
    return "";
  }
  std::string Decisions() {
    return Shell(absl::StrCat("curl -s 'http://127.0.0.1:", http_,
                              "/decisions?workload=", kWorkload, "&limit=100'"));
  }
  v1::ScalingRule GrowProto(const std::string& id, const std::string& target) {
    v1::ScalingRule r;
    r.set_id(id);
    r.set_action(v1::INCREASE_INSTANCES);
    v1::Threshold* t = r.add_thresholds();
    t->set_metric_type(v1::IN_FLIGHT_REQUESTS);
    t->set_operator_(v1::LESS_THAN);
    t->set_value(1);
    r.set_target(target);
    r.set_window_seconds(1);
    return r;
  }

  testing::RedisServer redis_;
  std::string dir_, file_;
  uint16_t http_ = 0, grpc_ = 0;
  std::unique_ptr<ChildProcess> scaler_;
  std::unique_ptr<v1::RulesService::Stub> stub_;
};

TEST_F(StoredRules, RuleSetTheSeedsWayScalesUpdatesAndDeletes) {
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 1; }, absl::Seconds(20))) << Status().dump(2);
  EXPECT_EQ(SourceOf("quiet"), "workloads-file");
  EXPECT_EQ(redis_.Cli("SET scaling_rule:grow '" +
                       SeedRule("grow", "INCREASE_INSTANCES", "LESS_THAN", 1) + "'"),
            "OK\n");
  ASSERT_TRUE(WaitFor([&] { return SourceOf("grow") == "redis"; }, absl::Seconds(10)))
      << Status().dump(2) << scaler_->ReadLog();
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 3; }, absl::Seconds(60))) << Status().dump(2);
  EXPECT_THAT(Decisions(), HasSubstr(R"("rule":"grow","ruleSource":"redis")"));
  // Heard through a keyspace notification, not only the periodic reload.
  EXPECT_EQ(Get("/rules")["changesHeardBy"], "keyspace");
  EXPECT_THAT(Shell(absl::StrCat("curl -s http://127.0.0.1:", http_, "/metrics")),
              HasSubstr(R"(zeroscale_stored_rules_reloads_total{trigger="notification"})"));

  // Updated so it never holds: the file's 'quiet' takes the workload back down.
  redis_.Cli("SET scaling_rule:grow '" +
             SeedRule("grow", "INCREASE_INSTANCES", "GREATER_THAN", 1000) + "'");
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 1; }, absl::Seconds(60))) << Status().dump(2);
  EXPECT_THAT(Decisions(), HasSubstr(R"("rule":"quiet","ruleSource":"workloads-file")"));

  // Back, then deleted: gone from the effective set, and down again.
  redis_.Cli("SET scaling_rule:grow '" + SeedRule("grow", "INCREASE_INSTANCES", "LESS_THAN", 1) +
             "'");
  ASSERT_TRUE(WaitFor([&] { return Replicas() >= 2; }, absl::Seconds(60))) << Status().dump(2);
  EXPECT_EQ(redis_.Cli("DEL scaling_rule:grow"), "1\n");
  ASSERT_TRUE(WaitFor([&] { return SourceOf("grow").empty(); }, absl::Seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 1; }, absl::Seconds(60))) << Status().dump(2);
}

TEST_F(StoredRules, RuleCreatedThroughRulesServiceScalesAndSurvivesARestart) {
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 1; }, absl::Seconds(20))) << Status().dump(2);
  {
    grpc::ClientContext ctx;
    v1::ScalingRule out;
    grpc::Status s = stub_->CreateRule(&ctx, GrowProto("grow", kWorkload), &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 3; }, absl::Seconds(60))) << Status().dump(2);
  EXPECT_EQ(SourceOf("grow"), "redis");

  scaler_->Stop();
  StartScaler();
  ASSERT_TRUE(WaitFor([&] { return SourceOf("grow") == "redis"; }, absl::Seconds(10)))
      << Status().dump(2);
  EXPECT_EQ(SourceOf("quiet"), "workloads-file");
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 3; }, absl::Seconds(60))) << Status().dump(2);
}

TEST_F(StoredRules, ConflictWithTheWorkloadsFileIsRefusedOrReportedAndTheFileWins) {
  ASSERT_TRUE(WaitFor([&] { return SourceOf("quiet") == "workloads-file"; }, absl::Seconds(20)));
  {  // RulesService refuses, naming the other source.
    grpc::ClientContext ctx;
    v1::ScalingRule out;
    grpc::Status s = stub_->CreateRule(&ctx, GrowProto("quiet", kWorkload), &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
    EXPECT_THAT(s.error_message(), HasSubstr("workloads-file"));
  }
  // Written straight into Redis it cannot be refused: reported, and the file wins.
  redis_.Cli("SET scaling_rule:quiet '" + SeedRule("quiet", "INCREASE_INSTANCES", "LESS_THAN", 1) +
             "'");
  ASSERT_TRUE(WaitFor([&] { return Status().contains("ruleConflicts"); }, absl::Seconds(10)))
      << Status().dump(2);
  nlohmann::json c = Status()["ruleConflicts"][0];
  EXPECT_EQ(c["id"], "quiet");
  EXPECT_EQ(c["used"], "workloads-file");
  EXPECT_EQ(c["ignored"], "redis");
  EXPECT_EQ(SourceOf("quiet"), "workloads-file");
  EXPECT_THAT(Shell(absl::StrCat("curl -s http://127.0.0.1:", http_, "/metrics")),
              HasSubstr("zeroscale_rule_conflicts 1"));
  EXPECT_THAT(scaler_->ReadLog(), HasSubstr("rule conflict"));
}

TEST_F(StoredRules, MalformedAndUnboundRulesAreSkippedOrListedAndSaySo) {
  redis_.Cli(R"(SET scaling_rule:bad '{"id":"bad","action":"GROW","thresholds":[]}')");
  redis_.Cli(R"(SET scaling_rule:worse 'not json')");
  {  // Seed 004's shape: no target.
    grpc::ClientContext ctx;
    v1::ScalingRule out;
    ASSERT_TRUE(stub_->CreateRule(&ctx, GrowProto("free", ""), &out).ok());
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        nlohmann::json r = Get("/rules");
        return r.is_object() && r["malformed"].size() == 2 && r["unboundRules"].size() == 1;
      },
      absl::Seconds(10)))
      << Get("/rules").dump(2);
  nlohmann::json r = Get("/rules");
  EXPECT_EQ(r["malformed"][0]["key"], "scaling_rule:bad");
  EXPECT_THAT(r["malformed"][0]["error"].get<std::string>(), HasSubstr("action"));
  EXPECT_EQ(r["malformed"][1]["key"], "scaling_rule:worse");
  EXPECT_EQ(r["unboundRules"][0]["id"], "free");
  EXPECT_THAT(r["unboundRules"][0]["note"].get<std::string>(), HasSubstr("applies to no workload"));
  EXPECT_TRUE(SourceOf("free").empty());
  const std::string log = scaler_->ReadLog();
  EXPECT_THAT(log, HasSubstr("scaling_rule:bad"));
  EXPECT_THAT(log, HasSubstr("applies to no workload"));
  EXPECT_THAT(Shell(absl::StrCat("curl -s http://127.0.0.1:", http_, "/metrics")),
              HasSubstr("zeroscale_stored_rules_malformed_total 2"));
}

}  // namespace
}  // namespace zeroscale
