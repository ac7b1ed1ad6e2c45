#include "common/kube/leader_election.h"

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/kube/test_util.h"
#include "tests/testing/fake_apiserver.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::kube {
namespace {

using json = nlohmann::json;

constexpr char kLeasePath[] = "/apis/coordination.k8s.io/v1/namespaces/zs/leases/zeroscale-scaler";

// Counts callbacks and lets a test wait for them.
struct Tracker {
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  int stopped = 0;
  std::vector<std::string> leaders;

  LeaderCallbacks Callbacks() {
    return {[this] { Bump(&started); }, [this] { Bump(&stopped); },
            [this](const std::string& id) {
              std::lock_guard<std::mutex> lock(mu);
              leaders.push_back(id);
            }};
  }
  void Bump(int* n) {
    std::lock_guard<std::mutex> lock(mu);
    ++*n;
    cv.notify_all();
  }
  bool WaitStarted(int n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] { return started >= n; });
  }
};

class LeaderElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    // Separate clients, as two scaler replicas would have.
    for (auto* c : {&client_a_, &client_b_}) {
      ClusterConfig config;
      config.server = server_.url();
      auto client = KubeClient::Create(config, &clock_);
      ASSERT_TRUE(client.ok());
      *c = *std::move(client);
    }
  }

  LeaderElectionConfig Config(const std::string& id) {
    LeaderElectionConfig c;
    c.namespace_ = "zs";
    c.identity = id;
    c.lease_duration = absl::Seconds(15);
    c.renew_deadline = absl::Seconds(10);
    c.retry_period = absl::Seconds(2);
    return c;
  }

  json StoredLease() { return json::parse(*server_.Get(kLeasePath)); }

  testing::FakeClock clock_;
  testing::FakeApiServer server_;
  std::unique_ptr<KubeClient> client_a_, client_b_;
  RecordingSleeper sleeper_;
  Tracker a_, b_;
};

TEST_F(LeaderElectionTest, OneLeadsTheOtherTakesOverAfterExpiry) {
  LeaderElector a(client_a_.get(), Config("a"), a_.Callbacks(), &clock_, &sleeper_);
  LeaderElector b(client_b_.get(), Config("b"), b_.Callbacks(), &clock_, &sleeper_);

  EXPECT_TRUE(a.TryAcquireOrRenew());  // creates the Lease
  EXPECT_FALSE(b.TryAcquireOrRenew());
  EXPECT_EQ(a_.started, 1);
  EXPECT_EQ(b_.started, 0);
  EXPECT_EQ(b.observed_leader(), "a");
  json lease = StoredLease();
  EXPECT_EQ(lease["spec"]["holderIdentity"], "a");
  EXPECT_EQ(lease["spec"]["leaseDurationSeconds"], 15);
  EXPECT_FALSE(lease["spec"].contains("leaseTransitions"));  // 0 is omitted
  const std::string acquired = lease["spec"]["acquireTime"];

  // a renews; b keeps seeing a fresh record and waits.
  clock_.Advance(absl::Seconds(5));
  EXPECT_TRUE(a.TryAcquireOrRenew());
  EXPECT_FALSE(b.TryAcquireOrRenew());
  EXPECT_EQ(StoredLease()["spec"]["acquireTime"], acquired);
  EXPECT_NE(StoredLease()["spec"]["renewTime"], lease["spec"]["renewTime"]);

  // a stops renewing (hung or partitioned). Not yet a lease duration since b saw it change.
  clock_.Advance(absl::Seconds(14));
  EXPECT_FALSE(b.TryAcquireOrRenew());
  clock_.Advance(absl::Seconds(2));
  EXPECT_TRUE(b.TryAcquireOrRenew());
  EXPECT_EQ(b_.started, 1);
  lease = StoredLease();
  EXPECT_EQ(lease["spec"]["holderIdentity"], "b");
  EXPECT_EQ(lease["spec"]["leaseTransitions"], 1);
  EXPECT_NE(lease["spec"]["acquireTime"], acquired);

  // a comes back, sees b's live lease, and steps down.
  EXPECT_FALSE(a.TryAcquireOrRenew());
  EXPECT_FALSE(a.is_leader());
  EXPECT_EQ(a_.stopped, 1);
  EXPECT_TRUE(b.is_leader());
  EXPECT_EQ(a.observed_leader(), "b");
}

