// Who a caller is and what it may do: the types shared by every authenticator and
// authorizer of zeroscale (SPEC.md section 7), and the one list of actions that its
// APIs check. An action is a verb on a resource of the API group `zeroscale.io`, the
// same words Kubernetes RBAC uses, so a SubjectAccessReview, a Role in the chart and
// the static token file's groups all speak of the same things:
//
//   resource              verbs                     API
//   scalingrules          get list create update    RulesService
//                         delete
//   workloads/activation  create, watch             ActivationService.Activate, .Watch
//   workloads/traffic     create                    ActivationService.ReportTraffic
//   workloads/endpoints   list                      (the pod addresses Watch streams)
//   workloads             get list                  the scaler's GET /workloads
//   decisions             list                      the scaler's GET /decisions
//   balancersettings      get update                the balancer's /loadbalancer/settings
//   requestlogs           list                      the balancer's GET /proxy/logs
//
// Samples (MetricsService.Stream, POST /metrics) are not an action: a pod's credential
// lets it report for itself only (see Identity::pod).
//
// Thread-safety: plain values; implementations of the interfaces say their own.
#ifndef ZEROSCALE_COMMON_AUTH_AUTH_H_
#define ZEROSCALE_COMMON_AUTH_AUTH_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zeroscale::auth {

inline constexpr absl::string_view kApiGroup = "zeroscale.io";
// The audience of every token zeroscale accepts through TokenReview: a token minted for
// the API server (or anything else) is not one for zeroscale.
inline constexpr absl::string_view kAudience = "zeroscale";

struct Action {
  absl::string_view resource;
  absl::string_view subresource;  // "" for none
  absl::string_view verb;
  // "scalingrules create", "workloads/activation create".
  std::string ToString() const;
};

namespace actions {
inline constexpr Action kRulesGet{"scalingrules", "", "get"};
inline constexpr Action kRulesList{"scalingrules", "", "list"};
inline constexpr Action kRulesCreate{"scalingrules", "", "create"};
inline constexpr Action kRulesUpdate{"scalingrules", "", "update"};
inline constexpr Action kRulesDelete{"scalingrules", "", "delete"};
inline constexpr Action kActivate{"workloads", "activation", "create"};
inline constexpr Action kWatch{"workloads", "activation", "watch"};
inline constexpr Action kReportTraffic{"workloads", "traffic", "create"};
inline constexpr Action kListEndpoints{"workloads", "endpoints", "list"};
inline constexpr Action kWorkloadsGet{"workloads", "", "get"};
inline constexpr Action kWorkloadsList{"workloads", "", "list"};
inline constexpr Action kDecisionsList{"decisions", "", "list"};
inline constexpr Action kSettingsGet{"balancersettings", "", "get"};
inline constexpr Action kSettingsUpdate{"balancersettings", "", "update"};
inline constexpr Action kLogsList{"requestlogs", "", "list"};
}  // namespace actions

// An authenticated caller.
struct Identity {
  // "system:serviceaccount:NS:SA" from TokenReview; the name column of a static token.
  std::string user;
  std::string uid;
  std::vector<std::string> groups;
  // TokenReview's user extra, passed on to SubjectAccessReviews.
  std::map<std::string, std::vector<std::string>> extra;
  // "NAMESPACE/NAME" of the one pod this credential speaks for ("" when none): the
  // kubelet's bound token of a pod, or a pod credential of the local backend. Only such
  // a caller may send samples, and only of this pod.
  std::string pod;
  std::string pod_uid;
  // The workload that pod belongs to, when the credential says it (local backend); ""
  // leaves the check to the scaler's view of pods.
  std::string workload;
  // True when Kubernetes vouched for it (TokenReview): authorised by SubjectAccessReview.
  // False: a static token, authorised by its groups.
  bool kubernetes = false;
};

// Turns a bearer token into an Identity. Errors: kUnauthenticated (the token is not
// accepted: the caller needs another), kUnavailable (could not check now: retry).
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual absl::StatusOr<Identity> Authenticate(absl::string_view token) = 0;
};

// Decides whether an Identity may take an Action. Errors: kPermissionDenied naming the
// user and the action, kUnavailable (could not decide now: retry).
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual absl::Status Authorize(const Identity& who, const Action& action) = 0;
};

// The token of an "Authorization: Bearer <token>" header value (scheme case-insensitive,
// as RFC 7235 says). kUnauthenticated when the value is empty (no credential), another
// scheme, or a token that is empty, longer than 16 KiB or holds characters outside
// RFC 6750's token68.
absl::StatusOr<std::string> BearerToken(absl::string_view authorization);

// The `exp` claim of a JWT (the expiry of a Kubernetes service-account token), read
// without checking the signature (TokenReview does that); kInvalidArgument when the
// token is not a JWT with a numeric exp.
absl::StatusOr<int64_t> JwtExpiry(absl::string_view token);

}  // namespace zeroscale::auth

#endif  // ZEROSCALE_COMMON_AUTH_AUTH_H_
