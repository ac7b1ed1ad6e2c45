// The kubelet stand-in on the real control plane: Pods of real Deployments and
// StatefulSets bound, started in sandboxes of their own, reported Ready by their probes,
// listed by the real EndpointSlice controller, reachable from the test; graceful
// termination; Pending on resources; the Downward API, $(VAR) expansion and projected
// service-account tokens as the webhook-injected sidecar needs them.
#include <signal.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/kube_test_env.h"

namespace zeroscale::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A Deployment of the test app (and a Service selecting it), `replicas` pods, ready when
// GET /ready answers.
std::string WebApp(const std::string& name, int replicas, const std::string& app_args = "[]",
                   int grace = 30, const std::string& lifecycle = "{}") {
  return absl::StrReplaceAll(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      terminationGracePeriodSeconds: GRACE
      containers:
        - name: app
          image: zeroscale.test/app:1
          args: ARGS
          lifecycle: LIFECYCLE
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /ready, port: http}
            periodSeconds: 1
            failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: NAME}
spec:
  selector: {app: NAME}
  ports: [{name: http, port: 80, targetPort: http}]
)",
                             {{"NAME", name},
                              {"REPLICAS", absl::StrCat(replicas)},
                              {"ARGS", app_args},
                              {"GRACE", absl::StrCat(grace)},
                              {"LIFECYCLE", lifecycle}});
}

json Body(const absl::StatusOr<kube::HttpResponse>& r) {
  if (!r.ok()) return nullptr;
  return json::parse(r->body, nullptr, false);
}

class KubeletTest : public KubeTest {};

TEST_F(KubeletTest, DeploymentPodRunsReadyAndIsListedByTheEndpointSliceController) {
  ZS_ASSERT_OK(Apply(WebApp("web", 1)));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=web", 1));
  const json& pod = pods[0];
  EXPECT_EQ(pod["spec"]["nodeName"], kubelet().node_name());
  EXPECT_EQ(pod["status"]["phase"], "Running");
  EXPECT_EQ(pod["status"]["hostIP"], "198.18.0.1");
  const std::string ip = PodIP(pod);
  EXPECT_TRUE(absl::StartsWith(ip, "198.18.1.")) << ip;
  EXPECT_EQ(pod["status"]["podIPs"][0]["ip"], ip);
  for (const char* c : {"PodScheduled", "Initialized", "ContainersReady", "Ready"}) {
    EXPECT_TRUE(HasCondition(pod, c)) << c;
  }
  const json& status = pod["status"]["containerStatuses"][0];
  EXPECT_EQ(status["name"], "app");
  EXPECT_TRUE(status["ready"].get<bool>());
  EXPECT_TRUE(status["state"].contains("running"));
  EXPECT_EQ(status["restartCount"], 0);

  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> endpoints,
                          WaitForEndpoints("web", [&](const std::vector<json>& e) {
                            return e.size() == 1 && e[0]["ready"].get<bool>();
                          }));
  EXPECT_EQ(endpoints[0]["address"], ip);
  EXPECT_EQ(endpoints[0]["pod"], NameOf(pod));
  EXPECT_EQ(endpoints[0]["nodeName"], kubelet().node_name());

  absl::StatusOr<kube::HttpResponse> reply = HttpGet(ip, 8080, "/");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 200);
  // The pod's UTS namespace: its hostname is its name.
  EXPECT_EQ(Body(reply)["hostname"], NameOf(pod));
}

TEST_F(KubeletTest, PodsOfOneDeploymentListenOnTheSamePortAtTheirOwnAddresses) {
  ZS_ASSERT_OK(Apply(WebApp("twins", 2)));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=twins", 2));
  ASSERT_NE(PodIP(pods[0]), PodIP(pods[1]));
  for (const json& pod : pods) {
    absl::StatusOr<kube::HttpResponse> reply = HttpGet(PodIP(pod), 8080, "/");
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(Body(reply)["hostname"], NameOf(pod));
  }
  ZS_EXPECT_OK(WaitForEndpoints("twins", [](const std::vector<json>& e) {
                 return e.size() == 2 && e[0]["ready"].get<bool>() && e[1]["ready"].get<bool>();
               }).status());
}

