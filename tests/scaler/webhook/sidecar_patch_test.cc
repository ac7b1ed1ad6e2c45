// The injection rule and the JSON Patch, checked by applying the patch to the pod with
// nlohmann's RFC 6902 implementation.
#include "scaler/webhook/sidecar_patch.h"

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace zeroscale::webhook {
namespace {

using json = nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

InjectorOptions Options() {
  InjectorOptions o;
  o.sidecar_image = "registry.test/zeroscale-sidecar:1.2.3";
  o.scaler_address = "zeroscale-scaler.zs.svc:9090";
  return o;
}

// A pod as a Deployment's ReplicaSet creates it (generateName, no name yet).
json DeploymentPod(json annotations) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"generateName", "llama-7d9f8c6b5d-"},
            {"labels", {{"app", "llama"}, {"pod-template-hash", "7d9f8c6b5d"}}},
            {"annotations", std::move(annotations)},
            {"ownerReferences", json::array({{{"apiVersion", "apps/v1"},
                                              {"kind", "ReplicaSet"},
                                              {"name", "llama-7d9f8c6b5d"},
                                              {"uid", "1"},
                                              {"controller", true}}})}}},
          {"spec",
           {{"containers", json::array({{{"name", "model"},
                                         {"image", "llama:1"},
                                         {"ports", json::array({{{"containerPort", 8080}}})}}})}}}};
}

json Applied(const json& pod, const Injection& in) {
  EXPECT_TRUE(in.inject) << in.skip_reason;
  return pod.patch(json::parse(in.patch));
}

const json& Sidecar(const json& pod) { return pod["spec"]["containers"].back(); }

