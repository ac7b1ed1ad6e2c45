#include "scaler/decide/scheduler.h"

#include <utility>

namespace zeroscale::decide {

void TimerQueue::Push(absl::Time at, std::function<void()> fn) {
  heap_.push(Timer{at, seq_++, std::move(fn)});
}

std::function<void()> TimerQueue::Pop() {
  // priority_queue::top is const; the function is moved out before the pop discards it.
  std::function<void()> fn = std::move(const_cast<Timer&>(heap_.top()).fn);
  heap_.pop();
  return fn;
}

void ManualScheduler::Post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  tasks_.push_back(std::move(fn));
}

void ManualScheduler::RunAt(absl::Time at, std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  timers_.Push(at, std::move(fn));
}

size_t ManualScheduler::RunPending() {
  size_t ran = 0;
  for (;;) {
    std::function<void()> fn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!tasks_.empty()) {
        fn = std::move(tasks_.front());
        tasks_.pop_front();
      } else if (!timers_.empty() && timers_.next() <= clock_->Now()) {
        fn = timers_.Pop();
      } else {
        return ran;
      }
    }
    fn();
    ++ran;
  }
}

std::optional<absl::Time> ManualScheduler::NextTimer() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (timers_.empty()) return std::nullopt;
  return timers_.next();
}

size_t ManualScheduler::timers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return timers_.size();
}

void EventLoop::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void EventLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && !InLoopThread()) thread_.join();
}

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void EventLoop::RunAt(absl::Time at, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    timers_.Push(at, std::move(fn));
  }
  cv_.notify_one();
}

void EventLoop::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    std::function<void()> fn;
    if (!tasks_.empty()) {
      fn = std::move(tasks_.front());
      tasks_.pop_front();
    } else if (!timers_.empty() && timers_.next() <= clock_->Now()) {
      fn = timers_.Pop();
    } else {
      clock_->WaitUntil(cv_, lock, timers_.empty() ? absl::InfiniteFuture() : timers_.next());
      continue;
    }
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace zeroscale::decide
