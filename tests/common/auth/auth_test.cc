// Unit tests of common/auth: bearer parsing, the TokenReview verifier and the
// SubjectAccessReview authorizer against a scripted API server (fake clock for the
// caches), static tokens and their groups, and the AccessControl gate.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/auth/access_control.h"
#include "common/auth/kube_review.h"
#include "common/auth/static_tokens.h"
#include "common/auth/token_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/fake_clock.h"

namespace zeroscale::auth {
namespace {

using ::nlohmann::json;
using testing::FakeClock;
using ::testing::HasSubstr;

// A JWT-shaped token whose payload carries `exp`; the signature part is not checked here.
std::string Jwt(int64_t exp, absl::string_view salt = "a") {
  std::string payload;
  absl::WebSafeBase64Escape(json({{"exp", exp}, {"salt", std::string(salt)}}).dump(), &payload);
  return absl::StrCat("eyJhbGciOiJSUzI1NiJ9.", payload, ".c2ln");
}

// Answers TokenReviews from a table of token -> review status, and
// SubjectAccessReviews from a set of "user resource/sub verb" that are allowed.
struct FakeApi {
  std::map<std::string, json> tokens;
  std::set<std::string> allowed;
  std::vector<json> requests;
  bool down = false;

  ApiPoster Poster() {
    return [this](const std::string& path, const std::string& body) -> absl::StatusOr<std::string> {
      if (down) return absl::UnavailableError("connection refused");
      json req = json::parse(body);
      requests.push_back(req);
      if (path == "/apis/authentication.k8s.io/v1/tokenreviews") {
        auto it = tokens.find(req["spec"]["token"].get<std::string>());
        json status = it == tokens.end()
                          ? json({{"authenticated", false}, {"error", "invalid bearer token"}})
                          : it->second;
        return json({{"status", status}}).dump();
      }
      if (path == "/apis/authorization.k8s.io/v1/subjectaccessreviews") {
        const json& a = req["spec"]["resourceAttributes"];
        std::string what = absl::StrCat(
            req["spec"]["user"].get<std::string>(), " ", a["resource"].get<std::string>(),
            a.contains("subresource") ? "/" + a["subresource"].get<std::string>() : "", " ",
            a["verb"].get<std::string>());
        EXPECT_EQ(a["group"], "zeroscale.io");
        return json({{"status", {{"allowed", allowed.count(what) > 0}}}}).dump();
      }
      return absl::NotFoundError(path);
    };
  }
};

json PodTokenStatus(const std::string& ns, const std::string& sa, const std::string& pod) {
  return {{"authenticated", true},
          {"audiences", {"zeroscale"}},
          {"user",
           {{"username", absl::StrCat("system:serviceaccount:", ns, ":", sa)},
            {"uid", "sa-uid"},
            {"groups", {"system:serviceaccounts", "system:authenticated"}},
            {"extra",
             {{"authentication.kubernetes.io/pod-name", {pod}},
              {"authentication.kubernetes.io/pod-uid", {"pod-uid-1"}}}}}}};
}

TEST(BearerTokenTest, ParsesAndRefuses) {
  EXPECT_EQ(*BearerToken("Bearer abc.def-_~+/=="), "abc.def-_~+/==");
  EXPECT_EQ(*BearerToken("bearer   tok"), "tok");
  EXPECT_EQ(BearerToken("").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(BearerToken("").status().message(), HasSubstr("no credential"));
  EXPECT_THAT(BearerToken("Basic dXNlcg==").status().message(), HasSubstr("Bearer scheme"));
  EXPECT_EQ(BearerToken("Bearer ").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(BearerToken("Bearer a b").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(BearerToken("Bearer a=b").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(BearerToken(absl::StrCat("Bearer ", std::string(20000, 'a'))).status().message(),
              HasSubstr("20000 bytes"));
}

TEST(JwtExpiryTest, ReadsExp) {
  EXPECT_EQ(*JwtExpiry(Jwt(1800000123)), 1800000123);
  EXPECT_FALSE(JwtExpiry("opaque").ok());
  EXPECT_FALSE(JwtExpiry("a.!!!.c").ok());
  std::string no_exp;
  absl::WebSafeBase64Escape("{\"sub\":\"x\"}", &no_exp);
  EXPECT_FALSE(JwtExpiry(absl::StrCat("a.", no_exp, ".c")).ok());
}

class TokenReviewerTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  FakeApi api_;
};

TEST_F(TokenReviewerTest, PodTokenBecomesPodIdentityWithAudience) {
  const std::string token = Jwt(absl::ToUnixSeconds(clock_.Now()) + 3600);
  api_.tokens[token] = PodTokenStatus("team", "model", "llama-0");
  TokenReviewer reviewer(api_.Poster(), &clock_);
  absl::StatusOr<Identity> id = reviewer.Authenticate(token);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->user, "system:serviceaccount:team:model");
  EXPECT_EQ(id->pod, "team/llama-0");
  EXPECT_EQ(id->pod_uid, "pod-uid-1");
  EXPECT_TRUE(id->kubernetes);
  ASSERT_EQ(api_.requests.size(), 1u);
  EXPECT_EQ(api_.requests[0]["spec"]["audiences"], json({"zeroscale"}));
}

TEST_F(TokenReviewerTest, CachedUntilTheTokenExpires) {
  const std::string token = Jwt(absl::ToUnixSeconds(clock_.Now()) + 120);
  api_.tokens[token] = PodTokenStatus("team", "model", "llama-0");
  TokenReviewer reviewer(api_.Poster(), &clock_);
  ASSERT_TRUE(reviewer.Authenticate(token).ok());
  clock_.Advance(absl::Seconds(119));
  ASSERT_TRUE(reviewer.Authenticate(token).ok());
  EXPECT_EQ(reviewer.reviews(), 1u);
  // Expired: asked again, and the server now says no.
  api_.tokens.erase(token);
  clock_.Advance(absl::Seconds(2));
  absl::StatusOr<Identity> again = reviewer.Authenticate(token);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(again.status().message(), HasSubstr("invalid bearer token"));
  EXPECT_EQ(reviewer.reviews(), 2u);
}

TEST_F(TokenReviewerTest, LongLivedTokensAreReviewedAgainAfterMaxTtl) {
  const std::string token = Jwt(absl::ToUnixSeconds(clock_.Now()) + 86400);
  api_.tokens[token] = PodTokenStatus("team", "model", "llama-0");
  TokenReviewerOptions o;
  o.max_ttl = absl::Minutes(10);
  TokenReviewer reviewer(api_.Poster(), &clock_, o);
  ASSERT_TRUE(reviewer.Authenticate(token).ok());
  clock_.Advance(absl::Minutes(10));
  ASSERT_TRUE(reviewer.Authenticate(token).ok());
  EXPECT_EQ(reviewer.reviews(), 2u);
}

TEST_F(TokenReviewerTest, RefusalsCachedBrieflyErrorsNotAtAll) {
  TokenReviewer reviewer(api_.Poster(), &clock_);
  EXPECT_EQ(reviewer.Authenticate("bad-token").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(reviewer.Authenticate("bad-token").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(reviewer.reviews(), 1u);
  clock_.Advance(absl::Seconds(10));
  api_.down = true;
  EXPECT_EQ(reviewer.Authenticate("bad-token").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(reviewer.Authenticate("bad-token").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(reviewer.reviews(), 3u);
}

TEST_F(TokenReviewerTest, WrongAudienceInTheAnswerIsRefused) {
  const std::string token = Jwt(absl::ToUnixSeconds(clock_.Now()) + 3600);
  json status = PodTokenStatus("team", "model", "llama-0");
  status["audiences"] = {"https://kubernetes.default.svc"};
  api_.tokens[token] = status;
  TokenReviewer reviewer(api_.Poster(), &clock_);
  EXPECT_THAT(reviewer.Authenticate(token).status().message(), HasSubstr("audience"));
}

TEST_F(TokenReviewerTest, CacheIsBounded) {
  TokenReviewerOptions o;
  o.max_entries = 3;
  TokenReviewer reviewer(api_.Poster(), &clock_, o);
  for (int i = 0; i < 100; ++i) reviewer.Authenticate(absl::StrCat("t", i)).IgnoreError();
  EXPECT_EQ(reviewer.reviews(), 100u);
  // Only the newest three are remembered.
  reviewer.Authenticate("t99").IgnoreError();
  reviewer.Authenticate("t0").IgnoreError();
  EXPECT_EQ(reviewer.reviews(), 101u);
}

TEST_F(TokenReviewerTest, MalformedAnswersAreUnavailable) {
  ApiPoster post = [](const std::string&, const std::string&) -> absl::StatusOr<std::string> {
    return std::string("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
  };
  TokenReviewer reviewer(post, &clock_);
  EXPECT_EQ(reviewer.Authenticate("t").status().code(), absl::StatusCode::kUnavailable);
  ApiPoster not_authenticated = [](const std::string&,
                                   const std::string&) -> absl::StatusOr<std::string> {
    return std::string(R"({"status":{"authenticated":"yes","user":{"username":7}}})");
  };
  TokenReviewer reviewer2(not_authenticated, &clock_);
  EXPECT_EQ(reviewer2.Authenticate("t").status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(AccessReviewerTest, AsksWithTheIdentityAndCachesBriefly) {
  FakeClock clock;
  FakeApi api;
  api.allowed.insert("system:serviceaccount:zs:balancer workloads/activation create");
  AccessReviewer reviewer(api.Poster(), &clock);
  Identity who;
  who.user = "system:serviceaccount:zs:balancer";
  who.uid = "u1";
  who.groups = {"system:serviceaccounts"};
  who.extra["k"] = {"v"};
  who.kubernetes = true;
  EXPECT_TRUE(reviewer.Authorize(who, actions::kActivate).ok());
  ASSERT_EQ(api.requests.size(), 1u);
  const json& spec = api.requests[0]["spec"];
  EXPECT_EQ(spec["uid"], "u1");
  EXPECT_EQ(spec["groups"], json({"system:serviceaccounts"}));
  EXPECT_EQ(spec["extra"]["k"], json({"v"}));
  EXPECT_EQ(spec["resourceAttributes"]["subresource"], "activation");
  absl::Status denied = reviewer.Authorize(who, actions::kRulesCreate);
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.message(), HasSubstr("scalingrules create"));
  EXPECT_THAT(denied.message(), HasSubstr("zeroscale.io"));
  // Cached: no new review for either within the ttl.
  EXPECT_TRUE(reviewer.Authorize(who, actions::kActivate).ok());
  EXPECT_FALSE(reviewer.Authorize(who, actions::kRulesCreate).ok());
  EXPECT_EQ(reviewer.reviews(), 2u);
  // After it, a revoked grant is heard.
  api.allowed.clear();
  clock.Advance(absl::Seconds(10));
  EXPECT_EQ(reviewer.Authorize(who, actions::kActivate).code(),
            absl::StatusCode::kPermissionDenied);
  api.down = true;
  clock.Advance(absl::Seconds(10));
  EXPECT_EQ(reviewer.Authorize(who, actions::kActivate).code(), absl::StatusCode::kUnavailable);
}

TEST(StaticTokensTest, ParsesGroupsAndGrants) {
  absl::StatusOr<std::unique_ptr<StaticTokens>> t = StaticTokens::Parse(
      "# comment\n"
      "\n"
      "op-token-0123456789,alice,zeroscale:operators\n"
      " lb-token-0123456789 , balancer , zeroscale:balancers\n"
      "view-token-012345678,bob,zeroscale:viewers\n"
      "pod-token-0123456789,demo/model-0,zeroscale:pods\n",
      "tokens.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  StaticTokens& tokens = **t;
  absl::StatusOr<Identity> op = tokens.Authenticate("op-token-0123456789");
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(op->user, "alice");
  EXPECT_FALSE(op->kubernetes);
  const Identity lb = *tokens.Authenticate("lb-token-0123456789");
  const Identity view = *tokens.Authenticate("view-token-012345678");
  const Identity pod = *tokens.Authenticate("pod-token-0123456789");
  EXPECT_EQ(pod.pod, "demo/model-0");
  EXPECT_EQ(tokens.Authenticate("nope").status().code(), absl::StatusCode::kNotFound);

  const std::vector<Action> all = {
      actions::kRulesGet,     actions::kRulesList,      actions::kRulesCreate,
      actions::kRulesUpdate,  actions::kRulesDelete,    actions::kActivate,
      actions::kWatch,        actions::kReportTraffic,  actions::kListEndpoints,
      actions::kWorkloadsGet, actions::kWorkloadsList,  actions::kDecisionsList,
      actions::kSettingsGet,  actions::kSettingsUpdate, actions::kLogsList};
  for (const Action& a : all) {
    SCOPED_TRACE(a.ToString());
    EXPECT_TRUE(tokens.Authorize(*op, a).ok());
    EXPECT_EQ(tokens.Authorize(pod, a).code(), absl::StatusCode::kPermissionDenied);
    const bool balancer = a.resource == "workloads" && !a.subresource.empty();
    EXPECT_EQ(tokens.Authorize(lb, a).ok(), balancer);
    EXPECT_EQ(tokens.Authorize(view, a).ok(), a.verb == "get" || a.verb == "list");
  }
  EXPECT_THAT(tokens.Authorize(view, actions::kRulesCreate).message(),
              HasSubstr("\"bob\" may not scalingrules create"));
}

TEST(StaticTokensTest, RefusesBadLinesNamingThem) {
  auto err = [](absl::string_view text) {
    return std::string(StaticTokens::Parse(text, "f").status().message());
  };
  EXPECT_THAT(err("only,two\n"), HasSubstr("f:1: expected token,name,group"));
  EXPECT_THAT(err("\nshort,a,zeroscale:viewers\n"),
              HasSubstr("f:2: the token must be at least 16"));
  EXPECT_THAT(err("bad token 0123456789,a,zeroscale:viewers\n"), HasSubstr("f:1:"));
  EXPECT_THAT(err("0123456789abcdef01,a,zeroscale:admins\n"),
              HasSubstr("unknown group \"zeroscale:admins\""));
  EXPECT_THAT(err("0123456789abcdef01,,zeroscale:viewers\n"), HasSubstr("name is empty"));
  EXPECT_THAT(err("0123456789abcdef01,model-0,zeroscale:pods\n"), HasSubstr("NAMESPACE/NAME"));
  EXPECT_THAT(
      err("0123456789abcdef01,a,zeroscale:viewers\n0123456789abcdef01,b,zeroscale:viewers\n"),
      HasSubstr("f:2: this token is already"));
  EXPECT_THAT(std::string(StaticTokens::LoadFile("/nonexistent/tokens").status().message()),
              HasSubstr("/nonexistent/tokens"));
}

TEST(StaticTokensTest, PodCredentialsAtRunTime) {
  StaticTokens tokens;
  absl::StatusOr<std::string> t = GenerateToken();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->size(), 43u);
  EXPECT_NE(*t, *GenerateToken());
  tokens.AddPodCredential(*t, "local/demo-0", "local/Deployment/demo");
  absl::StatusOr<Identity> id = tokens.Authenticate(*t);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->pod, "local/demo-0");
  EXPECT_EQ(id->workload, "local/Deployment/demo");
  tokens.Remove(*t);
  EXPECT_FALSE(tokens.Authenticate(*t).ok());
}

TEST(AccessControlTest, SecureByDefaultWithoutAnyCredential) {
  AccessControl gate({});
  absl::StatusOr<Identity> id = gate.Check("", actions::kRulesCreate);
  EXPECT_EQ(id.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(id.status().message(), HasSubstr("--auth-tokens=FILE"));
  EXPECT_THAT(id.status().message(), HasSubstr("--insecure"));
  EXPECT_THAT(gate.Check("Bearer abcdefabcdefabcdef", actions::kRulesGet).status().message(),
              HasSubstr("--auth-tokens"));
  EXPECT_EQ(HttpStatusOf(id.status()), 401);
}

TEST(AccessControlTest, InsecureLetsEverythingThrough) {
  AccessControlOptions o;
  o.insecure = true;
  AccessControl gate(o);
  EXPECT_TRUE(gate.Check("", actions::kRulesCreate).ok());
  EXPECT_TRUE(gate.AuthenticatePod("").ok());
}

TEST(AccessControlTest, StaticThenKubernetes) {
  FakeClock clock;
  FakeApi api;
  const std::string pod_token = Jwt(absl::ToUnixSeconds(clock.Now()) + 3600);
  const std::string lb_token = Jwt(absl::ToUnixSeconds(clock.Now()) + 3600, "b");
  api.tokens[pod_token] = PodTokenStatus("team", "model", "llama-0");
  json lb = PodTokenStatus("zs", "balancer", "balancer-0");
  api.tokens[lb_token] = lb;
  api.allowed.insert("system:serviceaccount:zs:balancer workloads/activation create");
  TokenReviewer reviewer(api.Poster(), &clock);
  AccessReviewer access(api.Poster(), &clock);
  std::unique_ptr<StaticTokens> tokens =
      *StaticTokens::Parse("op-token-0123456789,alice,zeroscale:operators\n", "f");
  AccessControlOptions o;
  o.tokens = tokens.get();
  o.kube_authenticator = &reviewer;
  o.kube_authorizer = &access;
  AccessControl gate(o);

  EXPECT_TRUE(gate.Check("Bearer op-token-0123456789", actions::kRulesDelete).ok());
  EXPECT_EQ(api.requests.size(), 0u);  // static tokens cost no API call
  EXPECT_TRUE(gate.Check(absl::StrCat("Bearer ", lb_token), actions::kActivate).ok());
  absl::StatusOr<Identity> denied =
      gate.Check(absl::StrCat("Bearer ", lb_token), actions::kRulesCreate);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(HttpStatusOf(denied.status()), 403);
  EXPECT_EQ(gate.Check("", actions::kActivate).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(gate.Check("Bearer unknown-token", actions::kActivate).status().code(),
            absl::StatusCode::kUnauthenticated);

  absl::StatusOr<Identity> pod = gate.AuthenticatePod(absl::StrCat("Bearer ", pod_token));
  ASSERT_TRUE(pod.ok());
  EXPECT_EQ(pod->pod, "team/llama-0");
  absl::StatusOr<Identity> not_pod = gate.AuthenticatePod("Bearer op-token-0123456789");
  EXPECT_EQ(not_pod.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(not_pod.status().message(), HasSubstr("\"alice\" is not a pod"));
}

// As the kubelet rotates a projected token: a new file renamed over the old one.
TEST(TokenFileTest, RereadWhenTheFileChanges) {
  const std::string path = ::testing::TempDir() + "/token-file-test-" + std::to_string(::getpid());
  auto replace = [&](const std::string& text) {
    std::ofstream(path + ".new") << text;
    ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0);
  };
  TokenFile file(path);
  EXPECT_THAT(std::string(file.Get().status().message()), HasSubstr(path));
  EXPECT_EQ(file.AuthorizationValue(), "");
  replace("  first-token\n");
  EXPECT_EQ(*file.Get(), "first-token");
  EXPECT_EQ(file.AuthorizationValue(), "Bearer first-token");
  replace("second-token");
  EXPECT_EQ(*file.Get(), "second-token");
  // Briefly gone (mid-swap) or empty: the last token stands.
  std::remove(path.c_str());
  EXPECT_EQ(*file.Get(), "second-token");
  replace("");
  EXPECT_EQ(*file.Get(), "second-token");
  replace(std::string(20000, 'a'));
  EXPECT_THAT(std::string(file.Get().status().message()), HasSubstr("20000 bytes"));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace zeroscale::auth
