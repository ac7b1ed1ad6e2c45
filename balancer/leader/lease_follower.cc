#include "balancer/leader/lease_follower.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::balancer {
namespace {

// A Kubernetes object name: DNS subdomain characters, at most 253 of them.
bool IsObjectName(const std::string& s, size_t max) {
  return !s.empty() && s.size() <= max &&
         absl::ascii_isalnum(static_cast<unsigned char>(s.front())) &&
         absl::ascii_isalnum(static_cast<unsigned char>(s.back())) &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_islower(static_cast<unsigned char>(c)) ||
                  absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
         });
}

}  // namespace

absl::Status ParseLeaseRef(const std::string& text, std::string* ns, std::string* name) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos || text.find('/', slash + 1) != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid value '", text, "' for --scaler-lease: expected NAMESPACE/NAME"));
  }
  std::string n = text.substr(0, slash), l = text.substr(slash + 1);
  if (!IsObjectName(n, 63) || n.find('.') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid value '", text, "' for --scaler-lease: '", n, "' is not a namespace name"));
  }
  if (!IsObjectName(l, 253)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid value '", text, "' for --scaler-lease: '", l, "' is not a Lease name"));
  }
  *ns = std::move(n);
  *name = std::move(l);
  return absl::OkStatus();
}

LeaseFollower::LeaseFollower(kube::KubeClient* client, LeaseFollowerOptions options,
                             AddressCallback on_address, const Clock* clock)
    : client_(client),
      options_(std::move(options)),
      on_address_(std::move(on_address)),
      clock_(clock) {
  kube::WatcherOptions w = options_.watch;
  w.namespace_ = options_.namespace_;
  w.field_selector = absl::StrCat("metadata.name=", options_.name);
  w.on_synced = [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      synced_ = true;
    }
    cv_.notify_all();
  };
  watcher_ = std::make_unique<kube::LeaseWatcher>(
      client_, std::move(w),
      [this](kube::WatchEventType type, const kube::Lease& lease) { OnLease(type, lease); });
}

LeaseFollower::~LeaseFollower() { Stop(); }

void LeaseFollower::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (thread_.joinable() || stopping_) return;
    thread_ = std::thread([this] { Run(); });
  }
  watcher_->Start();
}

bool LeaseFollower::WaitForSync(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [this] { return delivered_; });
}

void LeaseFollower::Stop() {
  watcher_->Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaseFollower::Reread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reread_ = true;
  }
  cv_.notify_all();
}

std::string LeaseFollower::address() const {
  std::lock_guard<std::mutex> lock(mu_);
  return address_;
}

void LeaseFollower::OnLease(kube::WatchEventType type, const kube::Lease& lease) {
  // The field selector picks the one Lease; a server that ignored it sends others too.
  if (lease.name != options_.name) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (type == kube::WatchEventType::kDeleted) {
      tracker_.Forget();
    } else {
      tracker_.Observe(lease, clock_->Now());
    }
  }
  cv_.notify_all();
}

void LeaseFollower::MaybeRereadLocked(std::unique_lock<std::mutex>* lock) {
  if (!reread_ || !synced_ || clock_->Now() < next_reread_) return;
  reread_ = false;
  next_reread_ = clock_->Now() + options_.min_reread_interval;
  lock->unlock();
  absl::StatusOr<kube::Lease> got = client_->GetLease(options_.namespace_, options_.name);
  lock->lock();
  if (got.ok()) {
    tracker_.Observe(*got, clock_->Now());
  } else if (got.status().code() == absl::StatusCode::kNotFound) {
    tracker_.Forget();
  } else {
    ZS_LOG(kWarning, "cannot re-read the scaler's Lease",
           {"lease", absl::StrCat(options_.namespace_, "/", options_.name)},
           {"error", std::string(got.status().message())});
  }
}

void LeaseFollower::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    MaybeRereadLocked(&lock);
    const absl::Time now = clock_->Now();
    const std::string address = tracker_.Address(now);
    if (synced_ && (!published_ || address != address_)) {
      address_ = address;
      published_ = true;
      const std::string lease = absl::StrCat(options_.namespace_, "/", options_.name);
      if (address.empty()) {
        ZS_LOG(kWarning, "no scaler leader known; ActivationService calls go to --scaler",
               {"lease", lease}, {"why", std::string(tracker_.Why(now).message())});
      } else {
        ZS_LOG(kInfo, "ActivationService calls follow the scaler's leader", {"lease", lease},
               {"holder", tracker_.holder()}, {"address", address});
      }
      lock.unlock();
      on_address_(address);
      lock.lock();
      if (!delivered_) {
        delivered_ = true;
        cv_.notify_all();  // WaitForSync
      }
      continue;
    }
    // Sleep until the holder's lease runs out or a re-read is due; any observation or
    // request wakes the loop, which then looks again.
    absl::Time until = tracker_.expiry();
    if (until <= now) until = absl::InfiniteFuture();  // expired already: published as such
    if (reread_ && synced_) until = std::min(until, next_reread_);
    if (until == absl::InfiniteFuture()) {
      cv_.wait(lock);
    } else {
      cv_.wait_for(lock, absl::ToChronoNanoseconds(until - now));
    }
  }
}

}  // namespace zeroscale::balancer
