// Which scaler replica decides. All replicas ingest; one leads through a
// coordination.k8s.io Lease (or every replica leads, with --leader-elect=false) and only
// the leader runs automata and writes to the cluster. Leadership is handed to the
// scaler's Kubernetes units (reconciler, actuator, reporter) as terms: each term has an
// epoch, starts with OnTermStart and ends with OnTermEnd, called in that order on the
// leadership's control thread, so the elector's thread only ever hands the change over
// and keeps renewing.
//
// Work a unit starts in a term carries its epoch and checks Current(epoch) before it
// acts: leading() drops the moment leadership is lost (before the control thread has
// wound the term down), so a replica that stopped leading never writes again.
//
// While it holds the Lease, a replica publishes on it where other pods reach its gRPC
// services (the annotation zeroscale.io/grpc-address, from --advertise-address): the
// balancer's ActivationService calls must reach the leader, which alone has automata and
// every pod's readiness; the others answer FAILED_PRECONDITION naming the leader's
// address (CheckServing).
//
// Thread-safety: leading(), epoch(), Current() and CheckServing() are thread-safe;
// AddListener before Start; Start and Stop from one controlling thread.
#ifndef ZEROSCALE_SCALER_LEADER_LEADERSHIP_H_
#define ZEROSCALE_SCALER_LEADER_LEADERSHIP_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/leader_election.h"
#include "common/kube/retry.h"
#include "common/kube/types.h"
#include "common/time/clock.h"

namespace zeroscale::leader {

// A unit that works only while this replica leads.
class TermListener {
 public:
  virtual ~TermListener() = default;
  // This replica leads from now on, under `epoch`.
  virtual void OnTermStart(uint64_t epoch) = 0;
  // The term `epoch` is over: forget what it built. Current(epoch) is already false.
  virtual void OnTermEnd(uint64_t epoch) = 0;
};

struct LeadershipOptions {
  bool leader_elect = true;
  // "" = the cluster configuration's namespace, else "default" (see Resolve).
  std::string lease_namespace;
  std::string lease_name = "zeroscale-scaler";
  std::string identity;  // "" = "<hostname>-<pid>"
  absl::Duration lease_duration = absl::Seconds(15);
  absl::Duration renew_deadline = absl::Seconds(10);
  absl::Duration retry_period = absl::Seconds(2);
  // Clear the Lease on Stop() so a successor need not wait for it to expire.
  bool release_on_stop = true;
  // HOST:PORT where other pods reach this replica's gRPC services; published on the
  // Lease while leading. "" publishes nothing (and removes a predecessor's).
  std::string advertise_address;

  // Fills the defaults that depend on the cluster (`cluster_namespace`) and the host.
  void Resolve(const std::string& cluster_namespace);
};

struct LeadershipStats {
  int terms = 0;  // times this replica started leading
};

class Leadership {
 public:
  // `client` and `clock` must outlive it. `options` must be resolved. The elector waits
  // on `clock`.
  Leadership(kube::KubeClient* client, LeadershipOptions options, Clock* clock);
  ~Leadership();  // stops
  Leadership(const Leadership&) = delete;
  Leadership& operator=(const Leadership&) = delete;

  // Listeners hear terms in the order they were added (and term ends in the same order).
  void AddListener(TermListener* listener);
  // Starts the elector (or leads at once without election).
  void Start();
  // Stops leading (releasing the Lease when configured), ends the term, joins threads.
  void Stop();

  bool leading() const { return leading_.load(); }
  uint64_t epoch() const { return epoch_.load(); }
  // True while the term `epoch` lasts.
  bool Current(uint64_t epoch) const { return leading_.load() && epoch_.load() == epoch; }
  const std::string& identity() const { return options_.identity; }
  // OK while this replica leads; otherwise kFailedPrecondition saying who leads and at
  // which address, for callers that must be served by the leader.
  absl::Status CheckServing() const;
  LeadershipStats stats() const;

 private:
  void OnLeadershipChange(bool leading);
  void ControlLoop();

  kube::KubeClient* const client_;
  const LeadershipOptions options_;
  Clock* const clock_;
  kube::ClockSleeper sleeper_;
  std::vector<TermListener*> listeners_;
  std::unique_ptr<kube::LeaderElector> elector_;

  std::atomic<bool> leading_{false};
  std::atomic<uint64_t> epoch_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool want_leading_ = false;
  uint64_t losses_ = 0;  // leadership losses so far; a lose-and-regain ends the term too
  bool stopping_ = false;
  bool started_ = false;
  LeadershipStats stats_;
  std::thread control_;
};

}  // namespace zeroscale::leader

#endif  // ZEROSCALE_SCALER_LEADER_LEADERSHIP_H_