TEST_F(KubeletTest, StatefulSetPodsRunToo) {
  ZS_ASSERT_OK(Apply(R"(
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - {name: app, image: zeroscale.test/app, readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}}
)"));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=db", 1));
  EXPECT_EQ(NameOf(pods[0]), "db-0");
}

// Scale to zero: the endpoint turns terminating, the process gets SIGTERM, the kubelet
// waits the grace period and SIGKILLs a process that ignores it, then deletes the Pod;
// the slice ends up empty.
TEST_F(KubeletTest, ScaleToZeroSendsSigtermWaitsTheGracePeriodThenKills) {
  ZS_ASSERT_OK(Apply(WebApp("stubborn", 1, "[--on-sigterm=ignore]", /*grace=*/3)));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=stubborn", 1));
  const std::string name = NameOf(pods[0]);
  ZS_ASSERT_OK(WaitForEndpoints("stubborn", [](const std::vector<json>& e) {
                 return e.size() == 1 && e[0]["ready"].get<bool>();
               }).status());

  ZS_ASSERT_OK(api().Scale(DeploymentRef(ns(), "stubborn"), 0));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> terminating,
                          WaitForEndpoints(
                              "stubborn",
                              [](const std::vector<json>& e) {
                                return e.size() == 1 && e[0]["terminating"].get<bool>();
                              },
                              absl::Seconds(30), "the endpoint marked terminating"));
  EXPECT_FALSE(terminating[0]["ready"].get<bool>());
  ZS_ASSERT_OK(api().WaitForDeletion(PodRef(ns(), name), absl::Seconds(60)));
  ZS_EXPECT_OK(
      WaitForEndpoints("stubborn", [](const std::vector<json>& e) { return e.empty(); }).status());

  const std::string log = kubelet().ContainerLog(ns(), name, "app");
  EXPECT_THAT(log, HasSubstr("SIGTERM received"));
  EXPECT_THAT(log, Not(HasSubstr("stopped")));  // it never got to exit by itself
  const std::string kubelet_log = kubelet().Logs(ns());
  EXPECT_THAT(kubelet_log, HasSubstr("terminating: grace period 3s"));
  EXPECT_THAT(kubelet_log, HasSubstr("SIGKILL to app after the grace period"));
  EXPECT_THAT(kubelet_log, HasSubstr("container app exited with 137"));
}

// The preStop hook runs first, inside the container; then SIGTERM, and a process that
// finishes its work within the grace period is left to finish it.
TEST_F(KubeletTest, ScaleToZeroRunsPreStopAndLetsAProcessFinishWithinTheGracePeriod) {
  ZS_ASSERT_OK(Apply(WebApp("polite", 1, "[--on-sigterm=exit-after=1s]", /*grace=*/60,
                            "{preStop: {exec: {command: [curl, -fsS, -X, POST, "
                            "'http://127.0.0.1:8080/ready?ready=false']}}}")));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=polite", 1));
  const std::string name = NameOf(pods[0]);
  ZS_ASSERT_OK(api().Scale(DeploymentRef(ns(), "polite"), 0));
  ZS_ASSERT_OK(api().WaitForDeletion(PodRef(ns(), name), absl::Seconds(60)));
  const std::string log = kubelet().ContainerLog(ns(), name, "app");
  EXPECT_THAT(log, HasSubstr("SIGTERM received"));
  EXPECT_THAT(log, HasSubstr("exiting after the delay"));
  EXPECT_THAT(log, HasSubstr("stopped"));
  // The hook reached the app (over the pod's localhost) before SIGTERM did.
  EXPECT_LT(log.find("readiness set to false"), log.find("SIGTERM received")) << log;
  const std::string kubelet_log = kubelet().Logs(ns());
  EXPECT_LT(kubelet_log.find("preStop of app done"), kubelet_log.find("SIGTERM to app"))
      << kubelet_log;
  EXPECT_THAT(kubelet_log, HasSubstr("container app exited with 0"));
  EXPECT_THAT(kubelet_log, Not(HasSubstr("SIGKILL")));
}

