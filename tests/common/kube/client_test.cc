#include "common/kube/client.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/kube/test_util.h"
#include "tests/testing/fake_apiserver.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::kube {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ClusterConfig config;
    config.server = server_.url();
    config.token = "static-token";
    auto client = KubeClient::Create(config, &clock_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  testing::FakeClock clock_;
  testing::FakeApiServer server_;
  std::unique_ptr<KubeClient> client_;
};

const WorkloadRef kLlama{"ml", "Deployment", "llama"};
constexpr char kLlamaScale[] = "/apis/apps/v1/namespaces/ml/deployments/llama/scale";

TEST_F(ClientTest, GetsScale) {
  ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "llama", 2).ok());
  auto scale = client_->GetScale(kLlama);
  ASSERT_TRUE(scale.ok()) << scale.status();
  EXPECT_EQ(scale->name, "llama");
  EXPECT_EQ(scale->namespace_, "ml");
  EXPECT_EQ(scale->spec_replicas, 2);
  EXPECT_EQ(scale->status_replicas, 2);
  EXPECT_EQ(scale->selector, "app=llama");
  EXPECT_EQ(scale->resource_version, absl::StrCat(server_.resource_version()));
  // Sent with the bearer token.
  EXPECT_EQ(server_.requests().back().authorization, "Bearer static-token");
}

TEST_F(ClientTest, ScaleAtZeroOmitsReplicasAndReadsAsZero) {
  ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "llama", 0).ok());
  // The wire format really is "spec": {} (as the API server sends it).
  auto raw = client_->Call("GET", kLlamaScale);
  ASSERT_TRUE(raw.ok()) << raw.status();
  const json j = json::parse(*raw);
  EXPECT_EQ(j["spec"], json::object());
  EXPECT_FALSE(j["status"].contains("replicas"));
  auto scale = client_->GetScale(kLlama);
  ASSERT_TRUE(scale.ok()) << scale.status();
  EXPECT_EQ(scale->spec_replicas, 0);
  EXPECT_EQ(scale->status_replicas, 0);
  EXPECT_EQ(scale->selector, "app=llama");
}

TEST_F(ClientTest, PatchesScaleWithResourceVersion) {
  ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "llama", 1).ok());
  auto before = client_->GetScale(kLlama);
  ASSERT_TRUE(before.ok());
  auto after = client_->PatchScale(kLlama, 3, before->resource_version);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->spec_replicas, 3);
  EXPECT_NE(after->resource_version, before->resource_version);
  const auto req = server_.requests().back();
  EXPECT_EQ(req.method, "PATCH");
  EXPECT_EQ(req.content_type, "application/merge-patch+json");
  EXPECT_EQ(json::parse(req.body)["metadata"]["resourceVersion"], before->resource_version);
  const json deployment =
      json::parse(*server_.Get("/apis/apps/v1/namespaces/ml/deployments/llama"));
  EXPECT_EQ(deployment["spec"]["replicas"], 3);

  // Down to zero: the answer comes back as "spec": {} and still reads as 0.
  auto zero = client_->PatchScale(kLlama, 0, after->resource_version);
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(zero->spec_replicas, 0);
}

TEST_F(ClientTest, ConflictIsAbortedAndAReReadSucceeds) {
  ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "llama", 1).ok());
  auto stale = client_->GetScale(kLlama);
  ASSERT_TRUE(stale.ok());
  // Someone else (kubectl scale) changes it meanwhile.
  ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "llama", 5).ok());
  auto conflict = client_->PatchScale(kLlama, 2, stale->resource_version);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(HttpStatusOf(conflict.status()), 409);
  EXPECT_THAT(conflict.status().message(), HasSubstr("the object has been modified"));
  // Nothing was applied.
  auto fresh = client_->GetScale(kLlama);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->spec_replicas, 5);
  auto ok = client_->PatchScale(kLlama, 4, fresh->resource_version);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->spec_replicas, 4);
}

