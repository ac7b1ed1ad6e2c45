#include "scaler/report/kube_reporter.h"

#include <algorithm>
#include <utility>

#include "common/kube/retry.h"
#include "common/log/log.h"
#include "scaler/report/explain.h"

namespace zeroscale::report {
namespace {
using Priority = WorkQueue::Priority;
}  // namespace

KubeReporter::KubeReporter(kube::KubeClient* client, const leader::Leadership* leadership,
                           KubeReporterOptions options, Clock* clock)
    : client_(client),
      leadership_(leadership),
      options_(std::move(options)),
      clock_(clock),
      recorder_(client, kube::EventRecorderOptions{"zeroscale-scaler", options_.identity}, clock),
      writer_(clock) {}

KubeReporter::~KubeReporter() { Stop(); }

void KubeReporter::Start() { writer_.Start(); }

void KubeReporter::Stop() { writer_.Stop(); }

KubeReporterStats KubeReporter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void KubeReporter::Update(CustomAutoscalerReport report) {
  const std::string key = report.Key();
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = crs_.try_emplace(key);
  CrState& cr = it->second;
  if (inserted) cr.conditions = report.conditions;
  const std::string& before = cr.report.workload;
  if (!before.empty() && before != report.workload) {
    auto w = workloads_.find(before);
    if (w != workloads_.end() && w->second.owner == key) workloads_.erase(w);
  }
  if (!report.workload.empty()) {
    WorkloadState& w = workloads_[report.workload];
    if (w.owner != key) w.last_write = absl::OkStatus();
    w.owner = key;
    w.ref = report.target_ref;
    if (!report.target_uid.empty()) w.uid = report.target_uid;
  }
  // A watch event that changes nothing the status shows (our own status write, say)
  // writes nothing.
  const CustomAutoscalerReport& was = cr.report;
  const bool changed = inserted || was.generation != report.generation || was.spec != report.spec ||
                       was.spec_reason != report.spec_reason || was.target != report.target ||
                       was.workload != report.workload;
  cr.report = std::move(report);
  if (changed) MarkDirty(key);
}

void KubeReporter::Forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = crs_.find(key);
  if (it == crs_.end()) return;
  auto w = workloads_.find(it->second.report.workload);
  if (w != workloads_.end() && w->second.owner == key) workloads_.erase(w);
  crs_.erase(it);
  dirty_.erase(key);
}

void KubeReporter::OnTermEnd(uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  crs_.clear();
  workloads_.clear();
  statuses_.clear();
}

void KubeReporter::OnStatus(const decide::WorkloadStatus& status) {
  std::lock_guard<std::mutex> lock(mu_);
  statuses_[status.workload] = status;
  auto w = workloads_.find(status.workload);
  if (w != workloads_.end()) MarkDirty(w->second.owner);
}

void KubeReporter::OnRemoved(const std::string& workload) {
  std::lock_guard<std::mutex> lock(mu_);
  statuses_.erase(workload);
}

void KubeReporter::OnScaleWritten(const std::string& workload, const absl::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  auto w = workloads_.find(workload);
  if (w == workloads_.end()) return;
  // The new count reaches the status with the automaton's snapshot; only the Ready
  // condition depends on how the write went.
  if (w->second.last_write == status) return;
  w->second.last_write = status;
  MarkDirty(w->second.owner);
}

void KubeReporter::OnTargetRead(const std::string& workload, const absl::Status& status,
                                const std::string& uid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto w = workloads_.find(workload);
  if (w == workloads_.end()) return;
  if (status.ok()) w->second.uid = uid;
  auto cr = crs_.find(w->second.owner);
  if (cr == crs_.end() || cr->second.report.target.code() == status.code()) return;
  cr->second.report.target = status;
  MarkDirty(cr->first);
}

void KubeReporter::Record(const decide::Decision& decision) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!leadership_->leading()) return;
  auto w = workloads_.find(decision.workload);
  if (w == workloads_.end()) return;
  if (pending_events_ >= options_.max_pending_events) {
    ++stats_.dropped_events;
  } else {
    ++pending_events_;
    PendingEvent e;
    e.epoch = leadership_->epoch();
    e.target.api_version = "apps/v1";
    e.target.kind = w->second.ref.kind;
    e.target.namespace_ = w->second.ref.namespace_;
    e.target.name = w->second.ref.name;
    e.target.uid = w->second.uid;
    e.decision = decision;
    writer_.Post(Priority::kNormal, [this, e = std::move(e)] { WriteEvent(e); });
  }
  MarkDirty(w->second.owner);
}

void KubeReporter::MarkDirty(const std::string& cr_key) {
  if (dirty_.insert(cr_key).second) {
    writer_.Post(Priority::kNormal, [this, cr_key] { WriteStatus(cr_key); });
  }
}

void KubeReporter::WriteEvent(const PendingEvent& e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --pending_events_;
  }
  if (!leadership_->Current(e.epoch)) return;
  const EventExplanation x = ExplainDecision(e.decision);
  absl::Status s = recorder_.Record(e.target, x.type, x.reason, x.message);
  if (!s.ok()) {
    ZS_LOG(kWarning, "cannot record an Event", {"workload", e.decision.workload},
           {"reason", x.reason}, {"error", s.ToString()});
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.events;
}

void KubeReporter::WriteStatus(const std::string& cr_key) {
  StatusInputs in;
  in.dry_run = options_.dry_run;
  std::vector<kube::Condition> previous;
  std::string last_patch, ns, name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_.erase(cr_key);
    if (!leadership_->leading()) return;
    auto it = crs_.find(cr_key);
    if (it == crs_.end()) return;
    const CustomAutoscalerReport& cr = it->second.report;
    ns = cr.namespace_;
    name = cr.name;
    in.generation = cr.generation;
    in.spec = cr.spec;
    in.spec_reason = cr.spec_reason;
    in.target = cr.target;
    previous = it->second.conditions;
    last_patch = it->second.last_patch;
    if (cr.spec.ok() && !cr.workload.empty()) {
      auto w = workloads_.find(cr.workload);
      if (w != workloads_.end()) in.last_write = w->second.last_write;
      auto ws = statuses_.find(cr.workload);
      // Applied, but the automaton's first snapshot is still on its way: its arrival
      // marks the CR again, and writing before would only say "Pending" for a moment.
      if (ws == statuses_.end()) return;
      in.workload = ws->second;
    }
  }
  const kube::CustomAutoscalerStatus status = BuildStatus(in, previous, clock_->Now());
  const std::string patch = kube::CustomAutoscalerStatusPatch(status);
  if (patch == last_patch) return;
  absl::StatusOr<kube::CustomAutoscaler> written =
      client_->PatchCustomAutoscalerStatus(ns, name, status);
  std::lock_guard<std::mutex> lock(mu_);
  if (written.ok()) {
    ++stats_.status_patches;
    auto it = crs_.find(cr_key);
    if (it != crs_.end()) {
      it->second.conditions = status.conditions;
      it->second.last_patch = patch;
    }
    return;
  }
  if (absl::IsNotFound(written.status())) return;  // deleted meanwhile
  ZS_LOG(kWarning, "cannot write CustomAutoscaler status", {"customautoscaler", cr_key},
         {"error", written.status().ToString()});
  if (crs_.count(cr_key) != 0 && dirty_.insert(cr_key).second) {
    const absl::Duration delay = std::min(
        kube::RetryAfterOf(written.status()).value_or(absl::Seconds(1)), options_.max_retry_after);
    writer_.PostAfter(delay, Priority::kNormal, [this, cr_key] { WriteStatus(cr_key); });
  }
}

}  // namespace zeroscale::report
