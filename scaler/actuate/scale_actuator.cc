#include "scaler/actuate/scale_actuator.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::actuate {
namespace {

using Priority = WorkQueue::Priority;

absl::Status NotLeading(absl::string_view workload) {
  return absl::FailedPreconditionError(
      absl::StrCat("not the leader: ", workload, " is left to the replica holding the lease"));
}

}  // namespace

ScaleActuator::ScaleActuator(kube::KubeClient* client, const leader::Leadership* leadership,
                             ScaleActuatorOptions options, Clock* clock)
    : client_(client),
      leadership_(leadership),
      options_(std::move(options)),
      clock_(clock),
      worker_(clock) {}

ScaleActuator::~ScaleActuator() { Stop(); }

void ScaleActuator::Attach(decide::Decider* decider, ActuationListener* listener) {
  decider_ = decider;
  listener_ = listener;
}

void ScaleActuator::Start() { worker_.Start(); }

void ScaleActuator::Stop() { worker_.Stop(); }

ScaleActuatorStats ScaleActuator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void ScaleActuator::Count(int ScaleActuatorStats::*counter) {
  std::lock_guard<std::mutex> lock(mu_);
  ++(stats_.*counter);
}

void ScaleActuator::Track(const std::string& workload, const kube::WorkloadRef& ref,
                          const kube::Scale& scale) {
  std::lock_guard<std::mutex> lock(mu_);
  // The decider gets this count with the spec (Upsert), so it is what it believes.
  Target& t = targets_[workload];
  t.ref = ref;
  t.replicas = scale.spec_replicas;
}

void ScaleActuator::Untrack(const std::string& workload) {
  std::lock_guard<std::mutex> lock(mu_);
  targets_.erase(workload);
}

void ScaleActuator::OnTermStart(uint64_t epoch) {
  worker_.PostAfter(options_.resync, Priority::kNormal, [this, epoch] { ResyncAll(epoch); });
}

void ScaleActuator::OnTermEnd(uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  targets_.clear();
}

bool ScaleActuator::NoteRead(Target* t, const kube::Scale& scale) {
  if (scale.spec_replicas == t->replicas) return false;
  // Changed outside zeroscale. The decider learns of it asynchronously and may have a
  // decision on the old count under way: that write's precondition fails, and it
  // re-reads.
  t->replicas = scale.spec_replicas;
  return true;
}

void ScaleActuator::ResyncAll(uint64_t epoch) {
  if (!leadership_->Current(epoch)) return;
  std::vector<std::string> workloads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [workload, t] : targets_) workloads.push_back(workload);
  }
  // One task per target, so the decider's reads and writes overtake a long round.
  for (std::string& w : workloads) {
    worker_.Post(Priority::kNormal, [this, epoch, w = std::move(w)] { ResyncOne(epoch, w); });
  }
  // The next round is timed from the end of this one: a slow API server must not make
  // rounds pile up.
  worker_.Post(Priority::kNormal, [this, epoch] {
    if (!leadership_->Current(epoch)) return;
    worker_.PostAfter(options_.resync, Priority::kNormal, [this, epoch] { ResyncAll(epoch); });
  });
}

void ScaleActuator::ResyncOne(uint64_t epoch, const std::string& workload) {
  if (!leadership_->Current(epoch)) return;
  absl::StatusOr<Target> target = TargetOf(workload);
  if (!target.ok()) return;
  absl::StatusOr<kube::Scale> scale = client_->GetScale(target->ref);
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto t = targets_.find(workload);
    if (t == targets_.end()) return;
    if (scale.ok()) changed = NoteRead(&t->second, *scale);
  }
  if (listener_ != nullptr) {
    listener_->OnTargetRead(workload, scale.status(), scale.ok() ? scale->uid : "");
  }
  if (changed) {
    ZS_LOG(kInfo, "replicas changed outside zeroscale", {"workload", workload},
           {"replicas", absl::StrCat(scale->spec_replicas)});
    decider_->OnObservedReplicas(workload, scale->spec_replicas);
  }
}

std::optional<absl::Duration> ScaleActuator::RetryDelay(const absl::Status& s, int attempt) {
  // Only what the client maps to kUnavailable (429, 5xx, no answer) may pass by itself.
  if (!absl::IsUnavailable(s) || attempt >= options_.api_attempts) return std::nullopt;
  if (std::optional<absl::Duration> ra = kube::RetryAfterOf(s)) {
    return std::min(*ra, options_.max_retry_after);
  }
  return options_.api_backoff.Delay(attempt - 1, uniform_());
}

absl::StatusOr<ScaleActuator::Target> ScaleActuator::TargetFor(uint64_t epoch,
                                                               const std::string& workload) const {
  if (!leadership_->Current(epoch)) return NotLeading(workload);
  return TargetOf(workload);
}

absl::StatusOr<ScaleActuator::Target> ScaleActuator::TargetOf(const std::string& workload) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = targets_.find(workload);
  if (t == targets_.end()) {
    return absl::NotFoundError(absl::StrCat("no CustomAutoscaler drives ", workload));
  }
  return t->second;
}