TEST_F(ClientTest, StatefulSetsAndUnknownKinds) {
  ASSERT_TRUE(server_.CreateWorkload("ml", "StatefulSet", "db", 2).ok());
  auto scale = client_->GetScale({"ml", "StatefulSet", "db"});
  ASSERT_TRUE(scale.ok()) << scale.status();
  EXPECT_EQ(scale->spec_replicas, 2);
  EXPECT_EQ(server_.requests().back().target, "/apis/apps/v1/namespaces/ml/statefulsets/db/scale");
  EXPECT_EQ(client_->GetScale({"ml", "ReplicaSet", "x"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->GetScale({"ml", "Deployment", "../x"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ClientTest, MapsHttpErrorsToWhatTheCallerShouldDo) {
  auto missing = client_->GetScale({"ml", "Deployment", "ghost"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "llama", 1).ok());
  server_.FailNext(1, 429, 7);
  auto throttled = client_->GetScale(kLlama);
  EXPECT_EQ(throttled.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(HttpStatusOf(throttled.status()), 429);
  ASSERT_TRUE(RetryAfterOf(throttled.status()).has_value());
  EXPECT_EQ(*RetryAfterOf(throttled.status()), absl::Seconds(7));

  server_.FailNext(1, 503);
  auto unavailable = client_->GetScale(kLlama);
  EXPECT_EQ(unavailable.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(RetryAfterOf(unavailable.status()).has_value());

  server_.RequireToken("other");
  EXPECT_EQ(client_->GetScale(kLlama).status().code(), absl::StatusCode::kPermissionDenied);
  server_.RequireToken("");
  EXPECT_TRUE(client_->GetScale(kLlama).ok());
}

TEST_F(ClientTest, NetworkErrorsAreUnavailable) {
  const std::string url = server_.url();
  server_.Stop();
  ClusterConfig config;
  config.server = url;
  auto client = KubeClient::Create(config);
  ASSERT_TRUE(client.ok());
  auto s = (*client)->GetScale(kLlama);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.status().message(), HasSubstr("connect"));
}

TEST_F(ClientTest, RotatedTokenFileIsReReadPeriodically) {
  char tmpl[] = "/tmp/zs-kube-token-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string token_file = dir + "/token";
  std::ofstream(token_file) << "first\n";
  ClusterConfig config;
  config.server = server_.url();
  config.token_file = token_file;
  config.token_refresh = absl::Minutes(1);
  auto client = KubeClient::Create(config, &clock_);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "llama", 1).ok());
  server_.RequireToken("first");
  EXPECT_TRUE((*client)->GetScale(kLlama).ok());

  std::ofstream(token_file, std::ios::trunc) << "second\n";
  server_.RequireToken("second");
  // Not re-read yet: the old token is still in use.
  EXPECT_EQ((*client)->GetScale(kLlama).status().code(), absl::StatusCode::kPermissionDenied);
  clock_.Advance(absl::Seconds(61));
  EXPECT_TRUE((*client)->GetScale(kLlama).ok());
  EXPECT_EQ(server_.requests().back().authorization, "Bearer second");
}

TEST_F(ClientTest, ListsCustomAutoscalersWithSpec) {
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("a", 0, 4)).ok());
  ASSERT_TRUE(server_.Create(CustomAutoscalers("other"), CustomAutoscalerJson("b", 1, 2)).ok());
  auto ml = client_->ListCustomAutoscalers("ml");
  ASSERT_TRUE(ml.ok()) << ml.status();
  ASSERT_EQ(ml->items.size(), 1u);
  EXPECT_EQ(ml->resource_version, absl::StrCat(server_.resource_version()));
  const CustomAutoscaler& a = ml->items[0];
  EXPECT_TRUE(a.spec_error.ok()) << a.spec_error;
  EXPECT_EQ(a.spec.min_replicas, 0);
  EXPECT_EQ(a.spec.max_replicas, 4);
  EXPECT_EQ(a.spec.idle_timeout_seconds, 300);
  EXPECT_EQ(a.Target(), (WorkloadRef{"ml", "Deployment", "llama"}));
  ASSERT_EQ(a.spec.rules.size(), 1u);
  EXPECT_EQ(a.spec.rules[0].id, "busy");
  EXPECT_EQ(a.spec.rules[0].target, "ml/Deployment/llama");
  EXPECT_EQ(a.spec.rules[0].thresholds[0].metric_type, MetricType::kInFlightRequests);
  EXPECT_EQ(a.generation, 1);

  auto all = client_->ListCustomAutoscalers("");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->items.size(), 2u);
}

TEST(CollectionTargetTest, ListAndWatchQueriesWithAnEscapedLabelSelector) {
  EXPECT_EQ(KubeClient::CollectionTarget("/api/v1/pods", ""), "/api/v1/pods");
  EXPECT_EQ(KubeClient::CollectionTarget("/api/v1/pods", "app=llama,tier!=gpu"),
            "/api/v1/pods?labelSelector=app%3Dllama%2Ctier%21%3Dgpu");
  EXPECT_EQ(
      KubeClient::CollectionTarget("/api/v1/pods", "app", /*watch=*/true, "42", absl::Minutes(5)),
      "/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=300"
      "&resourceVersion=42&labelSelector=app");
  // Without a resourceVersion the watch starts from the server's current state.
  EXPECT_EQ(KubeClient::CollectionTarget("/api/v1/pods", "", true, "", absl::Seconds(0)),
            "/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=1");
}

TEST_F(ClientTest, ListSendsTheLabelSelector) {
  ASSERT_TRUE(client_->ListCustomAutoscalers("ml", "team=search").ok());
  EXPECT_EQ(server_.requests().back().target,
            CustomAutoscalers("ml") + "?labelSelector=team%3Dsearch");
  EXPECT_EQ(client_->ListCustomAutoscalers("../x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ClientTest, BadSpecIsDeliveredWithItsError) {
  auto ca = CustomAutoscalerFromJson(R"({"metadata":{"name":"x","namespace":"ml"},
      "spec":{"scaleTargetRef":{"kind":"Pod","name":"p"},"maxReplicas":2}})");
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_EQ(ca->spec_error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ca->spec_error.message(), HasSubstr("spec.scaleTargetRef.kind"));

  auto bad_rule = CustomAutoscalerFromJson(R"({"metadata":{"name":"x","namespace":"ml"},
      "spec":{"scaleTargetRef":{"kind":"Deployment","name":"d"},"maxReplicas":2,
      "rules":[{"id":"r","action":"JUMP","thresholds":[]}]}})");
  ASSERT_TRUE(bad_rule.ok());
  EXPECT_THAT(bad_rule->spec_error.message(), HasSubstr("spec.rules[0]"));

  auto min_over_max = CustomAutoscalerFromJson(R"({"metadata":{"name":"x","namespace":"ml"},
      "spec":{"scaleTargetRef":{"kind":"Deployment","name":"d"},"minReplicas":3,
      "maxReplicas":2}})");
  ASSERT_TRUE(min_over_max.ok());
  EXPECT_THAT(min_over_max->spec_error.message(), HasSubstr("spec.minReplicas"));

  // A missing minReplicas defaults to 1, a present 0 stays 0.
  auto defaults = CustomAutoscalerFromJson(R"({"metadata":{"name":"x","namespace":"ml"},
      "spec":{"scaleTargetRef":{"kind":"Deployment","name":"d"},"maxReplicas":2}})");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->spec.min_replicas, 1);
}

