// Checks the CustomAutoscaler CRD manifest parses and says what the scaler relies on.
#include <regex>
#include <set>
#include <string>

#include "common/kube/types.h"
#include "common/model/scaling_rule.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace zeroscale::kube {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

std::vector<std::string> Strings(const YAML::Node& seq) {
  std::vector<std::string> out;
  for (const auto& n : seq) out.push_back(n.as<std::string>());
  return out;
}

class CrdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    crd_ = YAML::LoadFile(ZS_SOURCE_DIR "/charts/zeroscale/crds/customautoscalers.yaml");
    version_ = crd_["spec"]["versions"][0];
    spec_ = version_["schema"]["openAPIV3Schema"]["properties"]["spec"];
    rule_ = spec_["properties"]["rules"]["items"];
  }
  YAML::Node crd_, version_, spec_, rule_;
};

TEST_F(CrdTest, NamesMatchTheClient) {
  EXPECT_EQ(crd_["apiVersion"].as<std::string>(), "apiextensions.k8s.io/v1");
  EXPECT_EQ(crd_["kind"].as<std::string>(), "CustomResourceDefinition");
  EXPECT_EQ(crd_["metadata"]["name"].as<std::string>(),
            std::string(kCustomAutoscalerPlural) + "." + kCustomAutoscalerGroup);
  EXPECT_EQ(crd_["spec"]["group"].as<std::string>(), kCustomAutoscalerGroup);
  EXPECT_EQ(crd_["spec"]["scope"].as<std::string>(), "Namespaced");
  EXPECT_EQ(crd_["spec"]["names"]["kind"].as<std::string>(), kCustomAutoscalerKind);
  EXPECT_EQ(crd_["spec"]["names"]["plural"].as<std::string>(), kCustomAutoscalerPlural);
  EXPECT_THAT(Strings(crd_["spec"]["names"]["shortNames"]), ElementsAre("csa"));
  EXPECT_EQ(version_["name"].as<std::string>(), kCustomAutoscalerVersion);
  EXPECT_TRUE(version_["served"].as<bool>());
  EXPECT_TRUE(version_["storage"].as<bool>());
  EXPECT_TRUE(version_["subresources"]["status"].IsMap());
}

TEST_F(CrdTest, PrinterColumns) {
  std::vector<std::string> names;
  for (const auto& c : version_["additionalPrinterColumns"]) {
    names.push_back(c["name"].as<std::string>());
    EXPECT_TRUE(c["jsonPath"].IsScalar());
  }
  EXPECT_THAT(names, ElementsAre("Target", "Min", "Max", "Replicas", "State", "Age"));
}

TEST_F(CrdTest, SpecSchemaValidates) {
  EXPECT_THAT(Strings(spec_["required"]), UnorderedElementsAre("scaleTargetRef", "maxReplicas"));
  const YAML::Node ref = spec_["properties"]["scaleTargetRef"];
  EXPECT_THAT(Strings(ref["required"]), UnorderedElementsAre("kind", "name"));
  EXPECT_THAT(Strings(ref["properties"]["kind"]["enum"]), ElementsAre("Deployment", "StatefulSet"));
  EXPECT_EQ(spec_["properties"]["minReplicas"]["minimum"].as<int>(), 0);
  EXPECT_EQ(spec_["properties"]["maxReplicas"]["minimum"].as<int>(), 1);
  EXPECT_EQ(spec_["properties"]["idleTimeoutSeconds"]["minimum"].as<int>(), 0);

  EXPECT_THAT(Strings(rule_["required"]), UnorderedElementsAre("id", "action", "thresholds"));
  for (const char* f : {"windowSeconds", "step", "cooldownSeconds"}) {
    EXPECT_EQ(rule_["properties"][f]["type"].as<std::string>(), "integer") << f;
  }
  const YAML::Node thresholds = rule_["properties"]["thresholds"];
  EXPECT_EQ(thresholds["minItems"].as<int>(), 1);
  EXPECT_EQ(thresholds["items"]["properties"]["value"]["type"].as<std::string>(), "number");
}

TEST_F(CrdTest, RouteSchemaIsDescribedAndOptional) {
  const YAML::Node route = spec_["properties"]["route"];
  ASSERT_TRUE(route.IsMap());
  EXPECT_EQ(route["type"].as<std::string>(), "object");
  EXPECT_FALSE(route["description"].as<std::string>().empty());
  EXPECT_FALSE(route["required"].IsDefined());  // every field has a default or an alternative
  ASSERT_EQ(route["x-kubernetes-validations"].size(), 1u);
  EXPECT_THAT(
      route["x-kubernetes-validations"][0]["rule"].as<std::string>(),
      ::testing::AllOf(::testing::HasSubstr("self.host"), ::testing::HasSubstr("self.pathPrefix")));
  std::vector<std::string> fields;
  for (const auto& f : route["properties"]) {
    fields.push_back(f.first.as<std::string>());
    EXPECT_FALSE(f.second["description"].as<std::string>().empty()) << fields.back();
  }
  EXPECT_THAT(fields,
              ElementsAre("host", "pathPrefix", "service", "port", "activationTimeoutSeconds"));
  const YAML::Node p = route["properties"];
  EXPECT_TRUE(p["port"]["x-kubernetes-int-or-string"].as<bool>());
  EXPECT_FALSE(p["port"]["type"].IsDefined());  // int-or-string carries no type
  EXPECT_EQ(p["activationTimeoutSeconds"]["type"].as<std::string>(), "integer");
  EXPECT_EQ(p["activationTimeoutSeconds"]["minimum"].as<int>(), 1);
  // spec stays valid without a route.
  EXPECT_THAT(Strings(spec_["required"]), ::testing::Not(::testing::Contains("route")));
}

