// Pods as the real API server sends them (a Pending pod without a kubelet has only a
// phase), and the pod informer with a scale target's selector against the fake server.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/kube/test_util.h"

namespace zeroscale::kube {
namespace {

using ::testing::ElementsAre;

// Trimmed from a real v1.24 server: created by the ReplicaSet controller, never bound.
constexpr char kPending[] = R"({
  "metadata": {"name": "llama-789c7d5c44-tqqpx", "namespace": "default",
    "uid": "14b97f11-02d2-4714-84c4-8bbe5ae122c0", "resourceVersion": "664",
    "labels": {"app": "llama", "pod-template-hash": "789c7d5c44"}},
  "spec": {"containers": [{"name": "m", "image": "x"}]},
  "status": {"phase": "Pending", "qosClass": "BestEffort"}})";

std::string PodJson(const std::string& name, const std::string& phase, bool ready,
                    const std::string& app = "llama", bool deleting = false) {
  return absl::StrCat(
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")", name, R"(","labels":{"app":")",
      app, R"("})", deleting ? R"(,"deletionTimestamp":"2026-12-06T21:30:00Z")" : "",
      R"(},"spec":{"containers":[{"name":"m","image":"x"}]},"status":{"phase":")", phase,
      R"(","podIP":"198.18.1.7","conditions":[{"type":"ContainersReady","status":")",
      ready ? "True" : "False", R"("},{"type":"Ready","status":")", ready ? "True" : "False",
      R"("}]}})");
}

TEST(PodFromJsonTest, PendingRunningReadyAndTerminating) {
  absl::StatusOr<Pod> pending = PodFromJson(kPending);
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(pending->Key(), "default/llama-789c7d5c44-tqqpx");
  EXPECT_EQ(pending->phase, "Pending");
  EXPECT_FALSE(pending->ready);
  EXPECT_FALSE(pending->Serving());

  absl::StatusOr<Pod> serving = PodFromJson(PodJson("a", "Running", true));
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(serving->ready);
  EXPECT_EQ(serving->pod_ip, "198.18.1.7");
  EXPECT_TRUE(serving->Serving());

  EXPECT_FALSE(PodFromJson(PodJson("b", "Running", false))->Serving());  // not ready
  absl::StatusOr<Pod> leaving = PodFromJson(PodJson("c", "Running", true, "llama", true));
  EXPECT_TRUE(leaving->terminating);
  EXPECT_FALSE(leaving->Serving());

  EXPECT_FALSE(PodFromJson(R"({"status": {"phase": 3}})").ok());
}

class PodWatcherTest : public FakeApiServerTest {
 protected:
  void Put(const std::string& json) {
    ASSERT_TRUE(server_.Apply("/api/v1/namespaces/ml/pods", json).ok());
  }
  RecordingSleeper sleeper_;
  EventLogOf<Pod> log_;
};

TEST_F(PodWatcherTest, ATargetsPodsBySelector) {
  Put(PodJson("llama-1", "Pending", false));
  Put(PodJson("other-1", "Running", true, "other"));
  PodWatcher watcher(client_.get(), TestWatcherOptions("ml", &sleeper_, "app=llama"),
                     [this](WatchEventType t, const Pod& p) { log_.Add(t, p); });
  watcher.Start();
  ASSERT_TRUE(watcher.WaitForSync(absl::Seconds(10)));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));
  Put(PodJson("llama-1", "Running", true));                 // the kubelet started it
  Put(PodJson("llama-1", "Running", true, "llama", true));  // being deleted
  ASSERT_TRUE(server_.Delete("/api/v1/namespaces/ml/pods/llama-1").ok());
  ASSERT_TRUE(log_.WaitFor(4));
  EXPECT_THAT(log_.lines(), ElementsAre("ADDED ml/llama-1", "MODIFIED ml/llama-1",
                                        "MODIFIED ml/llama-1", "DELETED ml/llama-1"));
  EXPECT_TRUE(log_.objects()[1].Serving());
  EXPECT_TRUE(log_.objects()[2].terminating);
  EXPECT_TRUE(watcher.Snapshot().empty());
  watcher.Stop();
}

}  // namespace
}  // namespace zeroscale::kube
