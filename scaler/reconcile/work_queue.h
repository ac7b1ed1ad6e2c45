// A single worker thread with two priorities and delayed tasks. The Kubernetes backend
// runs every API call of one kind on one of these so that the decider's loop never
// waits on the network, and so that the backend's per-workload bookkeeping (the
// resourceVersion each write must carry) is touched by one thread only. Urgent tasks
// (the decider's reads and writes) overtake normal ones (reconciles, resyncs), so a
// resync of thousands of targets never delays a scale-up.
//
// Thread-safety: Post, PostAfter and pending() are thread-safe; Start and Stop are for
// one controlling thread. Tasks run one at a time on the worker thread.
#ifndef ZEROSCALE_SCALER_RECONCILE_WORK_QUEUE_H_
#define ZEROSCALE_SCALER_RECONCILE_WORK_QUEUE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/time/time.h"

namespace zeroscale::reconcile {

class WorkQueue {
 public:
  enum class Priority { kUrgent, kNormal };

  WorkQueue() = default;
  ~WorkQueue() { Stop(); }
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Start();
  // Finishes the task running now, drops the rest (they are never run), joins.
  void Stop();

  void Post(Priority priority, std::function<void()> fn);
  // Queued at `priority` once `delay` has passed (on the steady clock).
  void PostAfter(absl::Duration delay, Priority priority, std::function<void()> fn);
  // Tasks queued or waiting for their delay.
  size_t pending() const;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  void Run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> urgent_;
  std::deque<std::function<void()>> normal_;
  // Ordered by due time, then by insertion (the sequence number), so equal delays keep
  // their order.
  std::map<std::pair<SteadyTime, uint64_t>, std::pair<Priority, std::function<void()>>> delayed_;
  uint64_t seq_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zeroscale::reconcile

#endif  // ZEROSCALE_SCALER_RECONCILE_WORK_QUEUE_H_
