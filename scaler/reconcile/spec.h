// The translation of a CustomAutoscaler into the spec its automaton runs from. Pure
// functions; thread-safe.
#ifndef ZEROSCALE_SCALER_RECONCILE_SPEC_H_
#define ZEROSCALE_SCALER_RECONCILE_SPEC_H_

#include "absl/status/statusor.h"
#include "common/kube/types.h"
#include "scaler/decide/decision.h"

namespace zeroscale::reconcile {

// The spec an automaton runs from, or kInvalidArgument saying what is wrong with the
// CustomAutoscaler (its parse error, or what decide::ValidateWorkloadSpec refuses).
absl::StatusOr<decide::WorkloadSpec> WorkloadSpecFrom(const kube::CustomAutoscaler& ca);

}  // namespace zeroscale::reconcile

#endif  // ZEROSCALE_SCALER_RECONCILE_SPEC_H_
