// The pure parts of the Kubernetes harness: YAML to JSON, quantities, $(VAR) expansion,
// the Downward API and the command line the kubelet stand-in computes.
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/container_spec.h"
#include "tests/testing/yaml_json.h"

namespace zeroscale::testing {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(YamlJson, ScalarsResolveAsKubernetesReadsThem) {
  absl::StatusOr<json> j = YamlToJson(R"(
port: 8080
ratio: 0.5
on: true
off: no
name: llama
quoted: "8080"
single: 'true'
nothing: ~
empty:
version: 1.2.3
list: [a, 1, false]
block: |
  line 1
)");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["port"], 8080);
  EXPECT_EQ((*j)["ratio"], 0.5);
  EXPECT_EQ((*j)["on"], true);
  EXPECT_EQ((*j)["off"], false);
  EXPECT_EQ((*j)["name"], "llama");
  EXPECT_EQ((*j)["quoted"], "8080");
  EXPECT_EQ((*j)["single"], "true");
  EXPECT_TRUE((*j)["nothing"].is_null());
  EXPECT_TRUE((*j)["empty"].is_null());
  EXPECT_EQ((*j)["version"], "1.2.3");
  EXPECT_EQ((*j)["list"], json::array({"a", 1, false}));
  EXPECT_EQ((*j)["block"], "line 1\n");
}

TEST(YamlJson, StreamsSkipEmptyDocumentsAndOneDocumentMeansOne) {
  absl::StatusOr<std::vector<json>> docs = YamlDocumentsToJson("---\na: 1\n---\n---\nb: 2\n");
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_THAT(*docs, ElementsAre(json{{"a", 1}}, json{{"b", 2}}));
  EXPECT_THAT(std::string(YamlToJson("a: 1\n---\nb: 2\n").status().message()),
              HasSubstr("expected one YAML document, found 2"));
  EXPECT_THAT(std::string(YamlToJson("a: [1, 2\n").status().message()),
              HasSubstr("YAML does not parse"));
  absl::StatusOr<json> from_json = YamlToJson(R"({"a": {"b": [1, "x"]}})");
  ASSERT_TRUE(from_json.ok());
  EXPECT_EQ(*from_json, (json{{"a", {{"b", {1, "x"}}}}}));
}

TEST(Quantity, ParsesKubernetesSuffixes) {
  EXPECT_DOUBLE_EQ(*ParseQuantity("500m"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseQuantity("2"), 2);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1Gi"), 1073741824.0);
  EXPECT_DOUBLE_EQ(*ParseQuantity("128Mi"), 134217728.0);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1k"), 1000);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1e3"), 1000);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1.5G"), 1.5e9);
  for (const char* bad : {"", "abc", "-1", "1Xi", "Gi"}) {
    EXPECT_FALSE(ParseQuantity(bad).ok()) << bad;
  }
}

std::optional<std::string> Lookup(const std::map<std::string, std::string>& m,
                                  const std::string& k) {
  auto it = m.find(k);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

TEST(ExpandVars, AsKubernetesExpandsCommandsAndEnv) {
  const std::map<std::string, std::string> vars = {{"A", "x"}, {"POD_IP", "198.18.1.1"}};
  auto lookup = [&](const std::string& k) { return Lookup(vars, k); };
  EXPECT_EQ(ExpandVars("--advertise=$(POD_IP):8012", lookup), "--advertise=198.18.1.1:8012");
  EXPECT_EQ(ExpandVars("$(UNDEFINED)/$(A)", lookup), "$(UNDEFINED)/x");
  EXPECT_EQ(ExpandVars("$$(A) costs $5 $", lookup), "$(A) costs $5 $");
  EXPECT_EQ(ExpandVars("$(A", lookup), "$(A");
}

class PodContextTest : public ::testing::Test {
 protected:
  PodContextTest() {
    pod_ = json::parse(R"({
      "metadata": {"name": "llama-0", "namespace": "ml", "uid": "u-1",
                   "labels": {"app": "llama"}, "annotations": {"a": "b"}},
      "spec": {"serviceAccountName": "model", "containers": [
        {"name": "model", "resources": {"limits": {"cpu": "500m", "memory": "1Gi"},
                                        "requests": {"cpu": "250m"}}},
        {"name": "side"}]}})");
    ctx_.pod = &pod_;
    ctx_.pod_ip = "198.18.1.7";
    ctx_.host_ip = "198.18.0.1";
    ctx_.node_name = "zs-node-0";
    ctx_.node_allocatable = {{"cpu", "8"}, {"memory", "16Gi"}};
    ctx_.lookup_data =
        [](const std::string& kind,
           const std::string& name) -> absl::StatusOr<std::map<std::string, std::string>> {
      if (kind == "ConfigMap" && name == "settings")
        return std::map<std::string, std::string>{{"level", "debug"}};
      return absl::NotFoundError(absl::StrCat(kind, " ", name, " not found"));
    };
  }
  json pod_;
  PodContext ctx_;
};

