// The sidecar exactly as the real webhook injects it: the real scaler serves the
// admission webhook, the real API server calls it when the ReplicaSet controller creates
// the pod, and the kubelet stand-in runs what is stored - the sidecar with its args and
// Downward API env resolved, in a shared process namespace - which proxies to the app
// and streams samples to the scaler in the test's namespace at 198.18.0.1.

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/kube_test_env.h"
#include "tests/testing/private_network.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::testing {
namespace {

using ::testing::HasSubstr;

// The value of an unlabelled Prometheus counter in `text`, or -1.
double Counter(const std::string& text, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, name) || line.size() <= name.size() || line[name.size()] != ' ') {
      continue;
    }
    double v;
    if (absl::SimpleAtod(line.substr(name.size() + 1), &v)) return v;
  }
  return -1;
}

class SidecarInjectionTest : public KubeTest {};

TEST_F(SidecarInjectionTest, RunsTheSidecarAsTheRealWebhookInjectsIt) {
  RedisServer redis;
  ZS_ASSERT_OK(redis.Start());
  ZS_ASSERT_OK_AND_ASSIGN(KubeControlPlane::CertFiles cert,
                          cluster().IssueServingCertificate("webhook", "IP:127.0.0.1"));
  const uint16_t grpc_port = FreePort(), http_port = FreePort(), webhook_port = FreePort();
  ChildProcess scaler(
      {ZS_SCALER_BIN, "--backend=none", "--redis=" + redis.address(),
       absl::StrCat("--grpc-listen=0.0.0.0:", grpc_port),
       absl::StrCat("--http-listen=127.0.0.1:", http_port),
       absl::StrCat("--webhook-listen=127.0.0.1:", webhook_port), "--webhook-cert=" + cert.cert,
       "--webhook-key=" + cert.key, "--sidecar-image=ghcr.io/zeroscale/zeroscale-sidecar:test",
       absl::StrCat("--sidecar-scaler-address=", kHostAddress, ":", grpc_port),
       // Checks the sidecars' projected tokens with TokenReview.
       "--kubeconfig=" + cluster().admin_kubeconfig()},
      cluster().work_dir() + "/" + ns() + "-scaler.log");
  PrintOnFailure("the scaler", scaler.log_path());
  ZS_ASSERT_OK(scaler.Start());
  ZS_ASSERT_OK(WaitForTcpPort(webhook_port, absl::Seconds(30)));

  const std::string webhook_name = absl::StrCat("zeroscale-", ns());
  ZS_ASSERT_OK(
      Apply(absl::StrReplaceAll(R"(
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: NAME}
webhooks:
  - name: inject.zeroscale.io
    clientConfig: {url: "https://127.0.0.1:PORT/mutate", caBundle: CA}
    rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: NS}}
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: [v1]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: model}
spec:
  replicas: 1
  selector: {matchLabels: {app: model}}
  template:
    metadata:
      labels: {app: model}
      annotations: {zeroscale.io/inject: "true", zeroscale.io/port: "8080"}
    spec:
      containers:
        - name: app
          image: zeroscale.test/app
          resources: {limits: {cpu: 750m, memory: 128Mi}}
          readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
)",
                                {{"NAME", webhook_name},
                                 {"PORT", absl::StrCat(webhook_port)},
                                 {"CA", absl::Base64Escape(ReadFileOrEmpty(cluster().ca_file()))},
                                 {"NS", ns()}})));
  absl::StatusOr<std::vector<json>> ready = WaitForReadyPods("app=model", 1);
  (void)api().Delete(
      {"admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "", webhook_name});
  ZS_ASSERT_OK(ready);
  const json& pod = (*ready)[0];
  ASSERT_EQ(pod["spec"]["containers"].size(), 2u) << pod["spec"].dump();
  EXPECT_EQ(pod["spec"]["containers"][1]["name"], "zeroscale-sidecar");
  EXPECT_EQ(pod["spec"]["shareProcessNamespace"], true);
  const std::string ip = PodIP(pod);

  // Through the sidecar's proxy to the app, and the sidecar's own admin port.
  absl::StatusOr<kube::HttpResponse> proxied = HttpGet(ip, 8012, "/");
  ASSERT_TRUE(proxied.ok()) << proxied.status();
  EXPECT_EQ(proxied->status, 200);
  EXPECT_THAT(proxied->body, HasSubstr(NameOf(pod)));
  absl::StatusOr<kube::HttpResponse> health = HttpGet(ip, 8013, "/healthz");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);

  // Its command line as the kubelet expanded it from the stored pod.
  const std::string kubelet_log = kubelet().Logs(ns());
  EXPECT_THAT(kubelet_log, HasSubstr(absl::StrCat("--pod=", ns(), "/", NameOf(pod))));
  EXPECT_THAT(kubelet_log, HasSubstr(absl::StrCat("--advertise-address=", ip, ":8012")));
  EXPECT_THAT(kubelet_log, HasSubstr("--measure=processes"));
  // The Downward API gave it the app's limits.
  const CommandResult env = kubelet().Exec(ns(), NameOf(pod), "zeroscale-sidecar", {"env"});
  EXPECT_THAT(env.output, HasSubstr("ZEROSCALE_CPU_LIMIT_MILLICORES=750\n"));
  EXPECT_THAT(env.output, HasSubstr("ZEROSCALE_MEMORY_LIMIT_BYTES=134217728\n"));

  // From the pod to the scaler in the test's namespace: samples are stored.
  double stored = -1;
  for (int i = 0; i < 300 && stored <= 0; ++i) {
    absl::StatusOr<kube::HttpResponse> metrics = HttpGet("127.0.0.1", http_port, "/metrics");
    if (metrics.ok()) stored = Counter(metrics->body, "zeroscale_ingest_samples_stored_total");
    if (stored <= 0) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_GT(stored, 0);
  // ...with the pod's own token, which the kubelet projected (audience zeroscale).
  EXPECT_THAT(kubelet_log,
              HasSubstr("--token-file=/var/run/secrets/zeroscale.io/serviceaccount/token"));
  absl::StatusOr<kube::HttpResponse> metrics = HttpGet("127.0.0.1", http_port, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(Counter(metrics->body, "zeroscale_ingest_refused_total{reason=\"unauthenticated\"}"),
            0);
  EXPECT_EQ(Counter(metrics->body, "zeroscale_ingest_refused_total{reason=\"id\"}"), 0);
}

}  // namespace
}  // namespace zeroscale::testing
