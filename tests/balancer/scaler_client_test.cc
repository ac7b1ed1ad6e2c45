// The balancer's ScalerClient when the scaler it talks to changes (the leader moved):
// streams reopen at the new target, an Activate in flight is sent there again (answered
// once), and "not the leader" answers are reported. Two in-test ActivationServices play
// the scaler replicas: a real scaler cannot be made to hold an Activate or to refuse one.
#include "balancer/activation/scaler_client.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/balancer/fake_scaler.h"
#include "tests/testing/child_process.h"

namespace zeroscale::balancer {
namespace {

using ::testing::HasSubstr;
using zeroscale::testing::FakeScaler;
using zeroscale::testing::WaitFor;

constexpr char kWorkload[] = "ml/Deployment/model";
constexpr absl::Duration kWait = absl::Seconds(20);

// What a started client heard.
struct Heard {
  std::mutex mu;
  std::vector<WorkloadState> states;
  std::vector<std::string> not_leader;
  size_t States() {
    std::lock_guard<std::mutex> lock(mu);
    return states.size();
  }
  WorkloadState Last() {
    std::lock_guard<std::mutex> lock(mu);
    return states.back();
  }
  size_t NotLeader() {
    std::lock_guard<std::mutex> lock(mu);
    return not_leader.size();
  }
};

std::unique_ptr<ScalerClient> StartClient(const FakeScaler& scaler, Heard* heard,
                                          std::atomic<int>* reports = nullptr) {
  ScalerClientOptions o;
  o.target = scaler.address();
  o.report_interval = absl::Milliseconds(50);
  o.max_backoff = absl::Milliseconds(300);
  auto client = std::make_unique<ScalerClient>(o);
  client->OnNotLeader([heard](const std::string& target) {
    std::lock_guard<std::mutex> lock(heard->mu);
    heard->not_leader.push_back(target);
  });
  EXPECT_TRUE(client
                  ->Start(
                      [heard](const WorkloadState& s) {
                        std::lock_guard<std::mutex> lock(heard->mu);
                        heard->states.push_back(s);
                      },
                      nullptr,
                      [reports]() {
                        if (reports != nullptr) ++*reports;
                        return std::vector<TrafficSample>{{kWorkload, 1, 0}};
                      })
                  .ok());
  return client;
}

class ScalerClientSwitchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(a_.Start().ok());
    ASSERT_TRUE(b_.Start().ok());
  }
  FakeScaler a_, b_;
};

TEST_F(ScalerClientSwitchTest, StreamsMoveToTheNewTarget) {
  Heard heard;
  auto client = StartClient(a_, &heard);
  a_.Push(kWorkload, {{"ml/p-a", "10.0.0.1:8012"}});
  ASSERT_TRUE(WaitFor([&] { return heard.States() >= 1; }, kWait));
  ASSERT_TRUE(a_.WaitForTraffic([](const auto& t) { return !t.empty(); }, kWait));

  b_.Push(kWorkload, {{"ml/p-b", "10.0.0.2:8012"}});
  client->SetTarget(b_.address());
  EXPECT_EQ(client->target(), b_.address());
  // The new scaler's view arrives, and traffic goes there.
  ASSERT_TRUE(WaitFor(
      [&] {
        return heard.States() >= 2 && !heard.Last().endpoints.empty() &&
               heard.Last().endpoints[0].pod == "ml/p-b";
      },
      kWait));
  ASSERT_TRUE(b_.WaitForTraffic([](const auto& t) { return !t.empty(); }, kWait));
  client->SetTarget(b_.address());  // the same again: nothing happens
  EXPECT_EQ(b_.watch_streams_opened(), 1);
  client->Stop();
}

TEST_F(ScalerClientSwitchTest, AnActivateInFlightIsAnsweredByTheNewTargetOnce) {
  // The old scaler takes the call and never answers in time (it is being replaced).
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  a_.OnActivate([&](const auto&) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
  });
  b_.Push(kWorkload, {{"ml/p-b", "10.0.0.2:8012"}});
  Heard heard;
  auto client = StartClient(a_, &heard);
  std::atomic<int> answers{0};
  absl::StatusOr<WorkloadState> answer;
  client->Activate(kWorkload, 3, [&](absl::StatusOr<WorkloadState> r) {
    answer = std::move(r);
    ++answers;
  });
  ASSERT_TRUE(WaitFor([&] { return a_.activate_calls().size() == 1; }, kWait));
  client->SetTarget(b_.address());
  ASSERT_TRUE(WaitFor([&] { return answers.load() == 1; }, kWait));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->endpoints.at(0).pod, "ml/p-b");
  ASSERT_EQ(b_.activate_calls().size(), 1u);
  EXPECT_EQ(b_.activate_calls()[0].held_requests, 3u);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  client->Stop();
  EXPECT_EQ(answers.load(), 1);
}

TEST_F(ScalerClientSwitchTest, NotLeaderAnswersAreReportedAndFailTheActivate) {
  a_.SetNotLeader(true);
  Heard heard;
  auto client = StartClient(a_, &heard);
  // The Watch (and traffic) streams hear it first.
  ASSERT_TRUE(WaitFor([&] { return heard.NotLeader() >= 1; }, kWait));
  absl::Status status;
  std::atomic<bool> done{false};
  client->Activate(kWorkload, 1, [&](absl::StatusOr<WorkloadState> r) {
    status = r.status();
    done = true;
  });
  ASSERT_TRUE(WaitFor([&] { return done.load(); }, kWait));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr(a_.address()));
  {
    std::lock_guard<std::mutex> lock(heard.mu);
    for (const std::string& t : heard.not_leader) EXPECT_EQ(t, a_.address());
  }
  // Pointed at the leader, the same client works.
  b_.Push(kWorkload, {{"ml/p-b", "10.0.0.2:8012"}});
  client->SetTarget(b_.address());
  ASSERT_TRUE(WaitFor([&] { return heard.States() >= 1; }, kWait));
  client->Stop();
}

}  // namespace
}  // namespace zeroscale::balancer
