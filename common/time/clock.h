// Time source behind an interface so logic can be tested with a fake clock, plus
// RFC 3339 helpers. RealClock is thread-safe.
#ifndef ZEROSCALE_COMMON_TIME_CLOCK_H_
#define ZEROSCALE_COMMON_TIME_CLOCK_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace zeroscale {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // A process-wide instance for wiring in main().
  static Clock* Get();
};

// "2026-11-25T03:38:33.123Z": UTC, millisecond precision, as the spec's receivedAt.
std::string FormatRfc3339(absl::Time t);

// Accepts any RFC 3339 timestamp (with offset or Z, optional fraction).
absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text);

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_TIME_CLOCK_H_
