// A CustomAutoscaler's spec.route: what is read, the defaults left to the balancer, and
// the validation that names the field without ever stopping the scaling.
#include <string>

#include "absl/strings/str_cat.h"
#include "common/kube/types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/kube/test_util.h"

namespace zeroscale::kube {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

// A valid CustomAutoscaler whose spec carries `route` (JSON text; "" for none).
absl::StatusOr<CustomAutoscaler> WithRoute(const std::string& route) {
  return CustomAutoscalerFromJson(absl::StrCat(
      R"({"metadata":{"name":"llama","namespace":"ml"},"spec":{)",
      R"("scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"llama"},)",
      R"("minReplicas":0,"maxReplicas":3)", route.empty() ? "" : R"(,"route":)", route, "}}"));
}

TEST(RouteTest, AbsentRouteIsNullopt) {
  auto ca = WithRoute("");
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_FALSE(ca->spec.route.has_value());
  EXPECT_TRUE(ca->route_error.ok());
  auto null_route = WithRoute("null");
  ASSERT_TRUE(null_route.ok());
  EXPECT_FALSE(null_route->spec.route.has_value());
}

TEST(RouteTest, ReadsEveryField) {
  auto ca = WithRoute(R"({"host":"llama.example.com","pathPrefix":"/llama",
      "service":"llama-svc","port":"http","activationTimeoutSeconds":600})");
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_TRUE(ca->spec_error.ok()) << ca->spec_error;
  EXPECT_TRUE(ca->route_error.ok()) << ca->route_error;
  ASSERT_TRUE(ca->spec.route.has_value());
  const RouteSpec& r = *ca->spec.route;
  EXPECT_EQ(r.host, "llama.example.com");
  EXPECT_EQ(r.path_prefix, "/llama");
  EXPECT_EQ(r.service, "llama-svc");
  EXPECT_EQ(r.port, "http");
  EXPECT_EQ(r.activation_timeout_seconds, 600);
}

TEST(RouteTest, OmittedFieldsAreLeftForTheBalancersDefaults) {
  auto ca = WithRoute(R"({"pathPrefix":"/llama"})");
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_TRUE(ca->route_error.ok()) << ca->route_error;
  ASSERT_TRUE(ca->spec.route.has_value());
  EXPECT_EQ(ca->spec.route->host, "");
  EXPECT_EQ(ca->spec.route->service, "");  // the scale target's name
  EXPECT_EQ(ca->spec.route->port, "");     // the slice's first port
  EXPECT_FALSE(ca->spec.route->activation_timeout_seconds.has_value());
}

TEST(RouteTest, PortIsANameOrANumberWrittenEitherWay) {
  for (const char* port : {R"(8012)", R"("8012")"}) {
    auto ca = WithRoute(absl::StrCat(R"({"host":"llama.local","port":)", port, "}"));
    ASSERT_TRUE(ca.ok()) << ca.status();
    EXPECT_TRUE(ca->route_error.ok()) << port << ": " << ca->route_error;
    EXPECT_EQ(ca->spec.route->port, "8012") << port;
  }
}

TEST(RouteTest, ValidationNamesTheFieldAndNeverStopsTheScaling) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"pathPrefix":"llama"})", "spec.route.pathPrefix: must start with '/'"},
      {R"({})", "spec.route: needs a host or a pathPrefix"},
      {R"({"host":"","pathPrefix":""})", "spec.route: needs a host or a pathPrefix"},
      {R"({"host":"https://llama.local"})", "spec.route.host"},
      {R"({"host":"llama.local:8000"})", "spec.route.host"},
      {R"({"host":"llama..local"})", "spec.route.host"},
      {R"({"host":"llama.local","service":"Llama_Svc"})", "spec.route.service"},
      {R"({"host":"llama.local","service":"9llama"})", "spec.route.service"},
      {R"({"host":"llama.local","port":0})", "spec.route.port"},
      {R"({"host":"llama.local","port":"70000"})", "spec.route.port"},
      {R"({"host":"llama.local","port":"a-very-long-port-name"})", "spec.route.port"},
      {R"({"host":"llama.local","activationTimeoutSeconds":0})",
       "spec.route.activationTimeoutSeconds"},
      {R"({"host":"llama.local","activationTimeoutSeconds":"10m"})",
       "spec.route.activationTimeoutSeconds"},
      {R"({"host":7})", "spec.route.host: must be a string"},
      {R"("llama.local")", "spec.route: must be an object"},
  };
  for (const auto& [route, message] : cases) {
    auto ca = WithRoute(route);
    ASSERT_TRUE(ca.ok()) << route << ": " << ca.status();
    EXPECT_EQ(ca->route_error.code(), absl::StatusCode::kInvalidArgument) << route;
    EXPECT_THAT(ca->route_error.message(), HasSubstr(message)) << route;
    // The scaler still scales the target.
    EXPECT_TRUE(ca->spec_error.ok()) << route << ": " << ca->spec_error;
  }
  // What could be read is kept, for the balancer to report the refusal.
  auto ca = WithRoute(R"({"pathPrefix":"llama","service":"llama"})");
  ASSERT_TRUE(ca.ok() && ca->spec.route.has_value());
  EXPECT_EQ(ca->spec.route->path_prefix, "llama");
  EXPECT_EQ(ca->spec.route->service, "llama");
}

TEST(RouteTest, AcceptedHostsServicesAndPorts) {
  for (const char* route : {
           R"({"host":"LLaMA.Example.com"})",
           R"({"host":"localhost"})",
           R"({"host":"a-b.c-d.e"})",
           R"({"pathPrefix":"/"})",
           R"({"host":"x.local","service":"llama-7b","port":"http-proxy"})",
           R"({"host":"x.local","port":65535})",
       }) {
    auto ca = WithRoute(route);
    ASSERT_TRUE(ca.ok()) << route;
    EXPECT_TRUE(ca->route_error.ok()) << route << ": " << ca->route_error;
  }
}

class RouteClientTest : public FakeApiServerTest {};

TEST_F(RouteClientTest, ComesWithTheListedObject) {
  // As the balancer's informer receives it from the API server.
  json ca = json::parse(CustomAutoscalerJson("llama", 0, 3));
  ca["spec"]["route"] = {{"host", "llama.local"}, {"port", 8012}};
  ASSERT_TRUE(server_.Create(CustomAutoscalers("ml"), ca.dump()).ok());
  auto list = client_->ListCustomAutoscalers("ml");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->items.size(), 1u);
  ASSERT_TRUE(list->items[0].spec.route.has_value());
  EXPECT_EQ(list->items[0].spec.route->host, "llama.local");
  EXPECT_EQ(list->items[0].spec.route->port, "8012");
  EXPECT_TRUE(list->items[0].route_error.ok());
}

}  // namespace
}  // namespace zeroscale::kube