// A replica that does not fit stays Pending, Unschedulable, as with the real scheduler;
// a pod waiting for room is bound once room is made.
TEST_F(KubeletTest, PodThatDoesNotFitStaysPendingUntilRoomIsMade) {
  ZS_ASSERT_OK(Apply(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: gpu}
spec:
  replicas: 2
  selector: {matchLabels: {app: gpu}}
  template:
    metadata: {labels: {app: gpu}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: model
          image: zeroscale.test/app
          resources: {limits: {nvidia.com/gpu: 1}}
)"));
  auto unschedulable = [](const json& p) {
    const json c = ConditionOf(p, "PodScheduled");
    return !c.is_null() && c.value("status", "") == "False" &&
           c.value("reason", "") == "Unschedulable";
  };
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods,
                          api().WaitForList(
                              {"v1", "Pod", ns(), ""},
                              [&](const std::vector<json>& pods) {
                                int ready = 0, pending = 0;
                                for (const json& p : pods) {
                                  ready += HasCondition(p, "Ready");
                                  pending += unschedulable(p);
                                }
                                return pods.size() == 2 && ready == 1 && pending == 1;
                              },
                              absl::Seconds(60), "one pod Ready, one Unschedulable", "app=gpu"));
  const json& pending = unschedulable(pods[0]) ? pods[0] : pods[1];
  EXPECT_EQ(pending["status"]["phase"], "Pending");
  EXPECT_FALSE(pending["spec"].contains("nodeName"));
  EXPECT_EQ(ConditionOf(pending, "PodScheduled")["message"],
            "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.");

  // A pod waiting for the GPU the Deployment holds is bound once it is given back.
  ZS_ASSERT_OK(Apply(R"(
apiVersion: v1
kind: Pod
metadata: {name: waiting}
spec:
  containers:
    - {name: model, image: zeroscale.test/app, resources: {limits: {nvidia.com/gpu: 1}}}
)"));
  ZS_ASSERT_OK(api()
                   .WaitFor(PodRef(ns(), "waiting"), unschedulable, absl::Seconds(30),
                            "Unschedulable while the GPU is taken")
                   .status());
  ZS_ASSERT_OK(api().Scale(DeploymentRef(ns(), "gpu"), 0));
  ZS_EXPECT_OK(api()
                   .WaitFor(
                       PodRef(ns(), "waiting"),
                       [](const json& p) { return HasCondition(p, "Ready"); }, absl::Seconds(60),
                       "bound and Ready once the GPU is free")
                   .status());
}

// What the webhook injects into the sidecar: env from the Downward API (fieldRef,
// resourceFieldRef with divisor, no limit -> node allocatable) and $(VAR) in args.
TEST_F(KubeletTest, ResolvesDownwardApiEnvAndExpandsVariablesInArgs) {
  ZS_ASSERT_OK(Apply(R"yaml(
apiVersion: v1
kind: ServiceAccount
metadata: {name: model}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {level: debug}
---
apiVersion: v1
kind: Pod
metadata: {name: downward, labels: {app: downward}}
spec:
  serviceAccountName: model
  containers:
    - name: model
      image: zeroscale.test/app
      command: [sleep, "3600"]
      resources: {limits: {cpu: 500m, memory: 256Mi}}
    - name: probe
      image: zeroscale.test/app
      args: ["--listen=$(LISTEN)", "--tag=$(POD_NAMESPACE)/$(POD_NAME)@$(POD_IP):$$(NOT_EXPANDED)"]
      env:
        - {name: PORT, value: "9090"}
        - {name: LISTEN, value: "0.0.0.0:$(PORT)"}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: POD_UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        - {name: SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
        - {name: APP_CPU, valueFrom: {resourceFieldRef: {containerName: model, resource: limits.cpu, divisor: 1m}}}
        - {name: APP_MEMORY, valueFrom: {resourceFieldRef: {containerName: model, resource: limits.memory, divisor: "1"}}}
        - {name: OWN_CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}}
        - {name: LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: level}}}
      readinessProbe: {httpGet: {path: /ready, port: 9090}, periodSeconds: 1}
)yaml"));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=downward", 1));
  const std::string ip = PodIP(pods[0]);
  auto env = [&](const std::string& name) {
    absl::StatusOr<kube::HttpResponse> r = HttpGet(ip, 9090, "/env?name=" + name);
    return r.ok() ? r->body : r.status().ToString();
  };
  EXPECT_EQ(env("POD_NAME"), "downward");
  EXPECT_EQ(env("POD_NAMESPACE"), ns());
  EXPECT_EQ(env("POD_UID"), UidOf(pods[0]));
  EXPECT_EQ(env("POD_IP"), ip);
  EXPECT_EQ(env("NODE"), kubelet().node_name());
  EXPECT_EQ(env("SA"), "model");
  EXPECT_EQ(env("APP_CPU"), "500");
  EXPECT_EQ(env("APP_MEMORY"), "268435456");
  EXPECT_EQ(env("OWN_CPU"), "8000");  // no limit: the node's allocatable
  EXPECT_EQ(env("LEVEL"), "debug");
  EXPECT_EQ(env("KUBERNETES_SERVICE_HOST"), "198.18.0.1");
  absl::StatusOr<kube::HttpResponse> root = HttpGet(ip, 9090, "/");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_THAT(Body(root)["args"],
              ElementsAre("--listen=0.0.0.0:9090",
                          absl::StrCat("--tag=", ns(), "/downward@", ip, ":$(NOT_EXPANDED)")));
}

