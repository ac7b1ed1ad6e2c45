// Secure by default, end to end: the real zeroscale-scaler outside a cluster with a static
// token file (--auth-tokens). Every API but Prometheus and health refuses a caller without
// a credential (saying how to configure one), and allows exactly what each token's group
// grants; samples only from a pod's own credential and for that pod; --insecure turns it
// all off and says so.
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/auth_files.h"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"
#include "zeroscale/v1/activation.grpc.pb.h"
#include "zeroscale/v1/metrics_service.grpc.pb.h"
#include "zeroscale/v1/rules.grpc.pb.h"

namespace zeroscale {
namespace {

using testing::ChildProcess;
using testing::FreePort;
using ::testing::HasSubstr;
using testing::Shell;
using testing::WaitFor;

constexpr char kPod[] = "auth/model-0";
const std::string kPodToken = testing::PodToken(kPod);

class AuthE2E : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start().ok()); }
  void TearDown() override {
    if (HasFailure() && scaler_) std::cerr << "--- scaler log:\n" << scaler_->ReadLog();
  }

  void StartScaler(std::vector<std::string> extra) {
    dir_ = absl::StrCat(::testing::TempDir(), "/zs-auth-e2e-", ::getpid());
    Shell("mkdir -p " + dir_);
    http_ = FreePort();
    grpc_ = FreePort();
    std::vector<std::string> argv = {ZS_SCALER_BIN,
                                     absl::StrCat("--redis=", redis_.address()),
                                     absl::StrCat("--http-listen=127.0.0.1:", http_),
                                     absl::StrCat("--grpc-listen=127.0.0.1:", grpc_),
                                     absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()),
                                     "--backend=none"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    scaler_ = std::make_unique<ChildProcess>(argv);
    ASSERT_TRUE(scaler_->Start().ok());
    ASSERT_TRUE(
        WaitFor([&] { return testing::HttpGetStatus(http_, "/readyz") == 200; }, absl::Seconds(20)))
        << scaler_->ReadLog();
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_), grpc::InsecureChannelCredentials());
  }
  void StartWithTokens() {
    StartScaler({"--auth-tokens=" + testing::WriteTestTokens(dir(), {kPod})});
  }
  std::string dir() {
    dir_ = absl::StrCat(::testing::TempDir(), "/zs-auth-e2e-", ::getpid());
    Shell("mkdir -p " + dir_);
    return dir_;
  }

  // HTTP status (and body after a space) of METHOD path with `token` ("" for none).
  std::string Http(const std::string& method, const std::string& path, const std::string& token,
                   const std::string& body = "") {
    std::string cmd = absl::StrCat("curl -s -o /dev/stdout -w ' %{http_code}' -X ", method);
    if (!token.empty()) absl::StrAppend(&cmd, " -H 'Authorization: Bearer ", token, "'");
    if (!body.empty()) {
      absl::StrAppend(&cmd, " -H 'Content-Type: application/json' --data-binary '", body, "'");
    }
    absl::StrAppend(&cmd, " 'http://127.0.0.1:", http_, path, "'");
    return Shell(cmd);
  }
  static int Code(const std::string& out) { return std::stoi(out.substr(out.rfind(' ') + 1)); }

  // A RulesService call as `token`.
  grpc::Status Rules(const std::string& token, const std::string& verb) {
    auto stub = v1::RulesService::NewStub(channel_);
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", testing::Bearer(token));
    v1::ScalingRule rule;
    rule.set_id(absl::StrCat("r-", verb, "-", token.size()));
    rule.set_target("auth/Deployment/model");
    rule.set_action(v1::INCREASE_INSTANCES);
    v1::Threshold* t = rule.add_thresholds();
    t->set_metric_type(v1::CPU_USAGE);
    t->set_operator_(v1::GREATER_THAN);
    t->set_value(80);
    v1::ScalingRule out;
    if (verb == "create") return stub->CreateRule(&ctx, rule, &out);
    if (verb == "update") return stub->UpdateRule(&ctx, rule, &out);
    if (verb == "get") {
      v1::GetRuleRequest req;
      req.set_id("none");
      return stub->GetRule(&ctx, req, &out);
    }
    if (verb == "list") {
      v1::ListRulesRequest req;
      v1::ListRulesResponse resp;
      return stub->ListRules(&ctx, req, &resp);
    }
    v1::DeleteRuleRequest req;
    req.set_id("none");
    v1::DeleteRuleResponse resp;
    return stub->DeleteRule(&ctx, req, &resp);
  }

  // An ActivationService call as `token`: Activate, Watch (first message or the end) or
  // ReportTraffic.
  grpc::Status Activation(const std::string& token, const std::string& call) {
    auto stub = v1::ActivationService::NewStub(channel_);
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", testing::Bearer(token));
    if (call == "activate") {
      v1::ActivateRequest req;
      req.set_workload("auth/Deployment/model");
      v1::WorkloadState st;
      return stub->Activate(&ctx, req, &st);
    }
    if (call == "watch") {
      // An allowed Watch stays open, saying nothing of a workload it does not know: the
      // deadline ends it.
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
      v1::WatchRequest req;
      req.set_workload("auth/Deployment/model");
      auto reader = stub->Watch(&ctx, req);
      v1::WorkloadState st;
      while (reader->Read(&st)) {
      }
      grpc::Status s = reader->Finish();
      return s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? grpc::Status::OK : s;
    }
    v1::TrafficAck ack;
    auto writer = stub->ReportTraffic(&ctx, &ack);
    v1::TrafficReport report;
    report.set_workload("auth/Deployment/model");
    report.set_in_flight(1);
    writer->Write(report);
    writer->WritesDone();
    return writer->Finish();
  }

  // One sample on a MetricsService stream as `token`: the stream's status when it was
  // refused, else OK with the response.
  grpc::Status Sample(const std::string& token, const std::string& id, uint64_t seq,
                      v1::StreamResponse* resp) {
    auto stub = v1::MetricsService::NewStub(channel_);
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", testing::Bearer(token));
    auto stream = stub->Stream(&ctx);
    v1::StreamRequest req;
    v1::Podmetric* p = req.add_samples();
    p->set_id(id);
    p->set_workload("auth/Deployment/model");
    p->set_seq(seq);
    p->set_cpu_usage(10);
    stream->Write(req);
    if (!stream->Read(resp)) return stream->Finish();
    stream->WritesDone();
    ctx.TryCancel();
    (void)stream->Finish();
    return grpc::Status::OK;
  }

  testing::RedisServer redis_;
  std::string dir_;
  uint16_t http_ = 0, grpc_ = 0;
  std::unique_ptr<ChildProcess> scaler_;
  std::shared_ptr<grpc::Channel> channel_;
};

