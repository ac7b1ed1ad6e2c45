#include "scaler/reconcile/kubernetes_backend.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "scaler/decide/automaton.h"
#include "scaler/decide/rebuild.h"
#include "scaler/reconcile/explain.h"

namespace zeroscale::reconcile {
namespace {

using Priority = WorkQueue::Priority;

std::string DefaultIdentity() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "%s", "zeroscale");
  }
  return absl::StrCat(host, "-", getpid());
}

bool SameSpec(const decide::WorkloadSpec& a, const decide::WorkloadSpec& b) {
  return a.workload == b.workload && a.min_replicas == b.min_replicas &&
         a.max_replicas == b.max_replicas && a.idle_timeout == b.idle_timeout && a.rules == b.rules;
}

absl::Status NotLeading(absl::string_view workload) {
  return absl::FailedPreconditionError(
      absl::StrCat("not the leader: ", workload, " is left to the replica holding the lease"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<KubernetesBackend>> KubernetesBackend::Create(
    const kube::ClusterConfig& cluster, KubernetesBackendOptions options, Redis* rebuild_redis,
    Clock* clock) {
  if (options.identity.empty()) options.identity = DefaultIdentity();
  if (options.lease_namespace.empty()) {
    options.lease_namespace = cluster.namespace_.empty() ? "default" : cluster.namespace_;
  }
  if (options.api_attempts < 1) options.api_attempts = 1;
  if (options.resync <= absl::ZeroDuration()) options.resync = absl::Seconds(30);
  if (options.sleeper == nullptr) options.sleeper = kube::RealSleeper::Get();
  absl::StatusOr<std::unique_ptr<kube::KubeClient>> client =
      kube::KubeClient::Create(cluster, clock);
  if (!client.ok()) return client.status();
  return std::unique_ptr<KubernetesBackend>(
      new KubernetesBackend(std::move(options), rebuild_redis, clock, *std::move(client)));
}

KubernetesBackend::KubernetesBackend(KubernetesBackendOptions options, Redis* rebuild_redis,
                                     Clock* clock, std::unique_ptr<kube::KubeClient> client)
    : options_(std::move(options)),
      rebuild_redis_(rebuild_redis),
      clock_(clock),
      client_(std::move(client)),
      recorder_(client_.get(), kube::EventRecorderOptions{"zeroscale-scaler", options_.identity},
                clock) {}

KubernetesBackend::~KubernetesBackend() { Stop(); }

void KubernetesBackend::Attach(decide::Decider* decider) { decider_ = decider; }

KubernetesBackendStats KubernetesBackend::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

absl::Status KubernetesBackend::Start() {
  if (decider_ == nullptr) {
    return absl::FailedPreconditionError("KubernetesBackend: Attach a decider before Start");
  }
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    if (started_) return absl::OkStatus();
    started_ = true;
  }
  worker_.Start();
  reporter_.Start();
  control_ = std::thread([this] { ControlLoop(); });
  if (!options_.leader_elect) {
    ZS_LOG(kInfo, "leader election off: this replica decides and writes",
           {"identity", options_.identity});
    OnLeadershipChange(true);
    return absl::OkStatus();
  }
  kube::LeaderElectionConfig config;
  config.namespace_ = options_.lease_namespace;
  config.lease_name = options_.lease_name;
  config.identity = options_.identity;
  config.lease_duration = options_.lease_duration;
  config.renew_deadline = options_.renew_deadline;
  config.retry_period = options_.retry_period;
  config.release_on_stop = options_.release_on_stop;
  kube::LeaderCallbacks callbacks;
  // The elector's thread must keep renewing, so it only hands the change over.
  callbacks.on_started_leading = [this] { OnLeadershipChange(true); };
  callbacks.on_stopped_leading = [this] { OnLeadershipChange(false); };
  callbacks.on_new_leader = [this](const std::string& holder) {
    ZS_LOG(kInfo, "lease holder changed", {"holder", holder}, {"identity", options_.identity});
  };
  elector_ = std::make_unique<kube::LeaderElector>(client_.get(), std::move(config),
                                                   std::move(callbacks), clock_, options_.sleeper);
  elector_->Start();
  return absl::OkStatus();
}

void KubernetesBackend::Stop() {
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    if (!started_) return;
  }
  // The elector first: it releases the lease and reports the loss, which the control
  // thread turns into the end of the term.
  if (elector_) elector_->Stop();
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    stopping_ = true;
    leading_ = false;
  }
  control_cv_.notify_all();
  if (control_.joinable()) control_.join();
  worker_.Stop();
  reporter_.Stop();
}

