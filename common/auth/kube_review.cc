#include "common/auth/kube_review.h"

#include <openssl/evp.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json/bounded_json.h"
#include "common/status/quote.h"
#include "nlohmann/json.hpp"

namespace zeroscale::auth {
namespace {

using nlohmann::json;

constexpr char kPodNameExtra[] = "authentication.kubernetes.io/pod-name";
constexpr char kPodUidExtra[] = "authentication.kubernetes.io/pod-uid";
constexpr char kServiceAccountPrefix[] = "system:serviceaccount:";

std::string Sha256(absl::string_view s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(md), n);
}

std::string StringAt(const json& o, const char* key) {
  if (!o.is_object()) return "";
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : "";
}

// The first string of a user-extra list, "" when absent.
std::string FirstExtra(const std::map<std::string, std::vector<std::string>>& extra,
                       const std::string& key) {
  auto it = extra.find(key);
  return it == extra.end() || it->second.empty() ? "" : it->second.front();
}

absl::StatusOr<Identity> IdentityOfReview(const json& review, absl::string_view audience) {
  const json status = review.is_object() && review.contains("status") ? review["status"] : json();
  if (!status.is_object()) return absl::UnavailableError("TokenReview: answer without a status");
  const bool authenticated = status.contains("authenticated") &&
                             status["authenticated"].is_boolean() &&
                             status["authenticated"].get<bool>();
  if (!authenticated) {
    std::string why = StringAt(status, "error");
    return absl::UnauthenticatedError(
        absl::StrCat("the bearer token was not accepted for audience \"", audience, "\"",
                     why.empty() ? "" : ": ", Quote(why)));
  }
  // A server that supports audiences answers with those of the token it checked.
  if (status.contains("audiences") && status["audiences"].is_array()) {
    bool found = false;
    for (const json& a : status["audiences"])
      found = found || (a.is_string() && a.get<std::string>() == audience);
    if (!found) {
      return absl::UnauthenticatedError(
          absl::StrCat("the bearer token is not for audience \"", audience, "\""));
    }
  }
  const json user = status.contains("user") ? status["user"] : json();
  Identity id;
  id.kubernetes = true;
  id.user = StringAt(user, "username");
  id.uid = StringAt(user, "uid");
  if (id.user.empty()) return absl::UnauthenticatedError("TokenReview: no user name in the answer");
  if (user.contains("groups") && user["groups"].is_array()) {
    for (const json& g : user["groups"]) {
      if (g.is_string()) id.groups.push_back(g.get<std::string>());
    }
  }
  if (user.contains("extra") && user["extra"].is_object()) {
    for (auto it = user["extra"].begin(); it != user["extra"].end(); ++it) {
      std::vector<std::string>& values = id.extra[it.key()];
      if (!it->is_array()) continue;
      for (const json& v : *it) {
        if (v.is_string()) values.push_back(v.get<std::string>());
      }
    }
  }
  const std::string pod = FirstExtra(id.extra, kPodNameExtra);
  if (!pod.empty() && id.user.rfind(kServiceAccountPrefix, 0) == 0) {
    // system:serviceaccount:NAMESPACE:NAME; a bound token's pod is in that namespace.
    absl::string_view rest = absl::string_view(id.user).substr(sizeof(kServiceAccountPrefix) - 1);
    const size_t colon = rest.find(':');
    if (colon != absl::string_view::npos && colon > 0) {
      id.pod = absl::StrCat(rest.substr(0, colon), "/", pod);
      id.pod_uid = FirstExtra(id.extra, kPodUidExtra);
    }
  }
  return id;
}

}  // namespace

TokenReviewer::TokenReviewer(ApiPoster post, const Clock* clock, TokenReviewerOptions options)
    : post_(std::move(post)),
      clock_(clock),
      options_(std::move(options)),
      cache_(options_.max_entries) {}

uint64_t TokenReviewer::reviews() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reviews_;
}

