#include "common/kube/watcher.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/kube/test_util.h"
#include "tests/testing/fake_apiserver.h"

namespace zeroscale::kube {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using json = nlohmann::json;

class WatcherTest : public FakeApiServerTest {
 protected:
  std::unique_ptr<CustomAutoscalerWatcher> MakeWatcher(std::string ns = "ml") {
    return std::make_unique<CustomAutoscalerWatcher>(
        client_.get(), TestWatcherOptions(std::move(ns), &sleeper_),
        [this](WatchEventType t, const CustomAutoscaler& ca) { log_.Add(t, ca); });
  }

  void Modify(const std::string& name, int max) {
    ASSERT_TRUE(server_.Apply(CustomAutoscalers("ml"), CustomAutoscalerJson(name, 0, max)).ok());
  }

  RecordingSleeper sleeper_;
  EventLog log_;
};

TEST_F(WatcherTest, ListsThenStreamsChangesAsTheyHappen) {
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("a", 0, 4)).ok());
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("b", 1, 2)).ok());
  ASSERT_TRUE(server_.Create(CustomAutoscalers("other"), CustomAutoscalerJson("x", 1, 2)).ok());
  auto watcher = MakeWatcher();
  watcher->Start();
  ASSERT_TRUE(watcher->WaitForSync(absl::Seconds(10)));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));
  EXPECT_THAT(log_.lines(), ElementsAre("ADDED ml/a", "ADDED ml/b"));

  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("c", 0, 1)).ok());
  Modify("a", 8);
  ASSERT_TRUE(server_.Delete(CustomAutoscalers("ml") + "/b").ok());
  ASSERT_TRUE(log_.WaitFor(5));
  EXPECT_THAT(log_.lines(), ElementsAre("ADDED ml/a", "ADDED ml/b", "ADDED ml/c", "MODIFIED ml/a",
                                        "DELETED ml/b"));
  EXPECT_EQ(log_.objects()[3].spec.max_replicas, 8);
  EXPECT_EQ(watcher->resource_version(), absl::StrCat(server_.resource_version()));
  std::vector<std::string> keys;
  for (const auto& ca : watcher->Snapshot()) keys.push_back(ca.Key());
  EXPECT_THAT(keys, ElementsAre("ml/a", "ml/c"));

  // The watch asked for bookmarks from the list's resourceVersion.
  const auto reqs = server_.requests();
  const auto watch = std::find_if(reqs.begin(), reqs.end(), [](const auto& r) {
    return r.target.find("watch=1") != std::string::npos;
  });
  ASSERT_NE(watch, reqs.end());
  EXPECT_THAT(watch->target, HasSubstr("allowWatchBookmarks=true"));
  EXPECT_THAT(watch->target, HasSubstr("timeoutSeconds="));
  watcher->Stop();
  EXPECT_EQ(watcher->stats().lists, 1);
}

TEST_F(WatcherTest, BookmarksAdvanceTheResourceVersion) {
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("a", 0, 4)).ok());
  auto watcher = MakeWatcher();
  watcher->Start();
  ASSERT_TRUE(watcher->WaitForSync(absl::Seconds(10)));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));
  const std::string listed_rv = watcher->resource_version();

  // Changes elsewhere move the server on without any event for this watch.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        server_.Create(CustomAutoscalers("other"), CustomAutoscalerJson(absl::StrCat("x", i), 1, 2))
            .ok());
  }
  const std::string latest = absl::StrCat(server_.resource_version());
  ASSERT_NE(listed_rv, latest);
  server_.SendBookmarks();
  // History older than the bookmark is compacted, and the watch ends: the watcher must
  // resume from the bookmark, which is still valid, rather than the listed version,
  // which is now too old.
  server_.Compact();
  server_.CloseWatches();
  ASSERT_TRUE(server_.WaitForWatches(2, absl::Seconds(10), /*total=*/true));
  const auto reqs = server_.requests();
  std::vector<std::string> watches;
  for (const auto& r : reqs) {
    if (r.target.find("watch=1") != std::string::npos) watches.push_back(r.target);
  }
  ASSERT_GE(watches.size(), 2u);
  EXPECT_THAT(watches[0], HasSubstr("resourceVersion=" + listed_rv));
  EXPECT_THAT(watches[1], HasSubstr("resourceVersion=" + latest));
  EXPECT_EQ(watcher->resource_version(), latest);
  watcher->Stop();
  EXPECT_EQ(watcher->stats().lists, 1);
  EXPECT_EQ(watcher->stats().gone, 0);
  EXPECT_THAT(log_.lines(), ElementsAre("ADDED ml/a"));
}

class GoneTest : public WatcherTest, public ::testing::WithParamInterface<bool> {};