void KubernetesBackend::OnLeadershipChange(bool leading) {
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    // Writes stop now, not when the control thread gets round to it.
    if (!leading) {
      leading_ = false;
      ++losses_;
    }
    want_leading_ = leading;
  }
  control_cv_.notify_all();
}

// --- Control thread.

void KubernetesBackend::ControlLoop() {
  bool active = false;
  uint64_t term_losses = 0;
  auto next_resync = std::chrono::steady_clock::time_point::max();
  const auto resync = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(options_.resync));
  std::unique_lock<std::mutex> lock(control_mu_);
  while (!stopping_) {
    if (active && (!want_leading_ || losses_ != term_losses)) {
      lock.unlock();
      EndTerm();
      lock.lock();
      active = false;
      next_resync = std::chrono::steady_clock::time_point::max();
      continue;
    }
    if (!active && want_leading_) {
      term_losses = losses_;
      leading_ = true;
      lock.unlock();
      BeginTerm(term_losses);
      lock.lock();
      active = true;
      next_resync = std::chrono::steady_clock::now() + resync;
      continue;
    }
    if (active && std::chrono::steady_clock::now() >= next_resync) {
      next_resync = std::chrono::steady_clock::now() + resync;
      // One round at a time: a slow API server must not make rounds pile up.
      if (!resync_queued_.exchange(true)) {
        const uint64_t epoch = epoch_.load();
        worker_.Post(Priority::kNormal, [this, epoch] { ResyncAll(epoch); });
      }
      continue;
    }
    control_cv_.wait_until(lock, next_resync);
  }
  if (active) {
    lock.unlock();
    EndTerm();
  }
}

bool KubernetesBackend::TermAborted(uint64_t term_losses) {
  std::lock_guard<std::mutex> lock(control_mu_);
  return stopping_ || !want_leading_ || losses_ != term_losses;
}

void KubernetesBackend::BeginTerm(uint64_t term_losses) {
  const uint64_t epoch = ++epoch_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.terms;
  }
  ZS_LOG(kInfo, "leading: watching CustomAutoscalers", {"identity", options_.identity},
         {"namespace", options_.watch_namespace.empty() ? "(all)" : options_.watch_namespace});
  kube::WatcherOptions wo;
  wo.namespace_ = options_.watch_namespace;
  wo.watch_timeout = options_.watch_timeout;
  wo.sleeper = options_.sleeper;
  watcher_ = std::make_unique<kube::CustomAutoscalerWatcher>(
      client_.get(), std::move(wo),
      [this, epoch](kube::WatchEventType type, const kube::CustomAutoscaler& ca) {
        worker_.Post(Priority::kNormal, [this, epoch, type, ca] { Reconcile(epoch, type, ca); });
      });
  watcher_->Start();
  while (!watcher_->WaitForSync(absl::Milliseconds(100))) {
    if (TermAborted(term_losses)) return;
  }
  // Queued behind the reconciles of the first list, so every CR listed is in the decider
  // when the windows are rebuilt.
  worker_.Post(Priority::kNormal, [this, epoch] { Rebuild(epoch); });
}

