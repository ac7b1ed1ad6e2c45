#include "common/auth/access_control.h"

#include "absl/strings/str_cat.h"
#include "common/status/quote.h"

namespace zeroscale::auth {

std::string HowToConfigure(absl::string_view program) {
  return absl::StrCat("give the ", program,
                      " --auth-tokens=FILE (lines token,name,group), or run it in a cluster "
                      "where TokenReview and SubjectAccessReview check Kubernetes tokens, or "
                      "pass --insecure to turn checks off");
}

absl::StatusOr<Identity> AccessControl::Authenticate(absl::string_view authorization) {
  if (options_.insecure) return Identity{};
  const bool configured = options_.tokens != nullptr || options_.kube_authenticator != nullptr;
  absl::StatusOr<std::string> token = BearerToken(authorization);
  if (!token.ok()) {
    if (!configured) {
      return absl::UnauthenticatedError(
          absl::StrCat("this call needs a credential and none can be checked here: ",
                       options_.how_to_configure));
    }
    return absl::UnauthenticatedError(
        absl::StrCat(token.status().message(), "; ", options_.how_to_configure));
  }
  if (options_.tokens != nullptr) {
    absl::StatusOr<Identity> id = options_.tokens->Authenticate(*token);
    if (id.ok() || id.status().code() != absl::StatusCode::kNotFound) return id;
  }
  if (options_.kube_authenticator != nullptr) {
    return options_.kube_authenticator->Authenticate(*token);
  }
  if (!configured) {
    return absl::UnauthenticatedError(absl::StrCat(
        "a bearer token was sent but none can be checked here: ", options_.how_to_configure));
  }
  return absl::UnauthenticatedError("the bearer token is not one of the configured tokens");
}

absl::StatusOr<Identity> AccessControl::Check(absl::string_view authorization,
                                              const Action& action) {
  absl::StatusOr<Identity> id = Authenticate(authorization);
  if (!id.ok() || options_.insecure) return id;
  absl::Status allowed;
  if (id->kubernetes) {
    allowed = options_.kube_authorizer != nullptr
                  ? options_.kube_authorizer->Authorize(*id, action)
                  : absl::PermissionDeniedError(
                        "Kubernetes identities are not authorised here (no SubjectAccessReview)");
  } else {
    allowed = options_.tokens != nullptr
                  ? options_.tokens->Authorize(*id, action)
                  : absl::PermissionDeniedError("no static tokens are configured");
  }
  if (!allowed.ok()) return allowed;
  return id;
}

absl::StatusOr<Identity> AccessControl::AuthenticatePod(absl::string_view authorization) {
  absl::StatusOr<Identity> id = Authenticate(authorization);
  if (!id.ok() || options_.insecure) return id;
  if (id->pod.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "only a pod may send samples, with its own credential (a pod-bound service-account "
        "token for audience \"",
        kAudience, "\", or a ", kPodsGroup, " token); ", Quote(id->user), " is not a pod"));
  }
  return id;
}

int HttpStatusOf(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

}  // namespace zeroscale::auth
