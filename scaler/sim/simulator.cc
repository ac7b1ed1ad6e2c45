#include "scaler/sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <queue>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/config/flags.h"
#include "common/time/clock.h"
#include "scaler/decide/engine.h"
#include "scaler/decide/scheduler.h"

namespace zeroscale::sim {
namespace {

// The virtual clock: time moves only when the replay moves it; nothing ever waits on it.
class VirtualClock : public Clock {
 public:
  absl::Time Now() const override { return now_; }
  void WaitUntil(std::condition_variable&, std::unique_lock<std::mutex>&,
                 absl::Time) const override {}
  absl::Duration BlockFor(absl::Time) const override { return absl::ZeroDuration(); }
  void Set(absl::Time t) { now_ = std::max(now_, t); }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

class Replay : public decide::ReplicaSetter, public decide::DecisionSink {
 public:
  Replay(const AppTrace& app, absl::Duration length, const Policy& policy,
         const WorkloadModel& model, uint64_t app_index, const DecisionObserver& on_decision)
      : app_(app),
        on_decision_(on_decision),
        model_(model),
        rng_(model.seed * 0x9E3779B97F4A7C15ULL + app_index),
        scheduler_(&clock_),
        engine_(&clock_, &scheduler_, this, this, Options(model)),
        start_(clock_.Now()),
        end_(start_ + length) {
    workload_ = absl::StrCat("sim/Deployment/app-", app_index);
    decide::WorkloadSpec spec;
    spec.workload = workload_;
    spec.min_replicas = 0;
    spec.max_replicas = 1;
    spec.idle_timeout = policy.idle_timeout;
    spec.keep_alive = policy.keep_alive;
    status_ = engine_.Upsert(spec, 0);
    result_.name = app.name;
    result_.kind = app.kind;
  }

  AppResult Run() {
    if (!status_.ok()) return result_;  // ParsePolicy validated; cannot happen
    size_t next = 0;
    const std::vector<Request>& reqs = app_.requests;
    for (;;) {
      absl::Time t = absl::InfiniteFuture();
      if (next < reqs.size()) t = std::min(t, start_ + reqs[next].at);
      if (!done_.empty()) t = std::min(t, done_.top());
      t = std::min(t, ready_at_);
      if (std::optional<absl::Time> timer = scheduler_.NextTimer()) t = std::min(t, *timer);
      if (t > end_ || t == absl::InfiniteFuture()) break;
      Advance(t);
      if (ready_at_ <= t) {
        PodReady();
      } else if (!done_.empty() && done_.top() <= t) {
        done_.pop();
        Complete();
      } else if (next < reqs.size() && start_ + reqs[next].at <= t) {
        Arrive(reqs[next]);
        ++next;
      } else {
        Report();  // the pod's latest sample, then the timer
      }
      scheduler_.RunPending();
    }
    Advance(end_);
    return result_;
  }

  // ReplicaSetter: the target takes the count at once; a new replica is ready after the
  // cold start.
  void SetReplicas(const std::string&, int32_t, int32_t n, const std::string&,
                   std::function<void(absl::Status)> done) override {
    if (n <= 0) {
      replicas_ = 0;
      ready_ = false;
      ready_at_ = absl::InfiniteFuture();
    } else if (replicas_ == 0) {
      replicas_ = 1;
      ++pod_;
      std::uniform_real_distribution<double> u(absl::ToDoubleSeconds(model_.cold_start_min),
                                               absl::ToDoubleSeconds(model_.cold_start_max));
      ready_at_ = clock_.Now() + absl::Seconds(model_.cold_start_min == model_.cold_start_max
                                                   ? absl::ToDoubleSeconds(model_.cold_start_min)
                                                   : u(rng_));
    }
    done(absl::OkStatus());
  }
  void GetReplicas(const std::string&, std::function<void(absl::StatusOr<int32_t>)> done) override {
    done(replicas_);
  }

  // DecisionSink.
  void Record(const decide::Decision& d) override {
    if (absl::StartsWith(d.reason, "pre-warming")) ++result_.prewarms;
    if (on_decision_) on_decision_(d.time - start_, d);
  }

 private:
  static decide::DeciderOptions Options(const WorkloadModel& model) {
    decide::DeciderOptions o;
    o.staleness = absl::Hours(1);
    o.wake_timeout = std::max(absl::Minutes(5), model.cold_start_max + absl::Minutes(1));
    return o;
  }

