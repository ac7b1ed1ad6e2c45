// The scale actuator alone against the fake API server: what its writes carry and how it
// tells a changed target from a status update, a lost answer or a server that shows the
// count otherwise than tested.
#include "scaler/actuate/scale_actuator.h"

#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/scaler/testing/term_waiter.h"
#include "tests/testing/fake_apiserver.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::actuate {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

constexpr char kWorkload[] = "ml/Deployment/llama";
constexpr char kDeployments[] = "/apis/apps/v1/namespaces/ml/deployments";
constexpr char kDeployment[] = "/apis/apps/v1/namespaces/ml/deployments/llama";
const kube::WorkloadRef kRef{"ml", "Deployment", "llama"};

class ScaleActuatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ASSERT_TRUE(server_.CreateWorkload("ml", "Deployment", "llama", 1).ok());
    kube::ClusterConfig cluster;
    cluster.server = server_.url();
    cluster.token = "scaler";
    auto client = kube::KubeClient::Create(cluster, &clock_);
    ASSERT_TRUE(client.ok());
    client_ = *std::move(client);
    cluster.token.clear();  // the test's own writes, told apart from the actuator's
    auto other = kube::KubeClient::Create(cluster, &clock_);
    ASSERT_TRUE(other.ok());
    other_ = *std::move(other);
    leader::LeadershipOptions lo;
    lo.leader_elect = false;
    lo.identity = "a";
    lo.Resolve("zs");
    leadership_ = std::make_unique<leader::Leadership>(client_.get(), lo, &clock_);
    ScaleActuatorOptions o;
    o.resync = absl::Hours(1);
    actuator_ = std::make_unique<ScaleActuator>(client_.get(), leadership_.get(), o, &clock_);
    leadership_->AddListener(actuator_.get());
    leadership_->AddListener(&term_);
    actuator_->Start();
    leadership_->Start();
    ASSERT_TRUE(term_.Wait());
    Track();
  }
  void TearDown() override {
    leadership_->Stop();
    actuator_->Stop();
  }

  void Track() {
    absl::StatusOr<kube::Scale> scale = client_->GetScale(kRef);
    ASSERT_TRUE(scale.ok());
    actuator_->Track(kWorkload, kRef, *scale);
  }
  absl::Status Set(int32_t from, int32_t to) {
    std::promise<absl::Status> p;
    actuator_->SetReplicas(kWorkload, from, to, "test", [&p](absl::Status s) { p.set_value(s); });
    return p.get_future().get();
  }
  int32_t ServerReplicas() {
    json d = json::parse(*server_.Get(kDeployment));
    return d["spec"].value("replicas", 0);
  }
  // What the Deployment controller does after a scale change: a status update, which
  // moves the resourceVersion and leaves spec.replicas alone.
  void ControllerUpdatesStatus() {
    json d = json::parse(*server_.Get(kDeployment));
    d["status"]["observedGeneration"] = d["status"].value("observedGeneration", 0) + 1;
    d["status"]["unavailableReplicas"] = d["spec"].value("replicas", 0);
    ASSERT_TRUE(server_.Apply(kDeployments, d.dump()).ok());
  }
  // The actuator's scale writes (the test's own requests carry no token).
  std::vector<testing::FakeApiServer::RequestRecord> Writes() {
    std::vector<testing::FakeApiServer::RequestRecord> out;
    for (auto& r : server_.requests()) {
      if (r.method == "PATCH" && absl::StrContains(r.target, "/scale") &&
          r.authorization == "Bearer scaler") {
        out.push_back(r);
      }
    }
    return out;
  }

  testing::FakeClock clock_;
  testing::FakeApiServer server_;
  testing::TermWaiter term_;
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<kube::KubeClient> other_;
  std::unique_ptr<leader::Leadership> leadership_;
  std::unique_ptr<ScaleActuator> actuator_;
};

// Defect: a write carried the resourceVersion of the previous one, which the controller's
// status update had moved: 409 on most scale changes. A write now tests the count only.
TEST_F(ScaleActuatorTest, StatusUpdatesBetweenWritesCauseNoConflict) {
  for (int32_t n = 1; n < 4; ++n) {
    ControllerUpdatesStatus();
    EXPECT_TRUE(Set(n, n + 1).ok()) << n;
    EXPECT_EQ(ServerReplicas(), n + 1);
  }
  for (const auto& w : Writes()) {
    EXPECT_EQ(w.status, 200) << w.body;
    EXPECT_EQ(w.content_type, "application/json-patch+json");
  }
  json first = json::parse(Writes().front().body);
  EXPECT_EQ(first, json::parse(R"([{"op":"test","path":"/spec/replicas","value":1},
                                   {"op":"add","path":"/spec/replicas","value":2}])"));
  EXPECT_EQ(actuator_->stats().conflicts, 0);
  EXPECT_EQ(actuator_->stats().scale_patches, 3);
}

// At zero the server leaves spec.replicas out: the wake tests the empty spec.
TEST_F(ScaleActuatorTest, WakeFromZeroTestsTheEmptySpec) {
  ASSERT_TRUE(Set(1, 0).ok());
  ControllerUpdatesStatus();
  ASSERT_TRUE(Set(0, 1).ok());
  EXPECT_EQ(ServerReplicas(), 1);
  json wake = json::parse(Writes().back().body);
  EXPECT_EQ(wake[0], json::parse(R"({"op":"test","path":"/spec","value":{}})"));
  EXPECT_EQ(actuator_->stats().conflicts, 0);
}

// Someone else changed the count: the decision made on the old one is never applied.
TEST_F(ScaleActuatorTest, AChangedCountIsAConflictAndNothingIsWritten) {
  ASSERT_TRUE(other_->PatchScale(kRef, 5, "").ok());
  const absl::Status s = Set(1, 2);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(s.message(), HasSubstr("has 5 replicas, not the 1"));
  EXPECT_EQ(ServerReplicas(), 5);
  EXPECT_EQ(actuator_->stats().conflicts, 1);
  ASSERT_EQ(Writes().size(), 1u);
  EXPECT_EQ(Writes()[0].status, 422);
}

// The count asked for is there already (an earlier attempt whose answer was lost, or
// another writer with the same idea): done, nothing more to write.
TEST_F(ScaleActuatorTest, TheCountAlreadyThereIsSuccess) {
  ASSERT_TRUE(other_->PatchScale(kRef, 2, "").ok());
  EXPECT_TRUE(Set(1, 2).ok());
  EXPECT_EQ(ServerReplicas(), 2);
  EXPECT_EQ(Writes().size(), 1u);
  EXPECT_EQ(actuator_->stats().conflicts, 0);
}

// A failed test while the count is the one expected (a server that shows it otherwise
// than tested): read-before-write, with that read's resourceVersion.
TEST_F(ScaleActuatorTest, TestFailingOnTheExpectedCountFallsBackToReadBeforeWrite) {
  server_.FailNext(1, 422, -1, "deployments/llama/scale");
  EXPECT_TRUE(Set(1, 2).ok());
  EXPECT_EQ(ServerReplicas(), 2);
  std::vector<testing::FakeApiServer::RequestRecord> writes = Writes();
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[1].content_type, "application/merge-patch+json");
  json merge = json::parse(writes[1].body);
  EXPECT_EQ(merge["spec"]["replicas"], 2);
  EXPECT_FALSE(merge["metadata"].value("resourceVersion", "").empty());
  EXPECT_EQ(actuator_->stats().conflicts, 0);
}

}  // namespace
}  // namespace zeroscale::actuate