// The holder publishes its annotations on the Lease at every write, keeps other writers'
// annotations, removes its own when it releases, and a successor without the fact removes
// its predecessor's: a Lease never points at a replica that does not hold it.
TEST_F(LeaderElectionTest, HolderAnnotationsFollowTheHolder) {
  const std::string key = "zeroscale.io/grpc-address";
  LeaderElectionConfig ca = Config("a");
  ca.annotations[key] = "10.0.0.1:9090";
  ca.lease_duration = absl::Milliseconds(2500);  // whole seconds on the wire, rounded up
  LeaderElector a(client_a_.get(), ca, a_.Callbacks(), &clock_, &sleeper_);
  LeaderElectionConfig cb = Config("b");
  cb.annotations[key] = "";  // b publishes no address
  LeaderElector b(client_b_.get(), cb, b_.Callbacks(), &clock_, &sleeper_);

  ASSERT_TRUE(a.TryAcquireOrRenew());
  json lease = StoredLease();
  EXPECT_EQ(lease["metadata"]["annotations"][key], "10.0.0.1:9090");
  EXPECT_EQ(lease["spec"]["leaseDurationSeconds"], 3);
  EXPECT_FALSE(b.TryAcquireOrRenew());
  EXPECT_EQ(b.observed_annotation(key), "10.0.0.1:9090");

  // Someone else's annotation survives a renewal; ours is written again.
  json edited = StoredLease();
  edited["metadata"]["annotations"]["other.io/note"] = "kept";
  edited["metadata"]["annotations"][key] = "stale";
  ASSERT_TRUE(
      server_.Apply("/apis/coordination.k8s.io/v1/namespaces/zs/leases", edited.dump()).ok());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(a.TryAcquireOrRenew());
  lease = StoredLease();
  EXPECT_EQ(lease["metadata"]["annotations"][key], "10.0.0.1:9090");
  EXPECT_EQ(lease["metadata"]["annotations"]["other.io/note"], "kept");

  // a stops renewing; b takes over after the lease and removes a's address.
  clock_.Advance(absl::Seconds(1));
  EXPECT_FALSE(b.TryAcquireOrRenew());
  clock_.Advance(absl::Seconds(16));
  ASSERT_TRUE(b.TryAcquireOrRenew());
  lease = StoredLease();
  EXPECT_EQ(lease["spec"]["holderIdentity"], "b");
  EXPECT_FALSE(lease["metadata"]["annotations"].contains(key));
  EXPECT_EQ(lease["metadata"]["annotations"]["other.io/note"], "kept");
}

// Releasing removes the holder's annotations with its identity.
TEST_F(LeaderElectionTest, ReleaseRemovesTheHolderAnnotations) {
  LeaderElectionConfig ca = Config("a");
  ca.annotations["zeroscale.io/grpc-address"] = "10.0.0.1:9090";
  ca.retry_period = absl::Milliseconds(10);
  LeaderElector a(client_a_.get(), ca, a_.Callbacks(), &clock_, RealSleeper::Get());
  a.Start();
  ASSERT_TRUE(a_.WaitStarted(1));
  a.Stop();
  json lease = StoredLease();
  EXPECT_EQ(lease["spec"].value("holderIdentity", ""), "");
  EXPECT_FALSE(lease["metadata"].contains("annotations") &&
               lease["metadata"]["annotations"].contains("zeroscale.io/grpc-address"));
}

