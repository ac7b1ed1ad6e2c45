// The manifests of examples/ as a user applies them, on the real control plane: each
// accepted by the API server (server-side apply with dryRun=All, as `kubectl apply
// --server-side --dry-run=server`), the CustomAutoscaler against the chart's CRD, and the
// production values file installed by helm (examples/values-production.yaml).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/kube/types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/kube_test_env.h"
#include "tests/testing/yaml_json.h"

namespace zeroscale::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

const std::string kExamples = ZS_SOURCE_DIR "/examples/";

class ExamplesTest : public KubeTest {
 protected:
  void SetUp() override {
    KubeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (const char* crd : {"customautoscalers.yaml", "allocationpolicies.yaml"}) {
      ZS_ASSERT_OK(api().ApplyManifest(
          ReadFileOrEmpty(absl::StrCat(ZS_SOURCE_DIR "/charts/zeroscale/crds/", crd))));
    }
  }

  // Every document of examples/<file>, dry-run applied into ns() (namespaced ones that
  // name no namespace); the objects as the API server would store them.
  std::vector<json> DryRun(const std::string& file) {
    const std::string text = ReadFileOrEmpty(kExamples + file);
    EXPECT_FALSE(text.empty()) << kExamples << file << " is missing or empty";
    absl::StatusOr<std::vector<json>> docs = YamlDocumentsToJson(text);
    EXPECT_TRUE(docs.ok()) << file << ": " << docs.status();
    std::vector<json> out;
    if (!docs.ok()) return out;
    for (const json& doc : *docs) {
      absl::StatusOr<json> applied = api().DryRunApply(doc, ns());
      EXPECT_TRUE(applied.ok()) << file << ": " << applied.status();
      if (applied.ok()) out.push_back(*std::move(applied));
    }
    return out;
  }
};

TEST_F(ExamplesTest, NamespaceIsOptedIntoInjection) {
  std::vector<json> objects = DryRun("namespace.yaml");
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0]["kind"], "Namespace");
  // The label the chart's webhook selects namespaces by (webhook.onlyLabelledNamespaces).
  EXPECT_EQ(objects[0]["metadata"]["labels"].value("zeroscale.io/injection", ""), "enabled");
  const std::string webhook =
      ReadFileOrEmpty(ZS_SOURCE_DIR "/charts/zeroscale/templates/webhook.yaml");
  EXPECT_THAT(webhook, HasSubstr("zeroscale.io/injection: enabled"));
  // Dry run stored nothing.
  EXPECT_TRUE(absl::IsNotFound(
      api().Get({"v1", "Namespace", "", objects[0]["metadata"]["name"]}).status()));
}

