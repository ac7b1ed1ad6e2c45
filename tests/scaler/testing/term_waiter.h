// A leader::TermListener a test waits on for the term to start, instead of polling
// leading(). Thread-safe.
#ifndef ZEROSCALE_TESTS_SCALER_TESTING_TERM_WAITER_H_
#define ZEROSCALE_TESTS_SCALER_TESTING_TERM_WAITER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "scaler/leader/leadership.h"

namespace zeroscale::testing {

class TermWaiter : public leader::TermListener {
 public:
  void OnTermStart(uint64_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
    cv_.notify_all();
  }
  void OnTermEnd(uint64_t) override {}
  // True once a term has started; false after ten seconds without one.
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return started_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
};

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_SCALER_TESTING_TERM_WAITER_H_