void KubernetesBackend::EndTerm() {
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    leading_ = false;
  }
  ++epoch_;
  if (watcher_) {
    watcher_->Stop();
    watcher_.reset();
  }
  // On the worker, after whatever reconcile is running, so no automaton registered by
  // the old term survives it.
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  worker_.Post(Priority::kUrgent, [this, done] {
    Cleanup();
    done->set_value();
  });
  if (finished.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ZS_LOG(kWarning, "stopped leading, but the worker is still busy; workloads are removed later");
  }
  ZS_LOG(kInfo, "not leading: decisions stopped, ingest goes on", {"identity", options_.identity});
}

// --- Worker thread.

void KubernetesBackend::Cleanup() {
  std::vector<std::string> workloads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [workload, t] : targets_) workloads.push_back(workload);
    targets_.clear();
    crs_.clear();
  }
  rebuilt_ = false;
  for (std::string& w : workloads) decider_->Remove(std::move(w));
}

void KubernetesBackend::Reconcile(uint64_t epoch, kube::WatchEventType type,
                                  const kube::CustomAutoscaler& ca) {
  if (!Current(epoch)) return;
  const std::string key = ca.Key();
  if (type == kube::WatchEventType::kDeleted) {
    Forget(epoch, key);
    return;
  }
  absl::StatusOr<decide::WorkloadSpec> spec = WorkloadSpecFrom(ca);
  std::string released;  // a workload this CR no longer drives
  bool newly_refused = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = crs_.try_emplace(key);
    CrState& cr = it->second;
    // A new leader keeps the transition times its predecessor wrote.
    if (inserted) cr.conditions = ca.status.conditions;
    cr.object = ca;
    const std::string wanted = spec.ok() ? spec->workload : "";
    if (!cr.workload.empty() && cr.workload != wanted) {
      released = cr.workload;
      targets_.erase(released);
      cr.workload.clear();
      cr.applied.reset();
    }
    if (!spec.ok()) {
      newly_refused = cr.spec != spec.status();
      cr.spec = spec.status();
      cr.spec_reason = "InvalidSpec";
      cr.target = absl::OkStatus();
      MarkDirty(key);
    } else {
      auto t = targets_.find(wanted);
      if (t != targets_.end() && t->second.owner != key) {
        absl::Status refused = absl::FailedPreconditionError(
            absl::StrCat("spec.scaleTargetRef: ", wanted, " is already driven by CustomAutoscaler ",
                         t->second.owner));
        newly_refused = cr.spec != refused;
        cr.spec = refused;
        cr.spec_reason = "AmbiguousTarget";
        MarkDirty(key);
        spec = cr.spec;
      } else if (t != targets_.end() && cr.applied && SameSpec(*cr.applied, *spec)) {
        // Nothing the automaton cares about changed (our own status write, say).
        spec = absl::CancelledError("unchanged");
      }
    }
  }
  if (!released.empty()) {
    decider_->Remove(released);
    RetryAmbiguous(epoch, released);
  }
  if (!spec.ok()) {
    if (newly_refused) {
      ZS_LOG(kWarning, "CustomAutoscaler not applied", {"customautoscaler", key},
             {"error", spec.status().ToString()});
    }
    return;
  }

  const kube::WorkloadRef ref = ca.Target();
  absl::StatusOr<kube::Scale> scale = client_->GetScale(ref);
  if (!scale.ok()) {
    ZS_LOG(kWarning, "cannot read the scale target", {"customautoscaler", key},
           {"target", spec->workload}, {"error", scale.status().ToString()});
    std::lock_guard<std::mutex> lock(mu_);
    auto it = crs_.find(key);
    if (it == crs_.end()) return;
    it->second.spec = absl::OkStatus();
    it->second.target = scale.status();
    MarkDirty(key);
    // A missing target is retried by the resync (it may be created later); API trouble
    // sooner.
    if (absl::IsUnavailable(scale.status())) {
      const std::string rv = ca.resource_version;
      worker_.PostAfter(NextDelay(scale.status(), 1), Priority::kNormal, [this, epoch, key, rv] {
        std::optional<kube::CustomAutoscaler> latest;
        {
          std::lock_guard<std::mutex> lock(mu_);
          auto it = crs_.find(key);
          if (it != crs_.end() && it->second.object.resource_version == rv && !it->second.applied) {
            latest = it->second.object;
          }
        }
        if (latest) Reconcile(epoch, kube::WatchEventType::kModified, *latest);
      });
    }
    return;
  }

  bool is_new = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CrState& cr = crs_[key];
    cr.spec = absl::OkStatus();
    cr.target = absl::OkStatus();
    cr.workload = spec->workload;
    cr.applied = *spec;
    auto [t, inserted] = targets_.try_emplace(spec->workload);
    is_new = inserted;
    Target& target = t->second;
    if (inserted) {
      target.ref = ref;
      target.owner = key;
      target.resource_version = scale->resource_version;
      target.replicas = scale->spec_replicas;
    } else {
      NoteRead(&target, *scale);
    }
    target.uid = scale->uid;
  }
  // The Upsert is posted before the status write asks the decider for the automaton.
  decider_->Upsert(*spec, scale->spec_replicas);
  if (is_new) {
    ZS_LOG(kInfo, "CustomAutoscaler applied", {"customautoscaler", key}, {"target", spec->workload},
           {"replicas", absl::StrCat(scale->spec_replicas)});
    // A CR that appears mid-term gets its windows from Redis too.
    if (rebuilt_) LoadHistory(spec->workload, *spec);
  }
  std::lock_guard<std::mutex> lock(mu_);
  MarkDirty(key);
}

