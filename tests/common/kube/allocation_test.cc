// What the allocation limits read from the API: AllocationPolicies (and their CRD, whose
// patterns agree with the parser), spec.allocation of a CustomAutoscaler, a pod's and a
// pod template's requests as the scheduler counts them, Nodes' allocatable.
#include <regex>
#include <string>

#include "common/kube/types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace zeroscale::kube {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr int64_t kGi = int64_t{1} << 30;

TEST(AllocationPolicyTest, LimitsAreQuantities) {
  absl::StatusOr<AllocationPolicy> p = AllocationPolicyFromJson(R"({
    "apiVersion": "zeroscale.io/v1alpha1", "kind": "AllocationPolicy",
    "metadata": {"name": "llm", "namespace": "ml", "resourceVersion": "7", "generation": 2},
    "spec": {"limits": {"nvidia.com/gpu": "8", "cpu": "500m", "memory": "64Gi", "pods": 10}}})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->Key(), "ml/llm");
  EXPECT_TRUE(p->spec_error.ok()) << p->spec_error;
  EXPECT_THAT(p->limits,
              UnorderedElementsAre(Pair("nvidia.com/gpu", 8000), Pair("cpu", 500),
                                   Pair("memory", 64 * kGi * 1000), Pair("pods", 10000)));
}

TEST(AllocationPolicyTest, ABadLimitIsReportedNamingTheField) {
  absl::StatusOr<AllocationPolicy> p = AllocationPolicyFromJson(R"({
    "metadata": {"name": "llm", "namespace": "ml"},
    "spec": {"limits": {"nvidia.com/gpu": "eight"}}})");
  ASSERT_TRUE(p.ok()) << p.status();  // delivered, so the scaler can say what is wrong
  EXPECT_THAT(p->spec_error.message(), HasSubstr("spec.limits.nvidia.com/gpu: 'eight' is not a"));
  EXPECT_TRUE(p->limits.empty());
  p = AllocationPolicyFromJson(R"({"metadata": {"name": "x"}, "spec": {"limits": {"cpu": []}}})");
  ASSERT_TRUE(p.ok());
  EXPECT_THAT(p->spec_error.message(), HasSubstr("spec.limits.cpu: must be a quantity"));
  p = AllocationPolicyFromJson(R"({"metadata": {"name": "x"}, "spec": {"limits": {"cpu": "-1"}}})");
  EXPECT_THAT(p->spec_error.message(), HasSubstr("negative"));
  std::string many = R"({"metadata": {"name": "x"}, "spec": {"limits": {)";
  for (int i = 0; i < 40; ++i) many += "\"r" + std::to_string(i) + "\": 1,";
  many.back() = '}';
  many += "}}";
  p = AllocationPolicyFromJson(many);
  ASSERT_TRUE(p.ok());
  EXPECT_THAT(p->spec_error.message(), HasSubstr("more than 32 resources"));
}

TEST(AllocationGroupTest, ParsedAndValidated) {
  auto ca = [](const std::string& allocation) {
    return CustomAutoscalerFromJson(
        R"({"metadata": {"name": "m", "namespace": "ml"}, "spec": {"scaleTargetRef":
        {"kind": "Deployment", "name": "m"}, "maxReplicas": 2)" +
        allocation + "}}");
  };
  absl::StatusOr<CustomAutoscaler> c = ca(R"(, "allocation": {"group": "llm"})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->spec_error.ok()) << c->spec_error;
  EXPECT_EQ(c->spec.allocation_group, "llm");
  c = ca("");
  EXPECT_EQ(c->spec.allocation_group, "");
  c = ca(R"(, "allocation": {"group": "LLM"})");
  EXPECT_THAT(c->spec_error.message(), HasSubstr("spec.allocation.group: must name an"));
  c = ca(R"(, "allocation": {})");
  EXPECT_THAT(c->spec_error.message(), HasSubstr("spec.allocation.group: is required"));
  c = ca(R"(, "allocation": "llm")");
  EXPECT_THAT(c->spec_error.message(), HasSubstr("spec.allocation: must be an object"));
}

TEST(PodRequestsTest, AsTheSchedulerCountsThem) {
  absl::StatusOr<Pod> pod = PodFromJson(R"({
    "metadata": {"name": "p", "namespace": "ml"},
    "spec": {"nodeName": "gpu-a",
      "initContainers": [{"name": "fetch", "resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}],
      "containers": [
        {"name": "model", "resources": {"requests": {"cpu": "1", "memory": "16Gi"},
                                        "limits": {"nvidia.com/gpu": 2, "memory": "20Gi"}}},
        {"name": "sidecar", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
      "overhead": {"cpu": "50m"}},
    "status": {"phase": "Running"}})");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->node_name, "gpu-a");
  EXPECT_FALSE(pod->unschedulable);
  // cpu: max(1.1 of the containers, 3 of the init container) + 50m overhead; a limit
  // without a request is the request (GPUs), a limit with one is not (memory).
  EXPECT_THAT(pod->requests, UnorderedElementsAre(Pair("cpu", 3050),
                                                  Pair("memory", (16 * kGi + (64 << 20)) * 1000),
                                                  Pair("nvidia.com/gpu", 2000)));
}

TEST(PodRequestsTest, UnschedulableAndBadQuantities) {
  absl::StatusOr<Pod> pod = PodFromJson(R"({
    "metadata": {"name": "p", "namespace": "ml"},
    "spec": {"containers": [{"name": "m", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
    "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
      "reason": "Unschedulable",
      "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."}]}})");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_TRUE(pod->unschedulable);
  EXPECT_EQ(pod->unschedulable_message, "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.");
  pod = PodFromJson(R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "m",
    "resources": {"requests": {"cpu": "1x"}}}]}})");
  ASSERT_FALSE(pod.ok());
  EXPECT_THAT(pod.status().message(), HasSubstr("spec.containers[0].resources.requests.cpu"));
}