// The path the sidecar's identity will take: a projected token for audience
// "zeroscale", bound to the Pod, readable in the container and accepted by TokenReview
// for that audience only; and the default service-account volume as the API server
// adds it.
TEST_F(KubeletTest, ProjectsServiceAccountTokensForAnAudience) {
  ZS_ASSERT_OK(Apply(R"(
apiVersion: v1
kind: ServiceAccount
metadata: {name: model}
---
apiVersion: v1
kind: Pod
metadata: {name: identity, labels: {app: identity}}
spec:
  serviceAccountName: model
  containers:
    - name: app
      image: zeroscale.test/app
      volumeMounts: [{name: zeroscale-token, mountPath: /var/run/secrets/zeroscale.io/serviceaccount}]
      readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
  volumes:
    - name: zeroscale-token
      projected:
        sources:
          - serviceAccountToken: {audience: zeroscale, expirationSeconds: 600, path: token}
)"));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=identity", 1));
  const std::string ip = PodIP(pods[0]);
  absl::StatusOr<kube::HttpResponse> token =
      HttpGet(ip, 8080, "/file?path=/var/run/secrets/zeroscale.io/serviceaccount/token");
  ASSERT_TRUE(token.ok()) << token.status();
  ASSERT_EQ(token->status, 200) << token->body;

  ZS_ASSERT_OK_AND_ASSIGN(json review, api().ReviewToken(token->body, {"zeroscale"}));
  ASSERT_TRUE(review.value("authenticated", false)) << review.dump();
  EXPECT_EQ(review["user"]["username"], absl::StrCat("system:serviceaccount:", ns(), ":model"));
  EXPECT_THAT(review["audiences"], ElementsAre("zeroscale"));
  EXPECT_THAT(review["user"]["extra"]["authentication.kubernetes.io/pod-name"],
              ElementsAre("identity"));
  EXPECT_THAT(review["user"]["extra"]["authentication.kubernetes.io/pod-uid"],
              ElementsAre(UidOf(pods[0])));
  ZS_ASSERT_OK_AND_ASSIGN(json other, api().ReviewToken(token->body, {"someone-else"}));
  EXPECT_FALSE(other.value("authenticated", false)) << other.dump();

  // The API server's own service-account volume (kube-api-access-*): token, CA, namespace.
  const std::string sa = "/var/run/secrets/kubernetes.io/serviceaccount";
  absl::StatusOr<kube::HttpResponse> ns_file = HttpGet(ip, 8080, "/file?path=" + sa + "/namespace");
  ASSERT_TRUE(ns_file.ok());
  EXPECT_EQ(ns_file->body, ns());
  absl::StatusOr<kube::HttpResponse> ca = HttpGet(ip, 8080, "/file?path=" + sa + "/ca.crt");
  ASSERT_TRUE(ca.ok());
  EXPECT_THAT(ca->body, HasSubstr("BEGIN CERTIFICATE"));
  absl::StatusOr<kube::HttpResponse> api_token = HttpGet(ip, 8080, "/file?path=" + sa + "/token");
  ASSERT_TRUE(api_token.ok());
  ZS_ASSERT_OK_AND_ASSIGN(json api_review, api().ReviewToken(api_token->body));
  EXPECT_TRUE(api_review.value("authenticated", false)) << api_review.dump();
  // Once the pod is gone, so is the token bound to it (as soon as the API server's
  // informer has seen the deletion).
  ZS_ASSERT_OK(api().Delete(PodRef(ns(), "identity")));
  ZS_ASSERT_OK(api().WaitForDeletion(PodRef(ns(), "identity"), absl::Seconds(60)));
  json after;
  for (int i = 0; i < 300; ++i) {
    ZS_ASSERT_OK_AND_ASSIGN(after, api().ReviewToken(token->body, {"zeroscale"}));
    if (!after.value("authenticated", false)) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_FALSE(after.value("authenticated", false)) << after.dump();
}

