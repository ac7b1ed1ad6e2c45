// The reporter alone against the fake API server: CustomAutoscaler status written from
// the snapshots pushed to it, with no decider to ask, and Events per decision.
#include "scaler/report/kube_reporter.h"

#include <condition_variable>
#include <memory>
#include <mutex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/scaler/testing/term_waiter.h"
#include "tests/testing/fake_apiserver.h"

namespace zeroscale::report {
namespace {

using json = nlohmann::json;

constexpr char kWorkload[] = "ml/Deployment/llama";
constexpr char kCrs[] =
    "/apis/autoscaler-group.autoscaler/v1alpha1/namespaces/ml/customautoscalers";

class KubeReporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    kube::ClusterConfig cluster;
    cluster.server = server_.url();
    auto client = kube::KubeClient::Create(cluster);
    ASSERT_TRUE(client.ok());
    client_ = *std::move(client);
    leader::LeadershipOptions lo;
    lo.leader_elect = false;
    lo.identity = "a";
    lo.Resolve("zs");
    leadership_ = std::make_unique<leader::Leadership>(client_.get(), lo, RealClock::Get());
    KubeReporterOptions o;
    o.identity = "a";
    reporter_ =
        std::make_unique<KubeReporter>(client_.get(), leadership_.get(), o, RealClock::Get());
    leadership_->AddListener(reporter_.get());
    leadership_->AddListener(&term_);
    reporter_->Start();
    leadership_->Start();
    ASSERT_TRUE(term_.Wait());
    ASSERT_TRUE(server_
                    .Create(kCrs, R"({"apiVersion":"autoscaler-group.autoscaler/v1alpha1",
                      "kind":"CustomAutoscaler","metadata":{"name":"llama"},
                      "spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment",
                      "name":"llama"},"minReplicas":0,"maxReplicas":3}})")
                    .ok());
  }
  void TearDown() override {
    leadership_->Stop();
    reporter_->Stop();
  }

  CustomAutoscalerReport Applied() {
    CustomAutoscalerReport r;
    r.namespace_ = "ml";
    r.name = "llama";
    r.generation = 1;
    r.workload = kWorkload;
    r.target_ref = {"ml", "Deployment", "llama"};
    return r;
  }

  // The body of the next status write after request `from`.
  json NextStatusPatch(size_t from) {
    auto req =
        server_.WaitForRequest("PATCH", "customautoscalers/llama/status", absl::Seconds(10), from);
    if (!req) return json();
    return json::parse(req->body)["status"];
  }

  testing::FakeApiServer server_;
  testing::TermWaiter term_;
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<leader::Leadership> leadership_;
  std::unique_ptr<KubeReporter> reporter_;
};

TEST_F(KubeReporterTest, StatusComesFromPushedSnapshots) {
  size_t from = server_.request_count();
  reporter_->Update(Applied());
  decide::WorkloadStatus ws;
  ws.workload = kWorkload;
  ws.state = decide::State::kActive;
  ws.replicas = 2;
  ws.desired = 3;
  ws.actuation_in_flight = true;
  reporter_->OnStatus(ws);
  json st = NextStatusPatch(from);
  // The applied CR waited for its snapshot: the first write already shows it.
  EXPECT_EQ(st["replicas"], 2);
  EXPECT_EQ(st["desiredReplicas"], 3);
  EXPECT_EQ(st["state"], "Active");

  from = server_.request_count();
  ws.state = decide::State::kScaledToZero;
  ws.replicas = ws.desired = 0;
  ws.actuation_in_flight = false;
  reporter_->OnStatus(ws);
  st = NextStatusPatch(from);
  EXPECT_EQ(st["replicas"], 0);
  EXPECT_EQ(st["state"], "ScaledToZero");
}

TEST_F(KubeReporterTest, DecisionBecomesAnEventOnTheTarget) {
  reporter_->Update(Applied());
  decide::Decision d;
  d.workload = kWorkload;
  d.from = decide::State::kActive;
  d.to = decide::State::kActive;
  d.replicas_before = 1;
  d.replicas_after = 2;
  d.reason = "rule 'busy' holds";
  const size_t from = server_.request_count();
  reporter_->Record(d);
  auto req = server_.WaitForRequest("POST", "/events", absl::Seconds(10), from);
  ASSERT_TRUE(req.has_value());
  json e = json::parse(req->body);
  EXPECT_EQ(e["reason"], "ScaledUp");
  EXPECT_EQ(e["involvedObject"]["kind"], "Deployment");
  EXPECT_EQ(e["involvedObject"]["name"], "llama");
}

}  // namespace
}  // namespace zeroscale::report