TEST_F(PodContextTest, FieldRefs) {
  EXPECT_EQ(*FieldRefValue(ctx_, "metadata.name"), "llama-0");
  EXPECT_EQ(*FieldRefValue(ctx_, "metadata.namespace"), "ml");
  EXPECT_EQ(*FieldRefValue(ctx_, "metadata.uid"), "u-1");
  EXPECT_EQ(*FieldRefValue(ctx_, "metadata.labels['app']"), "llama");
  EXPECT_EQ(*FieldRefValue(ctx_, "metadata.annotations['a']"), "b");
  EXPECT_EQ(*FieldRefValue(ctx_, "spec.nodeName"), "zs-node-0");
  EXPECT_EQ(*FieldRefValue(ctx_, "spec.serviceAccountName"), "model");
  EXPECT_EQ(*FieldRefValue(ctx_, "status.podIP"), "198.18.1.7");
  EXPECT_EQ(*FieldRefValue(ctx_, "status.hostIP"), "198.18.0.1");
  EXPECT_THAT(std::string(FieldRefValue(ctx_, "spec.nope").status().message()),
              HasSubstr("spec.nope"));
}

TEST_F(PodContextTest, ResourceFieldRefsUseDivisorAndNodeAllocatable) {
  auto value = [&](const std::string& container, const json& ref) {
    absl::StatusOr<std::string> v = ResourceFieldRefValue(ctx_, container, ref);
    return v.ok() ? *v : v.status().ToString();
  };
  EXPECT_EQ(value("model", {{"resource", "limits.cpu"}, {"divisor", "1m"}}), "500");
  EXPECT_EQ(value("model", {{"resource", "limits.cpu"}}), "1");  // rounded up
  EXPECT_EQ(value("model", {{"resource", "requests.cpu"}, {"divisor", "1m"}}), "250");
  EXPECT_EQ(value("model", {{"resource", "limits.memory"}, {"divisor", "1"}}), "1073741824");
  EXPECT_EQ(value("model", {{"resource", "limits.memory"}, {"divisor", "1Mi"}}), "1024");
  // The sidecar's view of the app: containerName names it; no limit is the node's.
  EXPECT_EQ(
      value("side", {{"containerName", "model"}, {"resource", "limits.cpu"}, {"divisor", "1m"}}),
      "500");
  EXPECT_EQ(value("side", {{"resource", "limits.cpu"}, {"divisor", "1m"}}), "8000");
  EXPECT_EQ(value("side", {{"resource", "limits.memory"}}), "17179869184");
  EXPECT_EQ(value("side", {{"resource", "requests.memory"}}), "0");
  EXPECT_THAT(value("side", {{"containerName", "nope"}, {"resource", "limits.cpu"}}),
              HasSubstr("nope"));
}