  // Moves the clock, counting replica time up to `t`.
  void Advance(absl::Time t) {
    t = std::min(t, end_);
    const absl::Time from = clock_.Now();
    if (t > from && replicas_ > 0) {
      const double dt = absl::ToDoubleSeconds(t - from);
      result_.up_replica_seconds += dt;
      if (serving_ == 0 && held_.empty() && queued_.empty()) result_.idle_replica_seconds += dt;
    }
    clock_.Set(t);
  }

  std::string Pod() const { return absl::StrCat("sim/pod-", pod_); }

  // The ready pod's sample as of now.
  void Report() {
    if (!ready_) return;
    Podmetric m;
    m.id = Pod();
    m.workload = workload_;
    m.received_at = m.sampled_at = clock_.Now();
    m.ready = true;
    m.in_flight = serving_ + static_cast<double>(queued_.size());
    m.seq = ++seq_;
    engine_.OnSample(m);
  }

  // The balancer's report: requests received now, and what it holds or forwards.
  void Traffic(uint64_t requests) {
    (void)engine_.OnTraffic(workload_, decide::TrafficReport{clock_.Now(), requests,
                                                             static_cast<uint64_t>(serving_) +
                                                                 queued_.size() + held_.size()});
  }

  void Serve(const Request& r) {
    ++serving_;
    done_.push(clock_.Now() + (r.service > absl::ZeroDuration() ? r.service : model_.service));
  }

  void Arrive(const Request& r) {
    ++result_.requests;
    if (ready_) {
      if (serving_ < model_.capacity) {
        Serve(r);
      } else {
        queued_.push_back(r);
      }
      Traffic(1);
      Report();
      return;
    }
    if (held_.empty()) ++result_.cold_starts;
    held_.push_back({clock_.Now(), r});
    Traffic(1);
    if (!activating_) {
      activating_ = true;
      engine_.Activate(workload_, [this](absl::Status s) {
        activating_ = false;
        if (s.ok()) Release();
      });
    }
  }

  void PodReady() {
    ready_at_ = absl::InfiniteFuture();
    ready_ = true;
    Report();
    (void)engine_.OnPodReady(workload_, Pod());
    Release();
  }

  // Held requests go to the ready replica, in arrival order.
  void Release() {
    if (!ready_) return;
    const absl::Time now = clock_.Now();
    for (const auto& [since, r] : held_) {
      ++result_.held;
      result_.added_latency.push_back(absl::ToDoubleSeconds(now - since));
      if (serving_ < model_.capacity) {
        Serve(r);
      } else {
        queued_.push_back(r);
      }
    }
    held_.clear();
    // The balancer's next report: what it held it now forwards.
    Traffic(0);
    Report();
  }

  void Complete() {
    Report();  // the request was in flight until now
    --serving_;
    if (!queued_.empty()) {
      Serve(queued_.front());
      queued_.pop_front();
    }
    if (serving_ == 0) {
      // The next sample shows nothing in flight: the keep-alive counts from here.
      Advance(clock_.Now() + absl::Milliseconds(1));
      Traffic(0);
      Report();
    }
  }

  const AppTrace& app_;
  const DecisionObserver& on_decision_;
  const WorkloadModel model_;
  std::mt19937_64 rng_;
  VirtualClock clock_;
  decide::ManualScheduler scheduler_;
  decide::Engine engine_;
  const absl::Time start_;
  const absl::Time end_;
  std::string workload_;
  absl::Status status_;
  AppResult result_;

  int32_t replicas_ = 0;
  bool ready_ = false;
  absl::Time ready_at_ = absl::InfiniteFuture();
  uint64_t pod_ = 0;
  uint64_t seq_ = 0;
  int serving_ = 0;
  std::priority_queue<absl::Time, std::vector<absl::Time>, std::greater<absl::Time>> done_;
  std::deque<Request> queued_;
  std::vector<std::pair<absl::Time, Request>> held_;
  bool activating_ = false;
};

}  // namespace

absl::Status ParseColdStart(absl::string_view text, WorkloadModel* model) {
  const size_t dots = text.find("..");
  auto parse = [&](absl::string_view part, absl::Duration* out) {
    absl::StatusOr<absl::Duration> d = config::ParseDuration(part);
    if (!d.ok() || *d < absl::ZeroDuration() || *d > absl::Hours(2)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--cold-start: '", part.substr(0, 40),
                       "' is not a duration from 0 to 2h (e.g. 3m, or 1m..5m for a range)"));
    }
    *out = *d;
    return absl::OkStatus();
  };
  absl::Duration lo, hi;
  if (dots == absl::string_view::npos) {
    if (absl::Status s = parse(text, &lo); !s.ok()) return s;
    hi = lo;
  } else {
    if (absl::Status s = parse(text.substr(0, dots), &lo); !s.ok()) return s;
    if (absl::Status s = parse(text.substr(dots + 2), &hi); !s.ok()) return s;
    if (hi < lo) return absl::InvalidArgumentError("--cold-start: the range ends before it starts");
  }
  model->cold_start_min = lo;
  model->cold_start_max = hi;
  return absl::OkStatus();
}

