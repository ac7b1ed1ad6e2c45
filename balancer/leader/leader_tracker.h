// What the balancer knows of the scaler's leader, from the scaler's Lease: the gRPC
// address the current holder publishes in the annotation zeroscale.io/grpc-address, as
// long as its lease has not expired. Only the Lease holder can wake a workload and knows
// every pod's readiness, so the balancer sends its ActivationService calls there.
//
// Expiry is judged as client-go's leader election judges it: by our own clock, from
// when we last saw the holder renew (a new renewTime), never by comparing the holder's
// renewTime with our clock, so clock skew between nodes does not matter. The one
// exception is the first sight of a Lease, whose renewTime may be hours old (a leader
// that died while no balancer watched): renewTime + leaseDurationSeconds already past by
// our clock counts as expired until the next renewal.
//
// Pure state, driven with explicit times; not thread-safe (LeaseFollower guards it).
#ifndef ZEROSCALE_BALANCER_LEADER_LEADER_TRACKER_H_
#define ZEROSCALE_BALANCER_LEADER_LEADER_TRACKER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/kube/types.h"

namespace zeroscale::balancer {

class LeaderTracker {
 public:
  // A Lease without leaseDurationSeconds is taken to last this long (the scaler's default).
  explicit LeaderTracker(absl::Duration default_lease_duration = absl::Seconds(15));

  // The Lease as read or watched at `now`; stale reads (a lower resourceVersion than one
  // seen already) are ignored.
  void Observe(const kube::Lease& lease, absl::Time now);
  // The Lease was deleted.
  void Forget();

  // HOST:PORT of the unexpired holder at `now`; "" when none is known (see Why).
  std::string Address(absl::Time now) const;
  // Why Address(now) is "": no Lease, no holder, expired, or an annotation missing or
  // malformed. OK when an address is known.
  absl::Status Why(absl::Time now) const;
  // The holder's identity as last seen ("" when none).
  const std::string& holder() const { return holder_; }
  // When Address() changes by itself, the holder's lease running out; InfiniteFuture when
  // nothing is pending.
  absl::Time expiry() const { return holder_.empty() ? absl::InfiniteFuture() : expires_at_; }

 private:
  const absl::Duration default_duration_;
  bool seen_ = false;
  std::string resource_version_;
  std::string holder_;
  absl::Time renew_time_ = absl::InfinitePast();
  absl::Time expires_at_ = absl::InfinitePast();
  std::string address_;         // validated annotation, "" when missing or malformed
  absl::Status address_error_;  // why address_ is ""
};

// Checks an announced HOST:PORT: an IP literal ("[v6]:port" for IPv6) or a DNS name, and a
// port 1-65535. kInvalidArgument saying what is wrong.
absl::Status ValidateScalerAddress(const std::string& address);

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_LEADER_LEADER_TRACKER_H_
