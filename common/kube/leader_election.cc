#include "common/kube/leader_election.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::kube {

LeaderElector::LeaderElector(KubeClient* client, LeaderElectionConfig config,
                             LeaderCallbacks callbacks, Clock* clock, Sleeper* sleeper)
    : client_(client),
      config_(std::move(config)),
      callbacks_(std::move(callbacks)),
      clock_(clock),
      sleeper_(sleeper) {}

LeaderElector::~LeaderElector() { Stop(); }

std::string LeaderElector::observed_leader() const {
  std::lock_guard<std::mutex> lock(mu_);
  return observed_.holder_identity;
}

std::string LeaderElector::observed_annotation(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = observed_.annotations.find(key);
  return it == observed_.annotations.end() ? "" : it->second;
}

namespace {

// `annotations` with ours applied: set, or removed when empty.
std::map<std::string, std::string> WithOurs(std::map<std::string, std::string> annotations,
                                            const std::map<std::string, std::string>& ours) {
  for (const auto& [key, value] : ours) {
    if (value.empty()) {
      annotations.erase(key);
    } else {
      annotations[key] = value;
    }
  }
  return annotations;
}

}  // namespace

void LeaderElector::SetLeader(bool leading) {
  if (leader_.exchange(leading) == leading) return;
  ZS_LOG(kInfo, leading ? "became leader" : "stopped leading", {"identity", config_.identity},
         {"lease", absl::StrCat(config_.namespace_, "/", config_.lease_name)});
  if (leading) {
    if (callbacks_.on_started_leading) callbacks_.on_started_leading();
  } else {
    if (callbacks_.on_stopped_leading) callbacks_.on_stopped_leading();
  }
}

void LeaderElector::Observe(const Lease& lease) {
  std::string previous_holder;
  bool holder_changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Any write (a renewal included) changes the resourceVersion; only an unchanged
    // record counts towards expiry.
    if (!have_observed_ || observed_.resource_version != lease.resource_version) {
      holder_changed = !have_observed_ || observed_.holder_identity != lease.holder_identity;
      observed_ = lease;
      observed_at_ = clock_->Now();
      have_observed_ = true;
    }
  }
  if (holder_changed && callbacks_.on_new_leader) callbacks_.on_new_leader(lease.holder_identity);
}

bool LeaderElector::Acquire(const Lease* current) {
  const absl::Time now = clock_->Now();
  Lease next;
  next.namespace_ = config_.namespace_;
  next.name = config_.lease_name;
  next.holder_identity = config_.identity;
  // Whole seconds on the wire, rounded up: others must never see a shorter lease than the
  // one this replica keeps.
  next.lease_duration_seconds = static_cast<int32_t>(std::max<int64_t>(
      1, absl::ToInt64Seconds(absl::Ceil(config_.lease_duration, absl::Seconds(1)))));
  next.renew_time = now;
  absl::StatusOr<Lease> written;
  if (current == nullptr) {
    next.acquire_time = now;
    next.annotations = WithOurs({}, config_.annotations);
    written = client_->CreateLease(next);
  } else {
    next.resource_version = current->resource_version;
    // As client-go: a change of hands (from a rival or a released lease) is a transition.
    const bool ours = current->holder_identity == config_.identity;
    next.acquire_time =
        ours && current->acquire_time != absl::InfinitePast() ? current->acquire_time : now;
    next.lease_transitions = current->lease_transitions + (ours ? 0 : 1);
    next.annotations = WithOurs(current->annotations, config_.annotations);
    written = client_->UpdateLease(next);
  }
  if (!written.ok()) {
    if (written.status().code() == absl::StatusCode::kAborted) {
      ZS_LOG(kInfo, "lost the race for the lease", {"identity", config_.identity});
    } else {
      ZS_LOG(kWarning, "cannot write the lease", {"identity", config_.identity},
             {"error", written.status().ToString()});
    }
    return false;
  }
  Observe(*written);
  last_renew_ = now;
  return true;
}

bool LeaderElector::TryAcquireOrRenew() {
  const absl::Time now = clock_->Now();
  absl::StatusOr<Lease> got = client_->GetLease(config_.namespace_, config_.lease_name);
  bool ok = false;
  if (got.status().code() == absl::StatusCode::kNotFound) {
    ok = Acquire(nullptr);
  } else if (got.ok()) {
    Observe(*got);
    if (got->holder_identity == config_.identity) {
      ok = Acquire(&*got);
    } else {
      absl::Time observed_at;
      {
        std::lock_guard<std::mutex> lock(mu_);
        observed_at = observed_at_;
      }
      const absl::Duration duration = got->lease_duration_seconds > 0
                                          ? absl::Seconds(got->lease_duration_seconds)
                                          : config_.lease_duration;
      if (!got->holder_identity.empty() && now < observed_at + duration) {
        // Someone else holds a live lease; if we thought we led, we do not any more.
        SetLeader(false);
        return false;
      }
      ok = Acquire(&*got);
    }
  } else {
    ZS_LOG(kWarning, "cannot read the lease", {"identity", config_.identity},
           {"error", got.status().ToString()});
  }
  if (ok) {
    SetLeader(true);
    return true;
  }
  // A leader rides out brief API trouble, but gives up before its lease could expire
  // in others' eyes.
  if (leader_.load() && now - last_renew_ < config_.renew_deadline) return true;
  SetLeader(false);
  return false;
}

void LeaderElector::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    while (!cancel_.cancelled()) {
      TryAcquireOrRenew();
      if (!sleeper_->Sleep(config_.retry_period, &cancel_)) break;
    }
  });
}

void LeaderElector::Release() {
  absl::StatusOr<Lease> got = client_->GetLease(config_.namespace_, config_.lease_name);
  if (!got.ok() || got->holder_identity != config_.identity) return;
  Lease released = *got;
  released.holder_identity.clear();
  for (const auto& [key, value] : config_.annotations) released.annotations.erase(key);
  released.lease_duration_seconds = 1;
  released.renew_time = clock_->Now();
  absl::StatusOr<Lease> written = client_->UpdateLease(released);
  if (!written.ok()) {
    ZS_LOG(kWarning, "cannot release the lease", {"error", written.status().ToString()});
  }
}

void LeaderElector::Stop() {
  cancel_.Cancel();
  if (thread_.joinable()) thread_.join();
  if (leader_.load()) {
    if (config_.release_on_stop) Release();
    SetLeader(false);
  }
}

}  // namespace zeroscale::kube
