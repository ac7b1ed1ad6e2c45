#include "scaler/reconcile/spec.h"

#include <string>

namespace zeroscale::reconcile {

absl::StatusOr<decide::WorkloadSpec> WorkloadSpecFrom(const kube::CustomAutoscaler& ca) {
  if (!ca.spec_error.ok()) {
    return absl::InvalidArgumentError(std::string(ca.spec_error.message()));
  }
  decide::WorkloadSpec spec;
  spec.workload = ca.Target().Id();
  spec.min_replicas = ca.spec.min_replicas;
  spec.max_replicas = ca.spec.max_replicas;
  spec.idle_timeout = absl::Seconds(ca.spec.idle_timeout_seconds);
  spec.keep_alive = ca.spec.keep_alive;
  spec.rules = ca.spec.rules;
  for (ScalingRule& r : spec.rules) r.target = spec.workload;
  if (absl::Status s = decide::ValidateWorkloadSpec(spec); !s.ok()) {
    return absl::InvalidArgumentError(std::string(s.message()));
  }
  return spec;
}

}  // namespace zeroscale::reconcile
