#include "common/time/clock.h"

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"

namespace zeroscale {

void RealClock::WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          absl::Time deadline) const {
  if (deadline == absl::InfiniteFuture()) {
    cv.wait(lock);
    return;
  }
  const absl::Duration left = deadline - Now();
  if (left <= absl::ZeroDuration()) return;
  // On the steady clock: a wall-clock jump only shifts when the caller looks again.
  cv.wait_for(lock, absl::ToChronoNanoseconds(left));
}

absl::Duration RealClock::BlockFor(absl::Time deadline) const {
  if (deadline == absl::InfiniteFuture()) return absl::InfiniteDuration();
  return std::max(absl::ZeroDuration(), deadline - Now());
}

Clock* RealClock::Get() {
  static RealClock* const clock = new RealClock();
  return clock;
}

std::string FormatRfc3339(absl::Time t) {
  // Formatting with cctz costs about a microsecond; ingest stamps every sample, and
  // nearly all stamps of a thread fall in the same second, so cache that part.
  thread_local int64_t cached_second = INT64_MIN;
  thread_local char cached[20];  // "YYYY-MM-DDTHH:MM:SS"
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) {
    return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", t, absl::UTCTimeZone());
  }
  const int64_t ms = absl::ToUnixMillis(t);
  const int64_t second = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  const int64_t milli = ms - second * 1000;
  if (second != cached_second) {
    const std::string head =
        absl::FormatTime("%Y-%m-%d%ET%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
    if (head.size() != sizeof(cached)) {  // years outside 0000..9999
      return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", t, absl::UTCTimeZone());
    }
    std::memcpy(cached, head.data(), sizeof(cached));
    cached_second = second;
  }
  std::string out(cached, sizeof(cached));
  out.append({'.', static_cast<char>('0' + milli / 100), static_cast<char>('0' + milli / 10 % 10),
              static_cast<char>('0' + milli % 10), 'Z'});
  return out;
}

namespace {

// "YYYY-MM-DDTHH:MM:SS[.fraction]Z", the form zeroscale itself writes; anything else
// goes through absl::ParseTime.
bool ParseCanonicalUtc(absl::string_view s, absl::Time* out) {
  auto digits = [&](size_t pos, size_t n, int* v) {
    *v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      *v = *v * 10 + (s[i] - '0');
    }
    return true;
  };
  if (s.size() < 20 || s.back() != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
      s[13] != ':' || s[16] != ':') {
    return false;
  }
  int y, mo, d, h, mi, sec;
  if (!digits(0, 4, &y) || !digits(5, 2, &mo) || !digits(8, 2, &d) || !digits(11, 2, &h) ||
      !digits(14, 2, &mi) || !digits(17, 2, &sec)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  const absl::CivilSecond cs(y, mo, d, h, mi, sec);
  if (cs.year() != y || cs.month() != mo || cs.day() != d || cs.hour() != h || cs.minute() != mi ||
      cs.second() != sec) {
    return false;  // normalised: not a real date (Feb 30, leap second)
  }
  int64_t nanos = 0;
  if (s.size() > 20) {
    if (s[19] != '.' || s.size() - 21 == 0 || s.size() - 21 > 9) return false;
    int64_t scale = 100'000'000;
    for (size_t i = 20; i + 1 < s.size(); ++i, scale /= 10) {
      if (s[i] < '0' || s[i] > '9') return false;
      nanos += (s[i] - '0') * scale;
    }
  }
  *out = absl::FromUnixSeconds((cs - absl::CivilSecond(1970, 1, 1, 0, 0, 0))) +
         absl::Nanoseconds(nanos);
  return true;
}

}  // namespace

absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text) {
  absl::Time t;
  if (ParseCanonicalUtc(text, &t)) return t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not an RFC 3339 timestamp: ", err));
  }
  return t;
}

}  // namespace zeroscale
