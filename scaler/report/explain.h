// The decider's view as users see it with kubectl: an Event per decision on the target
// ("why does my model have 0 replicas?") and the CustomAutoscaler's status with its
// conditions.
// Pure functions; thread-safe.
#ifndef ZEROSCALE_SCALER_REPORT_EXPLAIN_H_
#define ZEROSCALE_SCALER_REPORT_EXPLAIN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kube/events.h"
#include "common/kube/types.h"
#include "scaler/decide/automaton.h"
#include "scaler/decide/decision.h"

namespace zeroscale::report {

// Condition types written on every CustomAutoscaler.
inline constexpr char kConditionSpecValid[] = "SpecValid";
inline constexpr char kConditionReady[] = "Ready";
inline constexpr char kConditionScalingActive[] = "ScalingActive";
// Present only while they apply: a scale-up held back by an allocation limit (True), a
// group budget that cannot be used (False).
inline constexpr char kConditionScalingLimited[] = "ScalingLimited";
inline constexpr char kConditionAllocationPolicy[] = "AllocationPolicy";

struct EventExplanation {
  kube::EventType type = kube::EventType::kNormal;
  std::string reason;  // CamelCase: "ScaledUp", "ScaledToZero", "FailedScale"...
  std::string message;
};
// Warning for failed writes and for holds (no fresh metrics); Normal otherwise.
EventExplanation ExplainDecision(const decide::Decision& d);
// True for the decision an automaton records when a scale write failed.
bool IsFailedWrite(const decide::Decision& d);
// "ScaledUp 1 -> 2", the status's lastDecision.
std::string DescribeDecision(const decide::Decision& d);

// What the reconciler knows about one CustomAutoscaler when it writes the status.
struct StatusInputs {
  int64_t generation = 0;
  // Not OK when the spec is refused; `spec_reason` is then the condition's reason
  // ("InvalidSpec", "AmbiguousTarget").
  absl::Status spec;
  std::string spec_reason = "InvalidSpec";
  // Not OK when the target cannot be read (kNotFound: it does not exist).
  absl::Status target;
  // The last scale write's failure, if the last write failed.
  absl::Status last_write;
  // The automaton's view, when one runs for this CustomAutoscaler.
  std::optional<decide::WorkloadStatus> workload;
  bool dry_run = false;
};

// Conditions keep their lastTransitionTime from `previous` while their status stays the
// same, so a resync does not look like a change.
kube::CustomAutoscalerStatus BuildStatus(const StatusInputs& in,
                                         const std::vector<kube::Condition>& previous,
                                         absl::Time now);

}  // namespace zeroscale::report

#endif  // ZEROSCALE_SCALER_REPORT_EXPLAIN_H_