TEST_F(LeaderElectionTest, StaleWritesLoseTheRace) {
  Lease lease;
  lease.namespace_ = "zs";
  lease.name = "race";
  lease.holder_identity = "a";
  lease.lease_duration_seconds = 15;
  lease.renew_time = clock_.Now();
  auto created = client_a_->CreateLease(lease);
  ASSERT_TRUE(created.ok()) << created.status();
  // Creating it twice: the second creator lost.
  EXPECT_EQ(client_b_->CreateLease(lease).status().code(), absl::StatusCode::kAborted);

  // Both read the same version; the first write wins, the second gets 409.
  Lease from_a = *created, from_b = *created;
  from_a.holder_identity = "a";
  from_b.holder_identity = "b";
  ASSERT_TRUE(client_a_->UpdateLease(from_a).ok());
  auto lost = client_b_->UpdateLease(from_b);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(LeaseFromJson(*server_.Get("/apis/coordination.k8s.io/v1/namespaces/zs/leases/race"))
                ->holder_identity,
            "a");
  // Without a resourceVersion an update could silently overwrite: refused locally.
  from_b.resource_version.clear();
  EXPECT_EQ(client_b_->UpdateLease(from_b).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LeaderElectionTest, LeaderStepsDownWhenItCannotRenewWithinTheDeadline) {
  LeaderElector a(client_a_.get(), Config("a"), a_.Callbacks(), &clock_, &sleeper_);
  ASSERT_TRUE(a.TryAcquireOrRenew());
  server_.FailNext(2, 500, -1, "leases");
  clock_.Advance(absl::Seconds(5));
  EXPECT_TRUE(a.TryAcquireOrRenew());  // a blip: still within the renew deadline
  EXPECT_EQ(a_.stopped, 0);
  clock_.Advance(absl::Seconds(6));
  EXPECT_FALSE(a.TryAcquireOrRenew());  // 11s without renewal > 10s deadline
  EXPECT_EQ(a_.stopped, 1);
  // Once the API is back, a may lead again: the lease is still its own.
  EXPECT_TRUE(a.TryAcquireOrRenew());
  EXPECT_EQ(a_.started, 2);
  EXPECT_EQ(StoredLease()["spec"].value("leaseTransitions", 0), 0);
}

TEST_F(LeaderElectionTest, ReleasedLeaseIsTakenAtOnce) {
  LeaderElectionConfig ca = Config("a");
  ca.retry_period = absl::Milliseconds(10);
  LeaderElector a(client_a_.get(), ca, a_.Callbacks(), &clock_, RealSleeper::Get());
  a.Start();
  ASSERT_TRUE(a_.WaitStarted(1));
  a.Stop();  // releases
  EXPECT_EQ(a_.stopped, 1);
  EXPECT_EQ(StoredLease()["spec"].value("holderIdentity", ""), "");
  LeaderElector b(client_b_.get(), Config("b"), b_.Callbacks(), &clock_, &sleeper_);
  EXPECT_TRUE(b.TryAcquireOrRenew());  // no waiting for expiry
  EXPECT_EQ(StoredLease()["spec"]["leaseTransitions"], 1);
}

// Two electors on their own threads with the real clock: the leader dies without
// releasing, and the other takes over once the lease expires.
TEST_F(LeaderElectionTest, TakeoverBetweenTwoRunningElectors) {
  std::unique_ptr<KubeClient> real_a, real_b;
  for (auto* c : {&real_a, &real_b}) {
    ClusterConfig config;
    config.server = server_.url();
    *c = *KubeClient::Create(config);
  }
  auto config = [](const std::string& id) {
    LeaderElectionConfig c;
    c.namespace_ = "zs";
    c.identity = id;
    c.lease_duration = absl::Seconds(1);
    c.renew_deadline = absl::Milliseconds(700);
    c.retry_period = absl::Milliseconds(50);
    c.release_on_stop = false;  // as if the process were killed
    return c;
  };
  LeaderElector a(real_a.get(), config("a"), a_.Callbacks());
  a.Start();
  ASSERT_TRUE(a_.WaitStarted(1));
  LeaderElector b(real_b.get(), config("b"), b_.Callbacks());
  b.Start();
  EXPECT_FALSE(b.is_leader());  // a renews; b only observes
  a.Stop();
  ASSERT_TRUE(b_.WaitStarted(1));
  EXPECT_TRUE(b.is_leader());
  EXPECT_EQ(StoredLease()["spec"]["holderIdentity"], "b");
  b.Stop();
}

}  // namespace
}  // namespace zeroscale::kube