absl::StatusOr<Policy> ParsePolicy(absl::string_view text, absl::Duration cold_start) {
  Policy p;
  p.name = std::string(text);
  p.keep_alive.cold_start = cold_start;
  p.keep_alive.policy_set = true;
  const size_t colon = text.find(':');
  const absl::string_view kind = text.substr(0, colon);
  const absl::string_view arg =
      colon == absl::string_view::npos ? absl::string_view() : text.substr(colon + 1);
  auto duration = [&](absl::Duration* out) {
    absl::StatusOr<absl::Duration> d = config::ParseDuration(arg);
    if (!d.ok() || *d <= absl::ZeroDuration() || *d > absl::Hours(24)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--policy=", text.substr(0, 60), ": '", arg.substr(0, 40),
                       "' is not a keep-alive duration from 1s to 24h (e.g. fixed:10m)"));
    }
    *out = *d;
    return absl::OkStatus();
  };
  if (kind == "fixed") {
    p.keep_alive.policy = KeepAlivePolicy::kFixed;
    if (arg.empty()) {
      return absl::InvalidArgumentError("--policy=fixed needs a keep-alive: fixed:10m");
    }
    if (absl::Status s = duration(&p.idle_timeout); !s.ok()) return s;
  } else if (kind == "knative" && arg.empty()) {
    p.keep_alive.policy = KeepAlivePolicy::kKnative;
  } else if (kind == "adaptive") {
    p.keep_alive.policy = KeepAlivePolicy::kAdaptive;
    p.idle_timeout = absl::Minutes(10);
    if (!arg.empty()) {
      if (absl::Status s = duration(&p.idle_timeout); !s.ok()) return s;
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--policy=", text.substr(0, 60),
                     ": expected fixed:<duration>, knative, adaptive or adaptive:<fallback>"));
  }
  return p;
}

AppResult SimulateApp(const AppTrace& app, absl::Duration length, const Policy& policy,
                      const WorkloadModel& model, uint64_t app_index,
                      const DecisionObserver& on_decision) {
  Replay r(app, length, policy, model, app_index, on_decision);
  return r.Run();
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(q * static_cast<double>(values.size()));
  const size_t i = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return values[std::min(i, values.size() - 1)];
}

Summary Summarize(const std::vector<AppResult>& results) {
  Summary s;
  std::vector<double> rates, latency;
  for (const AppResult& r : results) {
    s.idle_replica_seconds += r.idle_replica_seconds;
    if (r.requests == 0) continue;
    ++s.apps;
    s.requests += r.requests;
    s.cold_starts += r.cold_starts;
    s.held += r.held;
    s.prewarms += r.prewarms;
    rates.push_back(r.ColdStartRate());
    latency.insert(latency.end(), r.added_latency.begin(), r.added_latency.end());
  }
  s.cold_start_rate_p75 = Percentile(rates, 0.75);
  s.latency_p50 = Percentile(latency, 0.50);
  s.latency_p99 = Percentile(latency, 0.99);
  return s;
}

std::string ResultsCsv(const std::vector<AppResult>& results, absl::string_view policy) {
  std::string out =
      "policy,app,kind,requests,cold_starts,cold_start_rate,held,added_latency_p50_s,"
      "added_latency_p99_s,idle_replica_seconds,up_replica_seconds,prewarms\n";
  for (const AppResult& r : results) {
    absl::StrAppendFormat(&out, "%s,%s,%s,%d,%d,%.6f,%d,%.3f,%.3f,%.1f,%.1f,%d\n", policy, r.name,
                          r.kind, r.requests, r.cold_starts, r.ColdStartRate(), r.held,
                          Percentile(r.added_latency, 0.5), Percentile(r.added_latency, 0.99),
                          r.idle_replica_seconds, r.up_replica_seconds, r.prewarms);
  }
  return out;
}

}  // namespace zeroscale::sim