TEST_F(ClientTest, PatchesCustomAutoscalerStatus) {
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("a", 0, 4)).ok());
  CustomAutoscalerStatus status;
  status.replicas = 0;
  status.desired_replicas = 0;
  status.state = "ScaledToZero";
  status.last_decision = "DECREASE_INSTANCES_TO_ZERO 1 -> 0";
  status.last_decision_reason = "no requests for 300s";
  status.last_decision_time = clock_.Now();
  status.observed_generation = 1;
  status.conditions.push_back(
      {"Ready", "True", "TargetFound", "scaling ml/Deployment/llama", clock_.Now(), 1});
  auto updated = client_->PatchCustomAutoscalerStatus("ml", "a", status);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->status.state, "ScaledToZero");
  EXPECT_EQ(updated->status.replicas, 0);
  ASSERT_EQ(updated->status.conditions.size(), 1u);
  EXPECT_EQ(updated->status.conditions[0].reason, "TargetFound");

  const auto req = server_.requests().back();
  EXPECT_EQ(req.target, CustomAutoscalers("ml") + "/a/status");
  EXPECT_EQ(req.content_type, "application/merge-patch+json");
  const json stored = json::parse(*server_.Get(CustomAutoscalers("ml") + "/a"));
  EXPECT_EQ(stored["status"]["lastDecisionReason"], "no requests for 300s");
  EXPECT_EQ(stored["status"]["desiredReplicas"], 0);
  EXPECT_EQ(stored["spec"]["maxReplicas"], 4);  // the spec is untouched
  EXPECT_EQ(client_->PatchCustomAutoscalerStatus("ml", "ghost", status).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace zeroscale::kube
