// Per-pod identity on the metrics path (SPEC.md section 7): only a pod may report, and
// only for itself. A stream or a POST /metrics is authenticated once (a pod-bound
// service-account token through TokenReview, or a pod credential the local backend
// generated); then every sample must name that pod in `id`, and a workload that pod
// belongs to:
//   - the credential names the workload (local backend): `workload` must be it;
//   - Kubernetes lists the pod for a target (the leader's pod views, via PodOwners):
//     `workload` must be that target;
//   - Kubernetes lists pods for the target the sample names but not this one: refused;
//   - neither is known (a replica that does not lead, or no RBAC to list pods): the pod
//     identity alone is checked.
// Refusals are PERMISSION_DENIED naming the field, and counted in
// zeroscale_ingest_refused_total{reason} (unauthenticated, not_a_pod, id, workload, seq).
//
// Sequence numbers: sidecars number samples from their start time in microseconds, so a
// seq more than an hour past this scaler's clock (in microseconds) cannot be a sidecar's
// and is refused (reason seq) before it could lift the pod's high-water mark out of
// reach; with identity checked, a caller can only ever move its own pod's mark.
//
// Thread-safety: PodOwners and SampleAuth may be used from any thread.
#ifndef ZEROSCALE_SCALER_INGEST_SAMPLE_AUTH_H_
#define ZEROSCALE_SCALER_INGEST_SAMPLE_AUTH_H_

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/auth/access_control.h"
#include "common/model/podmetric.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace zeroscale::ingest {

// How far past the scaler's clock (in microseconds) a sample's seq may be.
inline constexpr uint64_t kMaxSeqAheadMicros = 3600ull * 1000 * 1000;

// Which workload each pod belongs to, as Kubernetes lists the targets' pods.
class PodOwners {
 public:
  // The pods of `workload` now (nullopt: no longer known).
  void Set(const std::string& workload, const std::optional<std::vector<std::string>>& pods);
  // The workload listing `pod`, "" when none does; whether `workload` has a view.
  std::string OwnerOf(const std::string& pod) const;
  bool HasView(const std::string& workload) const;

 private:
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, std::vector<std::string>> pods_of_;
  absl::flat_hash_map<std::string, std::string> owner_of_;
};

class SampleAuth {
 public:
  // `owners` may be null (no pod views). Neither is owned.
  SampleAuth(auth::AccessControl* access, const PodOwners* owners, prometheus::Registry* registry);

  // Who sends on a stream or in a body, from its "authorization" value: a pod (or
  // anyone, with --insecure). Refusals counted.
  absl::StatusOr<auth::Identity> AuthenticateSender(absl::string_view authorization);
  // Whether `who` may send `m` at `now`; kPermissionDenied naming the field ("id: ...",
  // "workload: ...", "seq: ...") and counted.
  absl::Status CheckSample(const auth::Identity& who, const Podmetric& m, absl::Time now);

 private:
  void Count(absl::string_view reason);

  auth::AccessControl* const access_;
  const PodOwners* const owners_;
  prometheus::Family<prometheus::Counter>& refused_;
};

}  // namespace zeroscale::ingest

#endif  // ZEROSCALE_SCALER_INGEST_SAMPLE_AUTH_H_
