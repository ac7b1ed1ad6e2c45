// Fakes shared by the decide tests: a ReplicaSetter whose calls the test completes by
// hand, and a sink that keeps every Decision. Not thread-safe.
#ifndef ZEROSCALE_TESTS_SCALER_DECIDE_TEST_UTIL_H_
#define ZEROSCALE_TESTS_SCALER_DECIDE_TEST_UTIL_H_

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/model/podmetric.h"
#include "scaler/decide/decision.h"

namespace zeroscale::decide::testing {

inline constexpr char kWorkload[] = "ml/Deployment/llama";

class FakeSetter : public ReplicaSetter {
 public:
  struct Set {
    std::string workload;
    int32_t from;
    int32_t n;
    std::string reason;
    std::function<void(absl::Status)> done;
  };
  void SetReplicas(const std::string& workload, int32_t from, int32_t n, const std::string& reason,
                   std::function<void(absl::Status)> done) override {
    sets.push_back({workload, from, n, reason, std::move(done)});
    history.push_back(n);
  }
  void GetReplicas(const std::string& workload,
                   std::function<void(absl::StatusOr<int32_t>)> done) override {
    gets.push_back(std::move(done));
  }
  // Completes the oldest pending SetReplicas call.
  void CompleteSet(absl::Status s = absl::OkStatus()) {
    Set call = std::move(sets.front());
    sets.pop_front();
    call.done(s);
  }
  void CompleteGet(absl::StatusOr<int32_t> n) {
    auto done = std::move(gets.front());
    gets.pop_front();
    done(n);
  }
  std::deque<Set> sets;  // pending
  std::deque<std::function<void(absl::StatusOr<int32_t>)>> gets;
  std::vector<int32_t> history;  // every count ever asked for
};

class RecordingSink : public DecisionSink {
 public:
  void Record(const Decision& d) override { decisions.push_back(d); }
  void OnStatus(const WorkloadStatus& s) override { statuses.push_back(s); }
  void OnRemoved(const std::string& workload) override { removed.push_back(workload); }
  std::vector<Decision> decisions;
  std::vector<WorkloadStatus> statuses;  // every snapshot pushed, in order
  std::vector<std::string> removed;
};

inline Podmetric Sample(const std::string& pod, absl::Time at, bool ready = true) {
  Podmetric m;
  m.id = "ml/" + pod;
  m.workload = kWorkload;
  m.received_at = at;
  m.sampled_at = at;
  m.ready = ready;
  return m;
}

inline ScalingRule Rule(const std::string& id, Action action, MetricType metric, Operator op,
                        double value, uint32_t step = 1, uint32_t cooldown = 0) {
  ScalingRule r;
  r.id = id;
  r.action = action;
  r.thresholds = {{metric, value, op}};
  r.target = kWorkload;
  r.step = step;
  r.cooldown_seconds = cooldown;
  return r;
}

// kWorkload at 1..5 replicas with one rule, "busy": one more replica while the mean
// in-flight requests per pod exceed 5.
inline WorkloadSpec BusySpec() {
  WorkloadSpec spec;
  spec.workload = kWorkload;
  spec.min_replicas = 1;
  spec.max_replicas = 5;
  spec.rules = {Rule("busy", Action::kIncreaseInstances, MetricType::kInFlightRequests,
                     Operator::kGreaterThan, 5)};
  return spec;
}

}  // namespace zeroscale::decide::testing

#endif  // ZEROSCALE_TESTS_SCALER_DECIDE_TEST_UTIL_H_
