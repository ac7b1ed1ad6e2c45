// The one seam for time: what time it is and everything that waits for a time. Logic
// that waits (work queues with delayed items, restart and retry backoffs, timers, lease
// renewals) waits through its Clock, so tests drive it with a simulated clock
// (tests/testing/fake_clock.h) and never sleep. Plus RFC 3339 helpers.
//
// Thread-safety: implementations are thread-safe; RealClock is.
#ifndef ZEROSCALE_COMMON_TIME_CLOCK_H_
#define ZEROSCALE_COMMON_TIME_CLOCK_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace zeroscale {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // Blocks on `cv`, whose mutex `lock` holds, until it is notified or this clock reaches
  // `deadline` (InfiniteFuture: until notified). May return early, and may have released
  // and re-taken the lock meanwhile: callers re-check their condition in a loop, as with
  // any condition variable.
  virtual void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         absl::Time deadline) const = 0;

  // For a thread that blocks elsewhere (poll(2) on descriptors) yet must act at
  // `deadline`: how long it may block before it looks at the clock again. A simulated
  // clock answers InfiniteDuration() and wakes such threads through Subscribe instead.
  virtual absl::Duration BlockFor(absl::Time deadline) const = 0;

  // Calls `wake` each time this clock moves other than with real time (a simulated
  // clock advanced by a test); the real clock never calls it. `wake` runs on the thread
  // that moves the clock and must not block. Unsubscribe waits for a call in progress.
  virtual uint64_t Subscribe(std::function<void()> wake) const { return 0; }
  virtual void Unsubscribe(uint64_t id) const {}
};

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 absl::Time deadline) const override;
  absl::Duration BlockFor(absl::Time deadline) const override;
  // A process-wide instance for wiring in main().
  static Clock* Get();
};

// "2026-11-25T03:38:33.123Z": UTC, millisecond precision, as the spec's receivedAt.
std::string FormatRfc3339(absl::Time t);

// Accepts any RFC 3339 timestamp (with offset or Z, optional fraction).
absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text);

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_TIME_CLOCK_H_
