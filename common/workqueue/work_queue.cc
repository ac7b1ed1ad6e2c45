#include "common/workqueue/work_queue.h"

namespace zeroscale {

void WorkQueue::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Run(); });
}

void WorkQueue::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  urgent_.clear();
  normal_.clear();
  delayed_.clear();
}

void WorkQueue::Post(Priority priority, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    (priority == Priority::kUrgent ? urgent_ : normal_).push_back(std::move(fn));
  }
  cv_.notify_all();
}

void WorkQueue::PostAfter(absl::Duration delay, Priority priority, std::function<void()> fn) {
  if (delay <= absl::ZeroDuration()) {
    Post(priority, std::move(fn));
    return;
  }
  const absl::Time due = clock_->Now() + delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    delayed_.emplace(std::make_pair(due, seq_++), std::make_pair(priority, std::move(fn)));
  }
  cv_.notify_all();
}

size_t WorkQueue::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return urgent_.size() + normal_.size() + delayed_.size();
}

void WorkQueue::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const absl::Time now = clock_->Now();
    while (!delayed_.empty() && delayed_.begin()->first.first <= now) {
      auto node = delayed_.extract(delayed_.begin());
      auto& [priority, fn] = node.mapped();
      (priority == Priority::kUrgent ? urgent_ : normal_).push_back(std::move(fn));
    }
    std::deque<std::function<void()>>* q = !urgent_.empty()   ? &urgent_
                                           : !normal_.empty() ? &normal_
                                                              : nullptr;
    if (q == nullptr) {
      clock_->WaitUntil(cv_, lock,
                        delayed_.empty() ? absl::InfiniteFuture() : delayed_.begin()->first.first);
      continue;
    }
    std::function<void()> fn = std::move(q->front());
    q->pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace zeroscale
