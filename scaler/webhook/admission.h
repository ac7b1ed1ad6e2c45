// The admission.k8s.io/v1 AdmissionReview exchange of the sidecar-injecting webhook:
// checks the request, asks sidecar_patch.h what to do with the pod, and renders the
// answer. The answer always allows the pod: a webhook that cannot help must not stand in
// the way of pod creation (the registration's failurePolicy: Ignore covers the case
// where it cannot answer at all).
//
// Thread-safety: pure functions.
#ifndef ZEROSCALE_SCALER_WEBHOOK_ADMISSION_H_
#define ZEROSCALE_SCALER_WEBHOOK_ADMISSION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "scaler/webhook/sidecar_patch.h"

namespace zeroscale::webhook {

struct AdmissionAnswer {
  std::string body;  // the AdmissionReview to send back (JSON)
  Injection injection;
  std::string pod;    // <namespace>/<name or generateName>, for logs
  std::string error;  // set when an unexpected failure was answered "allowed, unchanged"
};

// kInvalidArgument, naming what is wrong, when `review` is not an admission.k8s.io/v1
// AdmissionReview request about a Pod.
absl::StatusOr<AdmissionAnswer> Admit(absl::string_view review, const InjectorOptions& options);

}  // namespace zeroscale::webhook

#endif  // ZEROSCALE_SCALER_WEBHOOK_ADMISSION_H_