bool KubernetesBackend::NoteRead(Target* t, const kube::Scale& scale) {
  if (scale.spec_replicas == t->replicas) {
    // The count the decider believes is still the truth: its decisions stay valid
    // against this version, so writes need not fail on unrelated changes (status).
    if (!t->stale) t->resource_version = scale.resource_version;
    return false;
  }
  // Changed outside zeroscale. The decider learns of it asynchronously and may have a
  // decision on the old count under way, so the old version stays: such a write gets
  // 409 and the decider re-reads.
  t->replicas = scale.spec_replicas;
  t->stale = true;
  return true;
}

void KubernetesBackend::Forget(uint64_t epoch, const std::string& key) {
  std::string released;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = crs_.find(key);
    if (it == crs_.end()) return;
    const std::string workload = it->second.workload;
    auto t = targets_.find(workload);
    if (!workload.empty() && t != targets_.end() && t->second.owner == key) {
      targets_.erase(t);
      released = workload;
    }
    crs_.erase(it);
    dirty_.erase(key);
  }
  ZS_LOG(kInfo, "CustomAutoscaler deleted", {"customautoscaler", key});
  if (!released.empty()) {
    decider_->Remove(released);
    RetryAmbiguous(epoch, released);
  }
}

void KubernetesBackend::RetryAmbiguous(uint64_t epoch, const std::string& workload) {
  // The oldest-named CR that was refused for this target may have it now.
  std::optional<kube::CustomAutoscaler> next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, cr] : crs_) {
      if (cr.spec_reason == "AmbiguousTarget" && !cr.spec.ok() &&
          cr.object.Target().Id() == workload) {
        next = cr.object;
        break;
      }
    }
  }
  if (next) {
    worker_.Post(Priority::kNormal, [this, epoch, ca = *next] {
      Reconcile(epoch, kube::WatchEventType::kModified, ca);
    });
  }
}

void KubernetesBackend::Rebuild(uint64_t epoch) {
  if (!Current(epoch)) return;
  rebuilt_ = true;
  if (rebuild_redis_ == nullptr) return;
  const absl::Time start = clock_->Now();
  absl::Status s = decider_->RebuildFromRedis(rebuild_redis_);
  if (!s.ok()) {
    // The windows then fill from live samples; nothing is decided on missing data.
    ZS_LOG(kWarning, "cannot rebuild the decision windows from Redis", {"error", s.ToString()});
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.rebuilds;
  }
  ZS_LOG(kInfo, "decision windows rebuilt from Redis",
         {"took", absl::FormatDuration(clock_->Now() - start)});
}

