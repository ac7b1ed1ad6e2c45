// Replays an invocation trace through the real decision engine (scaler/decide: the same
// Engine, automata, keep-alive policies and rules the scaler runs) on a virtual clock, one
// application at a time, against a model of the workload:
// - a replica takes the cold start (fixed, or uniform in a range) from the scale-up to
//   ready; it serves up to `capacity` requests at once, each for its trace duration or
//   `service`; extra requests queue;
// - the "balancer": a request finding no ready replica is held and wakes the workload
//   (Activate, once per wake), and is served when a pod is ready;
// - the "sidecar": the ready pod reports a sample (ready, in-flight requests) whenever the
//   engine is about to look (every event and timer), which is what a pod reporting every
//   second shows at those instants. Because the pods never stop reporting in the model,
//   the engine runs with a staleness of an hour so that it is not woken every 5 s only to
//   learn that the data is fresh (the runtime would follow the trace length, not events).
// The workload has minReplicas 0 and maxReplicas 1: the question is when to go to zero
// and back, not how far to scale out.
//
// Counted per application: requests; cold starts (times a request found no ready replica
// and had to wait for one to load, once per wake episode however many requests it held);
// requests held and the latency the wait added; idle replica-seconds (a replica up,
// loading or ready, with no request in flight — the GPU time paid for nothing), up to the
// trace's end; pre-warms.
//
// Thread-safety: SimulateApp is a pure function (its engine is its own); call it from any
// thread.
#ifndef ZEROSCALE_SCALER_SIM_SIMULATOR_H_
#define ZEROSCALE_SCALER_SIM_SIMULATOR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/model/keep_alive.h"
#include "scaler/decide/decision.h"
#include "scaler/sim/trace.h"

namespace zeroscale::sim {

struct WorkloadModel {
  absl::Duration cold_start_min = absl::Minutes(2);
  absl::Duration cold_start_max = absl::Minutes(2);
  absl::Duration service = absl::Seconds(1);  // for requests without a duration
  int capacity = 4;
  uint64_t seed = 1;  // cold-start draws
};

// "2m" (fixed) or "1m..5m" (uniform).
absl::Status ParseColdStart(absl::string_view text, WorkloadModel* model);

struct Policy {
  std::string name;  // "fixed:10m"
  KeepAliveConfig keep_alive;
  absl::Duration idle_timeout;  // fixed's keep-alive, adaptive's fallback
};

// "fixed:<duration>" (fixed:10m, fixed:90s), "knative", "adaptive" (fallback 10m),
// "adaptive:<fallback>". `cold_start` is what adaptive pre-warming assumes until it has
// measured a wake.
absl::StatusOr<Policy> ParsePolicy(absl::string_view text, absl::Duration cold_start);

struct AppResult {
  std::string name;
  std::string kind;
  int64_t requests = 0;
  int64_t cold_starts = 0;
  int64_t held = 0;
  int64_t prewarms = 0;
  double idle_replica_seconds = 0;
  double up_replica_seconds = 0;
  std::vector<double> added_latency;  // seconds, one per held request
  double ColdStartRate() const {
    return requests == 0 ? 0 : static_cast<double>(cold_starts) / static_cast<double>(requests);
  }
};

// `on_decision` (may be null) sees every decision of the app's automaton, with its time
// relative to the trace's start.
using DecisionObserver = std::function<void(absl::Duration at, const decide::Decision&)>;
AppResult SimulateApp(const AppTrace& app, absl::Duration length, const Policy& policy,
                      const WorkloadModel& model, uint64_t app_index,
                      const DecisionObserver& on_decision = nullptr);

struct Summary {
  int64_t apps = 0;  // with at least one request
  int64_t requests = 0;
  int64_t cold_starts = 0;
  int64_t held = 0;
  int64_t prewarms = 0;
  double cold_start_rate_p75 = 0;  // 75th percentile of the per-app cold-start rate
  double idle_replica_seconds = 0;
  double latency_p50 = 0;  // added latency of held requests, seconds
  double latency_p99 = 0;
};

Summary Summarize(const std::vector<AppResult>& results);

// q in [0, 1]; nearest rank on a sorted copy. 0 for an empty set.
double Percentile(std::vector<double> values, double q);

// One CSV row per application, with a header.
std::string ResultsCsv(const std::vector<AppResult>& results, absl::string_view policy);

}  // namespace zeroscale::sim

#endif  // ZEROSCALE_SCALER_SIM_SIMULATOR_H_