TEST_P(GoneTest, ReListsAndResumesWithoutLosingOrRepeating) {
  server_.SetGoneAsErrorEvent(GetParam());
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("a", 0, 4)).ok());
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("b", 0, 4)).ok());
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("keep", 0, 4)).ok());
  auto watcher = MakeWatcher();
  watcher->Start();
  ASSERT_TRUE(watcher->WaitForSync(absl::Seconds(10)));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));

  // Open a gap: the watch ends, the reconnect fails, and the watcher waits (held by the
  // sleeper) while things change and the server compacts its history.
  sleeper_.Hold();
  server_.FailNext(1, 500, -1, "watch=1");
  server_.CloseWatches();
  ASSERT_TRUE(sleeper_.WaitForCalls(1));
  Modify("a", 9);
  ASSERT_TRUE(server_.Delete(CustomAutoscalers("ml") + "/b").ok());
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("c", 0, 4)).ok());
  server_.Compact();
  sleeper_.Release();

  // 410 → re-list → the differences, each once.
  ASSERT_TRUE(log_.WaitFor(6));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("d", 0, 4)).ok());
  ASSERT_TRUE(log_.WaitFor(7));
  const auto lines = log_.lines();
  ASSERT_EQ(lines.size(), 7u) << ::testing::PrintToString(lines);
  EXPECT_THAT(std::vector<std::string>(lines.begin(), lines.begin() + 3),
              ElementsAre("ADDED ml/a", "ADDED ml/b", "ADDED ml/keep"));
  EXPECT_THAT(std::vector<std::string>(lines.begin() + 3, lines.begin() + 6),
              UnorderedElementsAre("MODIFIED ml/a", "DELETED ml/b", "ADDED ml/c"));
  EXPECT_EQ(lines[6], "ADDED ml/d");
  EXPECT_EQ(log_.objects()[3].spec.max_replicas + log_.objects()[4].spec.max_replicas +
                log_.objects()[5].spec.max_replicas,
            9 + 4 + 4);
  watcher->Stop();
  EXPECT_EQ(watcher->stats().gone, 1);
  EXPECT_EQ(watcher->stats().lists, 2);
}

INSTANTIATE_TEST_SUITE_P(HttpOrErrorEvent, GoneTest, ::testing::Bool());

TEST_F(WatcherTest, HonoursRetryAfterOn429) {
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("a", 0, 4)).ok());
  server_.FailNext(1, 429, 7, "customautoscalers");
  auto watcher = MakeWatcher();
  watcher->Start();
  ASSERT_TRUE(watcher->WaitForSync(absl::Seconds(10)));
  ASSERT_FALSE(sleeper_.delays().empty());
  EXPECT_EQ(sleeper_.delays()[0], absl::Seconds(7));  // the server's word, not our backoff
  int lists = 0;
  for (const auto& r : server_.requests()) lists += r.target == CustomAutoscalers("ml");
  EXPECT_EQ(lists, 2);
  watcher->Stop();
  EXPECT_EQ(watcher->stats().errors, 1);
  EXPECT_THAT(log_.lines(), ElementsAre("ADDED ml/a"));
}

TEST_F(WatcherTest, BacksOffExponentiallyOn5xx) {
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), CustomAutoscalerJson("a", 0, 4)).ok());
  server_.FailNext(3, 503, -1, "customautoscalers");
  auto watcher = MakeWatcher();
  watcher->Start();
  ASSERT_TRUE(watcher->WaitForSync(absl::Seconds(10)));
  const auto delays = sleeper_.delays();
  ASSERT_GE(delays.size(), 3u);
  EXPECT_THAT(std::vector<absl::Duration>(delays.begin(), delays.begin() + 3),
              ElementsAre(absl::Seconds(1), absl::Seconds(2), absl::Seconds(4)));
  watcher->Stop();
  EXPECT_EQ(watcher->stats().lists, 4);
}

TEST_F(WatcherTest, ConnectionErrorsBackOffAndStopInterruptsTheWait) {
  const std::string url = server_.url();
  server_.Stop();
  auto watcher = MakeWatcher();
  sleeper_.Hold();
  watcher->Start();
  ASSERT_TRUE(sleeper_.WaitForCalls(1));
  watcher->Stop();  // must not hang in the held sleep
  EXPECT_FALSE(watcher->WaitForSync(absl::ZeroDuration()));
  EXPECT_GE(watcher->stats().errors, 1);
}

TEST_F(WatcherTest, StopEndsAnOpenWatchPromptly) {
  auto watcher = MakeWatcher("");
  watcher->Start();
  ASSERT_TRUE(watcher->WaitForSync(absl::Seconds(10)));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));
  const absl::Time start = absl::Now();
  watcher->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

}  // namespace
}  // namespace zeroscale::kube
