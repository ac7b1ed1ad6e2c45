#include "scaler/leader/leadership.h"

#include <unistd.h>

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::leader {

void LeadershipOptions::Resolve(const std::string& cluster_namespace) {
  if (identity.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
      std::snprintf(host, sizeof(host), "%s", "zeroscale");
    }
    identity = absl::StrCat(host, "-", getpid());
  }
  if (lease_namespace.empty()) {
    lease_namespace = cluster_namespace.empty() ? "default" : cluster_namespace;
  }
}

Leadership::Leadership(kube::KubeClient* client, LeadershipOptions options, Clock* clock)
    : client_(client), options_(std::move(options)), clock_(clock), sleeper_(clock) {
  if (!options_.leader_elect) return;
  // Built now, started by Start(): callers of CheckServing() may come before.
  kube::LeaderElectionConfig config;
  config.namespace_ = options_.lease_namespace;
  config.lease_name = options_.lease_name;
  config.identity = options_.identity;
  config.lease_duration = options_.lease_duration;
  config.renew_deadline = options_.renew_deadline;
  config.retry_period = options_.retry_period;
  config.release_on_stop = options_.release_on_stop;
  config.annotations[kube::kScalerGrpcAddressAnnotation] = options_.advertise_address;
  kube::LeaderCallbacks callbacks;
  // The elector's thread must keep renewing, so it only hands the change over.
  callbacks.on_started_leading = [this] { OnLeadershipChange(true); };
  callbacks.on_stopped_leading = [this] { OnLeadershipChange(false); };
  callbacks.on_new_leader = [this](const std::string& holder) {
    ZS_LOG(kInfo, "lease holder changed", {"holder", holder}, {"identity", options_.identity});
  };
  elector_ = std::make_unique<kube::LeaderElector>(client_, std::move(config), std::move(callbacks),
                                                   clock_, &sleeper_);
}

Leadership::~Leadership() { Stop(); }

void Leadership::AddListener(TermListener* listener) { listeners_.push_back(listener); }

LeadershipStats Leadership::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Leadership::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return;
    started_ = true;
  }
  control_ = std::thread([this] { ControlLoop(); });
  if (elector_ == nullptr) {
    ZS_LOG(kInfo, "leader election off: this replica decides and writes",
           {"identity", options_.identity});
    OnLeadershipChange(true);
    return;
  }
  ZS_LOG(kInfo, "taking part in leader election", {"identity", options_.identity},
         {"lease", absl::StrCat(options_.lease_namespace, "/", options_.lease_name)},
         {"lease_duration", absl::FormatDuration(options_.lease_duration)},
         {"advertise_address", options_.advertise_address});
  elector_->Start();
}

void Leadership::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) return;
  }
  // The elector first: it releases the lease and reports the loss, which the control
  // thread turns into the end of the term.
  if (elector_) elector_->Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    leading_ = false;
  }
  cv_.notify_all();
  if (control_.joinable()) control_.join();
}

absl::Status Leadership::CheckServing() const {
  if (leading()) return absl::OkStatus();
  const std::string lease = absl::StrCat(options_.lease_namespace, "/", options_.lease_name);
  if (elector_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("scaler ", options_.identity, " is not serving yet (starting or stopping)"));
  }
  const std::string holder = elector_->observed_leader();
  if (holder.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("scaler ", options_.identity,
                                                      " is not the leader and no replica holds ",
                                                      "the Lease ", lease, " yet; retry shortly"));
  }
  const std::string address = elector_->observed_annotation(kube::kScalerGrpcAddressAnnotation);
  return absl::FailedPreconditionError(absl::StrCat(
      "scaler ", options_.identity, " is not the leader: ", holder, " holds the Lease ", lease,
      address.empty() ? absl::StrCat(" and publishes no address (annotation ",
                                     kube::kScalerGrpcAddressAnnotation, "; start it with --advertise-address)")
                      : absl::StrCat(" and serves ActivationService at ", address)));
}

void Leadership::OnLeadershipChange(bool leading) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Writes stop now, not when the control thread gets round to it.
    if (!leading) {
      leading_ = false;
      ++losses_;
    }
    want_leading_ = leading;
  }
  cv_.notify_all();
}

void Leadership::ControlLoop() {
  bool active = false;
  uint64_t term = 0;
  uint64_t term_losses = 0;
  std::unique_lock<std::mutex> lock(mu_);
  auto end_term = [&] {
    leading_ = false;
    ++epoch_;
    lock.unlock();
    for (TermListener* l : listeners_) l->OnTermEnd(term);
    ZS_LOG(kInfo, "not leading: decisions stopped, ingest goes on",
           {"identity", options_.identity});
    lock.lock();
    active = false;
  };
  while (!stopping_) {
    if (active && (!want_leading_ || losses_ != term_losses)) {
      end_term();
      continue;
    }
    if (!active && want_leading_) {
      term_losses = losses_;
      term = ++epoch_;
      leading_ = true;
      ++stats_.terms;
      lock.unlock();
      ZS_LOG(kInfo, "leading: this replica decides", {"identity", options_.identity});
      for (TermListener* l : listeners_) l->OnTermStart(term);
      lock.lock();
      active = true;
      continue;
    }
    cv_.wait(lock);
  }
  if (active) end_term();
}

}  // namespace zeroscale::leader