// The CRD's patterns and the parser accept and refuse the same values, so the API server
// never admits a route the balancer refuses (nor the reverse).
TEST_F(CrdTest, RoutePatternsAgreeWithTheParser) {
  const YAML::Node p = spec_["properties"]["route"]["properties"];
  struct Case {
    const char* field;
    const char* value;
  };
  const Case cases[] = {
      {"host", "llama.example.com"},
      {"host", "LLaMA.local"},
      {"host", "localhost"},
      {"host", "a-b.c"},
      {"host", "-a.b"},
      {"host", "a-.b"},
      {"host", "a..b"},
      {"host", "a.b."},
      {"host", "a.b:80"},
      {"host", "https://a.b"},
      {"host", "a/b"},
      {"pathPrefix", "/"},
      {"pathPrefix", "/llama/v1"},
      {"pathPrefix", "llama"},
      {"service", "llama"},
      {"service", "llama-7b"},
      {"service", "7b"},
      {"service", "Llama"},
      {"service", "llama-"},
      {"service", "llama.svc"},
  };
  for (const Case& c : cases) {
    const std::regex pattern(p[c.field]["pattern"].as<std::string>(), std::regex::ECMAScript);
    const bool schema_accepts = std::regex_search(std::string(c.value), pattern);
    std::string route = std::string(R"({")") + c.field + R"(":")" + c.value + R"(")";
    if (std::string(c.field) != "host" && std::string(c.field) != "pathPrefix") {
      route += R"(,"host":"x.local")";
    }
    auto ca = CustomAutoscalerFromJson(
        R"({"metadata":{"name":"a","namespace":"ml"},"spec":{"scaleTargetRef":)"
        R"({"kind":"Deployment","name":"d"},"maxReplicas":1,"route":)" +
        route + "}}}");
    ASSERT_TRUE(ca.ok()) << route;
    EXPECT_EQ(schema_accepts, ca->route_error.ok())
        << c.field << " '" << c.value << "': " << ca->route_error;
  }
}

TEST_F(CrdTest, KeepAliveSchemaAgreesWithTheParser) {
  const YAML::Node ka = spec_["properties"]["keepAlive"];
  EXPECT_THAT(Strings(ka["properties"]["policy"]["enum"]),
              ElementsAre("fixed", "knative", "adaptive"));
  std::vector<std::string> fields;
  for (const auto& kv : ka["properties"]) fields.push_back(kv.first.as<std::string>());
  std::vector<std::string> parsed(KeepAliveFieldNames().begin(), KeepAliveFieldNames().end());
  EXPECT_THAT(fields, UnorderedElementsAreArray(parsed));

  auto parse = [](const std::string& keep_alive) {
    return CustomAutoscalerFromJson(
        R"({"metadata":{"name":"a","namespace":"ml"},"spec":{"scaleTargetRef":)"
        R"({"kind":"Deployment","name":"d"},"maxReplicas":1,"keepAlive":)" +
        keep_alive + "}}");
  };
  auto ca = parse(R"({"policy":"knative","stableWindowSeconds":120,"prewarm":true})");
  ASSERT_TRUE(ca.ok()) << ca.status();
  ASSERT_TRUE(ca->spec_error.ok()) << ca->spec_error;
  EXPECT_EQ(ca->spec.keep_alive.policy, KeepAlivePolicy::kKnative);
  EXPECT_EQ(ca->spec.keep_alive.stable_window, absl::Minutes(2));
  ca = parse(R"({"policy":"sometimes"})");
  ASSERT_TRUE(ca.ok());
  EXPECT_THAT(ca->spec_error.message(), HasSubstr("spec.keepAlive.policy must be fixed"));
  ca = parse(R"({"coldStartSeconds":{"a":1}})");
  ASSERT_TRUE(ca.ok());
  EXPECT_THAT(ca->spec_error.message(), HasSubstr("spec.keepAlive.coldStartSeconds: must be"));
  ca = parse(R"("adaptive")");
  ASSERT_TRUE(ca.ok());
  EXPECT_THAT(ca->spec_error.message(), HasSubstr("spec.keepAlive: must be an object"));
}

// The enums must be exactly the names the scaler parses, or valid CRs would be refused.
TEST_F(CrdTest, EnumsMatchTheModel) {
  const auto actions = Strings(rule_["properties"]["action"]["enum"]);
  EXPECT_EQ(actions.size(), 3u);
  for (const auto& a : actions) EXPECT_TRUE(ParseAction(a).has_value()) << a;
  const YAML::Node t = rule_["properties"]["thresholds"]["items"]["properties"];
  const auto metrics = Strings(t["metricType"]["enum"]);
  EXPECT_EQ(metrics.size(), 10u);
  for (const auto& m : metrics) EXPECT_TRUE(ParseMetricType(m).has_value()) << m;
  const auto aggregations = Strings(t["aggregation"]["enum"]);
  EXPECT_EQ(aggregations.size(), 2u);
  for (const auto& a : aggregations) EXPECT_TRUE(ParseAggregation(a).has_value()) << a;
  const auto ops = Strings(t["operator"]["enum"]);
  EXPECT_EQ(ops.size(), 3u);
  for (const auto& o : ops) EXPECT_TRUE(ParseOperator(o).has_value()) << o;
}

}  // namespace
}  // namespace zeroscale::kube
