#include "common/time/clock.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace zeroscale {

Clock* RealClock::Get() {
  static RealClock* const clock = new RealClock();
  return clock;
}

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not an RFC 3339 timestamp: ", err));
  }
  return t;
}

}  // namespace zeroscale