void KubernetesBackend::LoadHistory(const std::string& workload, const decide::WorkloadSpec& spec) {
  if (rebuild_redis_ == nullptr) return;
  // Options are fixed when the decider is built, so reading them here is race-free.
  const absl::Duration need = decide::HistoryNeeded(spec, decider_->engine().options().staleness);
  const absl::Time now = clock_->Now();
  absl::StatusOr<std::vector<Podmetric>> samples =
      decide::LoadWorkloadSamples(rebuild_redis_, workload, now - need, now);
  if (!samples.ok()) {
    ZS_LOG(kWarning, "cannot load a workload's samples from Redis", {"workload", workload},
           {"error", samples.status().ToString()});
    return;
  }
  if (!samples->empty()) decider_->LoadHistory(workload, *std::move(samples));
}

void KubernetesBackend::ResyncAll(uint64_t epoch) {
  resync_queued_ = false;
  if (!Current(epoch)) return;
  std::vector<std::string> workloads;
  std::vector<kube::CustomAutoscaler> unapplied;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [workload, t] : targets_) workloads.push_back(workload);
    for (const auto& [key, cr] : crs_) {
      if (cr.spec.ok() && !cr.applied) unapplied.push_back(cr.object);
    }
  }
  // One task per target, so the decider's reads and writes overtake a long round.
  for (std::string& w : workloads) {
    worker_.Post(Priority::kNormal, [this, epoch, w = std::move(w)] { ResyncOne(epoch, w); });
  }
  for (kube::CustomAutoscaler& ca : unapplied) {
    worker_.Post(Priority::kNormal, [this, epoch, ca = std::move(ca)] {
      Reconcile(epoch, kube::WatchEventType::kModified, ca);
    });
  }
}

void KubernetesBackend::ResyncOne(uint64_t epoch, const std::string& workload) {
  if (!Current(epoch)) return;
  kube::WorkloadRef ref;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto t = targets_.find(workload);
    if (t == targets_.end()) return;
    ref = t->second.ref;
  }
  absl::StatusOr<kube::Scale> scale = client_->GetScale(ref);
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto t = targets_.find(workload);
    if (t == targets_.end()) return;
    auto cr = crs_.find(t->second.owner);
    if (!scale.ok()) {
      if (cr != crs_.end() && cr->second.target.code() != scale.status().code()) {
        cr->second.target = scale.status();
        MarkDirty(cr->first);
      }
      return;
    }
    t->second.uid = scale->uid;
    changed = NoteRead(&t->second, *scale);
    if (cr != crs_.end() && !cr->second.target.ok()) {
      cr->second.target = absl::OkStatus();
      MarkDirty(cr->first);
    }
  }
  if (changed) {
    ZS_LOG(kInfo, "replicas changed outside zeroscale", {"workload", workload},
           {"replicas", absl::StrCat(scale->spec_replicas)});
    decider_->OnObservedReplicas(workload, scale->spec_replicas);
  }
}

absl::Duration KubernetesBackend::NextDelay(const absl::Status& s, int attempt) {
  if (std::optional<absl::Duration> ra = kube::RetryAfterOf(s)) {
    return std::min(*ra, options_.max_retry_after);
  }
  absl::Duration d = options_.api_backoff.initial;
  for (int i = 1; i < attempt && d < options_.api_backoff.max; ++i) {
    d = d * options_.api_backoff.multiplier;
  }
  d = std::min(d, options_.api_backoff.max);
  const double j = options_.api_backoff.jitter;
  return j > 0 ? d * absl::Uniform(gen_, 1.0 - j, 1.0 + j) : d;
}

std::optional<absl::Duration> KubernetesBackend::RetryDelay(const absl::Status& s, int attempt) {
  // Only what the client maps to kUnavailable (429, 5xx, no answer) may pass by itself.
  if (!absl::IsUnavailable(s) || attempt >= options_.api_attempts) return std::nullopt;
  return NextDelay(s, attempt);
}

