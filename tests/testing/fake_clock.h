// A manually advanced Clock for tests: time moves only when the test says so, and
// everything that waits through the Clock seam (work queues, event loops, backoffs,
// leases) wakes when it does. A test can also wait, without sleeping, until a thread
// waits for a deadline (AwaitWaiter), so it knows what the code under test is waiting
// for before it moves time.
// Thread-safe.
#ifndef ZEROSCALE_TESTS_TESTING_FAKE_CLOCK_H_
#define ZEROSCALE_TESTS_TESTING_FAKE_CLOCK_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/time/clock.h"

namespace zeroscale::testing {

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}

  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }

  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 absl::Time deadline) const override {
    auto waiter = std::make_shared<Waiter>(Waiter{&cv, lock.mutex(), deadline});
    {
      std::lock_guard<std::mutex> g(mu_);
      if (now_ >= deadline) return;
      waiters_.push_back(waiter);
      changed_.notify_all();
    }
    cv.wait(lock);
    // The waiter leaves with the caller's lock released: a concurrent Advance may be
    // about to lock it to notify, and must be done with it before the caller (and its
    // mutex) can go away.
    lock.unlock();
    {
      std::unique_lock<std::mutex> g(mu_);
      for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
        if (*it == waiter) {
          waiters_.erase(it);
          break;
        }
      }
      changed_.wait(g, [&] { return waiter->busy == 0; });
    }
    lock.lock();
  }

  absl::Duration BlockFor(absl::Time deadline) const override {
    return deadline <= Now() ? absl::ZeroDuration() : absl::InfiniteDuration();
  }

  uint64_t Subscribe(std::function<void()> wake) const override {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t id = ++next_id_;
    subscribers_[id] = std::make_shared<Subscriber>(Subscriber{std::move(wake)});
    return id;
  }
  void Unsubscribe(uint64_t id) const override {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = subscribers_.find(id);
    if (it == subscribers_.end()) return;
    std::shared_ptr<Subscriber> s = it->second;
    subscribers_.erase(it);
    changed_.wait(lock, [&] { return s->busy == 0; });
  }

  void Advance(absl::Duration d) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      now_ += d;
    }
    // Outside this lock: waiters hold their own locks when they read the time.
    WakeAll();
  }
  void Set(absl::Time t) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      now_ = t;
    }
    WakeAll();
  }

  // Wakes the waiters whose deadline has come, and every subscriber (Advance and Set do).
  void WakeAll() const {
    std::vector<std::shared_ptr<Waiter>> waiters;
    std::vector<std::shared_ptr<Subscriber>> subscribers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& w : waiters_) {
        if (w->deadline <= now_) {
          ++w->busy;
          waiters.push_back(w);
        }
      }
      for (const auto& [id, s] : subscribers_) {
        ++s->busy;
        subscribers.push_back(s);
      }
    }
    for (const auto& w : waiters) {
      std::lock_guard<std::mutex> user(*w->mu);
      w->cv->notify_all();
    }
    for (const auto& s : subscribers) s->wake();
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& w : waiters) --w->busy;
    for (const auto& s : subscribers) --s->busy;
    changed_.notify_all();
  }

  // Blocks (up to `timeout` of real time) until some thread waits on this clock for a
  // deadline in [from, to] that is still ahead; the earliest such deadline, or nullopt on
  // timeout.
  std::optional<absl::Time> AwaitWaiter(absl::Time from, absl::Time to,
                                        absl::Duration timeout = absl::Seconds(10)) const {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<absl::Time> found;
    changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
      for (const auto& w : waiters_) {
        // A deadline already reached belongs to a waiter that is waking up.
        if (w->deadline <= now_) continue;
        if (w->deadline >= from && w->deadline <= to && (!found || w->deadline < *found)) {
          found = w->deadline;
        }
      }
      return found.has_value();
    });
    return found;
  }

 private:
  struct Waiter {
    std::condition_variable* cv;
    std::mutex* mu;
    absl::Time deadline;
    int busy = 0;  // Advance calls notifying it now
  };
  struct Subscriber {
    std::function<void()> wake;
    int busy = 0;
  };

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  absl::Time now_;
  mutable std::vector<std::shared_ptr<Waiter>> waiters_;
  mutable std::map<uint64_t, std::shared_ptr<Subscriber>> subscribers_;
  mutable uint64_t next_id_ = 0;
};

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_FAKE_CLOCK_H_
