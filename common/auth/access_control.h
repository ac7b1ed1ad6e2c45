// The one gate every zeroscale API passes (SPEC.md section 7): takes the caller's
// "Authorization" value, finds who it is (static tokens first, then TokenReview in a
// cluster) and whether it may take the action (a static token's groups, or
// SubjectAccessReview for a Kubernetes identity). Secure by default: without any way to
// check a credential configured, every checked call is refused with a message saying how
// to configure one; only `insecure` (the programs' --insecure) lets everything through.
//
// Errors, chosen by what the caller should do:
//   kUnauthenticated   no token, or one not accepted: present another   (HTTP 401)
//   kPermissionDenied  known caller, not allowed this action            (HTTP 403)
//   kUnavailable       could not check now (API server away): retry      (HTTP 503)
//
// Thread-safety: all methods may be called concurrently.
#ifndef ZEROSCALE_COMMON_AUTH_ACCESS_CONTROL_H_
#define ZEROSCALE_COMMON_AUTH_ACCESS_CONTROL_H_

#include <string>

#include "common/auth/auth.h"
#include "common/auth/static_tokens.h"

namespace zeroscale::auth {

struct AccessControlOptions {
  // Every check passes (an anonymous Identity); the program logged a warning.
  bool insecure = false;
  // Not owned; any may be null. `tokens` also holds the local backend's pod credentials.
  StaticTokens* tokens = nullptr;
  Authenticator* kube_authenticator = nullptr;  // TokenReview
  Authorizer* kube_authorizer = nullptr;        // SubjectAccessReview
  // Says how to configure a credential, e.g. "give --auth-tokens=FILE, run in a cluster
  // (TokenReview) or pass --insecure"; ends the message of a call refused for want of one.
  std::string how_to_configure =
      "configure --auth-tokens=FILE (outside a cluster) or run in a cluster (TokenReview), or "
      "pass --insecure to turn checks off";
};

// The end of a refusal for want of a credential, for `program` ("scaler", "balancer"):
// the three ways to configure one.
std::string HowToConfigure(absl::string_view program);

class AccessControl {
 public:
  explicit AccessControl(AccessControlOptions options) : options_(std::move(options)) {}

  bool insecure() const { return options_.insecure; }

  // Who sent `authorization` ("Bearer <token>", "" when none).
  absl::StatusOr<Identity> Authenticate(absl::string_view authorization);
  // Authenticate, then whether that caller may take `action`.
  absl::StatusOr<Identity> Check(absl::string_view authorization, const Action& action);
  // Authenticate, and the caller must be one pod (its samples are checked against it).
  absl::StatusOr<Identity> AuthenticatePod(absl::string_view authorization);

 private:
  const AccessControlOptions options_;
};

// The HTTP status for a refusal of AccessControl: 401, 403, 503 (500 otherwise).
int HttpStatusOf(const absl::Status& s);

}  // namespace zeroscale::auth

#endif  // ZEROSCALE_COMMON_AUTH_ACCESS_CONTROL_H_
