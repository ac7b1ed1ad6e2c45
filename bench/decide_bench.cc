// Decision engine cost: 10,000 workloads with two pods each, every pod sending one sample
// per second, all evaluated by one engine on one thread (the scaler's decision loop).
// Prints the samples/s the engine sustains on one core against the 20,000 samples/s this
// fleet produces, and the in-process time from the sample that makes a rule hold to the
// scale call leaving the engine.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "scaler/decide/engine.h"
#include "scaler/decide/scheduler.h"

namespace zeroscale::bench {
namespace {

class ManualClock : public Clock {
 public:
  absl::Time Now() const override { return now_; }
  // The benchmark drives a ManualScheduler on one thread: nothing waits on this clock.
  void WaitUntil(std::condition_variable&, std::unique_lock<std::mutex>&,
                 absl::Time) const override {}
  absl::Duration BlockFor(absl::Time) const override { return absl::ZeroDuration(); }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
};

// Applies at once, as a backend that answers immediately would.
class InstantSetter : public decide::ReplicaSetter {
 public:
  void SetReplicas(const std::string&, int32_t, int32_t, const std::string&,
                   std::function<void(absl::Status)> done) override {
    ++sets;
    last_set = absl::Now();
    done(absl::OkStatus());
  }
  void GetReplicas(const std::string&, std::function<void(absl::StatusOr<int32_t>)> done) override {
    done(1);
  }
  uint64_t sets = 0;
  absl::Time last_set;
};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int Run() {
  constexpr int kWorkloads = 10'000;
  constexpr int kPods = 2;
  constexpr int kSeconds = 60;
  ManualClock clock;
  decide::ManualScheduler scheduler(&clock);
  InstantSetter setter;
  decide::Engine engine(&clock, &scheduler, &setter, nullptr);
  std::vector<std::string> ids;
  for (int w = 0; w < kWorkloads; ++w) {
    decide::WorkloadSpec spec;
    spec.workload = absl::StrCat("bench/Deployment/model-", w);
    spec.min_replicas = 0;
    spec.max_replicas = 10;
    spec.idle_timeout = absl::Minutes(5);
    ScalingRule up;
    up.id = "busy";
    up.action = Action::kIncreaseInstances;
    up.thresholds = {{MetricType::kInFlightRequests, 4, Operator::kGreaterThan}};
    up.window_seconds = 30;
    up.cooldown_seconds = 30;
    ScalingRule down;
    down.id = "quiet";
    down.action = Action::kDecreaseInstances;
    down.thresholds = {{MetricType::kCpuUsage, 10, Operator::kLessThan},
                       {MetricType::kAverageResponseTime, 50, Operator::kLessThan}};
    down.window_seconds = 60;
    down.cooldown_seconds = 120;
    spec.rules = {up, down};
    if (absl::Status s = engine.Upsert(spec, kPods); !s.ok()) {
      std::fprintf(stderr, "upsert: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    ids.push_back(spec.workload);
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> pct(0, 100);
  std::vector<Podmetric> batch;
  batch.reserve(kWorkloads * kPods);
  uint64_t samples = 0;
  double cpu = 0;
  for (int s = 0; s < kSeconds; ++s) {
    clock.Advance(absl::Seconds(1));
    batch.clear();
    for (int w = 0; w < kWorkloads; ++w) {
      for (int p = 0; p < kPods; ++p) {
        Podmetric m;
        m.id = absl::StrCat("bench/model-", w, "-", p);
        m.workload = ids[w];
        m.cpu_usage = pct(rng);
        m.average_response_time = pct(rng);
        m.request_count = 10;
        m.request_rate = 10;
        m.in_flight = pct(rng) / 20;
        m.ready = true;
        m.sampled_at = clock.Now();
        m.received_at = clock.Now();
        batch.push_back(std::move(m));
      }
    }
    // Only the engine's work is timed, not building the samples.
    const double t0 = ThreadCpuSeconds();
    for (const Podmetric& m : batch) engine.OnSample(m);
    scheduler.RunPending();
    cpu += ThreadCpuSeconds() - t0;
    samples += batch.size();
  }
  const double rate = samples / cpu;
  const double needed = kWorkloads * kPods;

  // Latency of one decision inside the engine: the sample that makes 'busy' hold, to
  // the scale call.
  std::vector<double> micros;
  for (int i = 0; i < 1000; ++i) {
    clock.Advance(absl::Seconds(31));  // past the cooldown
    const std::string& w = ids[i];
    Podmetric m;
    m.id = absl::StrCat("bench/model-", i, "-0");
    m.workload = w;
    m.in_flight = 50;
    m.request_count = 10;
    m.ready = true;
    m.sampled_at = m.received_at = clock.Now();
    const uint64_t before = setter.sets;
    const absl::Time t0 = absl::Now();
    engine.OnSample(m);
    if (setter.sets > before) micros.push_back(absl::ToDoubleMicroseconds(setter.last_set - t0));
  }
  std::sort(micros.begin(), micros.end());
  const double p50 = micros.empty() ? 0 : micros[micros.size() / 2];
  const double p99 = micros.empty() ? 0 : micros[micros.size() * 99 / 100];
  std::printf("RESULT workloads=%d pods/workload=%d simulated=%ds samples=%lu scale_calls=%lu\n",
              kWorkloads, kPods, kSeconds, static_cast<unsigned long>(samples),
              static_cast<unsigned long>(setter.sets));
  std::printf(
      "RESULT engine sustains %.0f samples/s on one core; this fleet sends %.0f/s "
      "(headroom %.1fx, one core %.1f%% busy)\n",
      rate, needed, rate / needed, 100 * needed / rate);
  std::printf(
      "RESULT in-engine decision latency (sample -> scale call): p50 %.1f us, p99 %.1f us "
      "over %zu decisions\n",
      p50, p99, micros.size());
  return 0;
}

}  // namespace
}  // namespace zeroscale::bench

int main() { return zeroscale::bench::Run(); }