// Sandboxes: with a shared process namespace the containers see each other and a pause
// PID 1 and nothing else; without, each container is PID 1 of its own. Containers of a
// pod share localhost; the test's namespace reaches every pod.
TEST_F(KubeletTest, EachPodHasNamespacesOfItsOwn) {
  ZS_ASSERT_OK(Apply(R"(
apiVersion: v1
kind: Pod
metadata: {name: shared, labels: {app: shared}}
spec:
  shareProcessNamespace: true
  containers:
    - {name: a, image: zeroscale.test/app, args: [--listen=0.0.0.0:8080], readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}}
    - {name: b, image: zeroscale.test/app, args: [--listen=127.0.0.1:8081], readinessProbe: {exec: {command: [bash, -c, "exec 3<>/dev/tcp/127.0.0.1/8081"]}, periodSeconds: 1}}
---
apiVersion: v1
kind: Pod
metadata: {name: alone, labels: {app: alone}}
spec:
  containers:
    - {name: a, image: zeroscale.test/app, readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}}
)"));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> shared, WaitForReadyPods("app=shared", 1));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> alone, WaitForReadyPods("app=alone", 1));

  // Shared: pause, a, b (and what exec runs) and nothing of the host.
  CommandResult comm = kubelet().Exec(ns(), "shared", "a", {"cat", "/proc/1/comm"});
  ASSERT_TRUE(comm.ok()) << comm.output;
  EXPECT_EQ(comm.output, "pause\n");
  absl::StatusOr<kube::HttpResponse> pids = HttpGet(PodIP(shared[0]), 8080, "/pids");
  ASSERT_TRUE(pids.ok());
  EXPECT_EQ(std::count(pids->body.begin(), pids->body.end(), '\n'), 3) << pids->body;
  // b listens on the pod's localhost only; a reaches it there.
  CommandResult local = kubelet().Exec(
      ns(), "shared", "a",
      {"bash", "-c",
       "exec 3<>/dev/tcp/127.0.0.1/8081 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && "
       "cat <&3"});
  EXPECT_THAT(local.output, HasSubstr("200 OK"));

  // Alone: the app is PID 1 of its own PID namespace, and the pod's hostname is its name.
  absl::StatusOr<kube::HttpResponse> root = HttpGet(PodIP(alone[0]), 8080, "/");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(Body(root)["pid"], 1);
  EXPECT_EQ(Body(root)["hostname"], "alone");
  // Pods reach each other through the test's namespace.
  CommandResult across = kubelet().Exec(
      ns(), "alone", "a",
      {"bash", "-c",
       absl::StrCat("exec 3<>/dev/tcp/", PodIP(shared[0]),
                    "/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3")});
  EXPECT_THAT(across.output, HasSubstr("200 OK"));
}

