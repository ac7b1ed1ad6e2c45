// Unit tests of the metrics path's identity rules (scaler/ingest/sample_auth.h): which
// pod and workload a credential may report for, the sequence bound, and the counts.
#include "scaler/ingest/sample_auth.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace zeroscale::ingest {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

Podmetric Sample(const std::string& id, const std::string& workload, uint64_t seq = 1) {
  Podmetric m;
  m.id = id;
  m.workload = workload;
  m.seq = seq;
  return m;
}

auth::Identity Pod(const std::string& pod, const std::string& workload = "") {
  auth::Identity id;
  id.user = pod;
  id.pod = pod;
  id.workload = workload;
  return id;
}

double Count(prometheus::Registry& r, const std::string& reason) {
  for (const auto& family : r.Collect()) {
    if (family.name != "zeroscale_ingest_refused_total") continue;
    for (const auto& m : family.metric) {
      if (m.label[0].value == reason) return m.counter.value;
    }
  }
  return -1;
}

class SampleAuthTest : public ::testing::Test {
 protected:
  SampleAuthTest() : access_(auth::AccessControlOptions{}), auth_(&access_, &owners_, &registry_) {}
  prometheus::Registry registry_;
  auth::AccessControl access_;
  PodOwners owners_;
  SampleAuth auth_;
};

TEST_F(SampleAuthTest, APodReportsForItselfOnly) {
  EXPECT_TRUE(auth_.CheckSample(Pod("ml/a"), Sample("ml/a", "ml/Deployment/x"), kNow).ok());
  absl::Status s = auth_.CheckSample(Pod("ml/a"), Sample("ml/b", "ml/Deployment/x"), kNow);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("id: \"ml/b\" is not the pod"));
  EXPECT_EQ(Count(registry_, "id"), 1);
}

TEST_F(SampleAuthTest, TheCredentialsWorkloadBinds) {
  const auth::Identity local = Pod("local/m-0", "local/Deployment/m");
  EXPECT_TRUE(auth_.CheckSample(local, Sample("local/m-0", "local/Deployment/m"), kNow).ok());
  absl::Status s = auth_.CheckSample(local, Sample("local/m-0", "local/Deployment/n"), kNow);
  EXPECT_THAT(s.message(), HasSubstr("workload:"));
  EXPECT_EQ(Count(registry_, "workload"), 1);
}

TEST_F(SampleAuthTest, PodViewsBindTheWorkload) {
  const auth::Identity a = Pod("ml/a");
  // Nothing known: the pod alone is checked.
  EXPECT_TRUE(auth_.CheckSample(a, Sample("ml/a", "ml/Deployment/anything"), kNow).ok());
  owners_.Set("ml/Deployment/x", std::vector<std::string>{"ml/a"});
  owners_.Set("ml/Deployment/y", std::vector<std::string>{"ml/b"});
  EXPECT_TRUE(auth_.CheckSample(a, Sample("ml/a", "ml/Deployment/x"), kNow).ok());
  EXPECT_THAT(auth_.CheckSample(a, Sample("ml/a", "ml/Deployment/y"), kNow).message(),
              HasSubstr("Kubernetes lists it for \"ml/Deployment/x\""));
  // A pod listed nowhere may not name a target that has a view.
  const auth::Identity c = Pod("ml/c");
  EXPECT_THAT(auth_.CheckSample(c, Sample("ml/c", "ml/Deployment/y"), kNow).message(),
              HasSubstr("does not list the pod"));
  EXPECT_TRUE(auth_.CheckSample(c, Sample("ml/c", "ml/Deployment/z"), kNow).ok());
  // Views change: a pod moves, a view goes.
  owners_.Set("ml/Deployment/x", std::vector<std::string>{});
  owners_.Set("ml/Deployment/y", std::vector<std::string>{"ml/a", "ml/b"});
  EXPECT_TRUE(auth_.CheckSample(a, Sample("ml/a", "ml/Deployment/y"), kNow).ok());
  owners_.Set("ml/Deployment/y", std::nullopt);
  EXPECT_FALSE(owners_.HasView("ml/Deployment/y"));
  EXPECT_EQ(owners_.OwnerOf("ml/a"), "");
  EXPECT_TRUE(auth_.CheckSample(a, Sample("ml/a", "ml/Deployment/anything"), kNow).ok());
}

TEST_F(SampleAuthTest, ASeqFarAheadOfTheClockIsRefused) {
  const uint64_t now_us = static_cast<uint64_t>(absl::ToUnixMicros(kNow));
  EXPECT_TRUE(
      auth_.CheckSample(Pod("ml/a"), Sample("ml/a", "", now_us + kMaxSeqAheadMicros), kNow).ok());
  absl::Status s =
      auth_.CheckSample(Pod("ml/a"), Sample("ml/a", "", now_us + kMaxSeqAheadMicros + 1), kNow);
  EXPECT_THAT(s.message(), HasSubstr("seq:"));
  EXPECT_FALSE(auth_.CheckSample(Pod("ml/a"), Sample("ml/a", "", ~uint64_t{0}), kNow).ok());
  EXPECT_EQ(Count(registry_, "seq"), 2);
}

TEST_F(SampleAuthTest, SendersAreCountedByWhyTheyWereRefused) {
  EXPECT_EQ(auth_.AuthenticateSender("").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Count(registry_, "unauthenticated"), 1);
  auth::StaticTokens tokens;
  tokens.Add("operator-token-0123456789", "alice", {"zeroscale:operators"});
  tokens.AddPodCredential("pod-token-0123456789ab", "ml/a", "");
  auth::AccessControlOptions o;
  o.tokens = &tokens;
  auth::AccessControl access(o);
  prometheus::Registry registry;
  SampleAuth with_tokens(&access, nullptr, &registry);
  EXPECT_EQ(with_tokens.AuthenticateSender("Bearer operator-token-0123456789").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Count(registry, "not_a_pod"), 1);
  absl::StatusOr<auth::Identity> pod =
      with_tokens.AuthenticateSender("Bearer pod-token-0123456789ab");
  ASSERT_TRUE(pod.ok());
  EXPECT_EQ(pod->pod, "ml/a");
}

TEST(SampleAuthInsecureTest, ChecksOnlyTheSeqBound) {
  prometheus::Registry registry;
  auth::AccessControlOptions o;
  o.insecure = true;
  auth::AccessControl access(o);
  SampleAuth a(&access, nullptr, &registry);
  absl::StatusOr<auth::Identity> anyone = a.AuthenticateSender("");
  ASSERT_TRUE(anyone.ok());
  EXPECT_TRUE(a.CheckSample(*anyone, Sample("x/any", "x/Deployment/any"), kNow).ok());
  EXPECT_FALSE(a.CheckSample(*anyone, Sample("x/any", "", ~uint64_t{0}), kNow).ok());
}

}  // namespace
}  // namespace zeroscale::ingest
