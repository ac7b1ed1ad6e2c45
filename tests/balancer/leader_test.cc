// Following the scaler's leader: LeaderTracker (the Lease read as "which address, until
// when"), the --scaler-lease parser, and LeaseFollower over the fake API server (list +
// watch of the one Lease, expiry, re-reads asked for by a scaler that does not lead).
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "balancer/leader/leader_tracker.h"
#include "balancer/leader/lease_follower.h"
#include "common/kube/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"
#include "tests/testing/fake_apiserver.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::balancer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kLeases[] = "/apis/coordination.k8s.io/v1/namespaces/zs/leases";
constexpr char kLease[] = "/apis/coordination.k8s.io/v1/namespaces/zs/leases/zeroscale-scaler";
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

kube::Lease MakeLease(const std::string& holder, const std::string& address, absl::Time renewed,
                      const std::string& rv = "1", int duration_seconds = 15) {
  kube::Lease l;
  l.namespace_ = "zs";
  l.name = "zeroscale-scaler";
  l.resource_version = rv;
  l.holder_identity = holder;
  l.lease_duration_seconds = duration_seconds;
  l.renew_time = renewed;
  if (!address.empty()) l.annotations[kube::kScalerGrpcAddressAnnotation] = address;
  return l;
}

TEST(LeaderTrackerTest, TheHoldersAddressUntilItsLeaseRunsOutByOurClock) {
  LeaderTracker t;
  EXPECT_EQ(t.Address(kT0), "");
  EXPECT_THAT(std::string(t.Why(kT0).message()), HasSubstr("does not exist"));
  // The holder's clock is 10 s behind ours: that alone expires nothing.
  t.Observe(MakeLease("scaler-0", "10.1.0.7:9090", kT0 - absl::Seconds(10)), kT0);
  EXPECT_EQ(t.Address(kT0), "10.1.0.7:9090");
  EXPECT_EQ(t.holder(), "scaler-0");
  EXPECT_EQ(t.expiry(), kT0 + absl::Seconds(15));
  // Not renewed (same renewTime, e.g. a re-list): the lease runs out 15 s after we saw it.
  t.Observe(MakeLease("scaler-0", "10.1.0.7:9090", kT0 - absl::Seconds(10), "1"),
            kT0 + absl::Seconds(14));
  EXPECT_EQ(t.Address(kT0 + absl::Seconds(14)), "10.1.0.7:9090");
  EXPECT_EQ(t.Address(kT0 + absl::Seconds(15)), "");
  EXPECT_THAT(std::string(t.Why(kT0 + absl::Seconds(15)).message()),
              HasSubstr("lease of scaler-0 expired"));
  // Renewed: valid again for a lease duration from now.
  t.Observe(MakeLease("scaler-0", "10.1.0.7:9090", kT0 + absl::Seconds(5), "2"),
            kT0 + absl::Seconds(16));
  EXPECT_EQ(t.Address(kT0 + absl::Seconds(30)), "10.1.0.7:9090");
  // A new holder with its own address.
  t.Observe(MakeLease("scaler-1", "10.1.0.8:9090", kT0 + absl::Seconds(20), "3"),
            kT0 + absl::Seconds(31));
  EXPECT_EQ(t.Address(kT0 + absl::Seconds(31)), "10.1.0.8:9090");
  // A stale read (older resourceVersion, e.g. a GET overtaken by the watch) is ignored.
  t.Observe(MakeLease("scaler-0", "10.1.0.7:9090", kT0, "2"), kT0 + absl::Seconds(32));
  EXPECT_EQ(t.holder(), "scaler-1");
  // Released: nobody leads.
  t.Observe(MakeLease("", "10.1.0.8:9090", kT0 + absl::Seconds(33), "4"), kT0 + absl::Seconds(33));
  EXPECT_EQ(t.Address(kT0 + absl::Seconds(33)), "");
  EXPECT_THAT(std::string(t.Why(kT0 + absl::Seconds(33)).message()), HasSubstr("nobody holds"));
  EXPECT_EQ(t.expiry(), absl::InfiniteFuture());
  t.Forget();
  EXPECT_THAT(std::string(t.Why(kT0).message()), HasSubstr("does not exist"));
}

TEST(LeaderTrackerTest, ALeaseLongExpiredAtFirstSightIsExpired) {
  LeaderTracker t;
  // The leader died an hour before the balancer started.
  t.Observe(MakeLease("scaler-0", "10.1.0.7:9090", kT0 - absl::Hours(1)), kT0);
  EXPECT_EQ(t.Address(kT0), "");
  // Its successor renews: that is news, whatever the clocks say.
  t.Observe(MakeLease("scaler-1", "10.1.0.8:9090", kT0 - absl::Minutes(59), "2"),
            kT0 + absl::Seconds(1));
  EXPECT_EQ(t.Address(kT0 + absl::Seconds(1)), "10.1.0.8:9090");
}