void KubernetesBackend::SetReplicas(const std::string& workload, int32_t n,
                                    const std::string& reason,
                                    std::function<void(absl::Status)> done) {
  if (options_.dry_run) {
    // The decider does not call this in dry-run; should anything else, nothing is written.
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.refused_writes;
    }
    done(absl::FailedPreconditionError(
        absl::StrCat("dry run: ", workload, " is not scaled to ", n, " replicas")));
    return;
  }
  const uint64_t epoch = epoch_.load();
  worker_.Post(Priority::kUrgent, [this, epoch, workload, n, done = std::move(done)]() mutable {
    DoSet(epoch, workload, n, std::move(done), 1);
  });
}

absl::StatusOr<KubernetesBackend::Target> KubernetesBackend::TargetOf(
    const std::string& workload) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = targets_.find(workload);
  if (t == targets_.end()) {
    return absl::NotFoundError(absl::StrCat("no CustomAutoscaler drives ", workload));
  }
  return t->second;
}

void KubernetesBackend::DoSet(uint64_t epoch, std::string workload, int32_t n,
                              std::function<void(absl::Status)> done, int attempt) {
  if (!Current(epoch)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.refused_writes;
    }
    done(NotLeading(workload));
    return;
  }
  absl::StatusOr<Target> target = TargetOf(workload);
  if (!target.ok()) {
    done(target.status());
    return;
  }
  const kube::WorkloadRef& ref = target->ref;
  const std::string& rv = target->resource_version;
  if (rv.empty()) {
    // Never write unconditionally: that could apply a decision made on outdated replicas.
    done(absl::AbortedError(absl::StrCat("no resourceVersion known for ", workload)));
    return;
  }
  absl::StatusOr<kube::Scale> written = client_->PatchScale(ref, n, rv);
  if (!written.ok() && !absl::IsAborted(written.status())) {
    if (std::optional<absl::Duration> delay = RetryDelay(written.status(), attempt)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.api_retries;
      }
      // A retried write still carries the same version, so it cannot land on a newer
      // state; if the first attempt did land, the retry gets 409 and the decider re-reads.
      worker_.PostAfter(*delay, Priority::kUrgent,
                        [this, epoch, workload, n, attempt, done = std::move(done)]() mutable {
                          DoSet(epoch, std::move(workload), n, std::move(done), attempt + 1);
                        });
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto t = targets_.find(workload);
    if (written.ok()) {
      ++stats_.scale_patches;
      if (t != targets_.end()) {
        t->second.resource_version = written->resource_version;
        t->second.replicas = written->spec_replicas;
        t->second.stale = false;
        if (!t->second.last_write.ok()) {
          t->second.last_write = absl::OkStatus();
          MarkDirty(t->second.owner);
        }
      }
    } else if (absl::IsAborted(written.status())) {
      ++stats_.conflicts;
    } else if (t != targets_.end()) {
      t->second.last_write = written.status();
      MarkDirty(t->second.owner);
    }
  }
  if (written.ok()) {
    ZS_LOG(kInfo, "scaled", {"workload", workload}, {"replicas", absl::StrCat(n)});
    done(absl::OkStatus());
    // A successful write records no decision, yet the status must show the new count.
    // Queued after `done` posted the completion, so the status read sees it applied.
    std::lock_guard<std::mutex> lock(mu_);
    auto t = targets_.find(workload);
    if (t != targets_.end()) MarkDirty(t->second.owner);
  } else {
    ZS_LOG(kWarning, "scale write failed", {"workload", workload}, {"replicas", absl::StrCat(n)},
           {"error", written.status().ToString()});
    done(written.status());
  }
}

void KubernetesBackend::GetReplicas(const std::string& workload,
                                    std::function<void(absl::StatusOr<int32_t>)> done) {
  const uint64_t epoch = epoch_.load();
  worker_.Post(Priority::kUrgent, [this, epoch, workload, done = std::move(done)]() mutable {
    DoGet(epoch, workload, std::move(done), 1);
  });
}