TEST_F(PodContextTest, EnvResolvesInOrderWithExpansion) {
  const json container = json::parse(R"j({"name": "side",
    "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
                {"configMapRef": {"name": "absent", "optional": true}}],
    "env": [
      {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
      {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
      {"name": "ADDR", "value": "$(POD_IP):8012"},
      {"name": "LATER", "value": "$(DEFINED_LATER)"},
      {"name": "DEFINED_LATER", "value": "x"},
      {"name": "FROM_IMAGE", "value": "$(PATH)"},
      {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
      {"name": "MISSING", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": true}}},
      {"name": "CPU", "valueFrom": {"resourceFieldRef": {"containerName": "model", "resource": "limits.cpu", "divisor": "1m"}}}
    ]})j");
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> env =
      ContainerEnv(ctx_, container, {{"PATH", "/bin"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_THAT(*env, ElementsAre(Pair("PATH", "/bin"), Pair("CFG_level", "debug"),
                                Pair("POD_NAME", "llama-0"), Pair("POD_IP", "198.18.1.7"),
                                Pair("ADDR", "198.18.1.7:8012"), Pair("LATER", "$(DEFINED_LATER)"),
                                Pair("DEFINED_LATER", "x"), Pair("FROM_IMAGE", "/bin"),
                                Pair("LEVEL", "debug"), Pair("CPU", "500")));

  const json bad = json::parse(R"({"name": "side", "env": [
      {"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]})");
  absl::Status s = ContainerEnv(ctx_, bad, {}).status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("env X"));
}

TEST(ContainerCommand, CombinesCommandArgsEntrypointAndCmdAsKubernetes) {
  const ContainerImage image{{"/bin/app", "--from-entrypoint"}, {"--from-cmd"}, {}, ""};
  const std::vector<std::pair<std::string, std::string>> env = {{"POD_IP", "198.18.1.2"}};
  auto run = [&](const char* container) {
    absl::StatusOr<std::vector<std::string>> argv =
        ContainerCommand(json::parse(container), image, env);
    return argv.ok() ? *argv : std::vector<std::string>{argv.status().ToString()};
  };
  EXPECT_THAT(run(R"({"name": "c"})"), ElementsAre("/bin/app", "--from-entrypoint", "--from-cmd"));
  EXPECT_THAT(run(R"j({"name": "c", "args": ["--addr=$(POD_IP)"]})j"),
              ElementsAre("/bin/app", "--from-entrypoint", "--addr=198.18.1.2"));
  EXPECT_THAT(run(R"j({"name": "c", "command": ["sh", "-c"], "args": ["echo $(POD_IP)"]})j"),
              ElementsAre("sh", "-c", "echo 198.18.1.2"));
  EXPECT_THAT(run(R"({"name": "c", "command": ["sleep"]})"), ElementsAre("sleep"));
  EXPECT_THAT(
      ContainerCommand(json::parse(R"({"name": "c"})"), ContainerImage{}, env).status().message(),
      HasSubstr("names a program"));
}

TEST(FindImage, MatchesWithOrWithoutTagOrDigest) {
  const std::map<std::string, ContainerImage> images = {
      {"ghcr.io/zeroscale/zeroscale-sidecar", {{"/sidecar"}, {}, {}, ""}},
      {"localhost:5000/app:v2", {{"/app-v2"}, {}, {}, ""}}};
  ASSERT_NE(FindImage(images, "ghcr.io/zeroscale/zeroscale-sidecar:0.1.0"), nullptr);
  EXPECT_EQ(FindImage(images, "ghcr.io/zeroscale/zeroscale-sidecar@sha256:abc")->entrypoint[0],
            "/sidecar");
  EXPECT_EQ(FindImage(images, "localhost:5000/app:v2")->entrypoint[0], "/app-v2");
  EXPECT_EQ(FindImage(images, "localhost:5000/app:v1"), nullptr);
  EXPECT_EQ(FindImage(images, "other"), nullptr);
}

TEST(PodRequests, SumsContainersAndTakesTheLargestInitContainer) {
  const json pod = json::parse(R"({"spec": {
    "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
    "containers": [
      {"resources": {"requests": {"cpu": "500m"}, "limits": {"nvidia.com/gpu": "1", "memory": "1Gi"}}},
      {"resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}}]}})");
  const std::map<std::string, double> r = PodRequests(pod);
  EXPECT_DOUBLE_EQ(r.at("cpu"), 2);
  EXPECT_DOUBLE_EQ(r.at("memory"), 2147483648.0);
  EXPECT_DOUBLE_EQ(r.at("nvidia.com/gpu"), 1);
}

}  // namespace
}  // namespace zeroscale::testing