absl::StatusOr<Identity> TokenReviewer::Authenticate(absl::string_view token) {
  const std::string key = Sha256(token);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (std::optional<absl::StatusOr<Identity>> hit = cache_.Get(key, clock_->Now())) {
      return *std::move(hit);
    }
    ++reviews_;
  }
  absl::StatusOr<Identity> verdict = Review(std::string(token));
  if (!verdict.ok() && verdict.status().code() != absl::StatusCode::kUnauthenticated) {
    return verdict;  // not a verdict on the token: ask again next time
  }
  const absl::Time now = clock_->Now();
  absl::Time expires = now + (verdict.ok() ? options_.max_ttl : options_.negative_ttl);
  if (verdict.ok()) {
    absl::StatusOr<int64_t> exp = JwtExpiry(token);
    if (exp.ok()) {
      const absl::Time at = absl::FromUnixSeconds(*exp);
      if (at <= now) {
        // The server's clock and ours disagree; without a time to trust, trust it briefly.
        expires = std::min(expires, now + options_.negative_ttl);
      } else {
        expires = std::min(expires, at);
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  cache_.Put(key, verdict, expires);
  return verdict;
}

absl::StatusOr<Identity> TokenReviewer::Review(const std::string& token) {
  json body = {{"apiVersion", "authentication.k8s.io/v1"},
               {"kind", "TokenReview"},
               {"spec", {{"token", token}, {"audiences", json::array({options_.audience})}}}};
  absl::StatusOr<std::string> answer =
      post_("/apis/authentication.k8s.io/v1/tokenreviews", body.dump());
  if (!answer.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot check the bearer token: TokenReview: ", answer.status().message()));
  }
  json review;
  if (absl::Status s = zeroscale::json::ParseJson(*answer, zeroscale::json::kKubernetesDocument,
                                                  &review, "TokenReview");
      !s.ok()) {
    return absl::UnavailableError(s.message());
  }
  return IdentityOfReview(review, options_.audience);
}

AccessReviewer::AccessReviewer(ApiPoster post, const Clock* clock, AccessReviewerOptions options)
    : post_(std::move(post)), clock_(clock), options_(options), cache_(options.max_entries) {}

uint64_t AccessReviewer::reviews() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reviews_;
}

absl::Status AccessReviewer::Authorize(const Identity& who, const Action& action) {
  json attributes = {{"group", std::string(kApiGroup)},
                     {"resource", std::string(action.resource)},
                     {"verb", std::string(action.verb)}};
  if (!action.subresource.empty()) attributes["subresource"] = std::string(action.subresource);
  json spec = {{"user", who.user}, {"resourceAttributes", attributes}};
  if (!who.uid.empty()) spec["uid"] = who.uid;
  if (!who.groups.empty()) spec["groups"] = who.groups;
  if (!who.extra.empty()) spec["extra"] = who.extra;
  const std::string request = json({{"apiVersion", "authorization.k8s.io/v1"},
                                    {"kind", "SubjectAccessReview"},
                                    {"spec", spec}})
                                  .dump();
  const std::string key = Sha256(request);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (std::optional<absl::Status> hit = cache_.Get(key, clock_->Now())) return *hit;
    ++reviews_;
  }
  absl::StatusOr<std::string> answer =
      post_("/apis/authorization.k8s.io/v1/subjectaccessreviews", request);
  if (!answer.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot check access: SubjectAccessReview: ", answer.status().message()));
  }
  json review;
  if (absl::Status s = zeroscale::json::ParseJson(*answer, zeroscale::json::kKubernetesDocument,
                                                  &review, "SubjectAccessReview");
      !s.ok()) {
    return absl::UnavailableError(s.message());
  }
  const json status = review.is_object() && review.contains("status") ? review["status"] : json();
  if (!status.is_object()) {
    return absl::UnavailableError("SubjectAccessReview: answer without a status");
  }
  absl::Status verdict;
  if (!(status.contains("allowed") && status["allowed"].is_boolean() &&
        status["allowed"].get<bool>())) {
    const std::string reason = StringAt(status, "reason");
    verdict = absl::PermissionDeniedError(absl::StrCat(
        Quote(who.user), " may not ", action.ToString(), " (RBAC: verb \"", action.verb,
        "\" on resource \"", action.resource,
        action.subresource.empty() ? "" : absl::StrCat("/", action.subresource),
        "\" of API group \"", kApiGroup, "\")", reason.empty() ? "" : ": ", Quote(reason)));
  }
  std::lock_guard<std::mutex> lock(mu_);
  cache_.Put(key, verdict, clock_->Now() + options_.ttl);
  return verdict;
}

KubeReviewers NewKubeReviewers(ApiPoster post, const Clock* clock) {
  KubeReviewers r;
  r.authenticator = std::make_unique<TokenReviewer>(post, clock);
  r.authorizer = std::make_unique<AccessReviewer>(std::move(post), clock);
  return r;
}

}  // namespace zeroscale::auth
