// Leases as the balancer reads them: metadata.annotations (where the leading scaler
// publishes its gRPC address) in the JSON mapping both ways, and list + watch of one
// Lease by name through a fieldSelector, which is what RBAC's resourceNames lets through.
#include <atomic>

#include "absl/strings/str_cat.h"
#include "common/kube/client.h"
#include "common/kube/types.h"
#include "common/kube/watcher.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/kube/test_util.h"
#include "tests/testing/fake_apiserver.h"

namespace zeroscale::kube {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kLeases[] = "/apis/coordination.k8s.io/v1/namespaces/zs/leases";

std::string LeaseJson(const std::string& name, const std::string& holder,
                      const std::string& address) {
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", name}, {"namespace", "zs"}}},
                {"spec",
                 {{"holderIdentity", holder},
                  {"leaseDurationSeconds", 15},
                  {"renewTime", "2026-11-25T03:38:33.123456Z"}}}};
  if (!address.empty()) {
    lease["metadata"]["annotations"] = {{kScalerGrpcAddressAnnotation, address}, {"other", "x"}};
  }
  return lease.dump();
}

TEST(LeaseJsonTest, AnnotationsAreReadAndWrittenBack) {
  absl::StatusOr<Lease> lease =
      LeaseFromJson(LeaseJson("zeroscale-scaler", "scaler-0", "10.1.0.7:9090"));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->Key(), "zs/zeroscale-scaler");
  EXPECT_EQ(lease->annotations.at(kScalerGrpcAddressAnnotation), "10.1.0.7:9090");
  EXPECT_EQ(lease->annotations.at("other"), "x");
  // An update (PUT) replaces the object: a renewal must not drop the annotation.
  absl::StatusOr<Lease> again = LeaseFromJson(LeaseToJson(*lease));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->annotations, lease->annotations);
  EXPECT_FALSE(json::parse(LeaseToJson(Lease{}))["metadata"].contains("annotations"));

  json bad = json::parse(LeaseJson("l", "h", "a:1"));
  bad["metadata"]["annotations"]["n"] = 7;
  EXPECT_THAT(std::string(LeaseFromJson(bad.dump()).status().message()),
              HasSubstr("metadata.annotations.n: must be a string"));
  bad["metadata"]["annotations"] = json::array();
  EXPECT_THAT(std::string(LeaseFromJson(bad.dump()).status().message()),
              HasSubstr("metadata.annotations: must be an object"));
}

TEST(CollectionTargetTest, FieldSelectorIsEscapedAfterTheLabelSelector) {
  EXPECT_EQ(KubeClient::CollectionTarget(KubeClient::LeasesPath("zs"), "", false, "",
                                         absl::ZeroDuration(), "metadata.name=zeroscale-scaler"),
            "/apis/coordination.k8s.io/v1/namespaces/zs/leases"
            "?fieldSelector=metadata.name%3Dzeroscale-scaler");
  EXPECT_EQ(KubeClient::CollectionTarget("/api/v1/pods", "app", true, "7", absl::Seconds(60),
                                         "spec.nodeName=n1"),
            "/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=60&resourceVersion=7"
            "&labelSelector=app&fieldSelector=spec.nodeName%3Dn1");
}

class LeaseWatchTest : public FakeApiServerTest {};

TEST_F(LeaseWatchTest, OneLeaseIsListedAndWatchedByName) {
  ASSERT_TRUE(server_.Create(kLeases, LeaseJson("zeroscale-scaler", "a", "10.0.0.1:9090")).ok());
  RecordingSleeper sleeper;
  WatcherOptions options = TestWatcherOptions("zs", &sleeper);
  options.field_selector = "metadata.name=zeroscale-scaler";
  std::atomic<int> synced{0};
  options.on_synced = [&] { synced++; };
  EventLogOf<Lease> events;
  LeaseWatcher watcher(client_.get(), options,
                       [&](WatchEventType type, const Lease& l) { events.Add(type, l); });
  watcher.Start();
  ASSERT_TRUE(watcher.WaitForSync(absl::Seconds(10)));
  EXPECT_EQ(synced.load(), 1);
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));
  ASSERT_TRUE(server_.Apply(kLeases, LeaseJson("zeroscale-scaler", "b", "10.0.0.2:9090")).ok());
  ASSERT_TRUE(events.WaitFor(2, absl::Seconds(10)));
  EXPECT_EQ(events.lines()[1], "MODIFIED zs/zeroscale-scaler");
  EXPECT_EQ(events.objects()[1].holder_identity, "b");
  EXPECT_EQ(events.objects()[1].annotations.at(kScalerGrpcAddressAnnotation), "10.0.0.2:9090");
  watcher.Stop();
  EXPECT_EQ(synced.load(), 1);  // once, not per list
  bool listed = false, watched = false;
  for (const auto& r : server_.requests()) {
    if (r.target.find("/leases?") == std::string::npos) continue;
    EXPECT_THAT(r.target, HasSubstr("fieldSelector=metadata.name%3Dzeroscale-scaler"));
    (r.target.find("watch=1") != std::string::npos ? watched : listed) = true;
  }
  EXPECT_TRUE(listed);
  EXPECT_TRUE(watched);
}

}  // namespace
}  // namespace zeroscale::kube