TEST(LeaderTrackerTest, AMissingOrMalformedAnnotationIsNoAddress) {
  LeaderTracker t;
  t.Observe(MakeLease("scaler-0", "", kT0), kT0);
  EXPECT_EQ(t.Address(kT0), "");
  EXPECT_THAT(std::string(t.Why(kT0).message()), HasSubstr("zeroscale.io/grpc-address"));
  t.Observe(MakeLease("scaler-0", "10.1.0.7", kT0, "2"), kT0);
  EXPECT_EQ(t.Address(kT0), "");
  EXPECT_THAT(std::string(t.Why(kT0).message()), HasSubstr("is not HOST:PORT"));
  // A Lease without leaseDurationSeconds lasts the default.
  t.Observe(MakeLease("scaler-0", "[fd00::7]:9090", kT0, "3", 0), kT0);
  EXPECT_EQ(t.Address(kT0), "[fd00::7]:9090");
  EXPECT_EQ(t.expiry(), kT0 + absl::Seconds(15));
}

TEST(LeaderTrackerTest, ValidateScalerAddress) {
  for (const char* good : {"10.1.0.7:9090", "[fd00::7]:9090",
                           "zeroscale-scaler-0.zeroscale-scaler.zs.svc:9090", "localhost:1"}) {
    EXPECT_TRUE(ValidateScalerAddress(good).ok()) << good;
  }
  for (const char* bad :
       {"", "10.1.0.7", "10.1.0.7:0", "10.1.0.7:65536", "fd00::7:9090", "[not-ip]:9090",
        "[10.0.0.1]:9090", "host name:9090", "a/b:9090", ":9090", "dns:///x:9090"}) {
    EXPECT_FALSE(ValidateScalerAddress(bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateScalerAddress(std::string(400, 'a') + ":1").ok());
}

TEST(ParseLeaseRefTest, NamespaceSlashName) {
  std::string ns, name;
  ASSERT_TRUE(ParseLeaseRef("zeroscale/zeroscale-scaler", &ns, &name).ok());
  EXPECT_EQ(ns, "zeroscale");
  EXPECT_EQ(name, "zeroscale-scaler");
  for (const char* bad :
       {"", "zeroscale", "/x", "x/", "a/b/c", "Zero/x", "a.b/x", "x/-y", "x/y_z", "x/y z"}) {
    absl::Status s = ParseLeaseRef(bad, &ns, &name);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("--scaler-lease")) << bad;
  }
}

// The addresses a follower published, in order.
class Published {
 public:
  LeaseFollower::AddressCallback Callback() {
    return [this](const std::string& a) {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(a);
      cv_.notify_all();
    };
  }
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return seen_.size() >= n; });
  }
  std::vector<std::string> seen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> seen_;
};

std::string LeaseJson(const std::string& holder, const std::string& address, absl::Time renewed,
                      int duration_seconds = 15) {
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", "zeroscale-scaler"}, {"namespace", "zs"}}},
                {"spec",
                 {{"holderIdentity", holder},
                  {"leaseDurationSeconds", duration_seconds},
                  {"renewTime", kube::FormatMicroTime(renewed)}}}};
  if (!address.empty()) {
    lease["metadata"]["annotations"] = {{kube::kScalerGrpcAddressAnnotation, address}};
  }
  return lease.dump();
}

class LeaseFollowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    kube::ClusterConfig config;
    config.server = server_.url();
    auto client = kube::KubeClient::Create(config);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  std::unique_ptr<LeaseFollower> Follow(const Clock* clock, absl::Duration reread) {
    LeaseFollowerOptions o;
    o.namespace_ = "zs";
    o.min_reread_interval = reread;
    o.watch.backoff = {absl::Milliseconds(50), absl::Milliseconds(200), 2.0, Jitter::kNone};
    auto f = std::make_unique<LeaseFollower>(client_.get(), o, published_.Callback(), clock);
    f->Start();
    return f;
  }

  int LeaseGets() { return server_.CountRequests("GET", "/leases/zeroscale-scaler"); }

  testing::FakeApiServer server_;
  std::unique_ptr<kube::KubeClient> client_;
  Published published_;
};

