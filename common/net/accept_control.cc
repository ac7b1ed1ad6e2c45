#include "common/net/accept_control.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::net {

AcceptControl::AcceptControl(std::string name, ListenerLimits limits, const Clock* clock,
                             ListenerObserver* observer)
    : name_(std::move(name)),
      limits_(limits),
      clock_(clock),
      observer_(observer),
      backoff_(BackoffPolicy{limits.backoff_min, limits.backoff_max, 2.0, Jitter::kNone}) {}

bool AcceptControl::MayAccept(std::function<void()> resume) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (limits_.max_connections <= 0 || open_ < limits_.max_connections) return true;
    waiting_.push_back(std::move(resume));
    ++stats_.at_capacity;
  }
  if (observer_) observer_->OnAtCapacity(name_);
  return false;
}

void AcceptControl::OnAccepted() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    backoff_.Reset();
    ++open_;
    ++stats_.accepted;
    ++stats_.open;
  }
  if (observer_) observer_->OnAccepted(name_);
}

absl::Duration AcceptControl::OnAcceptError(absl::string_view error) {
  absl::Duration wait;
  uint64_t failures = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.accept_errors;
    ++errors_since_log_;
    wait = backoff_.Next();
    const absl::Time now = clock_->Now();
    if (now - last_log_ >= limits_.log_interval) {
      last_log_ = now;
      failures = errors_since_log_;
      errors_since_log_ = 0;
      ++stats_.log_lines;
    }
  }
  if (observer_) observer_->OnAcceptError(name_);
  if (failures > 0) {
    ZS_LOG(
        kWarning, "accept failed; backing off", {"listener", name_}, {"error", std::string(error)},
        {"failures", absl::StrCat(failures)}, {"retry_in", absl::FormatDuration(wait)},
        {"note",
         absl::StrCat("at most one such line per ", absl::FormatDuration(limits_.log_interval))});
  }
  return wait;
}

void AcceptControl::Release() {
  std::function<void()> resume;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
    if (stats_.open > 0) --stats_.open;
    if (!closed_ && !waiting_.empty() &&
        (limits_.max_connections <= 0 || open_ < limits_.max_connections)) {
      resume = std::move(waiting_.back());
      waiting_.pop_back();
    }
  }
  if (observer_) observer_->OnClosed(name_);
  if (resume) resume();
}

void AcceptControl::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  waiting_.clear();
}

ListenerStats AcceptControl::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& o) noexcept {
  if (this != &o) {
    if (control_) control_->Release();
    control_ = o.control_;
    o.control_ = nullptr;
  }
  return *this;
}

ConnectionSlot::~ConnectionSlot() {
  if (control_) control_->Release();
}

}  // namespace zeroscale::net
