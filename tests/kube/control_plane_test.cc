// The harness's control plane: the real API server with RBAC, controllers,
// TokenRequest/TokenReview, CEL validation of the chart's CRD, server-side apply,
// a ServiceAccount kubeconfig limited by RBAC, helm, and the audit log.

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/kube_test_env.h"

namespace zeroscale::testing {
namespace {

using ::testing::HasSubstr;

class ControlPlaneTest : public KubeTest {};

TEST_F(ControlPlaneTest, ServesTheApiWithControllersAndANode) {
  ZS_ASSERT_OK_AND_ASSIGN(json version, api().Call("GET", "/version"));
  EXPECT_EQ(version.value("gitVersion", ""), "v1.24.0+0");
  ZS_ASSERT_OK_AND_ASSIGN(json node, api().Get({"v1", "Node", "", kubelet().node_name()}));
  EXPECT_TRUE(HasCondition(node, "Ready"));
  EXPECT_EQ(node["status"]["allocatable"]["nvidia.com/gpu"], "1");
  // The controller manager runs: the test's namespace got its ServiceAccount.
  ZS_EXPECT_OK(api().Get({"v1", "ServiceAccount", ns(), "default"}).status());
  // And the admin is cluster-admin; an unknown identity is nobody.
  ZS_ASSERT_OK_AND_ASSIGN(bool admin_can,
                          api().CanI("admin", {"system:masters"}, "delete", "", "nodes"));
  EXPECT_TRUE(admin_can);
  ZS_ASSERT_OK_AND_ASSIGN(bool stranger_can, api().CanI("stranger", {}, "get", "", "pods", ns()));
  EXPECT_FALSE(stranger_can);
}

TEST_F(ControlPlaneTest, AppliesCreatesPatchesAndDeletesObjects) {
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> applied, Apply(R"(
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {level: info}
---
apiVersion: v1
kind: Secret
metadata: {name: credentials}
stringData: {token: s3cret}
)"));
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_EQ(applied[0]["metadata"]["namespace"], ns());
  // Applying again changes only what changed.
  ZS_ASSERT_OK(
      Apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {level: debug}\n"));
  ZS_ASSERT_OK_AND_ASSIGN(json cm, api().Get({"v1", "ConfigMap", ns(), "settings"}));
  EXPECT_EQ(cm["data"]["level"], "debug");
  ZS_ASSERT_OK_AND_ASSIGN(json patched, api().Patch({"v1", "ConfigMap", ns(), "settings"},
                                                    {{"data", {{"extra", "1"}}}}));
  EXPECT_EQ(patched["data"]["extra"], "1");
  // Create refuses what exists, with the API's 409.
  absl::Status again =
      api()
          .CreateYaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n", ns())
          .status();
  EXPECT_TRUE(absl::IsAborted(again)) << again;
  ZS_ASSERT_OK(api().Delete({"v1", "ConfigMap", ns(), "settings"}));
  ZS_ASSERT_OK(api().WaitForDeletion({"v1", "ConfigMap", ns(), "settings"}, absl::Seconds(10)));
  ZS_EXPECT_OK(api().Delete({"v1", "ConfigMap", ns(), "settings"}));  // already gone: fine
  EXPECT_TRUE(absl::IsNotFound(api().Get({"v1", "Nope", ns(), "x"}).status()));
}

// The chart's CRD is served with its CEL rules (the feature gate is on).
TEST_F(ControlPlaneTest, ServesTheChartsCrdWithItsValidationRules) {
  ZS_ASSERT_OK(api().ApplyManifest(
      ReadFileOrEmpty(ZS_SOURCE_DIR "/charts/zeroscale/crds/customautoscalers.yaml")));
  const char* kAutoscaler = R"(
apiVersion: autoscaler-group.autoscaler/v1alpha1
kind: CustomAutoscaler
metadata: {name: llama}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: llama}
  minReplicas: %MIN%
  maxReplicas: 2
)";
  std::string good = kAutoscaler;
  good.replace(good.find("%MIN%"), 5, "0");
  ZS_ASSERT_OK(Apply(good));
  std::string bad = kAutoscaler;
  bad.replace(bad.find("%MIN%"), 5, "3");
  absl::Status refused = Apply(bad).status();
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
  EXPECT_THAT(std::string(refused.message()), HasSubstr("minReplicas must not exceed maxReplicas"));
}

TEST_F(ControlPlaneTest, MintsAndReviewsServiceAccountTokensByAudience) {
  ZS_ASSERT_OK(Apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: scaler}\n"));
  ZS_ASSERT_OK_AND_ASSIGN(std::string token,
                          api().CreateToken(ns(), "scaler", {"zeroscale"}, absl::Minutes(10)));
  ZS_ASSERT_OK_AND_ASSIGN(json review, api().ReviewToken(token, {"zeroscale"}));
  EXPECT_TRUE(review.value("authenticated", false)) << review.dump();
  EXPECT_EQ(review["user"]["username"], absl::StrCat("system:serviceaccount:", ns(), ":scaler"));
  ZS_ASSERT_OK_AND_ASSIGN(json wrong, api().ReviewToken(token, {"someone-else"}));
  EXPECT_FALSE(wrong.value("authenticated", false)) << wrong.dump();
  ZS_ASSERT_OK_AND_ASSIGN(json garbage, api().ReviewToken("not-a-token"));
  EXPECT_FALSE(garbage.value("authenticated", false));
}

// A program run with a ServiceAccount's kubeconfig gets what RBAC grants, and a 403 for
// the rest; the audit log shows who was refused what.
TEST_F(ControlPlaneTest, ServiceAccountKubeconfigIsLimitedByRbac) {
  ZS_ASSERT_OK(Apply(R"(
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader}
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader-reads-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
  - {kind: ServiceAccount, name: reader}
)"));
  ZS_ASSERT_OK_AND_ASSIGN(std::string kubeconfig,
                          cluster().WriteServiceAccountKubeconfig(ns(), "reader"));
  ZS_ASSERT_OK_AND_ASSIGN(std::unique_ptr<KubeApi> reader, KubeApi::FromKubeconfig(kubeconfig));
  EXPECT_EQ(reader->config().namespace_, ns());
  ZS_EXPECT_OK(reader->List({"v1", "Pod", ns(), ""}).status());
  absl::Status secrets = reader->List({"v1", "Secret", ns(), ""}).status();
  EXPECT_TRUE(absl::IsPermissionDenied(secrets)) << secrets;
  absl::Status other_ns = reader->List({"v1", "Pod", "default", ""}).status();
  EXPECT_TRUE(absl::IsPermissionDenied(other_ns)) << other_ns;

  const std::string user = absl::StrCat("system:serviceaccount:", ns(), ":reader");
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> refused,
                          cluster().WaitForAuditEvents(
                              [&](const json& e) {
                                return e["user"].value("username", "") == user &&
                                       e["responseStatus"].value("code", 0) == 403;
                              },
                              2));
  EXPECT_EQ(refused.size(), 2u);
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> allowed,
                          cluster().WaitForAuditEvents(
                              [&](const json& e) {
                                return e["user"].value("username", "") == user &&
                                       e["responseStatus"].value("code", 0) == 200 &&
                                       e.contains("objectRef");
                              },
                              1));
  ASSERT_EQ(allowed.size(), 1u);
  EXPECT_EQ(allowed[0]["objectRef"]["resource"], "pods");
  EXPECT_EQ(allowed[0]["verb"], "list");
}

TEST_F(ControlPlaneTest, RunsHelmAgainstTheCluster) {
  CommandResult version = cluster().Helm({"version", "--short"});
  ASSERT_TRUE(version.ok()) << version.output;
  EXPECT_THAT(version.output, HasSubstr("v3.17.3"));
  CommandResult rendered =
      cluster().Helm({"template", "zs", ZS_SOURCE_DIR "/charts/zeroscale", "--namespace", ns()});
  ASSERT_TRUE(rendered.ok()) << rendered.output;
  EXPECT_THAT(rendered.output, HasSubstr("kind: MutatingWebhookConfiguration"));
  EXPECT_THAT(rendered.output, HasSubstr("name: zs-zeroscale-scaler"));
  // helm reaches the API server with the admin kubeconfig.
  CommandResult list = cluster().Helm({"list", "--all-namespaces"});
  ASSERT_TRUE(list.ok()) << list.output;
  EXPECT_THAT(list.output, HasSubstr("NAME"));
}

}  // namespace
}  // namespace zeroscale::testing
