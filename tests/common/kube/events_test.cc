#include "common/kube/events.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/fake_apiserver.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::kube {
namespace {

using json = nlohmann::json;
constexpr char kEvents[] = "/api/v1/namespaces/ml/events";

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ClusterConfig config;
    config.server = server_.url();
    client_ = *KubeClient::Create(config, &clock_);
    EventRecorderOptions options;
    options.instance = "scaler-0";
    recorder_ = std::make_unique<EventRecorder>(client_.get(), options, &clock_);
  }

  std::vector<json> Events() {
    std::vector<json> out;
    for (const std::string& s : server_.List(kEvents)) out.push_back(json::parse(s));
    return out;
  }

  const ObjectReference llama_{"apps/v1", "Deployment", "ml", "llama", "uid-1", ""};
  testing::FakeClock clock_;
  testing::FakeApiServer server_;
  std::unique_ptr<KubeClient> client_;
  std::unique_ptr<EventRecorder> recorder_;
};

TEST_F(EventsTest, RecordsAnEventOnTheTarget) {
  ASSERT_TRUE(recorder_
                  ->Record(llama_, EventType::kNormal, "ScaledToZero",
                           "no requests for 300s; 1 -> 0 replicas")
                  .ok());
  const auto events = Events();
  ASSERT_EQ(events.size(), 1u);
  const json& e = events[0];
  EXPECT_EQ(e["type"], "Normal");
  EXPECT_EQ(e["reason"], "ScaledToZero");
  EXPECT_EQ(e["message"], "no requests for 300s; 1 -> 0 replicas");
  EXPECT_EQ(e["count"], 1);
  EXPECT_EQ(e["involvedObject"]["kind"], "Deployment");
  EXPECT_EQ(e["involvedObject"]["name"], "llama");
  EXPECT_EQ(e["involvedObject"]["namespace"], "ml");
  EXPECT_EQ(e["involvedObject"]["uid"], "uid-1");
  EXPECT_EQ(e["source"]["component"], "zeroscale-scaler");
  EXPECT_EQ(e["reportingInstance"], "scaler-0");
  EXPECT_EQ(e["firstTimestamp"], FormatKubeTime(clock_.Now()));
  EXPECT_EQ(e["lastTimestamp"], FormatKubeTime(clock_.Now()));
  EXPECT_EQ(e["metadata"]["namespace"], "ml");
  EXPECT_EQ(e["metadata"]["name"].get<std::string>().rfind("llama.", 0), 0u);
}

TEST_F(EventsTest, RepeatsBumpTheCountOfOneEvent) {
  ASSERT_TRUE(recorder_->Record(llama_, EventType::kWarning, "StaleMetrics", "holding").ok());
  clock_.Advance(absl::Seconds(30));
  ASSERT_TRUE(recorder_->Record(llama_, EventType::kWarning, "StaleMetrics", "holding").ok());
  auto events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 2);
  EXPECT_EQ(events[0]["type"], "Warning");
  EXPECT_EQ(events[0]["lastTimestamp"], FormatKubeTime(clock_.Now()));
  EXPECT_NE(events[0]["firstTimestamp"], events[0]["lastTimestamp"]);

  // Another explanation is another Event.
  ASSERT_TRUE(recorder_->Record(llama_, EventType::kNormal, "ScaledUp", "1 -> 2").ok());
  EXPECT_EQ(Events().size(), 2u);

  // Past the window, or after the Event expired on the server, a new one starts.
  for (const json& e : Events()) {
    ASSERT_TRUE(
        server_.Delete(std::string(kEvents) + "/" + e["metadata"]["name"].get<std::string>()).ok());
  }
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(recorder_->Record(llama_, EventType::kWarning, "StaleMetrics", "holding").ok());
  events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 1);
}

TEST_F(EventsTest, ErrorsReachTheCaller) {
  server_.FailNext(1, 403);
  EXPECT_EQ(recorder_->Record(llama_, EventType::kNormal, "ScaledUp", "1 -> 2").code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace zeroscale::kube