TEST(SidecarPatchTest, DeploymentPodGetsTheSidecarWithDefaults) {
  const json pod = DeploymentPod({{"zeroscale.io/inject", "true"}, {"zeroscale.io/port", "8080"}});
  const Injection in = PlanInjection(pod, "ml", Options());
  EXPECT_THAT(in.warnings, IsEmpty());
  EXPECT_EQ(in.workload, "ml/Deployment/llama");
  const json out = Applied(pod, in);
  ASSERT_EQ(out["spec"]["containers"].size(), 2u);
  EXPECT_EQ(out["spec"]["containers"][0]["name"], "model");  // the app is untouched
  const json& c = Sidecar(out);
  EXPECT_EQ(c["name"], "zeroscale-sidecar");
  EXPECT_EQ(c["image"], "registry.test/zeroscale-sidecar:1.2.3");
  EXPECT_EQ(
      c["args"],
      json::array({"--scaler=zeroscale-scaler.zs.svc:9090", "--app-port=8080", "--proxy-port=8012",
                   "--pod=$(POD_NAMESPACE)/$(POD_NAME)", "--sample-interval=1s",
                   "--advertise-address=$(POD_IP):8012", "--measure=processes",
                   "--token-file=/var/run/secrets/zeroscale.io/serviceaccount/token",
                   "--workload=ml/Deployment/llama"}));
  // Its identity toward the scaler: a kubelet-minted token for audience zeroscale.
  EXPECT_EQ(c["volumeMounts"],
            json::array({{{"name", "zeroscale-sidecar-token"},
                          {"mountPath", "/var/run/secrets/zeroscale.io/serviceaccount"},
                          {"readOnly", true}}}));
  ASSERT_EQ(out["spec"]["volumes"].size(), 1u);
  EXPECT_EQ(out["spec"]["volumes"][0],
            json({{"name", "zeroscale-sidecar-token"},
                  {"projected",
                   {{"sources", json::array({{{"serviceAccountToken",
                                               {{"audience", "zeroscale"},
                                                {"expirationSeconds", 3600},
                                                {"path", "token"}}}}})}}}}));
  EXPECT_EQ(c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
  EXPECT_EQ(c["env"][1]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
  EXPECT_EQ(c["env"][2]["name"], "POD_IP");
  EXPECT_EQ(c["env"][2]["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP");
  EXPECT_EQ(c["ports"][0],
            json({{"name", "zeroscale"}, {"containerPort", 8012}, {"protocol", "TCP"}}));
  const json& sc = c["securityContext"];
  EXPECT_EQ(sc["runAsNonRoot"], true);
  EXPECT_EQ(sc["readOnlyRootFilesystem"], true);
  EXPECT_EQ(sc["allowPrivilegeEscalation"], false);
  EXPECT_EQ(sc["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_TRUE(c["resources"]["requests"].contains("memory"));
  EXPECT_TRUE(c["resources"]["limits"].contains("memory"));
  // Kubernetes counts the pod ready only through the sidecar's /readyz: not before the
  // app is ready, and no longer once the sidecar drains (it is told to stop).
  EXPECT_EQ(c["readinessProbe"]["httpGet"],
            json({{"path", "/readyz"}, {"port", "zeroscale-admin"}}));
  EXPECT_EQ(c["livenessProbe"]["httpGet"],
            json({{"path", "/healthz"}, {"port", "zeroscale-admin"}}));
  EXPECT_EQ(out["metadata"]["annotations"]["zeroscale.io/injected"], "true");
  EXPECT_EQ(out["spec"]["shareProcessNamespace"], true);
}

// The env var named `name` of the sidecar container `c`.
json Env(const json& c, const std::string& name) {
  for (const json& e : c["env"]) {
    if (e["name"] == name) return e;
  }
  ADD_FAILURE() << "no env " << name;
  return json();
}

TEST(SidecarPatchTest, TheAppContainersLimitsComeThroughTheDownwardApi) {
  const json pod = DeploymentPod({{"zeroscale.io/port", "8080"}});
  const json c = Sidecar(Applied(pod, PlanInjection(pod, "ml", Options())));
  EXPECT_EQ(
      Env(c, "ZEROSCALE_CPU_LIMIT_MILLICORES"),
      json({{"name", "ZEROSCALE_CPU_LIMIT_MILLICORES"},
            {"valueFrom",
             {{"resourceFieldRef",
               {{"containerName", "model"}, {"resource", "limits.cpu"}, {"divisor", "1m"}}}}}}));
  EXPECT_EQ(
      Env(c, "ZEROSCALE_MEMORY_LIMIT_BYTES"),
      json({{"name", "ZEROSCALE_MEMORY_LIMIT_BYTES"},
            {"valueFrom",
             {{"resourceFieldRef",
               {{"containerName", "model"}, {"resource", "limits.memory"}, {"divisor", "1"}}}}}}));
}

// A pod whose first container is a helper and whose second serves on `port`.
json TwoContainerPod(json annotations) {
  json pod = DeploymentPod(std::move(annotations));
  pod["spec"]["containers"] = json::array(
      {{{"name", "log-shipper"}, {"image", "fluent:1"}},
       {{"name", "server"},
        {"image", "llama:1"},
        {"ports", json::array({{{"containerPort", 9000}}, {{"containerPort", 8080}}})}}});
  return pod;
}

std::string MeasuredContainer(const json& pod) {
  const Injection in = PlanInjection(pod, "ml", Options());
  if (!in.inject) return "not injected: " + in.skip_reason;
  return Env(Sidecar(Applied(pod, in)),
             "ZEROSCALE_CPU_LIMIT_MILLICORES")["valueFrom"]["resourceFieldRef"]["containerName"];
}

TEST(SidecarPatchTest, TheMeasuredContainerIsTheOneWithTheAppsPort) {
  // The port matches the second container's second port.
  EXPECT_EQ(MeasuredContainer(TwoContainerPod({{"zeroscale.io/port", "8080"}})), "server");
  // No container declares it: the first one.
  EXPECT_EQ(MeasuredContainer(TwoContainerPod({{"zeroscale.io/port", "7000"}})), "log-shipper");
  // The annotation wins over the port.
  EXPECT_EQ(MeasuredContainer(TwoContainerPod(
                {{"zeroscale.io/port", "8080"}, {"zeroscale.io/container", "log-shipper"}})),
            "log-shipper");
}

TEST(SidecarPatchTest, AContainerAnnotationNamingNoContainerInjectsNothing) {
  const json pod =
      TwoContainerPod({{"zeroscale.io/port", "8080"}, {"zeroscale.io/container", "modle"}});
  const Injection in = PlanInjection(pod, "ml", Options());
  EXPECT_FALSE(in.inject);
  EXPECT_EQ(in.skip_reason, "invalid_annotation");
  EXPECT_THAT(in.warnings, ElementsAre(HasSubstr("zeroscale.io/container: \"modle\"")));
}

TEST(SidecarPatchTest, AnAlreadySharedProcessNamespaceIsLeftAsItIs) {
  json pod = DeploymentPod({{"zeroscale.io/port", "8080"}});
  pod["spec"]["shareProcessNamespace"] = true;
  const Injection in = PlanInjection(pod, "ml", Options());
  for (const json& op : json::parse(in.patch)) {
    EXPECT_NE(op["path"], "/spec/shareProcessNamespace") << op;
  }
  EXPECT_EQ(Applied(pod, in)["spec"]["shareProcessNamespace"], true);
}

TEST(SidecarPatchTest, AnUnsharedProcessNamespaceIsNotInjectedAndSaysWhy) {
  json pod = DeploymentPod({{"zeroscale.io/port", "8080"}});
  pod["spec"]["shareProcessNamespace"] = false;
  Injection in = PlanInjection(pod, "ml", Options());
  EXPECT_FALSE(in.inject);
  EXPECT_EQ(in.patch, "");
  EXPECT_EQ(in.skip_reason, "process_namespace_not_shared");
  EXPECT_THAT(in.warnings, ElementsAre(HasSubstr("spec.shareProcessNamespace")));

  // hostPID cannot be combined with shareProcessNamespace: the pod would be refused.
  pod = DeploymentPod({{"zeroscale.io/port", "8080"}});
  pod["spec"]["hostPID"] = true;
  in = PlanInjection(pod, "ml", Options());
  EXPECT_FALSE(in.inject);
  EXPECT_EQ(in.skip_reason, "host_pid");
  EXPECT_THAT(in.warnings, ElementsAre(HasSubstr("spec.hostPID")));
}

TEST(SidecarPatchTest, AnnotationsOverrideDefaults) {
  const json pod = DeploymentPod({{"zeroscale.io/port", "9000"},
                                  {"zeroscale.io/proxy-port", "9100"},
                                  {"zeroscale.io/sample-interval", "250ms"},
                                  {"zeroscale.io/disk-paths", "/models,/cache"},
                                  {"zeroscale.io/readiness-path", "/v1/ready"},
                                  {"zeroscale.io/workload", "Deployment/llama-big"}});
  const json c = Sidecar(Applied(pod, PlanInjection(pod, "ml", Options())));
  EXPECT_EQ(
      c["args"],
      json::array({"--scaler=zeroscale-scaler.zs.svc:9090", "--app-port=9000", "--proxy-port=9100",
                   "--pod=$(POD_NAMESPACE)/$(POD_NAME)", "--sample-interval=250ms",
                   "--advertise-address=$(POD_IP):9100", "--measure=processes",
                   "--token-file=/var/run/secrets/zeroscale.io/serviceaccount/token",
                   "--workload=ml/Deployment/llama-big", "--disk-paths=/models,/cache",
                   "--readiness-path=/v1/ready"}));
  EXPECT_EQ(c["ports"][0]["containerPort"], 9100);
}

TEST(SidecarPatchTest, MetricsAnnotationsSetTheScrape) {
  json pod = DeploymentPod({{"zeroscale.io/port", "8000"},
                            {"zeroscale.io/metrics-path", "/v1/metrics"},
                            {"zeroscale.io/metrics-preset", "vllm"},
                            {"zeroscale.io/metrics-series", "my_queue,other:depth"}});
  json args = Sidecar(Applied(pod, PlanInjection(pod, "ml", Options())))["args"];
  EXPECT_THAT(args, Contains("--app-metrics-path=/v1/metrics"));
  EXPECT_THAT(args, Contains("--app-metrics-preset=vllm"));
  EXPECT_THAT(args, Contains("--app-metrics-series=my_queue,other:depth"));
  // A preset alone scrapes /metrics.
  pod = DeploymentPod({{"zeroscale.io/port", "8000"}, {"zeroscale.io/metrics-preset", "tgi"}});
  args = Sidecar(Applied(pod, PlanInjection(pod, "ml", Options())))["args"];
  EXPECT_THAT(args, Contains("--app-metrics-path=/metrics"));
  EXPECT_THAT(args, Contains("--app-metrics-preset=tgi"));
  // A path alone: the sidecar forwards the endpoint's gauges.
  pod = DeploymentPod({{"zeroscale.io/port", "8000"}, {"zeroscale.io/metrics-path", "/metrics"}});
  args = Sidecar(Applied(pod, PlanInjection(pod, "ml", Options())))["args"];
  EXPECT_THAT(args, Contains("--app-metrics-path=/metrics"));
  for (const json& a : args) {
    EXPECT_FALSE(absl::StartsWith(a.get<std::string>(), "--app-metrics-preset"));
  }
  // Nothing asked, nothing scraped.
  pod = DeploymentPod({{"zeroscale.io/port", "8000"}});
  args = Sidecar(Applied(pod, PlanInjection(pod, "ml", Options())))["args"];
  for (const json& a : args) EXPECT_FALSE(absl::StartsWith(a.get<std::string>(), "--app-metrics"));
}

// GPU metrics are opt-in: the sidecar asks the NVIDIA runtime for NVML (utility only) on
// every GPU of the node, and reports only the pod's own processes.
TEST(SidecarPatchTest, GpuMetricsAnnotationAsksTheRuntimeForNvml) {
  auto env_of = [](const json& pod) {
    std::map<std::string, std::string> env;
    const json sidecar = Sidecar(Applied(pod, PlanInjection(pod, "ml", Options())));
    for (const json& e : sidecar["env"]) {
      if (e.contains("value")) env[e["name"]] = e["value"];
    }
    return env;
  };
  json pod = DeploymentPod({{"zeroscale.io/port", "8000"}, {"zeroscale.io/gpu-metrics", "true"}});
  std::map<std::string, std::string> env = env_of(pod);
  EXPECT_EQ(env["NVIDIA_VISIBLE_DEVICES"], "all");
  EXPECT_EQ(env["NVIDIA_DRIVER_CAPABILITIES"], "utility");
  for (const json& annotations :
       {json{{"zeroscale.io/port", "8000"}},
        json{{"zeroscale.io/port", "8000"}, {"zeroscale.io/gpu-metrics", "false"}}}) {
    EXPECT_EQ(env_of(DeploymentPod(annotations)).count("NVIDIA_VISIBLE_DEVICES"), 0u)
        << annotations.dump();
  }
  pod = DeploymentPod({{"zeroscale.io/port", "8000"}, {"zeroscale.io/gpu-metrics", "yes"}});
  const Injection in = PlanInjection(pod, "ml", Options());
  EXPECT_FALSE(in.inject);
  EXPECT_EQ(in.skip_reason, "invalid_annotation");
  EXPECT_THAT(
      in.warnings,
      ElementsAre(HasSubstr("annotation zeroscale.io/gpu-metrics: \"yes\" is not true or false")));
}

TEST(SidecarPatchTest, BadMetricsAnnotationsInjectNothingAndNameTheAnnotation) {
  struct Case {
    std::map<std::string, std::string> annotations;
    std::string warning;
  } cases[] = {
      {{{"zeroscale.io/metrics-preset", "vllm2"}},
       "annotation zeroscale.io/metrics-preset: \"vllm2\" is not one of vllm, tgi, triton"},
      {{{"zeroscale.io/metrics-path", "metrics"}, {"zeroscale.io/metrics-preset", "vllm"}},
       "annotation zeroscale.io/metrics-path: \"metrics\" is not an HTTP path"},
      {{{"zeroscale.io/metrics-series", "ok,not-a-name"}},
       "annotation zeroscale.io/metrics-series: \"ok,not-a-name\" is not a comma-separated"},
  };
  for (Case& c : cases) {
    c.annotations["zeroscale.io/port"] = "8000";
    json annotations = json::object();
    for (const auto& [k, v] : c.annotations) annotations[k] = v;
    const Injection in = PlanInjection(DeploymentPod(annotations), "ml", Options());
    EXPECT_FALSE(in.inject) << c.warning;
    EXPECT_EQ(in.patch, "");
    EXPECT_EQ(in.skip_reason, "invalid_annotation");
    EXPECT_THAT(in.warnings, ElementsAre(HasSubstr(c.warning)));
  }
}

TEST(SidecarPatchTest, AFullWorkloadAnnotationIsTakenAsItIs) {
  const json pod = DeploymentPod(
      {{"zeroscale.io/port", "8080"}, {"zeroscale.io/workload", "other/StatefulSet/db"}});
  EXPECT_EQ(PlanInjection(pod, "ml", Options()).workload, "other/StatefulSet/db");
}

TEST(SidecarPatchTest, WorkloadFromOwnerReferences) {
  json pod = DeploymentPod({{"zeroscale.io/port", "8080"}});
  pod["metadata"]["ownerReferences"][0]["kind"] = "StatefulSet";
  pod["metadata"]["ownerReferences"][0]["name"] = "whisper";
  EXPECT_EQ(PlanInjection(pod, "ml", Options()).workload, "ml/StatefulSet/whisper");

  // A bare ReplicaSet (no Deployment's pod-template-hash suffix) is its own workload.
  pod = DeploymentPod({{"zeroscale.io/port", "8080"}});
  pod["metadata"]["labels"].erase("pod-template-hash");
  EXPECT_EQ(PlanInjection(pod, "ml", Options()).workload, "ml/ReplicaSet/llama-7d9f8c6b5d");

  // Only the controller counts.
  pod = DeploymentPod({{"zeroscale.io/port", "8080"}});
  pod["metadata"]["ownerReferences"][0]["controller"] = false;
  const Injection in = PlanInjection(pod, "ml", Options());
  EXPECT_TRUE(in.inject);
  EXPECT_EQ(in.workload, "");
  EXPECT_THAT(in.warnings, ElementsAre(HasSubstr("zeroscale.io/workload")));
  for (const json& arg : Sidecar(Applied(pod, in))["args"]) {
    EXPECT_THAT(arg.get<std::string>(), ::testing::Not(HasSubstr("--workload")));
  }
}

TEST(SidecarPatchTest, MissingOrInvalidPortInjectsNothingAndSaysWhy) {
  json pod = DeploymentPod({{"zeroscale.io/inject", "true"}});
  Injection in = PlanInjection(pod, "ml", Options());
  EXPECT_FALSE(in.inject);
  EXPECT_EQ(in.patch, "");
  EXPECT_EQ(in.skip_reason, "missing_port");
  EXPECT_THAT(in.warnings, ElementsAre(HasSubstr("zeroscale.io/port")));

  for (const char* bad : {"http", "0", "70000", "-1", ""}) {
    pod = DeploymentPod({{"zeroscale.io/inject", "true"}, {"zeroscale.io/port", bad}});
    in = PlanInjection(pod, "ml", Options());
    EXPECT_FALSE(in.inject) << bad;
    EXPECT_EQ(in.skip_reason, "invalid_annotation");
    EXPECT_THAT(in.warnings, ElementsAre(AllOf(HasSubstr("zeroscale.io/port"),
                                               HasSubstr(absl::StrCat("\"", bad, "\"")))));
  }
  pod = DeploymentPod({{"zeroscale.io/port", "8080"}, {"zeroscale.io/sample-interval", "10ms"}});
  in = PlanInjection(pod, "ml", Options());
  EXPECT_FALSE(in.inject);
  EXPECT_THAT(in.warnings, ElementsAre(HasSubstr("zeroscale.io/sample-interval: \"10ms\"")));
  pod = DeploymentPod({{"zeroscale.io/port", "8080"}, {"zeroscale.io/proxy-port", "8080"}});
  in = PlanInjection(pod, "ml", Options());
  EXPECT_EQ(in.skip_reason, "port_conflict");
  pod = DeploymentPod({{"zeroscale.io/port", "9000"}, {"zeroscale.io/proxy-port", "8080"}});
  in = PlanInjection(pod, "ml", Options());  // the model container declares 8080
  EXPECT_EQ(in.skip_reason, "port_conflict");
}

TEST(SidecarPatchTest, OptInAndOptOut) {
  // Asked for nothing: the webhook was called (namespace selector) but the pod names no
  // port: left alone without a warning.
  Injection in = PlanInjection(DeploymentPod(json::object()), "ml", Options());
  EXPECT_EQ(in.skip_reason, "not_requested");
  EXPECT_THAT(in.warnings, IsEmpty());
  in = PlanInjection(
      DeploymentPod({{"zeroscale.io/inject", "false"}, {"zeroscale.io/port", "8080"}}), "ml",
      Options());
  EXPECT_EQ(in.skip_reason, "opted_out");
  EXPECT_THAT(in.warnings, IsEmpty());
  in = PlanInjection(DeploymentPod({{"zeroscale.io/inject", "yes"}, {"zeroscale.io/port", "8080"}}),
                     "ml", Options());
  EXPECT_EQ(in.skip_reason, "invalid_annotation");
  EXPECT_THAT(in.warnings, ElementsAre(HasSubstr("zeroscale.io/inject: \"yes\"")));
}

TEST(SidecarPatchTest, AnInjectedPodIsLeftAlone) {
  const json pod = DeploymentPod({{"zeroscale.io/inject", "true"}, {"zeroscale.io/port", "8080"}});
  const json once = Applied(pod, PlanInjection(pod, "ml", Options()));
  const Injection again = PlanInjection(once, "ml", Options());
  EXPECT_FALSE(again.inject);
  EXPECT_EQ(again.skip_reason, "already_injected");
  EXPECT_THAT(again.warnings, IsEmpty());
}

// The pod's own volumes stay; the token's is added after them.
TEST(SidecarPatchTest, TheTokenVolumeJoinsThePodsVolumes) {
  json pod = DeploymentPod({{"zeroscale.io/port", "8080"}});
  pod["spec"]["volumes"] = json::array({{{"name", "models"}, {"emptyDir", json::object()}}});
  const json out = Applied(pod, PlanInjection(pod, "ml", Options()));
  ASSERT_EQ(out["spec"]["volumes"].size(), 2u);
  EXPECT_EQ(out["spec"]["volumes"][0]["name"], "models");
  EXPECT_EQ(out["spec"]["volumes"][1]["name"], "zeroscale-sidecar-token");
  EXPECT_EQ(out["spec"]["volumes"][1]["projected"]["sources"][0]["serviceAccountToken"]["audience"],
            "zeroscale");
}

TEST(SidecarPatchTest, CreatesTheContainersArrayWhenAbsent) {
  const json pod = {
      {"metadata",
       {{"name", "p"}, {"namespace", "ml"}, {"annotations", {{"zeroscale.io/port", "8080"}}}}},
      {"spec", json::object()}};
  const json out = Applied(pod, PlanInjection(pod, "", Options()));
  ASSERT_EQ(out["spec"]["containers"].size(), 1u);
  EXPECT_EQ(out["spec"]["containers"][0]["name"], "zeroscale-sidecar");
  EXPECT_EQ(out["spec"]["shareProcessNamespace"], true);
  // No app container to take limits from.
  EXPECT_EQ(out["spec"]["containers"][0]["env"].size(), 3u);

  const json bare = {{"metadata", {{"annotations", {{"zeroscale.io/port", "8080"}}}}}};
  EXPECT_EQ(Applied(bare, PlanInjection(bare, "ml", Options()))["spec"],
            json({{"containers", json::array({Sidecar(out)})},
                  {"volumes", out["spec"]["volumes"]},
                  {"shareProcessNamespace", true}}));
}

TEST(SidecarPatchTest, TheInjectedAnnotationKeyIsEscapedInThePointer) {
  const json pod = DeploymentPod({{"zeroscale.io/port", "8080"}});
  const Injection in = PlanInjection(pod, "ml", Options());
  EXPECT_THAT(json::parse(in.patch),
              Contains(json({{"op", "add"},
                             {"path", "/metadata/annotations/zeroscale.io~1injected"},
                             {"value", "true"}})));
  EXPECT_EQ(Applied(pod, in)["metadata"]["annotations"],
            json({{"zeroscale.io/port", "8080"}, {"zeroscale.io/injected", "true"}}));
}

TEST(SidecarPatchTest, JsonPointerEscaping) {
  EXPECT_EQ(JsonPointerToken("zeroscale.io/injected"), "zeroscale.io~1injected");
  EXPECT_EQ(JsonPointerToken("a~b/c"), "a~0b~1c");
  EXPECT_EQ(JsonPointerToken("plain"), "plain");
  // The escaped token addresses the key nlohmann resolves.
  const json doc = {{"a~b/c", 1}};
  EXPECT_EQ(doc.at(json::json_pointer("/" + JsonPointerToken("a~b/c"))), 1);
}

}  // namespace
}  // namespace zeroscale::webhook
