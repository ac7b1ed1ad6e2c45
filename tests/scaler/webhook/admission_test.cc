// The AdmissionReview exchange: what is refused as malformed, and what is always allowed.
#include "scaler/webhook/admission.h"

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace zeroscale::webhook {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

json Review(json pod, std::string operation = "CREATE") {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "705ab4f5-6393-11e8-b7cc-42010a800002"},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
            {"namespace", "ml"},
            {"operation", operation},
            {"object", std::move(pod)}}}};
}

json Pod(json annotations) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"generateName", "m-"}, {"annotations", std::move(annotations)}}},
          {"spec", {{"containers", json::array({{{"name", "model"}, {"image", "m"}}})}}}};
}

InjectorOptions Options() {
  InjectorOptions o;
  o.sidecar_image = "sidecar:1";
  o.scaler_address = "scaler:9090";
  return o;
}

json Response(const json& review) {
  absl::StatusOr<AdmissionAnswer> a = Admit(review.dump(), Options());
  EXPECT_TRUE(a.ok()) << a.status();
  const json out = json::parse(a->body);
  EXPECT_EQ(out["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(out["kind"], "AdmissionReview");
  EXPECT_EQ(out["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
  EXPECT_EQ(out["response"]["allowed"], true);
  return out["response"];
}

TEST(AdmissionTest, InjectionAnswersWithABase64JsonPatch) {
  const json pod = Pod({{"zeroscale.io/inject", "true"}, {"zeroscale.io/port", "8080"}});
  const json r = Response(Review(pod));
  EXPECT_EQ(r["patchType"], "JSONPatch");
  std::string patch;
  ASSERT_TRUE(absl::Base64Unescape(r["patch"].get<std::string>(), &patch));
  const json out = pod.patch(json::parse(patch));
  EXPECT_EQ(out["spec"]["containers"][1]["name"], "zeroscale-sidecar");
  // A pod without a controller: injected, with a word on the missing workload.
  EXPECT_THAT(r["warnings"][0].get<std::string>(), HasSubstr("without a workload"));
}

TEST(AdmissionTest, NoInjectionAnswersWithoutAPatchAndWithTheWarning) {
  const json r =
      Response(Review(Pod({{"zeroscale.io/inject", "true"}, {"zeroscale.io/port", "x"}})));
  EXPECT_FALSE(r.contains("patch"));
  EXPECT_FALSE(r.contains("patchType"));
  ASSERT_EQ(r["warnings"].size(), 1u);
  EXPECT_THAT(r["warnings"][0].get<std::string>(), HasSubstr("zeroscale.io/port: \"x\""));
}

TEST(AdmissionTest, OtherOperationsAreAllowedUnchanged) {
  json review = Review(Pod({{"zeroscale.io/port", "8080"}}), "UPDATE");
  const json r = Response(review);
  EXPECT_FALSE(r.contains("patch"));
  EXPECT_EQ(Admit(review.dump(), Options())->injection.skip_reason, "not_create");
}

TEST(AdmissionTest, MalformedReviewsAreRefusedNamingWhatIsWrong) {
  auto error = [](const std::string& body) {
    absl::StatusOr<AdmissionAnswer> a = Admit(body, Options());
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << body;
    return std::string(a.status().message());
  };
  EXPECT_THAT(error("{not json"), HasSubstr("not valid JSON"));
  EXPECT_THAT(error("[]"), HasSubstr("not a JSON object"));
  json r = Review(Pod({}));
  r["apiVersion"] = "admission.k8s.io/v1beta1";
  EXPECT_THAT(error(r.dump()), HasSubstr("apiVersion is \"admission.k8s.io/v1beta1\""));
  r = Review(Pod({}));
  r["kind"] = "Pod";
  EXPECT_THAT(error(r.dump()), HasSubstr("kind"));
  r = Review(Pod({}));
  r.erase("request");
  EXPECT_THAT(error(r.dump()), HasSubstr("request is missing"));
  r = Review(Pod({}));
  r["request"].erase("uid");
  EXPECT_THAT(error(r.dump()), HasSubstr("request.uid"));
  r = Review(Pod({}));
  r["request"]["kind"] = {{"group", "apps"}, {"version", "v1"}, {"kind", "Deployment"}};
  EXPECT_THAT(error(r.dump()), HasSubstr("\"apps/Deployment\", not a core Pod"));
  r = Review(Pod({}));
  r["request"]["object"] = "pod";
  EXPECT_THAT(error(r.dump()), HasSubstr("request.object"));
}

TEST(AdmissionTest, AnUnexpectedPodShapeIsStillAllowed) {
  json pod = Pod({{"zeroscale.io/port", "8080"}});
  pod["metadata"]["name"] = 42;  // not a string: the API server would never send this
  const json r = Response(Review(pod));
  EXPECT_FALSE(r.contains("patch"));
  EXPECT_THAT(r["warnings"][0].get<std::string>(), HasSubstr("not injected"));
}

// Reproducers of remote crashes (issue 10): each crashed the scaler before.
TEST(AdmissionTest, FieldsOfTheWrongTypeAreRefusedNamingThem) {
  auto error = [](const json& review) {
    absl::StatusOr<AdmissionAnswer> a = Admit(review.dump(), Options());
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(a.status().message());
  };
  json r = Review(Pod({{"zeroscale.io/port", "8080"}}));
  r["request"]["namespace"] = 7;  // SIGABRT: nlohmann type_error outside the try block
  EXPECT_THAT(error(r), HasSubstr("request.namespace is not a string"));
  r = Review(Pod({{"zeroscale.io/port", "8080"}}));
  r["request"]["operation"] = 1;
  EXPECT_THAT(error(r), HasSubstr("request.operation is not a string"));
  r = Review(Pod({{"zeroscale.io/port", "8080"}}));
  r["request"]["kind"]["kind"] = 2;
  EXPECT_THAT(error(r), HasSubstr("request.kind.kind is not a string"));
  r = Review(Pod({{"zeroscale.io/port", "8080"}}));
  r["request"]["kind"]["group"] = json::array({1});
  EXPECT_THAT(error(r), HasSubstr("request.kind.group is not a string"));
  r = Review(Pod({{"zeroscale.io/port", "8080"}}));
  r["request"]["object"]["kind"] = 3;
  EXPECT_THAT(error(r), HasSubstr("request.object.kind is not a string"));
  r = Review(Pod({{"zeroscale.io/port", "8080"}}));
  r["kind"] = 4;
  EXPECT_THAT(error(r), HasSubstr("kind is not a string"));
}

std::string Nested(int depth, const std::string& inner) {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

TEST(AdmissionTest, ADeeplyNestedAnnotationIsRefusedNotRecursedInto) {
  // SIGSEGV before: the value was rendered back with a recursive dump().
  std::string review = Review(Pod({{"zeroscale.io/port", "PLACEHOLDER"}})).dump();
  review.replace(review.find("\"PLACEHOLDER\""), 13, Nested(100000, "8080"));
  absl::StatusOr<AdmissionAnswer> a = Admit(review, Options());
  ASSERT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("nested deeper than 64 levels"));
}

TEST(AdmissionTest, ANonStringAnnotationWithinTheDepthLimitIsNamedNotRendered) {
  json pod = Pod({{"zeroscale.io/inject", "true"}});
  pod["metadata"]["annotations"]["zeroscale.io/port"] = json::parse(Nested(40, "8080"));
  const json r = Response(Review(pod));
  EXPECT_FALSE(r.contains("patch"));
  EXPECT_THAT(r["warnings"][0].get<std::string>(),
              HasSubstr("zeroscale.io/port: is a JSON array, not a string"));
  EXPECT_EQ(Admit(Review(pod).dump(), Options())->injection.skip_reason, "invalid_annotation");
}

TEST(AdmissionTest, ErrorsAndWarningsNeverEchoALongValue) {
  const std::string huge(1 << 20, 'n');
  json r = Review(Pod({}));
  r["apiVersion"] = huge;
  absl::StatusOr<AdmissionAnswer> a = Admit(r.dump(), Options());
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("(1048576 bytes)"));
  EXPECT_LT(a.status().message().size(), 300u);
  r = Review(Pod({{"zeroscale.io/port", "8080"}, {"zeroscale.io/container", huge}}));
  r["request"]["object"]["metadata"]["generateName"] = huge;
  a = Admit(r.dump(), Options());
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->injection.warnings.size(), 1u);
  EXPECT_THAT(a->injection.warnings[0], HasSubstr("(1048576 bytes)"));
  EXPECT_LT(a->injection.warnings[0].size(), 300u);
  EXPECT_LT(a->pod.size(), 400u);
}

}  // namespace
}  // namespace zeroscale::webhook
