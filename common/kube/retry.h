// Retry plumbing shared by the Kubernetes client, the CustomAutoscaler watcher and the
// leader elector: a cancellation token that can interrupt blocking calls, an injectable
// Sleeper so tests can observe requested delays instead of waiting, and jittered
// exponential backoff.
//
// Thread-safety: CancelToken and RealSleeper are thread-safe. Backoff is not; each loop
// owns its own.
#ifndef ZEROSCALE_COMMON_KUBE_RETRY_H_
#define ZEROSCALE_COMMON_KUBE_RETRY_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

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

// Waits on the wall clock, waking early on cancellation.
class RealSleeper : public Sleeper {
 public:
  bool Sleep(absl::Duration d, CancelToken* cancel) override;
  static Sleeper* Get();
};

struct BackoffOptions {
  absl::Duration initial = absl::Milliseconds(500);
  absl::Duration max = absl::Seconds(30);
  double multiplier = 2.0;
  // Each delay is scaled by a random factor in [1 - jitter, 1 + jitter] so that many
  // scaler replicas do not hammer a recovering API server in lockstep.
  double jitter = 0.2;
};

class Backoff {
 public:
  explicit Backoff(BackoffOptions options = {});
  // The delay before the next attempt; grows until Reset().
  absl::Duration Next();
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  BackoffOptions options_;
  int attempt_ = 0;
  absl::BitGen gen_;
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
