#include "balancer/leader/leader_tracker.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "balancer/activation/scaler_client.h"
#include "balancer/pods/pod_set.h"

namespace zeroscale::balancer {
namespace {

// True when `newer` is an older resourceVersion than `older`. They are opaque strings to
// clients, but etcd-backed servers hand out increasing integers; anything else is
// accepted as news.
bool IsStale(const std::string& newer, const std::string& older) {
  uint64_t a = 0, b = 0;
  return absl::SimpleAtoi(newer, &a) && absl::SimpleAtoi(older, &b) && a < b;
}

bool IsDnsName(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

}  // namespace

absl::Status ValidateScalerAddress(const std::string& address) {
  std::string host;
  uint16_t port = 0;
  if (address.size() > 300 || !SplitAddress(address, &host, &port).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", address.substr(0, 300), "\" is not HOST:PORT"));
  }
  // An IPv6 literal needs its brackets; an IPv4 literal is a DNS name as far as characters go.
  const bool bracketed = address.front() == '[';
  if (bracketed ? CanonicalIp(host).empty() || host.find(':') == std::string::npos
                : !IsDnsName(host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", address, "\": host is neither an IP address nor a DNS name"));
  }
  return absl::OkStatus();
}

LeaderTracker::LeaderTracker(absl::Duration default_lease_duration)
    : default_duration_(default_lease_duration) {}

void LeaderTracker::Observe(const kube::Lease& lease, absl::Time now) {
  if (seen_ && IsStale(lease.resource_version, resource_version_)) return;
  const absl::Duration duration = lease.lease_duration_seconds > 0
                                      ? absl::Seconds(lease.lease_duration_seconds)
                                      : default_duration_;
  const bool first = !seen_;
  const bool renewed = first || lease.holder_identity != holder_ || lease.renew_time != renew_time_;
  seen_ = true;
  resource_version_ = lease.resource_version;
  holder_ = lease.holder_identity;
  renew_time_ = lease.renew_time;
  if (renewed) {
    expires_at_ = now + duration;
    if (first && renew_time_ != absl::InfinitePast() && renew_time_ + duration < now) {
      expires_at_ = renew_time_ + duration;  // died before we looked
    }
  }
  address_.clear();
  auto it = lease.annotations.find(kube::kScalerGrpcAddressAnnotation);
  if (it == lease.annotations.end()) {
    address_error_ = absl::NotFoundError(absl::StrCat(
        "the holder publishes no ", kube::kScalerGrpcAddressAnnotation, " annotation"));
  } else if (absl::Status s = ValidateScalerAddress(it->second); !s.ok()) {
    address_error_ = absl::InvalidArgumentError(
        absl::StrCat("annotation ", kube::kScalerGrpcAddressAnnotation, ": ", s.message()));
  } else {
    address_ = it->second;
    address_error_ = absl::OkStatus();
  }
}

void LeaderTracker::Forget() {
  seen_ = false;
  resource_version_.clear();
  holder_.clear();
  renew_time_ = absl::InfinitePast();
  address_.clear();
}

absl::Status LeaderTracker::Why(absl::Time now) const {
  if (!seen_) return absl::NotFoundError("the Lease does not exist");
  if (holder_.empty()) return absl::UnavailableError("nobody holds the Lease");
  if (now >= expires_at_) {
    return absl::UnavailableError(absl::StrCat("the lease of ", holder_, " expired"));
  }
  return address_error_;
}

std::string LeaderTracker::Address(absl::Time now) const { return Why(now).ok() ? address_ : ""; }

}  // namespace zeroscale::balancer
