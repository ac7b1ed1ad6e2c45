// Retry plumbing shared by the Kubernetes client, the informers and the leader elector:
// a cancellation token that can interrupt blocking calls, and an injectable Sleeper so
// tests can observe requested delays instead of waiting. Backoff itself is the common
// helper (common/time/backoff.h).
//
// Thread-safety: CancelToken and the sleepers are thread-safe.
#ifndef ZEROSCALE_COMMON_KUBE_RETRY_H_
#define ZEROSCALE_COMMON_KUBE_RETRY_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/time/clock.h"

namespace zeroscale::kube {

// Cancels blocking operations (a watch stream, a backoff sleep) from another thread.
class CancelToken {
 public:
  void Cancel();
  bool cancelled() const;
  // Runs `fn` on Cancel(), or at once when already cancelled. The id is for Unregister,
  // which must be called before whatever `fn` refers to goes away.
  int Register(std::function<void()> fn);
  void Unregister(int id);

 private:
  mutable std::mutex mu_;
  // Held while callbacks run so that Unregister() waits for one in flight.
  std::mutex callback_mu_;
  bool cancelled_ = false;
  int next_id_ = 0;
  std::map<int, std::function<void()>> callbacks_;
};

// Waits between retries. Returns false when `cancel` fired before the delay elapsed.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual bool Sleep(absl::Duration d, CancelToken* cancel) = 0;
};

// Waits on a Clock (the project's one seam for waiting), waking early on cancellation:
// with a simulated clock the sleep ends when the test moves time.
class ClockSleeper : public Sleeper {
 public:
  // `clock` must outlive the sleeper.
  explicit ClockSleeper(const Clock* clock) : clock_(clock) {}
  bool Sleep(absl::Duration d, CancelToken* cancel) override;

 private:
  const Clock* const clock_;
};

// Sleeps on the real clock.
class RealSleeper : public ClockSleeper {
 public:
  RealSleeper() : ClockSleeper(RealClock::Get()) {}
  static Sleeper* Get();
};

// The HTTP status an absl::Status produced by this client came from (0 when none), and
// the server's Retry-After when it sent one.
int HttpStatusOf(const absl::Status& status);
std::optional<absl::Duration> RetryAfterOf(const absl::Status& status);
// 410 Gone: the resourceVersion asked for is older than the server's history; re-list.
bool IsGone(const absl::Status& status);
// Attaches the HTTP status and Retry-After to `status`.
absl::Status WithHttpDetails(absl::Status status, int http_status,
                             std::optional<absl::Duration> retry_after);

}  // namespace zeroscale::kube

#endif  // ZEROSCALE_COMMON_KUBE_RETRY_H_
