// Per-pod identity and authorisation against the real API server: the real scaler
// (--backend=kubernetes, watching a CustomAutoscaler and its pods) checks the tokens
// callers present with TokenReview (audience zeroscale) and their actions with
// SubjectAccessReview (API group zeroscale.io), as in a cluster:
//   - samples with a pod-bound token for its own pod and workload are stored; another
//     pod's id, another workload, no token, an expired token, a token for the API
//     server's audience, a token of a deleted pod and a ServiceAccount token bound to no
//     pod are refused, and counted;
//   - each API is refused without a credential and allowed by RBAC: ServiceAccounts bound
//     to roles as the chart defines them (balancer activation, operator, viewer).
#include <unistd.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/command.h"
#include "tests/testing/kube_test_env.h"
#include "tests/testing/redis_server.h"
#include "zeroscale/v1/activation.grpc.pb.h"
#include "zeroscale/v1/metrics_service.grpc.pb.h"
#include "zeroscale/v1/rules.grpc.pb.h"

namespace zeroscale::testing {
namespace {

using ::testing::HasSubstr;

// The value of a Prometheus sample line `name` in `text`, or -1.
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

std::string B64Url(absl::string_view s) {
  std::string out;
  absl::WebSafeBase64Escape(s, &out);
  return out;
}

class AuthKubeTest : public KubeTest {
 protected:
  void SetUp() override {
    KubeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(redis_.Start().ok());
  }
  void TearDown() override {
    for (const std::string& name : cluster_objects_) {
      (void)api().Delete({"rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", name});
      (void)api().Delete({"rbac.authorization.k8s.io/v1", "ClusterRole", "", name});
    }
    if (scaler_) scaler_->Stop();
    KubeTest::TearDown();
  }

  // The CRD, a Deployment `model` (one pod) managed by a CustomAutoscaler, and the scaler
  // watching it with the admin's credentials (its own RBAC is the chart's concern).
  void StartScaler() {
    const std::string crd =
        ReadFileOrEmpty(ZS_SOURCE_DIR "/charts/zeroscale/crds/customautoscalers.yaml");
    ASSERT_FALSE(crd.empty());
    ZS_ASSERT_OK(Apply(crd));
    ASSERT_TRUE(WaitFor(
        [&] {
          return Apply(R"(
apiVersion: autoscaler-group.autoscaler/v1alpha1
kind: CustomAutoscaler
metadata: {name: model}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: model}
  minReplicas: 1
  maxReplicas: 2
)")
              .ok();
        },
        absl::Seconds(30)));
    ZS_ASSERT_OK(Apply(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: model}
spec:
  replicas: 1
  selector: {matchLabels: {app: model}}
  template:
    metadata: {labels: {app: model}}
    spec:
      containers: [{name: app, image: zeroscale.test/app}]
)"));
    http_ = FreePort();
    grpc_ = FreePort();
    scaler_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            ZS_SCALER_BIN, "--backend=kubernetes", "--kubeconfig=" + cluster().admin_kubeconfig(),
            "--namespace=" + ns(), "--redis=" + redis_.address(),
            absl::StrCat("--grpc-listen=127.0.0.1:", grpc_),
            absl::StrCat("--http-listen=127.0.0.1:", http_),
            absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()), "--lease-duration=2s",
            "--renew-deadline=1500ms", "--retry-period=500ms"},
        cluster().work_dir() + "/" + ns() + "-scaler.log");
    PrintOnFailure("the scaler", scaler_->log_path());
    ZS_ASSERT_OK(scaler_->Start());
    ZS_ASSERT_OK(WaitForTcpPort(http_, absl::Seconds(30)));
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_), grpc::InsecureChannelCredentials());
  }

  // A ServiceAccount `name`, bound cluster-wide to a ClusterRole granting `rules` (YAML
  // list; none: no binding); returns a token for audience zeroscale.
  std::string Account(const std::string& name, const std::string& rules) {
    EXPECT_TRUE(
        Apply(absl::StrCat("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ", name, "}\n"))
            .ok());
    if (!rules.empty()) {
      const std::string role = absl::StrCat(ns(), "-", name);
      cluster_objects_.push_back(role);
      EXPECT_TRUE(
          Apply(absl::StrReplaceAll(R"(
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ROLE}
rules: RULES
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ROLE}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ROLE}
subjects: [{kind: ServiceAccount, name: SA, namespace: NS}]
)",
                                    {{"ROLE", role}, {"RULES", rules}, {"SA", name}, {"NS", ns()}}))
              .ok());
    }
    absl::StatusOr<std::string> token = api().CreateToken(ns(), name, {"zeroscale"});
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? *token : "";
  }

  // `token` re-signed with the cluster's service-account key with exp and iat an hour in
  // the past: a token the API server itself would have issued, expired.
  std::string Expired(const std::string& token) {
    std::vector<std::string> parts = absl::StrSplit(token, '.');
    std::string payload;
    EXPECT_TRUE(absl::WebSafeBase64Unescape(parts[1], &payload));
    json claims = json::parse(payload);
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    claims["exp"] = now - 3600;
    claims["iat"] = now - 7200;
    claims["nbf"] = now - 7200;
    const std::string input = absl::StrCat(parts[0], ".", B64Url(claims.dump()));
    const std::string in_file = cluster().work_dir() + "/" + ns() + "-jwt.in";
    const std::string sig_file = in_file + ".sig";
    std::ofstream(in_file, std::ios::binary) << input;
    EXPECT_TRUE(RunCommandOk({"openssl", "dgst", "-sha256", "-sign",
                              cluster().work_dir() + "/pki/sa.key", "-out", sig_file, in_file})
                    .ok());
    return absl::StrCat(input, ".", B64Url(ReadFileOrEmpty(sig_file)));
  }

  // One sample on a stream as `token`: the stream's status when refused, else OK with
  // the response.
  grpc::Status Sample(const std::string& token, const std::string& id, const std::string& workload,
                      v1::StreamResponse* resp) {
    auto stub = v1::MetricsService::NewStub(channel_);
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    auto stream = stub->Stream(&ctx);
    v1::StreamRequest req;
    v1::Podmetric* p = req.add_samples();
    p->set_id(id);
    p->set_workload(workload);
    p->set_seq(static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())));
    p->set_cpu_usage(10);
    p->set_ready(true);
    stream->Write(req);
    if (!stream->Read(resp)) return stream->Finish();
    stream->WritesDone();
    ctx.TryCancel();
    (void)stream->Finish();
    return grpc::Status::OK;
  }

  std::string Prometheus() {
    absl::StatusOr<kube::HttpResponse> r = HttpGet("127.0.0.1", http_, "/metrics");
    return r.ok() ? r->body : "";
  }
  double Refused(const std::string& reason) {
    return Counter(Prometheus(),
                   absl::StrCat("zeroscale_ingest_refused_total{reason=\"", reason, "\"}"));
  }

  RedisServer redis_;
  uint16_t http_ = 0, grpc_ = 0;
  std::unique_ptr<ChildProcess> scaler_;
  std::shared_ptr<grpc::Channel> channel_;
  std::vector<std::string> cluster_objects_;
};