bool Allowed(const grpc::Status& s) {
  return s.error_code() != grpc::StatusCode::UNAUTHENTICATED &&
         s.error_code() != grpc::StatusCode::PERMISSION_DENIED;
}

TEST_F(AuthE2E, RulesServiceByGroup) {
  StartWithTokens();
  for (const std::string verb : {"create", "update", "get", "list", "delete"}) {
    SCOPED_TRACE(verb);
    grpc::Status none = Rules("", verb);
    EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(none.error_message(), HasSubstr("--auth-tokens"));
    EXPECT_EQ(Rules("not-a-configured-token-00", verb).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Rules(kPodToken, verb).error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(Rules(testing::kBalancerToken, verb).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    const bool read = verb == "get" || verb == "list";
    EXPECT_EQ(Allowed(Rules(testing::kViewerToken, verb)), read);
    EXPECT_TRUE(Allowed(Rules(testing::kOperatorToken, verb)))
        << Rules(testing::kOperatorToken, verb).error_message();
  }
  EXPECT_THAT(Rules(testing::kViewerToken, "create").error_message(),
              HasSubstr("\"viewer\" may not scalingrules create"));
  EXPECT_TRUE(Rules(testing::kOperatorToken, "create").ok() ||
              Rules(testing::kOperatorToken, "create").error_code() ==
                  grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(AuthE2E, ActivationServiceByGroup) {
  StartWithTokens();
  for (const std::string call : {"activate", "watch", "report"}) {
    SCOPED_TRACE(call);
    grpc::Status none = Activation("", call);
    EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED) << none.error_message();
    EXPECT_EQ(Activation(testing::kViewerToken, call).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(Activation(kPodToken, call).error_code(), grpc::StatusCode::PERMISSION_DENIED);
    grpc::Status balancer = Activation(testing::kBalancerToken, call);
    EXPECT_TRUE(Allowed(balancer)) << balancer.error_message();
    EXPECT_TRUE(Allowed(Activation(testing::kOperatorToken, call)));
  }
}

TEST_F(AuthE2E, HttpEndpointsByGroupAndTheOpenOnes) {
  StartWithTokens();
  for (const std::string path : {"/workloads", "/decisions?workload=auth/Deployment/model"}) {
    SCOPED_TRACE(path);
    const std::string none = Http("GET", path, "");
    EXPECT_EQ(Code(none), 401);
    EXPECT_THAT(none, HasSubstr("--auth-tokens"));
    EXPECT_EQ(Code(Http("GET", path, kPodToken)), 403);
    EXPECT_EQ(Code(Http("GET", path, testing::kBalancerToken)), 403);
    EXPECT_EQ(Code(Http("GET", path, testing::kViewerToken)), 200);
    EXPECT_EQ(Code(Http("GET", path, testing::kOperatorToken)), 200);
  }
  for (const std::string path : {"/metrics", "/healthz", "/readyz"}) {
    EXPECT_EQ(Code(Http("GET", path, "")), 200) << path;
  }
}

TEST_F(AuthE2E, SamplesOnlyFromThePodsOwnCredential) {
  StartWithTokens();
  const uint64_t seq = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  v1::StreamResponse resp;
  EXPECT_EQ(Sample("", kPod, seq, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Sample(testing::kOperatorToken, kPod, seq, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Sample(kPodToken, "auth/model-1", seq, &resp).ok());
  ASSERT_EQ(resp.rejections_size(), 1);
  EXPECT_EQ(resp.rejections(0).field(), "id");
  resp.Clear();
  ASSERT_TRUE(Sample(kPodToken, kPod, seq, &resp).ok());
  EXPECT_EQ(resp.rejections_size(), 0);
  EXPECT_EQ(resp.acked_seq(), seq);
  EXPECT_EQ(std::stoll(redis_.Cli("ZCARD podmetric:auth/model-1")), 0);
  EXPECT_EQ(std::stoll(redis_.Cli(absl::StrCat("ZCARD podmetric:", kPod))), 1);

  // POST /metrics the same way.
  const std::string own =
      absl::StrCat(R"({"id":")", kPod, R"(","workload":"auth/Deployment/model","cpuUsage":5})");
  const std::string other =
      R"([{"id":"auth/model-1","workload":"auth/Deployment/model","cpuUsage":5}])";
  EXPECT_EQ(Code(Http("POST", "/metrics", "", own)), 401);
  EXPECT_EQ(Code(Http("POST", "/metrics", testing::kOperatorToken, own)), 403);
  const std::string refused = Http("POST", "/metrics", kPodToken, other);
  EXPECT_EQ(Code(refused), 403);
  EXPECT_THAT(refused, HasSubstr("[0].id"));
  EXPECT_EQ(Code(Http("POST", "/metrics", kPodToken, own)), 200);

  const std::string prom = Http("GET", "/metrics", "");
  EXPECT_THAT(prom, HasSubstr("zeroscale_ingest_refused_total{reason=\"id\"} 2"));
  EXPECT_THAT(prom, HasSubstr("zeroscale_ingest_refused_total{reason=\"unauthenticated\"} 2"));
  EXPECT_THAT(prom, HasSubstr("zeroscale_ingest_refused_total{reason=\"not_a_pod\"} 2"));
}

// A seq no sidecar could have sent (sequence numbers start at the sidecar's start time in
// microseconds) cannot lift the pod's high-water mark: the pod's next samples still land.
TEST_F(AuthE2E, ASeqFarAheadIsRefusedAndCannotFreezeThePod) {
  StartWithTokens();
  const uint64_t seq = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  v1::StreamResponse resp;
  ASSERT_TRUE(Sample(kPodToken, kPod, ~uint64_t{0}, &resp).ok());
  ASSERT_EQ(resp.rejections_size(), 1);
  EXPECT_EQ(resp.rejections(0).field(), "seq");
  EXPECT_THAT(resp.rejections(0).message(), HasSubstr("1h ahead"));
  resp.Clear();
  ASSERT_TRUE(Sample(kPodToken, kPod, seq, &resp).ok());
  EXPECT_EQ(resp.rejections_size(), 0);
  EXPECT_EQ(std::stoll(redis_.Cli(absl::StrCat("ZCARD podmetric:", kPod))), 1);
  EXPECT_THAT(Http("GET", "/metrics", ""),
              HasSubstr("zeroscale_ingest_refused_total{reason=\"seq\"} 1"));
}

TEST_F(AuthE2E, WithoutAnyCredentialConfiguredCallsAreRefusedSayingHow) {
  StartScaler({});
  grpc::Status s = Rules("", "create");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("--auth-tokens=FILE"));
  EXPECT_THAT(s.error_message(), HasSubstr("--insecure"));
  EXPECT_EQ(Code(Http("GET", "/workloads", "")), 401);
  EXPECT_EQ(Code(Http("GET", "/healthz", "")), 200);
}

TEST_F(AuthE2E, InsecureTurnsChecksOffAndSaysSo) {
  StartScaler({"--insecure"});
  EXPECT_TRUE(Allowed(Rules("", "create")));
  EXPECT_EQ(Code(Http("GET", "/workloads", "")), 200);
  v1::StreamResponse resp;
  EXPECT_TRUE(Sample("", "any/pod", 1, &resp).ok());
  EXPECT_EQ(resp.rejections_size(), 0);
  EXPECT_THAT(scaler_->ReadLog(), HasSubstr("--insecure: no credential is checked"));
}

TEST_F(AuthE2E, ABadTokenFileStopsTheScalerNamingTheLine) {
  const std::string file = dir() + "/bad.csv";
  std::ofstream(file) << "# tokens\nshort,name,zeroscale:operators\n";
  ChildProcess scaler({ZS_SCALER_BIN, "--backend=none", "--auth-tokens=" + file,
                       absl::StrCat("--http-listen=127.0.0.1:", FreePort()),
                       absl::StrCat("--grpc-listen=127.0.0.1:", FreePort())});
  ASSERT_TRUE(scaler.Start().ok());
  const std::optional<int> status = scaler.WaitForExit(absl::Seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  EXPECT_THAT(scaler.ReadLog(), HasSubstr(file + ":2: the token must be at least 16"));
}

// The balancer's admin port, as started: secure by default, a token file's groups, and
// --insecure with its warning. Prometheus and health stay open.
TEST_F(AuthE2E, BalancerAdminPortIsSecureByDefault) {
  const std::string tokens = testing::WriteTestTokens(dir());
  auto start = [&](std::vector<std::string> extra, uint16_t* admin) {
    *admin = FreePort();
    std::vector<std::string> argv = {ZS_BALANCER_BIN,
                                     absl::StrCat("--redis=", redis_.address()),
                                     absl::StrCat("--listen=127.0.0.1:", FreePort()),
                                     absl::StrCat("--admin-listen=127.0.0.1:", *admin),
                                     "--discovery=none",
                                     "--scaler=127.0.0.1:1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<ChildProcess>(argv);
    EXPECT_TRUE(p->Start().ok());
    const uint16_t port = *admin;
    EXPECT_TRUE(
        WaitFor([&] { return testing::HttpGetStatus(port, "/healthz") == 200; }, absl::Seconds(20)))
        << p->ReadLog();
    return p;
  };
  auto code = [](uint16_t port, const std::string& method, const std::string& path,
                 const std::string& token) {
    std::string cmd = absl::StrCat("curl -s -o /dev/null -w '%{http_code}' -X ", method);
    if (!token.empty()) absl::StrAppend(&cmd, " -H 'Authorization: Bearer ", token, "'");
    if (method == "PUT") absl::StrAppend(&cmd, " --data-binary '{\"policy\":\"random\"}'");
    return Shell(absl::StrCat(cmd, " 'http://127.0.0.1:", port, path, "'"));
  };
  uint16_t admin = 0;
  {
    auto balancer = start({}, &admin);
    EXPECT_EQ(code(admin, "GET", "/loadbalancer/settings", ""), "401");
    EXPECT_EQ(code(admin, "GET", "/proxy/logs", ""), "401");
    EXPECT_EQ(code(admin, "GET", "/metrics", ""), "200");
  }
  {
    auto balancer = start({"--auth-tokens=" + tokens}, &admin);
    EXPECT_EQ(code(admin, "PUT", "/loadbalancer/settings", testing::kViewerToken), "403");
    EXPECT_EQ(code(admin, "GET", "/loadbalancer/settings", testing::kViewerToken), "200");
    EXPECT_EQ(code(admin, "PUT", "/loadbalancer/settings", testing::kOperatorToken), "200");
    EXPECT_EQ(code(admin, "GET", "/proxy/logs", testing::kBalancerToken), "403");
  }
  {
    auto balancer = start({"--insecure"}, &admin);
    EXPECT_EQ(code(admin, "PUT", "/loadbalancer/settings", ""), "200");
    EXPECT_THAT(balancer->ReadLog(), HasSubstr("--insecure: the admin port checks no credential"));
  }
}

}  // namespace
}  // namespace zeroscale
