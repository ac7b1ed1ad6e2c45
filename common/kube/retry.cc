#include "common/kube/retry.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace zeroscale::kube {
namespace {
constexpr char kHttpStatusUrl[] = "zeroscale.io/kube/http-status";
constexpr char kRetryAfterUrl[] = "zeroscale.io/kube/retry-after-ms";
}  // namespace

void CancelToken::Cancel() {
  std::lock_guard<std::mutex> running(callback_mu_);
  std::map<int, std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return;
    cancelled_ = true;
    callbacks.swap(callbacks_);
  }
  for (auto& [id, fn] : callbacks) fn();
}

bool CancelToken::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

int CancelToken::Register(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!cancelled_) {
      const int id = next_id_++;
      callbacks_.emplace(id, std::move(fn));
      return id;
    }
  }
  fn();
  return -1;
}

void CancelToken::Unregister(int id) {
  if (id < 0) return;
  std::lock_guard<std::mutex> running(callback_mu_);
  std::lock_guard<std::mutex> lock(mu_);
  callbacks_.erase(id);
}

bool ClockSleeper::Sleep(absl::Duration d, CancelToken* cancel) {
  // The condition state is shared so that a Cancel() racing with our return is harmless.
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;
  };
  auto state = std::make_shared<State>();
  const int id = cancel == nullptr ? -1 : cancel->Register([state] {
    std::lock_guard<std::mutex> lock(state->mu);
    state->woken = true;
    state->cv.notify_all();
  });
  const absl::Time deadline = clock_->Now() + d;
  {
    std::unique_lock<std::mutex> lock(state->mu);
    while (!state->woken && clock_->Now() < deadline) clock_->WaitUntil(state->cv, lock, deadline);
  }
  if (cancel == nullptr) return true;
  cancel->Unregister(id);
  return !cancel->cancelled();
}

Sleeper* RealSleeper::Get() {
  static RealSleeper* const sleeper = new RealSleeper();
  return sleeper;
}

int HttpStatusOf(const absl::Status& status) {
  auto p = status.GetPayload(kHttpStatusUrl);
  int code = 0;
  if (p && absl::SimpleAtoi(std::string(*p), &code)) return code;
  return 0;
}

std::optional<absl::Duration> RetryAfterOf(const absl::Status& status) {
  auto p = status.GetPayload(kRetryAfterUrl);
  int64_t ms = 0;
  if (p && absl::SimpleAtoi(std::string(*p), &ms)) return absl::Milliseconds(ms);
  return std::nullopt;
}

bool IsGone(const absl::Status& status) { return HttpStatusOf(status) == 410; }

absl::Status WithHttpDetails(absl::Status status, int http_status,
                             std::optional<absl::Duration> retry_after) {
  if (status.ok()) return status;
  status.SetPayload(kHttpStatusUrl, absl::Cord(absl::StrCat(http_status)));
  if (retry_after) {
    status.SetPayload(kRetryAfterUrl,
                      absl::Cord(absl::StrCat(absl::ToInt64Milliseconds(*retry_after))));
  }
  return status;
}

}  // namespace zeroscale::kube