TEST_F(ExamplesTest, ModelServerAsksForAGpuTheSidecarAndALongStart) {
  std::vector<json> objects = DryRun("model-deployment.yaml");
  ASSERT_EQ(objects.size(), 2u);
  const json& deployment = objects[0];
  ASSERT_EQ(deployment["kind"], "Deployment");
  const json& annotations = deployment["spec"]["template"]["metadata"]["annotations"];
  EXPECT_EQ(annotations.value("zeroscale.io/inject", ""), "true");
  EXPECT_EQ(annotations.value("zeroscale.io/port", ""), "8000");
  EXPECT_EQ(annotations.value("zeroscale.io/metrics-preset", ""), "vllm");
  const json& container = deployment["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(container["resources"]["limits"].value("nvidia.com/gpu", ""), "1");
  EXPECT_TRUE(container.contains("startupProbe"));
  EXPECT_TRUE(container.contains("readinessProbe"));
  const json& service = objects[1];
  ASSERT_EQ(service["kind"], "Service");
  EXPECT_EQ(service["spec"]["ports"][0].value("name", ""), "zeroscale");
  EXPECT_EQ(service["spec"]["ports"][0].value("targetPort", 0),
            std::stoi(annotations.value("zeroscale.io/proxy-port", "8012")));
}

TEST_F(ExamplesTest, CustomAutoscalerPassesTheCrdAndNamesTheDeployment) {
  std::vector<json> objects = DryRun("customautoscaler.yaml");
  ASSERT_EQ(objects.size(), 1u);
  const json& spec = objects[0]["spec"];
  EXPECT_EQ(spec["scaleTargetRef"]["name"], "llama");
  EXPECT_EQ(spec["minReplicas"], 0);
  EXPECT_GT(spec.value("idleTimeoutSeconds", 0), 0);
  EXPECT_EQ(spec["keepAlive"]["policy"], "adaptive");
  EXPECT_EQ(spec["route"]["service"], "llama");
  EXPECT_EQ(spec["route"]["port"], "zeroscale");
  EXPECT_EQ(spec["allocation"]["group"], "llm");
  std::vector<std::string> metrics;
  for (const json& rule : spec["rules"]) {
    for (const json& t : rule["thresholds"]) metrics.push_back(t["metricType"]);
  }
  EXPECT_THAT(metrics, Contains("AVERAGE_RESPONSE_TIME"));
  EXPECT_THAT(metrics, Contains("IN_FLIGHT_REQUESTS"));
  EXPECT_THAT(metrics, Contains("CUSTOM"));
  // And for real: stored, and the target it names is the example Deployment.
  ZS_ASSERT_OK(Apply(ReadFileOrEmpty(kExamples + "customautoscaler.yaml")));
  ZS_ASSERT_OK_AND_ASSIGN(json stored, api().Get({"autoscaler-group.autoscaler/v1alpha1",
                                                  "CustomAutoscaler", ns(), "llama"}));
  std::vector<json> model = DryRun("model-deployment.yaml");
  ASSERT_FALSE(model.empty());
  EXPECT_EQ(stored["spec"]["scaleTargetRef"]["name"], model[0]["metadata"]["name"]);
}

// The GPU budget the example CustomAutoscaler names: accepted by the CRD, and read by the
// scaler's parser without an error.
TEST_F(ExamplesTest, AllocationPolicyPassesTheCrd) {
  std::vector<json> objects = DryRun("allocation-policy.yaml");
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0]["metadata"]["name"], "llm");
  absl::StatusOr<kube::AllocationPolicy> parsed = kube::AllocationPolicyFromJson(objects[0].dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->spec_error.ok()) << parsed->spec_error;
  EXPECT_EQ(parsed->limits.at("nvidia.com/gpu"), 8000);
}

// helm lint --strict and a dry-run install of the chart with the production values (the
// prometheus-operator kinds are not served by this control plane: helm template renders
// them, and every other object is dry-run applied).
TEST_F(ExamplesTest, ProductionValuesLintAndRender) {
  const std::string chart = ZS_SOURCE_DIR "/charts/zeroscale";
  const std::string values = kExamples + "values-production.yaml";
  CommandResult lint = cluster().Helm({"lint", "--strict", chart, "-f", values});
  ASSERT_TRUE(lint.ok()) << lint.output;
  CommandResult rendered = cluster().Helm({"template", "zs", chart, "-n", ns(), "-f", values});
  ASSERT_TRUE(rendered.ok()) << rendered.output;
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> docs, YamlDocumentsToJson(rendered.output));
  std::vector<std::string> kinds;
  for (const json& doc : docs) {
    const std::string kind = doc.value("kind", "");
    kinds.push_back(kind);
    if (kind == "ServiceMonitor" || kind == "PodMonitor" || kind == "PrometheusRule") continue;
    // Cluster-scoped objects are dry-run too: nothing is left behind.
    absl::StatusOr<json> applied = api().DryRunApply(doc, ns());
    EXPECT_TRUE(applied.ok()) << kind << " " << doc["metadata"].value("name", "") << ": "
                              << applied.status();
  }
  EXPECT_THAT(kinds, Contains("PodDisruptionBudget"));
  EXPECT_THAT(kinds, Contains("PrometheusRule"));
  EXPECT_THAT(kinds, Contains("ServiceMonitor"));
  EXPECT_THAT(kinds, Contains("PodMonitor"));
  int deployments_with_two = 0;
  for (const json& doc : docs) {
    if (doc.value("kind", "") == "Deployment" && doc["spec"].value("replicas", 0) == 2)
      ++deployments_with_two;
    if (doc.value("kind", "") == "StatefulSet") {
      EXPECT_TRUE(doc["spec"].contains("volumeClaimTemplates")) << "Redis is not persistent";
    }
  }
  EXPECT_EQ(deployments_with_two, 2) << "the scaler and the balancer run two replicas each";
}

}  // namespace
}  // namespace zeroscale::testing
