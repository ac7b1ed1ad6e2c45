#include "scaler/decide/automaton.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "scaler/decide/rule_set.h"
#include "scaler/decide/rules.h"

namespace zeroscale::decide {
namespace {

absl::Duration Cooldown(const ScalingRule& rule) { return absl::Seconds(rule.cooldown_seconds); }

// The model-server series the workload's rules compare, so the window keeps only those.
std::vector<std::string> CustomSeries(const WorkloadSpec& spec) {
  std::vector<std::string> names;
  for (const ScalingRule& r : spec.rules) {
    for (const Threshold& t : r.thresholds) {
      if (t.metric_type == MetricType::kCustom &&
          std::find(names.begin(), names.end(), t.metric_name) == names.end()) {
        names.push_back(t.metric_name);
      }
    }
  }
  return names;
}

std::string Replicas(int32_t before, int32_t after) {
  return absl::StrCat(before, " -> ", after, " replicas");
}

}  // namespace

Automaton::Automaton(WorkloadSpec spec, int32_t observed_replicas, const DeciderOptions* options,
                     Host* host)
    : spec_(std::move(spec)),
      options_(options),
      host_(host),
      window_(options->staleness, options->max_samples_per_pod),
      state_(observed_replicas > 0 ? State::kHolding : State::kScaledToZero),
      replicas_(std::max(observed_replicas, 0)),
      last_request_(host->Now()),
      keep_alive_(spec_.keep_alive, spec_.idle_timeout),
      retry_backoff_({options->retry_initial, options->retry_max, 2.0, Jitter::kNone}) {
  window_.set_retention(HistoryNeeded() - options_->staleness);
  window_.set_custom_series(CustomSeries(spec_));
}

Automaton::~Automaton() {
  NotifyWaiters(absl::CancelledError(absl::StrCat("workload ", spec_.workload, " was removed")));
}

absl::Duration HistoryNeeded(const WorkloadSpec& spec, absl::Duration staleness) {
  absl::Duration longest = absl::ZeroDuration();
  for (const ScalingRule& r : spec.rules) {
    longest = std::max(longest, absl::Seconds(r.window_seconds));
  }
  return longest + staleness;
}

absl::Duration Automaton::HistoryNeeded() const {
  return decide::HistoryNeeded(spec_, options_->staleness);
}

void Automaton::Start() {
  Record(state_, state_, replicas_, replicas_, Trigger::kRegistered, "",
         absl::StrCat("registered with ", replicas_, " replicas (minReplicas ", spec_.min_replicas,
                      ", maxReplicas ", spec_.max_replicas, ", ", spec_.rules.size(), " rules)"),
         false);
  Evaluate(Trigger::kRegistered);
}

void Automaton::SetRuleConflicts(std::vector<RuleConflict> conflicts) {
  if (conflicts == rule_conflicts_) return;
  rule_conflicts_ = std::move(conflicts);
  ++rule_changes_;
}

void Automaton::UpdateSpec(WorkloadSpec spec) {
  spec_ = std::move(spec);
  keep_alive_.Reconfigure(spec_.keep_alive, spec_.idle_timeout);
  ++rule_changes_;
  window_.set_retention(HistoryNeeded() - options_->staleness);
  window_.set_custom_series(CustomSeries(spec_));
  Evaluate(Trigger::kRegistered);
}

void Automaton::AddSample(const Podmetric& m) {
  window_.Add(m);
  // A pod reporting before Kubernetes lists it (or lists it serving) is remembered too;
  // SetPods prunes to the pods listed.
  if (pods_) reported_.insert(m.id);
  const bool was_idle = !traffic_busy_ && !sample_busy_;
  if (m.received_at >= last_sample_at_) {
    last_sample_at_ = m.received_at;
    sample_busy_ = m.in_flight > 0;
  }
  if (m.request_count > 0 || m.in_flight > 0 || m.request_rate > 0) {
    NoteActivity(m.received_at, was_idle);
  }
}

void Automaton::OnTraffic(const TrafficReport& report) {
  if (report.at < traffic_at_) return;  // reordered: the newer report already counted
  traffic_at_ = report.at;
  traffic_in_flight_ = report.in_flight;
  const bool was_idle = !traffic_busy_ && !sample_busy_;
  traffic_busy_ = report.in_flight > 0;
  if (report.requests > 0 || report.in_flight > 0) NoteActivity(report.at, was_idle);
}

void Automaton::NoteActivity(absl::Time at, bool after_idle) {
  if (at <= last_request_ && seen_request_) return;
  // Only time with nothing in flight is an idle gap: a request waiting through a cold
  // start, or being served, is not.
  keep_alive_.OnActivity(seen_request_ && after_idle ? last_request_ : absl::InfinitePast(), at);
  last_request_ = std::max(last_request_, at);
  seen_request_ = true;
}

absl::Status Automaton::LoadKeepAlive(absl::string_view state) {
  absl::Status s = keep_alive_.LoadJson(state);
  if (s.ok()) Evaluate(Trigger::kRegistered);
  return s;
}

absl::Duration Automaton::IdleAfter() const {
  const KeepAlivePlan& plan = keep_alive_.Plan();
  return prewarmed_for_ == last_request_ && seen_request_ ? plan.keep_until : plan.unload_after;
}

std::string Automaton::IdleReason(absl::Time now) const {
  const KeepAlivePlan& plan = keep_alive_.Plan();
  std::string why = absl::StrCat("no request for ",
                                 FormatSeconds(absl::Trunc(now - last_request_, absl::Seconds(1))),
                                 " (", ExplainKeepAlive(plan), ")");
  if (prewarmed_for_ == last_request_ && seen_request_) {
    absl::StrAppend(&why, "; pre-warmed, but no request came");
  }
  return why;
}

void Automaton::MaybePrewarm(absl::Time now, Trigger trigger) {
  if (spec_.min_replicas > 0 || !seen_request_ || prewarmed_for_ == last_request_) return;
  const KeepAlivePlan& plan = keep_alive_.Plan();
  if (plan.prewarm_after == absl::InfiniteDuration()) return;
  const absl::Time at = last_request_ + plan.prewarm_after;
  if (now < at) {
    Consider(at);
    return;
  }
  // Too late for this idle period: the next request was predicted before now.
  if (now >= last_request_ + plan.keep_until) return;
  prewarmed_for_ = last_request_;
  Wake(trigger, ExplainPrewarm(plan));
}

void Automaton::Record(State from, State to, int32_t before, int32_t after, Trigger trigger,
                       absl::string_view rule, std::string reason, bool dry_run) {
  Decision d;
  d.time = host_->Now();
  d.workload = spec_.workload;
  d.from = from;
  d.to = to;
  d.replicas_before = before;
  d.replicas_after = after;
  d.trigger = trigger;
  d.rule = std::string(rule);
  if (!rule.empty()) d.rule_source = std::string(RuleSourceName(SourceOf(spec_, rule)));
  d.reason = std::move(reason);
  d.dry_run = dry_run;
  host_->Record(d);
  last_decision_ = std::move(d);
  ++decisions_;
}

void Automaton::Transition(State to, Trigger trigger, std::string reason) {
  const State from = state_;
  state_ = to;
  Record(from, to, replicas_, replicas_, trigger, "", std::move(reason), false);
}

void Automaton::Apply(State to, int32_t target, Trigger trigger, absl::string_view rule,
                      std::string reason) {
  const absl::Time now = host_->Now();
  if (options_->dry_run) {
    // Nothing changes in reality, so the same decision would come back on every sample.
    if (last_dry_run_ && last_dry_run_->from == state_ && last_dry_run_->to == to &&
        last_dry_run_->replicas_before == replicas_ && last_dry_run_->replicas_after == target &&
        last_dry_run_->rule == rule && now - last_dry_run_->time < options_->dry_run_repeat) {
      return;
    }
    Record(state_, to, replicas_, target, trigger, rule, absl::StrCat("dry run: ", reason), true);
    last_dry_run_ = last_decision_;
    // Cooldowns run as if it had been applied, as they would have.
    if (target > replicas_) last_up_ = now;
    if (target < replicas_) last_down_ = now;
    return;
  }
  Record(state_, to, replicas_, target, trigger, rule, reason, false);
  op_ = Op::kSet;
  op_id_++;
  pending_from_ = state_;
  pending_target_ = target;
  state_ = to;
  host_->StartSet(spec_.workload, replicas_, target, reason, op_id_);
}

void Automaton::Wake(Trigger trigger, std::string reason) {
  const int32_t target = std::min(std::max(1, spec_.min_replicas), spec_.max_replicas);
  if (options_->dry_run) {
    Apply(State::kWaking, target, trigger, "", std::move(reason));
    wake_requested_ = false;
    NotifyWaiters(absl::FailedPreconditionError(
        absl::StrCat("dry run: ", spec_.workload, " is not woken (", replicas_, " replicas)")));
    return;
  }
  wake_started_ = host_->Now();
  wake_timed_out_ = false;
  ready_signal_ = false;
  Apply(State::kWaking, target, trigger, "",
        absl::StrCat(reason, ": ", Replicas(replicas_, target)));
}

void Automaton::Activate(ReadyCallback on_ready) {
  NoteActivity(host_->Now(), !traffic_busy_ && !sample_busy_);
  traffic_busy_ = true;  // the balancer holds the request until a pod is ready
  switch (state_) {
    case State::kActive:
    case State::kHolding:
      if (on_ready) on_ready(absl::OkStatus());
      return;
    case State::kWaking:
      if (on_ready) waiters_.push_back(std::move(on_ready));
      return;
    case State::kScaledToZero:
      if (on_ready) waiters_.push_back(std::move(on_ready));
      wake_requested_ = true;
      Evaluate(Trigger::kActivate);
      return;
  }
}

void Automaton::OnPodReady(absl::string_view pod) {
  if (state_ != State::kWaking) return;
  ready_signal_ = true;
  ready_pod_ = std::string(pod);
  Evaluate(Trigger::kPodReady);
}

void Automaton::SetPods(std::optional<TargetPods> pods) {
  if (pods == pods_) return;
  pods_ = std::move(pods);
  if (!pods_) {
    reported_.clear();
  } else {
    absl::flat_hash_set<std::string> listed(pods_->existing.begin(), pods_->existing.end());
    absl::erase_if(reported_, [&](const std::string& p) { return !listed.contains(p); });
    // Pods that reported before the list arrived.
    for (const std::string& p : pods_->existing) {
      if (window_.HasPod(p)) reported_.insert(p);
    }
  }
  Evaluate(Trigger::kPods);
}

std::string Automaton::PartialData(absl::Time now, int reporting) const {
  if (!pods_) {
    if (reporting >= replicas_) return "";
    return absl::StrCat("only ", reporting, " of ", replicas_,
                        " pods report fresh samples: not scaling down on partial data");
  }
  // Pods that serve and have reported, but report no more: their load is unknown.
  std::vector<std::string> silent;
  for (const std::string& p : pods_->serving) {
    if (reported_.contains(p) && !window_.IsFresh(p, now)) silent.push_back(p);
  }
  if (silent.empty()) return "";
  return absl::StrCat(silent.size(), " of ", pods_->serving.size(),
                      " serving pods stopped reporting (", silent.front(),
                      silent.size() > 1 ? ", ..." : "", "): not scaling down on partial data");
}

double Automaton::BalancerInFlight(absl::Time now) const {
  return now - traffic_at_ <= options_->traffic_ttl ? static_cast<double>(traffic_in_flight_) : 0;
}

void Automaton::EvaluateIdle(absl::Time now, Trigger trigger, const std::string& context) {
  note_ = context;
  const absl::Duration idle_after = IdleAfter();
  if (spec_.min_replicas > 0 || idle_after == absl::InfiniteDuration()) return;
  if (now - last_request_ < idle_after) {
    Consider(last_request_ + idle_after);
    return;
  }
  const std::string idle = IdleReason(now);
  if (const double held = BalancerInFlight(now); held > 0) {
    note_ = absl::StrCat(context, "; ", idle, ", but ", FormatValue(held),
                         " requests are in flight: not scaling to zero");
    return;
  }
  wake_requested_ = false;  // nobody waits: the wake, if any, is over
  Apply(State::kScaledToZero, 0, trigger, "",
        absl::StrCat(context, "; ", idle, ": ", Replicas(replicas_, 0)));
}

void Automaton::OnObservedReplicas(int32_t n) {
  // While our own write is in flight the target may show either count; the write's
  // completion re-reads on conflict, so nothing is lost by waiting for it.
  if (op_ != Op::kNone || n < 0) return;
  if (Adopt(n, Trigger::kObservedReplicas, "replicas changed outside zeroscale")) {
    Evaluate(Trigger::kObservedReplicas);
  }
}

bool Automaton::Adopt(int32_t n, Trigger trigger, absl::string_view why) {
  if (n == replicas_) return false;
  const absl::Time now = host_->Now();
  const State from = state_;
  State to = state_;
  if (n == 0) {
    to = State::kScaledToZero;
  } else if (state_ == State::kScaledToZero) {
    to = State::kWaking;
    wake_started_ = now;
    wake_timed_out_ = false;
    ready_signal_ = false;
  }
  const int32_t before = replicas_;
  replicas_ = n;
  state_ = to;
  // Someone chose this count: give it a cooldown before the rules move it again.
  last_up_ = last_down_ = now;
  Record(from, to, before, n, trigger, "", absl::StrCat(why, ": ", Replicas(before, n)), false);
  if (to == State::kScaledToZero) {
    wake_requested_ = false;
    NotifyWaiters(absl::UnavailableError(
        absl::StrCat(spec_.workload, " was scaled to zero outside zeroscale")));
  }
  return true;
}

void Automaton::OnTimer(absl::Time at) {
  if (at >= timer_at_) timer_at_ = absl::InfiniteFuture();
  Evaluate(Trigger::kTimer);
}

void Automaton::OnSetDone(uint64_t op, absl::Status status) {
  if (op_ != Op::kSet || op != op_id_) return;
  op_ = Op::kNone;
  const absl::Time now = host_->Now();
  if (status.ok()) {
    if (pending_target_ > replicas_) last_up_ = now;
    if (pending_target_ < replicas_) last_down_ = now;
    applied_at_ = now;
    replicas_ = pending_target_;
    retry_backoff_.Reset();
    Evaluate(Trigger::kActuation);
    return;
  }
  // Back to what we know for sure; the decision is void, not to be retried as it was.
  const State from = state_;
  state_ = pending_from_;
  const bool conflict = status.code() == absl::StatusCode::kAborted;
  Record(from, state_, pending_target_, replicas_, Trigger::kActuation, "",
         absl::StrCat("could not set ", pending_target_, " replicas (", status.ToString(), "): ",
                      conflict ? "the target changed meanwhile; re-reading it and deciding again"
                               : "re-reading the target after a backoff and deciding again"),
         false);
  if (from == State::kWaking) wake_requested_ = true;  // the balancer still waits
  resync_at_ = conflict ? now : now + retry_backoff_.Next();
  Evaluate(Trigger::kActuation);
}

void Automaton::OnGetDone(uint64_t op, absl::StatusOr<int32_t> replicas) {
  if (op_ != Op::kGet || op != op_id_) return;
  op_ = Op::kNone;
  if (!replicas.ok()) {
    resync_at_ = host_->Now() + retry_backoff_.Next();
    note_ = absl::StrCat("cannot read the target's replicas: ", replicas.status().ToString());
    Evaluate(Trigger::kActuation);
    return;
  }
  resync_at_ = absl::InfiniteFuture();
  retry_backoff_.Reset();
  Adopt(*replicas, Trigger::kActuation, "re-read the target");
  Evaluate(Trigger::kActuation);
}

void Automaton::Resync() {
  op_ = Op::kGet;
  op_id_++;
  host_->StartGet(spec_.workload, op_id_);
}

void Automaton::NotifyWaiters(const absl::Status& status) {
  std::vector<ReadyCallback> waiters;
  waiters.swap(waiters_);
  for (ReadyCallback& w : waiters) w(status);
}

void Automaton::ScheduleNext() {
  if (next_ < timer_at_) {
    timer_at_ = next_;
    host_->ScheduleTimer(spec_.workload, next_);
  }
}

void Automaton::Evaluate(Trigger trigger) {
  // What the keep-alive policy learned is saved whatever is decided (at most once a
  // minute: gaps are recorded at most that often).
  if (keep_alive_.dirty()) {
    keep_alive_.MarkSaved();
    host_->SaveKeepAlive(spec_.workload, keep_alive_.ToJson());
  }
  // The completion of the call in flight evaluates again, from the state it leaves.
  if (op_ != Op::kNone) return;
  const absl::Time now = host_->Now();
  next_ = absl::InfiniteFuture();
  if (resync_at_ != absl::InfiniteFuture()) {
    if (now >= resync_at_) {
      Resync();
    } else {
      Consider(resync_at_);
      ScheduleNext();
    }
    return;
  }
  window_.Prune(now);
  note_.clear();
  switch (state_) {
    case State::kScaledToZero:
      if (spec_.min_replicas > 0) {
        Wake(trigger, absl::StrCat("minReplicas is ", spec_.min_replicas));
      } else if (wake_requested_) {
        Wake(trigger, "wake requested by the balancer");
      } else {
        MaybePrewarm(now, trigger);
      }
      break;
    case State::kWaking:
      EvaluateWaking(now, trigger);
      break;
    case State::kActive:
    case State::kHolding:
      EvaluateRunning(now, trigger);
      break;
  }
  ScheduleNext();
}

void Automaton::EvaluateWaking(absl::Time now, Trigger trigger) {
  std::string pod = ready_pod_;
  if (ready_signal_ || window_.AnyFreshReady(now, wake_started_, &pod)) {
    ready_signal_ = false;
    wake_requested_ = false;
    keep_alive_.OnColdStart(now - wake_started_);
    Transition(State::kActive, trigger,
               absl::StrCat("pod ", pod, " is ready ",
                            FormatSeconds(absl::Trunc(now - wake_started_, absl::Milliseconds(1))),
                            " after the wake: serving with ", replicas_, " replicas"));
    NotifyWaiters(absl::OkStatus());
    return;
  }
  const absl::Time deadline = wake_started_ + options_->wake_timeout;
  if (now < deadline) {
    Consider(deadline);
    return;
  }
  if (!wake_timed_out_) {
    wake_timed_out_ = true;
    Transition(State::kWaking, trigger,
               absl::StrCat("no pod ready ", FormatSeconds(options_->wake_timeout),
                            " after the wake: still waiting with ", replicas_, " replicas"));
    NotifyWaiters(absl::DeadlineExceededError(absl::StrCat("no pod of ", spec_.workload, " ready ",
                                                           FormatSeconds(options_->wake_timeout),
                                                           " after the wake")));
  }
  // A wake that never completes (a replica Pending for want of a GPU, an image that does
  // not pull) must not keep its replicas forever once nobody waits for it.
  EvaluateIdle(
      now, trigger,
      absl::StrCat("no pod ready ", FormatSeconds(options_->wake_timeout), " after the wake"));
}

void Automaton::EvaluateRunning(absl::Time now, Trigger trigger) {
  // The bounds are not data-driven: they apply even without samples.
  if (replicas_ > spec_.max_replicas) {
    Apply(state_, spec_.max_replicas, trigger, "",
          absl::StrCat("above maxReplicas ", spec_.max_replicas, ": ",
                       Replicas(replicas_, spec_.max_replicas)));
    return;
  }
  if (replicas_ < spec_.min_replicas) {
    Apply(state_, spec_.min_replicas, trigger, "",
          absl::StrCat("below minReplicas ", spec_.min_replicas, ": ",
                       Replicas(replicas_, spec_.min_replicas)));
    return;
  }

  const absl::Time newest = window_.newest();
  const bool stale = newest == absl::InfinitePast() || now - newest > options_->staleness;
  if (stale && NothingServes()) {
    // Nothing that should report is missing: no pod serves yet.
    const std::string why = absl::StrCat("none of the ", pods_->existing.size(),
                                         " pods serves (Pending or not ready): no metrics are "
                                         "missing, only idleTimeoutSeconds applies");
    if (state_ == State::kHolding) Transition(State::kActive, trigger, why);
    EvaluateIdle(now, trigger, why);
    return;
  }
  if (stale) {
    std::string why = newest == absl::InfinitePast()
                          ? absl::StrCat(kNoSamplesYet, ": holding ", replicas_, " replicas")
                          : absl::StrCat("no fresh samples for ",
                                         FormatSeconds(absl::Trunc(now - newest, absl::Seconds(1))),
                                         ": holding ", replicas_, " replicas");
    if (state_ == State::kActive) Transition(State::kHolding, trigger, why);
    note_ = std::move(why);
    return;
  }
  const int reporting = window_.ReportingPods(now);
  if (state_ == State::kHolding) {
    Transition(State::kActive, trigger,
               absl::StrCat("fresh samples from ", reporting, " pods: deciding on rules again"));
  }
  // When the data goes stale, the timer moves us to Holding.
  Consider(newest + options_->staleness + absl::Nanoseconds(1));

  // Rules of one workload nearly always share a window: aggregate once per window.
  std::vector<WindowStats> stats;
  auto stats_for = [&](absl::Duration w) -> const WindowStats& {
    for (const WindowStats& s : stats) {
      if (s.window == w) return s;
    }
    stats.push_back(window_.Compute(w, now));
    return stats.back();
  };
  std::vector<const ScalingRule*> up, down, zero;
  for (const ScalingRule& rule : spec_.rules) {
    if (!RuleHolds(rule, stats_for(absl::Seconds(rule.window_seconds)))) continue;
    switch (rule.action) {
      case Action::kIncreaseInstances:
        up.push_back(&rule);
        break;
      case Action::kDecreaseInstances:
        down.push_back(&rule);
        break;
      case Action::kDecreaseInstancesToZero:
        zero.push_back(&rule);
        break;
    }
  }
  auto explain = [&](const ScalingRule* r) {
    return ExplainRule(*r, stats_for(absl::Seconds(r->window_seconds)));
  };

  // Never act twice on the same evidence: after a scale change, a rule may act again
  // only on samples that arrived after it (the change itself is not yet visible in older
  // ones). Without this a rule still holding on old samples would step again the moment
  // the previous step was applied.
  const absl::Time last_change = std::max(last_up_, last_down_);
  const int32_t floor = std::max(spec_.min_replicas, 1);
  const bool may_decrease = !down.empty() && replicas_ > floor;
  const bool fresh_evidence = newest > applied_at_;
  if ((!up.empty() || may_decrease) && !fresh_evidence) {
    note_ = "waiting for samples taken after the last scale change";
    return;
  }

  if (!up.empty()) {
    if (replicas_ >= spec_.max_replicas) {
      note_ = absl::StrCat(explain(up.front()), ", but at maxReplicas ", spec_.max_replicas);
      return;
    }
    const ScalingRule* chosen = nullptr;
    for (const ScalingRule* r : up) {
      const absl::Time ready_at = last_up_ + Cooldown(*r);
      if (now < ready_at) {
        Consider(ready_at);
        continue;
      }
      if (chosen == nullptr || r->step > chosen->step) chosen = r;
    }
    if (chosen == nullptr) {
      note_ = absl::StrCat(explain(up.front()), ", but in cooldown");
      return;
    }
    const int32_t target = static_cast<int32_t>(
        std::min<int64_t>(spec_.max_replicas, int64_t{replicas_} + chosen->step));
    Apply(State::kActive, target, trigger, chosen->id,
          absl::StrCat(explain(chosen), ": ", Replicas(replicas_, target)));
    return;
  }

  const absl::Duration idle_after = IdleAfter();
  const bool idle_enabled = spec_.min_replicas == 0 && idle_after != absl::InfiniteDuration();
  const bool idle = idle_enabled && now - last_request_ >= idle_after;
  if (may_decrease || !zero.empty() || idle) {
    if (std::string partial = PartialData(now, reporting); !partial.empty()) {
      note_ = std::move(partial);
      return;
    }
  }
  if (may_decrease) {
    const ScalingRule* chosen = nullptr;
    for (const ScalingRule* r : down) {
      const absl::Time ready_at = last_change + Cooldown(*r);
      if (now < ready_at) {
        Consider(ready_at);
        continue;
      }
      if (chosen == nullptr || r->step < chosen->step) chosen = r;
    }
    if (chosen == nullptr) {
      note_ = absl::StrCat(explain(down.front()), ", but in cooldown");
      return;
    }
    const int32_t target =
        static_cast<int32_t>(std::max<int64_t>(floor, int64_t{replicas_} - chosen->step));
    Apply(State::kActive, target, trigger, chosen->id,
          absl::StrCat(explain(chosen), ": ", Replicas(replicas_, target)));
    return;
  }

  // To zero: the last step, taken when nothing else acts.
  if (idle_enabled && !idle) Consider(last_request_ + idle_after);
  const ScalingRule* zero_rule = nullptr;
  for (const ScalingRule* r : zero) {
    const absl::Time ready_at = last_change + Cooldown(*r);
    if (now < ready_at) {
      Consider(ready_at);
      continue;
    }
    zero_rule = r;
    break;
  }
  if (zero_rule != nullptr && spec_.min_replicas > 0) {
    if (replicas_ > spec_.min_replicas) {
      Apply(State::kActive, spec_.min_replicas, trigger, zero_rule->id,
            absl::StrCat(explain(zero_rule), ": to zero, clamped to minReplicas ",
                         spec_.min_replicas, ": ", Replicas(replicas_, spec_.min_replicas)));
    }
    return;
  }
  if (zero_rule == nullptr && !idle) {
    if (!zero.empty()) note_ = absl::StrCat(explain(zero.front()), ", but in cooldown");
    return;
  }
  if (!idle && !fresh_evidence) {
    note_ = "waiting for samples taken after the last scale change";
    return;
  }
  const double in_flight = window_.InFlightNow(now) + BalancerInFlight(now);
  const std::string why = zero_rule != nullptr ? explain(zero_rule) : IdleReason(now);
  if (in_flight > 0) {
    note_ = absl::StrCat(why, ", but ", FormatValue(in_flight),
                         " requests are in flight: not scaling to zero");
    return;
  }
  Apply(State::kScaledToZero, 0, trigger, zero_rule != nullptr ? zero_rule->id : "",
        absl::StrCat(why, ": ", Replicas(replicas_, 0)));
}

bool Automaton::StatusChanged() const {
  if (!published_) return true;
  const Published& p = *published_;
  const bool in_flight = op_ == Op::kSet;
  return p.state != state_ || p.replicas != replicas_ ||
         p.desired != (in_flight ? pending_target_ : replicas_) || p.in_flight != in_flight ||
         p.decisions != decisions_ || p.note != note_ || p.rule_changes != rule_changes_;
}

void Automaton::MarkPublished() {
  Published p;
  p.state = state_;
  p.replicas = replicas_;
  p.in_flight = op_ == Op::kSet;
  p.desired = p.in_flight ? pending_target_ : replicas_;
  p.decisions = decisions_;
  p.note = note_;
  p.rule_changes = rule_changes_;
  published_ = std::move(p);
}

WorkloadStatus Automaton::Status() const {
  WorkloadStatus s;
  s.workload = spec_.workload;
  s.state = state_;
  s.replicas = replicas_;
  s.actuation_in_flight = op_ == Op::kSet;
  s.desired = op_ == Op::kSet ? pending_target_ : replicas_;
  s.last_decision = last_decision_;
  s.note = note_;
  s.rules = RuleRefs(spec_);
  s.rule_conflicts = rule_conflicts_;
  return s;
}

}  // namespace zeroscale::decide
