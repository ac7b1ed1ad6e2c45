#include "scaler/ingest/ingest_queue.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/time/backoff.h"

namespace zeroscale::ingest {

IngestQueue::IngestQueue(store::PodmetricStore* store, IngestMetrics* metrics, const Clock* clock,
                         Options options)
    : store_(store), metrics_(metrics), clock_(clock), options_(options) {}

IngestQueue::~IngestQueue() { Stop(absl::ZeroDuration()); }

void IngestQueue::Start() {
  // Know Redis's state before the first request, so /readyz and POST /metrics are
  // right from the start.
  absl::Status s = store_->Ping();
  if (!s.ok()) metrics_->redis_errors.Increment();
  SetRedisUp(s.ok());
  writer_ = std::thread([this] { Run(); });
}

void IngestQueue::Stop(absl::Duration grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      stop_deadline_ = clock_->Now() + grace;
    }
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void IngestQueue::Submit(std::vector<store::EncodedPodmetric> samples, bool fresh_stream,
                         Done done) {
  const size_t n = samples.size();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_samples_ += n;
    queue_.push_back({std::move(samples), fresh_stream, std::move(done)});
  }
  metrics_->queued.Increment(static_cast<double>(n));
  cv_.notify_one();
}

bool IngestQueue::HasSpace() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_samples_ < options_.high_water;
}

size_t IngestQueue::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_samples_;
}

void IngestQueue::NotifyWhenSpace(std::function<void()> resume) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queued_samples_ >= options_.low_water) {
      waiters_.push_back(std::move(resume));
      return;
    }
  }
  resume();
}

void IngestQueue::SetRedisUp(bool up) {
  if (redis_up_.exchange(up) != up) {
    if (up) {
      ZS_LOG(kInfo, "redis reachable", {"redis", "up"});
    } else {
      ZS_LOG(kWarning, "redis unreachable; holding samples unacknowledged", {"redis", "down"});
    }
  }
  metrics_->redis_up.Set(up ? 1 : 0);
}

void IngestQueue::Run() {
  absl::Time last_forget = clock_->Now();
  for (;;) {
    std::vector<Submission> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const absl::Time health_check = clock_->Now() + options_.health_interval;
      while (queue_.empty() && !stopping_ && clock_->Now() < health_check) {
        clock_->WaitUntil(cv_, lock, health_check);
      }
      if (queue_.empty() && stopping_) return;
      size_t n = 0;
      while (!queue_.empty() &&
             (n == 0 || n + queue_.front().samples.size() <= options_.max_batch)) {
        n += queue_.front().samples.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (batch.empty()) {
      // Idle: keep /readyz honest even when no samples flow.
      absl::Status s = store_->Ping();
      if (!s.ok()) metrics_->redis_errors.Increment();
      SetRedisUp(s.ok());
    } else {
      WriteBatch(batch);
    }
    // Under load too: a writer that is never idle must still forget vanished pods.
    if (redis_up_.load() && clock_->Now() - last_forget > options_.forget_interval) {
      last_forget = clock_->Now();
      if (absl::Status f = store_->ForgetVanishedPods(); !f.ok()) {
        ZS_LOG(kWarning, "cannot forget vanished pods", {"error", std::string(f.message())});
      }
    }
  }
}

void IngestQueue::WriteBatch(std::vector<Submission>& batch) {
  std::vector<const store::EncodedPodmetric*> ptrs;
  for (Submission& s : batch) {
    for (const store::EncodedPodmetric& e : s.samples) {
      if (s.fresh_stream) store_->ForgetMark(e.sample.id);
      ptrs.push_back(&e);
    }
  }
  Backoff backoff({absl::Milliseconds(50), absl::Seconds(2), 2.0, Jitter::kNone});
  absl::StatusOr<store::WriteResult> result;
  for (;;) {
    const absl::Time start = clock_->Now();
    result = store_->Write(ptrs);
    if (result.ok()) {
      metrics_->redis_write_seconds.Observe(absl::ToDoubleSeconds(clock_->Now() - start));
      SetRedisUp(true);
      break;
    }
    metrics_->redis_errors.Increment();
    SetRedisUp(false);
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_ && clock_->Now() >= stop_deadline_) {
      ZS_LOG(kWarning, "stopping with samples not stored; senders will replay them",
             {"samples", absl::StrCat(ptrs.size())});
      return;
    }
    clock_->WaitUntil(cv_, lock, clock_->Now() + backoff.Next());
  }
  metrics_->batch_size.Observe(static_cast<double>(ptrs.size()));
  metrics_->stored.Increment(static_cast<double>(result->stored));
  metrics_->duplicates.Increment(static_cast<double>(result->duplicates));
  if (!result->failed.empty())
    metrics_->Rejected("redis", static_cast<double>(result->failed.size()));

  // Map batch-wide failure indexes back to each submission.
  size_t base = 0;
  auto failed = result->failed.begin();
  for (Submission& s : batch) {
    Outcome outcome;
    const size_t end = base + s.samples.size();
    for (; failed != result->failed.end() && failed->first < end; ++failed) {
      outcome.failed.emplace_back(failed->first - base, failed->second);
    }
    base = end;
    s.done(outcome);
  }
  metrics_->queued.Decrement(static_cast<double>(ptrs.size()));
  std::vector<std::function<void()>> resume;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_samples_ -= ptrs.size();
    if (queued_samples_ < options_.low_water) resume.swap(waiters_);
  }
  for (auto& r : resume) r();
}

}  // namespace zeroscale::ingest