void KubernetesBackend::DoGet(uint64_t epoch, std::string workload,
                              std::function<void(absl::StatusOr<int32_t>)> done, int attempt) {
  if (!Current(epoch)) {
    done(NotLeading(workload));
    return;
  }
  absl::StatusOr<Target> target = TargetOf(workload);
  if (!target.ok()) {
    done(target.status());
    return;
  }
  const kube::WorkloadRef& ref = target->ref;
  absl::StatusOr<kube::Scale> scale = client_->GetScale(ref);
  if (!scale.ok()) {
    if (std::optional<absl::Duration> delay = RetryDelay(scale.status(), attempt)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.api_retries;
      }
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
    // The decider adopts this count before it decides again, so this version is the one
    // its next write is based on.
    std::lock_guard<std::mutex> lock(mu_);
    auto t = targets_.find(workload);
    if (t != targets_.end()) {
      t->second.resource_version = scale->resource_version;
      t->second.replicas = scale->spec_replicas;
      t->second.stale = false;
      t->second.uid = scale->uid;
    }
  }
  done(scale->spec_replicas);
}

// --- Reporting.

void KubernetesBackend::Record(const decide::Decision& decision) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!leading_.load()) return;
  auto t = targets_.find(decision.workload);
  if (t == targets_.end()) return;
  if (pending_events_ >= options_.max_pending_events) {
    ++stats_.dropped_events;
  } else {
    ++pending_events_;
    PendingEvent e;
    e.epoch = epoch_.load();
    e.target.api_version = "apps/v1";
    e.target.kind = t->second.ref.kind;
    e.target.namespace_ = t->second.ref.namespace_;
    e.target.name = t->second.ref.name;
    e.target.uid = t->second.uid;
    e.decision = decision;
    reporter_.Post(Priority::kNormal, [this, e = std::move(e)] { WriteEvent(e); });
  }
  MarkDirty(t->second.owner);
}

void KubernetesBackend::MarkDirty(const std::string& cr_key) {
  if (dirty_.insert(cr_key).second) {
    reporter_.Post(Priority::kNormal, [this, cr_key] { WriteStatus(cr_key); });
  }
}

void KubernetesBackend::WriteEvent(const PendingEvent& e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --pending_events_;
  }
  if (!Current(e.epoch)) return;
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

void KubernetesBackend::WriteStatus(const std::string& cr_key) {
  StatusInputs in;
  in.dry_run = options_.dry_run;
  std::vector<kube::Condition> previous;
  std::string last_patch, ns, name, workload;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_.erase(cr_key);
    if (!leading_.load()) return;
    auto it = crs_.find(cr_key);
    if (it == crs_.end()) return;
    const CrState& cr = it->second;
    ns = cr.object.namespace_;
    name = cr.object.name;
    in.generation = cr.object.generation;
    in.spec = cr.spec;
    in.spec_reason = cr.spec_reason;
    in.target = cr.target;
    previous = cr.conditions;
    last_patch = cr.last_patch;
    if (cr.spec.ok() && cr.applied) {
      workload = cr.workload;
      auto t = targets_.find(workload);
      if (t != targets_.end()) in.last_write = t->second.last_write;
    }
  }
  if (!workload.empty()) {
    auto answer = std::make_shared<std::promise<absl::StatusOr<decide::WorkloadStatus>>>();
    std::future<absl::StatusOr<decide::WorkloadStatus>> got = answer->get_future();
    decider_->GetStatus(workload, [answer](absl::StatusOr<decide::WorkloadStatus> s) {
      answer->set_value(std::move(s));
    });
    if (got.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return;
    absl::StatusOr<decide::WorkloadStatus> ws = got.get();
    if (ws.ok()) in.workload = *std::move(ws);
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
    reporter_.PostAfter(delay, Priority::kNormal, [this, cr_key] { WriteStatus(cr_key); });
  }
}

}  // namespace zeroscale::reconcile
