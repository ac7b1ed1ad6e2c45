// A manually advanced Clock for tests: time moves only when the test says so.
// Thread-safe.
#ifndef ZEROSCALE_TESTS_TESTING_FAKE_CLOCK_H_
#define ZEROSCALE_TESTS_TESTING_FAKE_CLOCK_H_

#include <mutex>

#include "common/time/clock.h"

namespace zeroscale::testing {

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}
  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ = t;
  }

 private:
  mutable std::mutex mu_;
  absl::Time now_;
};

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_FAKE_CLOCK_H_