// Readiness follows the probe both ways; a container that dies is restarted and counted.
TEST_F(KubeletTest, ReadinessFollowsTheProbeAndExitedContainersRestart) {
  ZS_ASSERT_OK(Apply(WebApp("flappy", 1)));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=flappy", 1));
  const std::string name = NameOf(pods[0]);
  const std::string ip = PodIP(pods[0]);

  ZS_ASSERT_OK(Http("POST", ip, 8080, "/ready?ready=false").status());
  ZS_ASSERT_OK(api()
                   .WaitFor(
                       PodRef(ns(), name),
                       [](const json& p) { return HasCondition(p, "Ready", "False"); },
                       absl::Seconds(30), "not Ready after the probe fails")
                   .status());
  ZS_ASSERT_OK(WaitForEndpoints("flappy", [](const std::vector<json>& e) {
                 return e.size() == 1 && !e[0]["ready"].get<bool>();
               }).status());
  ZS_ASSERT_OK(Http("POST", ip, 8080, "/ready?ready=true").status());
  ZS_ASSERT_OK(api()
                   .WaitFor(
                       PodRef(ns(), name), [](const json& p) { return HasCondition(p, "Ready"); },
                       absl::Seconds(30), "Ready again")
                   .status());

  ZS_ASSERT_OK(kubelet().SignalContainer(ns(), name, "app", SIGKILL));
  ZS_ASSERT_OK_AND_ASSIGN(json restarted, api().WaitFor(
                                              PodRef(ns(), name),
                                              [](const json& p) {
                                                const json& s = p["status"]["containerStatuses"][0];
                                                return s["restartCount"] == 1 &&
                                                       s["ready"].get<bool>();
                                              },
                                              absl::Seconds(60), "restarted once and Ready"));
  const json& last = restarted["status"]["containerStatuses"][0]["lastState"]["terminated"];
  EXPECT_EQ(last["exitCode"], 137);
  EXPECT_EQ(restarted["status"]["containerStatuses"][0]["state"].count("running"), 1u);
}

// Init containers run first, to completion, sharing an emptyDir with the app; exec
// probes run inside the container; an image missing from the table is ErrImagePull.
TEST_F(KubeletTest, RunsInitContainersExecProbesAndReportsUnknownImages) {
  ZS_ASSERT_OK(Apply(R"(
apiVersion: v1
kind: Pod
metadata: {name: init, labels: {app: init}}
spec:
  initContainers:
    - {name: prepare, image: zeroscale.test/app, command: [sh, -c, "echo prepared > /var/run/zs-test/work/state"], volumeMounts: [{name: work, mountPath: /var/run/zs-test/work}]}
  containers:
    - name: app
      image: zeroscale.test/app
      volumeMounts: [{name: work, mountPath: /var/run/zs-test/work}]
      readinessProbe: {exec: {command: [test, -f, /var/run/zs-test/work/ready]}, periodSeconds: 1}
  volumes: [{name: work, emptyDir: {}}]
---
apiVersion: v1
kind: Pod
metadata: {name: missing}
spec:
  containers: [{name: app, image: registry.example/not-in-the-table:1}]
)"));
  ZS_ASSERT_OK(api()
                   .WaitFor(
                       PodRef(ns(), "init"),
                       [](const json& p) {
                         return p["status"].value("phase", "") == "Running" &&
                                HasCondition(p, "Initialized");
                       },
                       absl::Seconds(60), "initialized and running")
                   .status());
  ZS_ASSERT_OK_AND_ASSIGN(json pod, api().Get(PodRef(ns(), "init")));
  EXPECT_FALSE(HasCondition(pod, "Ready"));
  EXPECT_EQ(pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"], 0);
  absl::StatusOr<kube::HttpResponse> state =
      HttpGet(PodIP(pod), 8080, "/file?path=/var/run/zs-test/work/state");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->body, "prepared\n");
  ASSERT_TRUE(kubelet().Exec(ns(), "init", "app", {"touch", "/var/run/zs-test/work/ready"}).ok());
  ZS_ASSERT_OK(api()
                   .WaitFor(
                       PodRef(ns(), "init"), [](const json& p) { return HasCondition(p, "Ready"); },
                       absl::Seconds(30), "Ready once the exec probe passes")
                   .status());

  ZS_ASSERT_OK_AND_ASSIGN(
      json missing, api().WaitFor(
                        PodRef(ns(), "missing"),
                        [](const json& p) {
                          return p.contains("status") &&
                                 p["status"].contains("containerStatuses") &&
                                 p["status"]["containerStatuses"][0]["state"].contains("waiting");
                        },
                        absl::Seconds(30), "waiting on its image"));
  const json& waiting = missing["status"]["containerStatuses"][0]["state"]["waiting"];
  EXPECT_THAT(waiting["reason"].get<std::string>(),
              ::testing::AnyOf("ErrImagePull", "ImagePullBackOff"));
  EXPECT_THAT(waiting["message"].get<std::string>(), HasSubstr("not-in-the-table"));
  EXPECT_EQ(missing["status"]["phase"], "Pending");
}

}  // namespace
}  // namespace zeroscale::testing
