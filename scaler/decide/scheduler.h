// Where the decider's work runs: a Scheduler runs posted tasks and timers one at a time,
// so the automata it serves need no locks. EventLoop is the production implementation
// (one thread); ManualScheduler runs nothing until told to, so tests and benchmarks
// drive the decider deterministically with a fake clock.
//
// Thread-safety: Post and RunAt are thread-safe on both. ManualScheduler::RunPending
// and EventLoop::Start/Stop must be called from one controlling thread.
#ifndef ZEROSCALE_SCALER_DECIDE_SCHEDULER_H_
#define ZEROSCALE_SCALER_DECIDE_SCHEDULER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <queue>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/time/clock.h"

namespace zeroscale::decide {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Runs `fn` on the scheduler's thread, after the tasks posted before it.
  virtual void Post(std::function<void()> fn) = 0;
  // Runs `fn` on the scheduler's thread once the clock reaches `at`. Timers cannot be
  // cancelled: callers re-check their own deadlines when a timer fires, which is cheaper
  // than cancelling for the common case of a deadline that keeps moving.
  virtual void RunAt(absl::Time at, std::function<void()> fn) = 0;
};

// Orders timers by time, then by the order they were set, so runs are deterministic.
class TimerQueue {
 public:
  void Push(absl::Time at, std::function<void()> fn);
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  absl::Time next() const { return heap_.top().at; }
  // Removes and returns the earliest timer's function.
  std::function<void()> Pop();

 private:
  struct Timer {
    absl::Time at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Timer& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> heap_;
  uint64_t seq_ = 0;
};

class ManualScheduler : public Scheduler {
 public:
  explicit ManualScheduler(const Clock* clock) : clock_(clock) {}

  void Post(std::function<void()> fn) override;
  void RunAt(absl::Time at, std::function<void()> fn) override;

  // Runs posted tasks and the timers due at clock->Now(), including those they post or
  // set, until nothing runnable is left. Returns how many ran.
  size_t RunPending();
  // The earliest timer not yet run.
  std::optional<absl::Time> NextTimer() const;
  size_t timers() const;

 private:
  const Clock* const clock_;
  mutable std::mutex mu_;
  std::deque<std::function<void()>> tasks_;
  TimerQueue timers_;
};

// One thread running tasks in order and timers when due on `clock` (waiting through it,
// so a simulated clock fires timers when a test moves time).
class EventLoop : public Scheduler {
 public:
  explicit EventLoop(const Clock* clock = RealClock::Get()) : clock_(clock) {}
  ~EventLoop() override { Stop(); }
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void Start();
  // Finishes the task running now, drops the rest, joins the thread. Idempotent.
  void Stop();
  bool InLoopThread() const { return std::this_thread::get_id() == thread_.get_id(); }

  void Post(std::function<void()> fn) override;
  void RunAt(absl::Time at, std::function<void()> fn) override;

 private:
  void Run();

  const Clock* const clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  TimerQueue timers_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_SCHEDULER_H_