TEST(NodeTest, AllocatableAndSchedulable) {
  absl::StatusOr<Node> n = NodeFromJson(R"({"metadata": {"name": "gpu-a", "resourceVersion": "3"},
    "spec": {"unschedulable": true},
    "status": {"allocatable": {"nvidia.com/gpu": "4", "cpu": "31800m"},
               "conditions": [{"type": "Ready", "status": "False"}]}})");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->Key(), "gpu-a");
  EXPECT_TRUE(n->unschedulable);
  EXPECT_FALSE(n->ready);
  EXPECT_THAT(n->allocatable,
              UnorderedElementsAre(Pair("nvidia.com/gpu", 4000), Pair("cpu", 31800)));
  n = NodeFromJson(R"({"metadata": {"name": "plain"}})");
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->ready);  // no condition: as a plain API object, taken as ready
  EXPECT_FALSE(n->unschedulable);
}

TEST(PodTemplateRequestsTest, FromADeployment) {
  absl::StatusOr<ResourceAmounts> r = PodTemplateRequestsFromJson(R"({
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "m"},
    "spec": {"replicas": 0, "template": {"spec": {"containers": [
      {"name": "m", "resources": {"requests": {"nvidia.com/gpu": "2", "memory": "16Gi"}}}]}}}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r,
              UnorderedElementsAre(Pair("nvidia.com/gpu", 2000), Pair("memory", 16 * kGi * 1000)));
  r = PodTemplateRequestsFromJson(R"({"spec": {"template": {"spec": {"containers": [
      {"name": "m", "resources": {"requests": {"memory": "lots"}}}]}}}})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(),
              HasSubstr("spec.template.spec.containers[0].resources.requests.memory"));
}

// The CRD in the chart says what the client reads, and its quantity pattern admits what
// the parser reads (and refuses what it refuses).
TEST(AllocationPolicyCrdTest, MatchesTheClientAndTheParser) {
  const YAML::Node crd =
      YAML::LoadFile(ZS_SOURCE_DIR "/charts/zeroscale/crds/allocationpolicies.yaml");
  EXPECT_EQ(crd["metadata"]["name"].as<std::string>(),
            std::string(kAllocationPolicyPlural) + "." + kAllocationPolicyGroup);
  EXPECT_EQ(crd["spec"]["group"].as<std::string>(), kAllocationPolicyGroup);
  EXPECT_EQ(crd["spec"]["scope"].as<std::string>(), "Namespaced");
  EXPECT_EQ(crd["spec"]["names"]["kind"].as<std::string>(), kAllocationPolicyKind);
  const YAML::Node version = crd["spec"]["versions"][0];
  EXPECT_EQ(version["name"].as<std::string>(), kAllocationPolicyVersion);
  const YAML::Node limits =
      version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["limits"];
  EXPECT_EQ(limits["maxProperties"].as<size_t>(), kMaxResourceNames);
  const std::regex pattern(limits["additionalProperties"]["pattern"].as<std::string>());
  for (const char* ok : {"8", "500m", "16Gi", "1.5", ".5", "1e3", "+2", "100M", "2k", "250u"}) {
    EXPECT_TRUE(std::regex_match(ok, pattern)) << ok;
    EXPECT_TRUE(ParseQuantityMilli(ok).ok()) << ok;
  }
  for (const char* bad : {"", "-1", "eight", "1.2.3", "2Qi", "2 Gi", "1e"}) {
    EXPECT_FALSE(std::regex_match(bad, pattern)) << bad;
    EXPECT_FALSE(ParseQuantityMilli(bad).ok()) << bad;
  }
  // spec.allocation.group of the CustomAutoscaler CRD: an object name.
  const YAML::Node ca =
      YAML::LoadFile(ZS_SOURCE_DIR "/charts/zeroscale/crds/customautoscalers.yaml");
  const YAML::Node group = ca["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
                             ["spec"]["properties"]["allocation"]["properties"]["group"];
  const std::regex name(group["pattern"].as<std::string>());
  EXPECT_TRUE(std::regex_match("llm", name));
  EXPECT_TRUE(std::regex_match("team-a.gpu", name));
  EXPECT_FALSE(std::regex_match("LLM", name));
  EXPECT_FALSE(std::regex_match("-llm", name));
}

}  // namespace
}  // namespace zeroscale::kube