TEST_F(AuthKubeTest, SpoofedSamplesAreRejectedAndCounted) {
  StartScaler();
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=model", 1));
  const json& pod = pods[0];
  const std::string me = absl::StrCat(ns(), "/", NameOf(pod));
  const std::string workload = absl::StrCat(ns(), "/Deployment/model");
  ZS_ASSERT_OK_AND_ASSIGN(std::string token,
                          api().CreateToken(ns(), "default", {"zeroscale"}, absl::Hours(1), pod));
  v1::StreamResponse resp;

  // Its own pod and workload: stored.
  grpc::Status s = Sample(token, me, workload, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.rejections_size(), 0) << resp.DebugString();

  // Another pod's id.
  resp.Clear();
  ASSERT_TRUE(Sample(token, absl::StrCat(ns(), "/someone-else"), workload, &resp).ok());
  ASSERT_EQ(resp.rejections_size(), 1);
  EXPECT_EQ(resp.rejections(0).field(), "id");
  EXPECT_THAT(resp.rejections(0).message(), HasSubstr("permission denied"));

  // Another workload, once the leader's pod view lists the pod for `model`.
  ASSERT_TRUE(WaitFor(
      [&] {
        resp.Clear();
        return Sample(token, me, absl::StrCat(ns(), "/Deployment/other"), &resp).ok() &&
               resp.rejections_size() == 1 && resp.rejections(0).field() == "workload";
      },
      absl::Seconds(30)))
      << resp.DebugString();
  EXPECT_THAT(resp.rejections(0).message(), HasSubstr(workload));

  // No token; a token for the API server's audience; an expired one.
  EXPECT_EQ(Sample("", me, workload, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  ZS_ASSERT_OK_AND_ASSIGN(std::string api_audience,
                          api().CreateToken(ns(), "default", {}, absl::Hours(1), pod));
  grpc::Status wrong = Sample(api_audience, me, workload, &resp);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED) << wrong.error_message();
  grpc::Status expired = Sample(Expired(token), me, workload, &resp);
  EXPECT_EQ(expired.error_code(), grpc::StatusCode::UNAUTHENTICATED) << expired.error_message();
  // A valid token of the ServiceAccount that no pod is bound to is not a pod's.
  ZS_ASSERT_OK_AND_ASSIGN(std::string unbound, api().CreateToken(ns(), "default", {"zeroscale"}));
  EXPECT_EQ(Sample(unbound, me, workload, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  EXPECT_EQ(Refused("id"), 1);
  EXPECT_GE(Refused("workload"), 1);
  EXPECT_EQ(Refused("unauthenticated"), 3);
  EXPECT_EQ(Refused("not_a_pod"), 1);
  EXPECT_EQ(std::stoll(redis_.Cli(absl::StrCat("ZCARD podmetric:", ns(), "/someone-else"))), 0);
}

// A token bound to a pod stops working once the pod is gone (TokenReview checks the
// binding), after the scaler's cache of the verdict runs out at the latest.
TEST_F(AuthKubeTest, ATokenOfADeletedPodIsRefused) {
  StartScaler();
  ZS_ASSERT_OK(Apply(R"(
apiVersion: v1
kind: Pod
metadata: {name: gone}
spec:
  containers: [{name: app, image: zeroscale.test/app}]
)"));
  ZS_ASSERT_OK_AND_ASSIGN(json pod, api().Get(PodRef(ns(), "gone")));
  ZS_ASSERT_OK_AND_ASSIGN(std::string token,
                          api().CreateToken(ns(), "default", {"zeroscale"}, absl::Hours(1), pod));
  ZS_ASSERT_OK(api().Delete(PodRef(ns(), "gone"), {.grace_period_seconds = 0}));
  ASSERT_TRUE(WaitFor([&] { return !api().Get(PodRef(ns(), "gone")).ok(); }, absl::Seconds(30)));
  v1::StreamResponse resp;
  grpc::Status s = Sample(token, absl::StrCat(ns(), "/gone"), "", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
}

TEST_F(AuthKubeTest, EachApiRefusedWithoutCredentialsAndAllowedByRbac) {
  StartScaler();
  // As the chart grants them.
  const std::string balancer = Account("balancer", R"(
  - {apiGroups: [zeroscale.io], resources: [workloads/activation], verbs: [create, watch]}
  - {apiGroups: [zeroscale.io], resources: [workloads/traffic], verbs: [create]}
  - {apiGroups: [zeroscale.io], resources: [workloads/endpoints], verbs: [list]})");
  const std::string op = Account("operator", R"(
  - {apiGroups: [zeroscale.io], resources: [scalingrules], verbs: [get, list, create, update, delete]}
  - {apiGroups: [zeroscale.io], resources: [workloads, decisions], verbs: [get, list]})");
  const std::string viewer = Account("viewer", R"(
  - {apiGroups: [zeroscale.io], resources: [scalingrules, workloads], verbs: [get, list]}
  - {apiGroups: [zeroscale.io], resources: [decisions], verbs: [list]})");
  const std::string nobody = Account("nobody", "");
  const std::string workload = absl::StrCat(ns(), "/Deployment/model");

  auto activate = [&](const std::string& token) {
    auto stub = v1::ActivationService::NewStub(channel_);
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::ActivateRequest req;
    req.set_workload(workload);
    v1::WorkloadState st;
    return stub->Activate(&ctx, req, &st).error_code();
  };
  auto create_rule = [&](const std::string& token) {
    auto stub = v1::RulesService::NewStub(channel_);
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::ScalingRule rule, out;
    rule.set_id(absl::StrCat("r", token.size()));
    return stub->CreateRule(&ctx, rule, &out).error_code();
  };
  auto workloads = [&](const std::string& token) {
    std::string cmd = absl::StrCat("curl -s -o /dev/null -w '%{http_code}' ",
                                   token.empty() ? "" : "-H 'Authorization: Bearer " + token + "' ",
                                   "http://127.0.0.1:", http_, "/workloads");
    return Shell(cmd);
  };
  using grpc::StatusCode;
  // Activation: the balancer (the leader may not be elected yet: then FAILED_PRECONDITION,
  // which comes only after the access check).
  EXPECT_EQ(activate(""), StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(activate(nobody), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(activate(viewer), StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(WaitFor([&] { return activate(balancer) == StatusCode::OK; }, absl::Seconds(30)));
  // Rules: the operator only.
  EXPECT_EQ(create_rule(""), StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(create_rule(balancer), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(create_rule(viewer), StatusCode::PERMISSION_DENIED);
  const StatusCode by_operator = create_rule(op);
  EXPECT_NE(by_operator, StatusCode::UNAUTHENTICATED);
  EXPECT_NE(by_operator, StatusCode::PERMISSION_DENIED);
  // /workloads: readers.
  EXPECT_EQ(workloads(""), "401");
  EXPECT_EQ(workloads(nobody), "403");
  EXPECT_EQ(workloads(balancer), "403");
  EXPECT_EQ(workloads(viewer), "200");
  EXPECT_EQ(workloads(op), "200");
}

}  // namespace
}  // namespace zeroscale::testing
