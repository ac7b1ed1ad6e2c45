// A single worker thread with two priorities and delayed tasks. The scaler's Kubernetes
// units (reconciler, actuator, reporter) each run their API calls on one of these, so
// that the decider's loop never waits on the network and each unit's bookkeeping is
// touched by one thread only. Urgent tasks (the decider's reads and writes) overtake
// normal ones (resyncs), so a resync of thousands of targets never delays a scale-up.
//
// Delays are timed on a Clock, so with a simulated clock a delayed task becomes due when
// the test moves time, and the worker thread wakes for it.
//
// Thread-safety: Post, PostAfter and pending() are thread-safe; Start and Stop are for
// one controlling thread. Tasks run one at a time on the worker thread.
#ifndef ZEROSCALE_COMMON_WORKQUEUE_WORK_QUEUE_H_
#define ZEROSCALE_COMMON_WORKQUEUE_WORK_QUEUE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/time/time.h"
#include "common/time/clock.h"

namespace zeroscale {

class WorkQueue {
 public:
  enum class Priority { kUrgent, kNormal };

  // `clock` must outlive the queue.
  explicit WorkQueue(const Clock* clock = RealClock::Get()) : clock_(clock) {}
  ~WorkQueue() { Stop(); }
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Start();
  // Finishes the task running now, drops the rest (they are never run), joins.
  void Stop();

  void Post(Priority priority, std::function<void()> fn);
  // Queued at `priority` once `delay` has passed on the clock.
  void PostAfter(absl::Duration delay, Priority priority, std::function<void()> fn);
  // Tasks queued or waiting for their delay.
  size_t pending() const;

 private:
  void Run();

  const Clock* const clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> urgent_;
  std::deque<std::function<void()>> normal_;
  // Ordered by due time, then by insertion (the sequence number), so equal delays keep
  // their order.
  std::map<std::pair<absl::Time, uint64_t>, std::pair<Priority, std::function<void()>>> delayed_;
  uint64_t seq_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_WORKQUEUE_WORK_QUEUE_H_
