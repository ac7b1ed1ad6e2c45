// Leader election with a coordination.k8s.io/v1 Lease, following client-go: the leader
// renews the Lease every retry period; a candidate takes it over only after it has seen
// the same record unchanged for a whole lease duration (by its own clock, so clock skew
// between nodes does not matter); every write carries the resourceVersion read, so of
// two candidates exactly one wins (the other gets 409). A leader that cannot renew
// within the renew deadline steps down before its lease can expire, so two replicas
// never both believe they lead.
//
// Thread-safety: TryAcquireOrRenew is for one thread at a time (the Start() loop, or a
// test driving it with a fake clock). Callbacks run on that thread. is_leader() and
// Stop() are thread-safe.
#ifndef ZEROSCALE_COMMON_KUBE_LEADER_ELECTION_H_
#define ZEROSCALE_COMMON_KUBE_LEADER_ELECTION_H_

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/retry.h"
#include "common/kube/types.h"
#include "common/time/clock.h"

namespace zeroscale::kube {

struct LeaderElectionConfig {
  std::string namespace_;
  std::string lease_name = "zeroscale-scaler";
  std::string identity;  // unique per replica, e.g. the pod name
  absl::Duration lease_duration = absl::Seconds(15);
  absl::Duration renew_deadline = absl::Seconds(10);
  absl::Duration retry_period = absl::Seconds(2);
  // On Stop(), clear holderIdentity so a successor need not wait for expiry.
  bool release_on_stop = true;
  // Annotations written on the Lease while holding it (when acquiring and at every
  // renewal) and removed when releasing it: facts about the holder that others read
  // from the Lease. An empty value removes the key, so a holder without the fact never
  // leaves its predecessor's in place.
  std::map<std::string, std::string> annotations;
};

struct LeaderCallbacks {
  std::function<void()> on_started_leading;
  std::function<void()> on_stopped_leading;
  // Any change of holder, including to ourselves; "" when the lease was released.
  std::function<void(const std::string& identity)> on_new_leader;
};

class LeaderElector {
 public:
  // `client`, `clock` and `sleeper` must outlive the elector.
  LeaderElector(KubeClient* client, LeaderElectionConfig config, LeaderCallbacks callbacks,
                Clock* clock = RealClock::Get(), Sleeper* sleeper = RealSleeper::Get());
  ~LeaderElector();  // stops
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // One round: create, renew or take over the Lease if we may. Returns whether we lead
  // afterwards, calling the callbacks on changes.
  bool TryAcquireOrRenew();

  // Runs rounds every retry period on a thread of its own.
  void Start();
  // Ends the loop; if leading, releases the lease (when configured) and calls
  // on_stopped_leading.
  void Stop();

  bool is_leader() const { return leader_.load(); }
  // The holder last observed, "" when none.
  std::string observed_leader() const;
  // An annotation of the Lease last observed, "" when absent.
  std::string observed_annotation(const std::string& key) const;

 private:
  // Writes; false (not leader) on any failure.
  bool Acquire(const Lease* current);
  void SetLeader(bool leading);
  void Observe(const Lease& lease);
  void Release();

  KubeClient* const client_;
  const LeaderElectionConfig config_;
  const LeaderCallbacks callbacks_;
  Clock* const clock_;
  Sleeper* const sleeper_;

  std::atomic<bool> leader_{false};
  // The last record seen and when, by our clock; expiry is judged from these.
  Lease observed_;
  bool have_observed_ = false;
  absl::Time observed_at_ = absl::InfinitePast();
  absl::Time last_renew_ = absl::InfinitePast();  // our last successful write as leader
  mutable std::mutex mu_;                         // guards observed_.holder_identity reads
  CancelToken cancel_;
  std::thread thread_;
};

}  // namespace zeroscale::kube

#endif  // ZEROSCALE_COMMON_KUBE_LEADER_ELECTION_H_