TEST_F(LeaseFollowerTest, FollowsTheHolderAndFallsBackWhenNoneIsKnown) {
  testing::FakeClock clock(absl::Now());
  // No Lease yet: "" is published once the (empty) list is in, so the caller knows.
  auto follower = Follow(&clock, absl::Seconds(1));
  ASSERT_TRUE(follower->WaitForSync(absl::Seconds(20)));
  EXPECT_THAT(published_.seen(), ElementsAre(""));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(20)));

  ASSERT_TRUE(server_.Create(kLeases, LeaseJson("scaler-0", "10.1.0.7:9090", clock.Now())).ok());
  ASSERT_TRUE(published_.WaitFor(2));
  ASSERT_TRUE(server_.Apply(kLeases, LeaseJson("scaler-1", "10.1.0.8:9090", clock.Now())).ok());
  ASSERT_TRUE(published_.WaitFor(3));
  // Released by its holder on shutdown: nobody leads until a successor takes it.
  ASSERT_TRUE(server_.Apply(kLeases, LeaseJson("", "10.1.0.8:9090", clock.Now())).ok());
  ASSERT_TRUE(published_.WaitFor(4));
  ASSERT_TRUE(server_.Apply(kLeases, LeaseJson("scaler-0", "10.1.0.7:9090", clock.Now())).ok());
  ASSERT_TRUE(published_.WaitFor(5));
  ASSERT_TRUE(server_.Delete(kLease).ok());
  ASSERT_TRUE(published_.WaitFor(6));
  EXPECT_THAT(published_.seen(),
              ElementsAre("", "10.1.0.7:9090", "10.1.0.8:9090", "", "10.1.0.7:9090", ""));
  EXPECT_EQ(follower->address(), "");
  // Other Leases of the namespace (the fake server ignores the field selector; a real
  // one would not send them) change nothing.
  json other = json::parse(LeaseJson("x", "10.9.9.9:1", clock.Now()));
  other["metadata"]["name"] = "someone-else";
  ASSERT_TRUE(server_.Create(kLeases, other.dump()).ok());
  ASSERT_TRUE(server_.Create(kLeases, LeaseJson("scaler-1", "10.1.0.8:9090", clock.Now())).ok());
  ASSERT_TRUE(published_.WaitFor(7));
  EXPECT_EQ(published_.seen().back(), "10.1.0.8:9090");
}

TEST_F(LeaseFollowerTest, AHolderThatStopsRenewingExpires) {
  // A real clock and a one-second lease: the holder was killed and renews no more.
  ASSERT_TRUE(server_.Create(kLeases, LeaseJson("scaler-0", "10.1.0.7:9090", absl::Now(), 1)).ok());
  auto follower = Follow(RealClock::Get(), absl::Seconds(1));
  ASSERT_TRUE(published_.WaitFor(2));
  EXPECT_THAT(published_.seen(), ElementsAre("10.1.0.7:9090", ""));
}

TEST_F(LeaseFollowerTest, ARereadIsOneGetAndNotMoreOftenThanAllowed) {
  testing::FakeClock clock(absl::Now());
  ASSERT_TRUE(server_.Create(kLeases, LeaseJson("scaler-0", "10.1.0.7:9090", clock.Now())).ok());
  auto follower = Follow(&clock, absl::Minutes(1));
  ASSERT_TRUE(follower->WaitForSync(absl::Seconds(20)));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(20)));
  EXPECT_EQ(LeaseGets(), 0);

  // A scaler says it is not the leader: one GET, which also corrects what we knew.
  follower->Reread();
  ASSERT_TRUE(testing::WaitFor([&] { return LeaseGets() == 1; }, absl::Seconds(20)));
  // Many more within the interval: none of them reaches the API server, while the
  // follower still follows the watch.
  for (int i = 0; i < 20; ++i) follower->Reread();
  ASSERT_TRUE(server_.Apply(kLeases, LeaseJson("scaler-1", "10.1.0.8:9090", clock.Now())).ok());
  ASSERT_TRUE(published_.WaitFor(2));
  EXPECT_EQ(LeaseGets(), 1);
  // Once the interval has passed, the pending re-read happens.
  clock.Advance(absl::Minutes(1));
  follower->Reread();
  ASSERT_TRUE(testing::WaitFor([&] { return LeaseGets() == 2; }, absl::Seconds(20)));
}

TEST_F(LeaseFollowerTest, AFailedRereadChangesNothingAndANotFoundOneForgetsTheHolder) {
  testing::FakeClock clock(absl::Now());
  ASSERT_TRUE(server_.Create(kLeases, LeaseJson("scaler-0", "10.1.0.7:9090", clock.Now())).ok());
  auto follower = Follow(&clock, absl::Seconds(1));
  ASSERT_TRUE(follower->WaitForSync(absl::Seconds(20)));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(20)));
  // The API server fails the GET: what was known stands.
  server_.FailNext(1, 500, -1, "/leases/zeroscale-scaler");
  follower->Reread();
  ASSERT_TRUE(testing::WaitFor([&] { return LeaseGets() == 1; }, absl::Seconds(20)));
  // The GET says the Lease is gone (the watch has not said so yet): no holder.
  clock.Advance(absl::Seconds(1));
  server_.FailNext(1, 404, -1, "/leases/zeroscale-scaler");
  follower->Reread();
  ASSERT_TRUE(published_.WaitFor(2));
  EXPECT_THAT(published_.seen(), ElementsAre("10.1.0.7:9090", ""));
  EXPECT_EQ(LeaseGets(), 2);
}

}  // namespace
}  // namespace zeroscale::balancer