void ScaleActuator::SetReplicas(const std::string& workload, int32_t from, int32_t n,
                                const std::string& reason, std::function<void(absl::Status)> done) {
  if (options_.dry_run) {
    // The decider does not call this in dry-run; should anything else, nothing is written.
    Count(&ScaleActuatorStats::refused_writes);
    done(absl::FailedPreconditionError(
        absl::StrCat("dry run: ", workload, " is not scaled to ", n, " replicas")));
    return;
  }
  const uint64_t epoch = leadership_->epoch();
  worker_.Post(Priority::kUrgent,
               [this, epoch, workload, from, n, done = std::move(done)]() mutable {
                 DoSet(epoch, workload, from, n, std::move(done), 1);
               });
}

absl::StatusOr<kube::Scale> ScaleActuator::WriteIfReplicas(const kube::WorkloadRef& ref,
                                                           int32_t from, int32_t n) {
  absl::StatusOr<kube::Scale> written = client_->PatchScaleIfReplicas(ref, from, n);
  if (written.ok() || !absl::IsInvalidArgument(written.status())) return written;
  // 422: the test failed (or the patch was refused for another reason). The target says
  // which.
  absl::StatusOr<kube::Scale> now = client_->GetScale(ref);
  if (!now.ok()) return now.status();
  if (now->spec_replicas == n) return *now;  // an earlier attempt of this write landed
  if (now->spec_replicas != from) {
    return absl::AbortedError(absl::StrCat("the target has ", now->spec_replicas,
                                           " replicas, not the ", from,
                                           " this decision was made on"));
  }
  // The count is the one expected, yet the test failed: the server shows it otherwise.
  // Read-before-write: that read's resourceVersion is the precondition (409: kAborted).
  return client_->PatchScale(ref, n, now->resource_version);
}

void ScaleActuator::DoSet(uint64_t epoch, std::string workload, int32_t from, int32_t n,
                          std::function<void(absl::Status)> done, int attempt) {
  absl::StatusOr<Target> target = TargetFor(epoch, workload);
  if (!target.ok()) {
    if (absl::IsFailedPrecondition(target.status())) Count(&ScaleActuatorStats::refused_writes);
    done(target.status());
    return;
  }
  absl::StatusOr<kube::Scale> written = WriteIfReplicas(target->ref, from, n);
  if (!written.ok() && !absl::IsAborted(written.status())) {
    if (std::optional<absl::Duration> delay = RetryDelay(written.status(), attempt)) {
      Count(&ScaleActuatorStats::api_retries);
      // A retried write tests the same count, so it cannot land on a newer state; if the
      // first attempt did land, the retry finds the count it wrote.
      worker_.PostAfter(
          *delay, Priority::kUrgent,
          [this, epoch, workload, from, n, attempt, done = std::move(done)]() mutable {
            DoSet(epoch, std::move(workload), from, n, std::move(done), attempt + 1);
          });
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto t = targets_.find(workload);
    if (written.ok()) {
      ++stats_.scale_patches;
      if (t != targets_.end()) t->second.replicas = written->spec_replicas;
    } else if (absl::IsAborted(written.status())) {
      ++stats_.conflicts;
    }
  }
  if (written.ok()) {
    ZS_LOG(kInfo, "scaled", {"workload", workload}, {"replicas", absl::StrCat(n)});
  } else {
    ZS_LOG(kWarning, "scale write failed", {"workload", workload}, {"replicas", absl::StrCat(n)},
           {"error", written.status().ToString()});
  }
  done(written.status());
  // After `done` posted the completion, so a status read that follows sees it applied.
  if (listener_ != nullptr && !absl::IsAborted(written.status())) {
    listener_->OnScaleWritten(workload, written.status());
  }
}

void ScaleActuator::GetReplicas(const std::string& workload,
                                std::function<void(absl::StatusOr<int32_t>)> done) {
  const uint64_t epoch = leadership_->epoch();
  worker_.Post(Priority::kUrgent, [this, epoch, workload, done = std::move(done)]() mutable {
    DoGet(epoch, workload, std::move(done), 1);
  });
}

void ScaleActuator::DoGet(uint64_t epoch, std::string workload,
                          std::function<void(absl::StatusOr<int32_t>)> done, int attempt) {
  absl::StatusOr<Target> target = TargetFor(epoch, workload);
  if (!target.ok()) {
    done(target.status());
    return;
  }
  absl::StatusOr<kube::Scale> scale = client_->GetScale(target->ref);
  if (!scale.ok()) {
    if (std::optional<absl::Duration> delay = RetryDelay(scale.status(), attempt)) {
      Count(&ScaleActuatorStats::api_retries);
      worker_.PostAfter(*delay, Priority::kUrgent,
                        [this, epoch, workload, attempt, done = std::move(done)]() mutable {
                          DoGet(epoch, std::move(workload), std::move(done), attempt + 1);
                        });
      return;
    }
    done(scale.status());
    return;
  }
  {
    // The decider adopts this count before it decides again.
    std::lock_guard<std::mutex> lock(mu_);
    auto t = targets_.find(workload);
    if (t != targets_.end()) t->second.replicas = scale->spec_replicas;
  }
  done(scale->spec_replicas);
}

}  // namespace zeroscale::actuate
