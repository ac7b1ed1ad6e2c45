// Authentication and authorisation by the Kubernetes API server, for callers inside a
// cluster:
//
// TokenReviewer asks TokenReview whether a bearer token is valid for the audience
// `zeroscale` (spec.audiences: a token minted for the API server or another audience is
// refused), and turns the answer into an Identity: the service account's user, groups
// and extra, and for a kubelet-projected token the pod it is bound to (user extra
// `authentication.kubernetes.io/pod-name` with the service account's namespace, and
// `pod-uid`). A verdict is cached until the token's own expiry (its JWT `exp`), at most
// `max_ttl`; refusals for `negative_ttl`, so a flood of bad tokens costs the API server
// one review each per that time at most; the cache holds at most `max_entries` tokens
// (by SHA-256, the token itself is not kept), least recently used leave first. Errors
// reaching the API server are kUnavailable and not cached.
//
// AccessReviewer asks SubjectAccessReview whether an Identity may take an Action (group
// `zeroscale.io`, cluster-wide: RBAC through a ClusterRoleBinding), caching each verdict
// for `ttl` in a bounded cache.
//
// Both call the API server synchronously on the caller's thread when the cache has no
// answer. Thread-safe.
#ifndef ZEROSCALE_COMMON_AUTH_KUBE_REVIEW_H_
#define ZEROSCALE_COMMON_AUTH_KUBE_REVIEW_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/auth.h"
#include "common/auth/bounded_cache.h"
#include "common/time/clock.h"

namespace zeroscale::auth {

// POSTs a JSON body to an API server path and returns the response body; errors as
// common/kube/client.h maps them (KubeClient::Call fits).
using ApiPoster =
    std::function<absl::StatusOr<std::string>(const std::string& path, const std::string& body)>;

struct TokenReviewerOptions {
  std::string audience = std::string(kAudience);
  absl::Duration max_ttl = absl::Minutes(10);
  absl::Duration negative_ttl = absl::Seconds(10);
  size_t max_entries = 10000;
};

class TokenReviewer : public Authenticator {
 public:
  TokenReviewer(ApiPoster post, const Clock* clock, TokenReviewerOptions options = {});
  absl::StatusOr<Identity> Authenticate(absl::string_view token) override;
  // TokenReviews sent (cache misses), for tests and metrics.
  uint64_t reviews() const;

 private:
  absl::StatusOr<Identity> Review(const std::string& token);

  const ApiPoster post_;
  const Clock* const clock_;
  const TokenReviewerOptions options_;
  mutable std::mutex mu_;
  BoundedCache<absl::StatusOr<Identity>> cache_;
  uint64_t reviews_ = 0;
};

struct AccessReviewerOptions {
  absl::Duration ttl = absl::Seconds(10);
  size_t max_entries = 10000;
};

class AccessReviewer : public Authorizer {
 public:
  AccessReviewer(ApiPoster post, const Clock* clock, AccessReviewerOptions options = {});
  absl::Status Authorize(const Identity& who, const Action& action) override;
  uint64_t reviews() const;

 private:
  const ApiPoster post_;
  const Clock* const clock_;
  const AccessReviewerOptions options_;
  mutable std::mutex mu_;
  BoundedCache<absl::Status> cache_;
  uint64_t reviews_ = 0;
};

// The TokenReview authenticator and SubjectAccessReview authorizer of a program that
// runs against an API server, both posting through `post` (the scaler and the balancer
// build the same pair).
struct KubeReviewers {
  std::unique_ptr<TokenReviewer> authenticator;
  std::unique_ptr<AccessReviewer> authorizer;
};
KubeReviewers NewKubeReviewers(ApiPoster post, const Clock* clock);

}  // namespace zeroscale::auth

#endif  // ZEROSCALE_COMMON_AUTH_KUBE_REVIEW_H_
