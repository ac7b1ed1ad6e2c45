// Follows the scaler's Lease (coordination.k8s.io/v1) so that the balancer's
// ActivationService calls go to the scaler that leads. Lists and watches the one Lease by
// name (fieldSelector metadata.name, so RBAC can grant get/list/watch on that name alone),
// keeps a LeaderTracker, and tells `on_address` the holder's published gRPC address each
// time it changes: a new leader, the holder's lease expiring ("": none known, use the
// configured scaler), the Lease deleted. A scaler that answers "not the leader" makes the
// caller ask for a fresh read (Reread), at most once per min_reread_interval, so a stale
// view is corrected without hammering the API server.
//
// Thread-safety: all methods may be called from any thread. `on_address` runs on the
// follower's own thread, one call at a time and never with a lock held, so it may call
// into the ScalerClient and the Dispatcher.
#ifndef ZEROSCALE_BALANCER_LEADER_LEASE_FOLLOWER_H_
#define ZEROSCALE_BALANCER_LEADER_LEASE_FOLLOWER_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "balancer/leader/leader_tracker.h"
#include "common/kube/client.h"
#include "common/kube/watcher.h"
#include "common/time/clock.h"

namespace zeroscale::balancer {

struct LeaseFollowerOptions {
  std::string namespace_;
  std::string name = "zeroscale-scaler";
  absl::Duration min_reread_interval = absl::Seconds(1);
  // Backoff and error hook of the list/watch; namespace and field selector are set here.
  kube::WatcherOptions watch;
};

// Parses --scaler-lease: "NAMESPACE/NAME", both DNS labels/subdomains as Kubernetes
// names are. kInvalidArgument naming what is wrong.
absl::Status ParseLeaseRef(const std::string& text, std::string* ns, std::string* name);

class LeaseFollower {
 public:
  using AddressCallback = std::function<void(const std::string& address)>;

  // `client` and `clock` must outlive the follower.
  LeaseFollower(kube::KubeClient* client, LeaseFollowerOptions options, AddressCallback on_address,
                const Clock* clock = RealClock::Get());
  ~LeaseFollower();  // stops
  LeaseFollower(const LeaseFollower&) = delete;
  LeaseFollower& operator=(const LeaseFollower&) = delete;

  void Start();
  // True once the Lease has been listed and `on_address` has heard the first address
  // (maybe ""), so a caller can point its client before opening any stream.
  bool WaitForSync(absl::Duration timeout);
  void Stop();

  // Asks for a fresh GET of the Lease (a scaler said it does not lead). Never blocks.
  void Reread();
  // The address last published ("" when none).
  std::string address() const;

 private:
  void OnLease(kube::WatchEventType type, const kube::Lease& lease);
  void Run();
  // Under mu_: a GET of the Lease when one is due (the lock is released meanwhile).
  void MaybeRereadLocked(std::unique_lock<std::mutex>* lock);

  kube::KubeClient* const client_;
  const LeaseFollowerOptions options_;
  const AddressCallback on_address_;
  const Clock* const clock_;
  std::unique_ptr<kube::LeaseWatcher> watcher_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  LeaderTracker tracker_;
  bool synced_ = false;     // the informer delivered its first list
  bool published_ = false;  // address_ is being or has been handed to on_address_
  bool delivered_ = false;  // on_address_ returned from its first call
  std::string address_;
  bool reread_ = false;
  absl::Time next_reread_ = absl::InfinitePast();
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_LEADER_LEASE_FOLLOWER_H_
