// The scaler with the local backend, end to end: real replica processes behind real
// sidecars, woken through the ActivationService, scaled up by generated load, down when
// quiet and to zero when idle, every step explained in /decisions. Every replica's
// sidecar streams with a credential the backend made for its pod alone; the test speaks
// to the scaler as a balancer and a viewer would, with static tokens.
#include <atomic>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/auth_files.h"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"
#include "zeroscale/v1/activation.grpc.pb.h"
#include "zeroscale/v1/metrics_service.grpc.pb.h"

namespace zeroscale {
namespace {

using testing::ChildProcess;
using testing::FreePort;
using ::testing::HasSubstr;
using testing::Shell;
using testing::WaitFor;

constexpr char kWorkload[] = "local/Deployment/m";

class LocalScaling : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    dir_ = absl::StrCat(::testing::TempDir(), "/zs-local-scaling-", ::getpid());
    tag_ = absl::StrCat("zs-e2e-", ::getpid(), "-", FreePort());
    Shell("mkdir -p " + dir_);
    const std::string file = dir_ + "/workloads.yaml";
    std::ofstream(file) << "workloads:\n"
                           "  - name: m\n"
                           "    command: [\"python3\", \"" ZS_SOURCE_DIR
                           "/demo/model_server.py\", \"--port\", \"{port}\",\n"
                           "              \"--load-seconds\", \"0.5\", \"--predict-ms\", \"100\",\n"
                           "              \"--tag\", \"" +
                               tag_ +
                               "\"]\n"
                               "    port: 0\n"
                               "    minReplicas: 0\n"
                               "    maxReplicas: 3\n"
                               "    idleTimeoutSeconds: 4\n"
                               "    readinessPath: /ready\n"
                               "    rules:\n"
                               "      - id: busy\n"
                               "        action: INCREASE_INSTANCES\n"
                               "        thresholds: [{metricType: IN_FLIGHT_REQUESTS, operator: "
                               "GREATER_THAN, value: 2}]\n"
                               "        windowSeconds: 3\n"
                               "      - id: quiet\n"
                               "        action: DECREASE_INSTANCES\n"
                               "        thresholds: [{metricType: IN_FLIGHT_REQUESTS, operator: "
                               "LESS_THAN, value: 1}]\n"
                               "        windowSeconds: 2\n";
    http_ = FreePort();
    grpc_ = FreePort();
    scaler_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        ZS_SCALER_BIN, absl::StrCat("--redis=", redis_.address()),
        absl::StrCat("--http-listen=127.0.0.1:", http_),
        absl::StrCat("--grpc-listen=127.0.0.1:", grpc_),
        absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()), "--backend=local",
        "--workloads=" + file, "--sidecar-bin=" ZS_SIDECAR_BIN, "--replica-log-dir=" + dir_,
        "--auth-tokens=" + testing::WriteTestTokens(dir_)});
    ASSERT_TRUE(scaler_->Start().ok());
    ASSERT_TRUE(
        WaitFor([&] { return testing::HttpGetStatus(http_, "/readyz") == 200; }, absl::Seconds(20)))
        << scaler_->ReadLog();
    stub_ = v1::ActivationService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    scaler_->Stop();
    Shell("rm -rf " + dir_);
  }

  nlohmann::json Status() {
    const std::string out =
        Shell(absl::StrCat("curl -s -H 'Authorization: Bearer ", testing::kViewerToken,
                           "' http://127.0.0.1:", http_, "/workloads"));
    nlohmann::json all = nlohmann::json::parse(out, nullptr, false);
    if (all.is_array()) {
      for (auto& w : all) {
        if (w["workload"] == kWorkload) return w;
      }
    }
    return nlohmann::json::object();
  }
  int Replicas() {
    nlohmann::json s = Status();
    return s.contains("replicas") ? s["replicas"].get<int>() : -1;
  }
  std::vector<std::string> ReadyAddresses() {
    std::vector<std::string> out;
    nlohmann::json s = Status();
    if (!s.contains("pods")) return out;
    for (auto& p : s["pods"]) {
      if (p["ready"].get<bool>() && !p["address"].get<std::string>().empty()) {
        out.push_back(p["address"]);
      }
    }
    return out;
  }

  testing::RedisServer redis_;
  std::string dir_;
  std::string tag_;  // on every replica's command line, to find them
  uint16_t http_ = 0, grpc_ = 0;
  std::unique_ptr<ChildProcess> scaler_;
  std::unique_ptr<v1::ActivationService::Stub> stub_;
};

TEST_F(LocalScaling, ZeroToManyToZeroUnderGeneratedLoad) {
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 0; }, absl::Seconds(10)));

  // Watch the workload; then wake it as the balancer would.
  grpc::ClientContext watch_ctx;
  watch_ctx.AddMetadata("authorization", testing::Bearer(testing::kBalancerToken));
  v1::WatchRequest watch_req;
  watch_req.set_workload(kWorkload);
  auto watch = stub_->Watch(&watch_ctx, watch_req);
  std::atomic<int> ready_seen{0};
  std::thread watcher([&] {
    v1::WorkloadState st;
    while (watch->Read(&st)) ready_seen = std::max<int>(ready_seen, st.ready_replicas());
  });
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", testing::Bearer(testing::kBalancerToken));
    v1::ActivateRequest req;
    req.set_workload(kWorkload);
    req.set_held_requests(1);
    v1::WorkloadState st;
    ASSERT_TRUE(stub_->Activate(&ctx, req, &st).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return ready_seen >= 1; }, absl::Seconds(30))) << scaler_->ReadLog();
  EXPECT_EQ(Replicas(), 1);

  // Load: more requests in flight than the 'busy' rule allows for one replica.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      while (!stop) {
        std::vector<std::string> eps = ReadyAddresses();
        if (eps.empty()) continue;
        const std::string code = Shell(absl::StrCat(
            "curl -s -o /dev/null -w '%{http_code}' http://", eps[i % eps.size()], "/predict"));
        (code == "200" ? ok : failed)++;
      }
    });
  }
  const bool scaled_up = WaitFor([&] { return Replicas() >= 2; }, absl::Seconds(30));
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_TRUE(scaled_up) << Status().dump(2);
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(failed.load(), 0);

  // Quiet: down, then to zero after the idle timeout; the processes are gone.
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 0; }, absl::Seconds(60))) << Status().dump(2);
  EXPECT_TRUE(WaitFor([&] { return Shell("pgrep -f -- '--ta[g] " + tag_ + "' | wc -l") == "0\n"; },
                      absl::Seconds(20)));
  const std::string decisions = Shell(
      absl::StrCat("curl -s -H 'Authorization: Bearer ", testing::kViewerToken,
                   "' 'http://127.0.0.1:", http_, "/decisions?workload=", kWorkload, "&limit=50'"));
  EXPECT_THAT(decisions, HasSubstr("wake requested by the balancer"));
  EXPECT_THAT(decisions, HasSubstr("rule 'busy' holds"));
  EXPECT_THAT(decisions, HasSubstr("(idleTimeoutSeconds 4): 1 -> 0 replicas"));
  watch_ctx.TryCancel();
  watcher.join();
}

TEST_F(LocalScaling, UnknownWorkloadCannotBeActivated) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", testing::Bearer(testing::kBalancerToken));
  v1::ActivateRequest req;
  req.set_workload("local/Deployment/nope");
  v1::WorkloadState st;
  grpc::Status s = stub_->Activate(&ctx, req, &st);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("not managed"));
}

// A replica's credential is a private file that speaks for its pod and workload only:
// samples naming another pod or workload are refused (and counted); without a token, or
// as a viewer, the stream is refused.
TEST_F(LocalScaling, EachReplicaCredentialSpeaksForItsPodOnly) {
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", testing::Bearer(testing::kBalancerToken));
    v1::ActivateRequest req;
    req.set_workload(kWorkload);
    req.set_held_requests(1);
    v1::WorkloadState st;
    ASSERT_TRUE(stub_->Activate(&ctx, req, &st).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return !ReadyAddresses().empty(); }, absl::Seconds(30)))
      << scaler_->ReadLog();
  // The sidecar's command line names its token file.
  const std::string cmdline = Shell(
      "pgrep -a -f -- '--po[d]=local/m-0' | grep -o -- "
      "'--token-file=[^ ]*' | head -1");
  ASSERT_THAT(cmdline, HasSubstr("--token-file="));
  std::string path = cmdline.substr(cmdline.find('=') + 1);
  while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
  EXPECT_EQ(Shell("stat -c %a " + path), "600\n");
  EXPECT_EQ(Shell("stat -c %a $(dirname " + path + ")"), "700\n");
  std::string token;
  std::ifstream(path) >> token;
  ASSERT_FALSE(token.empty());

  auto metrics = v1::MetricsService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_), grpc::InsecureChannelCredentials()));
  const uint64_t seq = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  auto send = [&](const std::string& authorization, const std::string& id,
                  const std::string& workload, uint64_t s, v1::StreamResponse* resp) {
    grpc::ClientContext ctx;
    if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
    auto stream = metrics->Stream(&ctx);
    v1::StreamRequest req;
    v1::Podmetric* p = req.add_samples();
    p->set_id(id);
    p->set_workload(workload);
    p->set_seq(s);
    p->set_ready(false);
    stream->Write(req);
    if (!stream->Read(resp)) return stream->Finish();  // refused: the status says why
    stream->WritesDone();
    ctx.TryCancel();
    (void)stream->Finish();
    return grpc::Status::OK;
  };
  v1::StreamResponse resp;
  ASSERT_TRUE(send(testing::Bearer(token), "local/m-1", kWorkload, seq, &resp).ok());
  ASSERT_EQ(resp.rejections_size(), 1);
  EXPECT_EQ(resp.rejections(0).field(), "id");
  EXPECT_THAT(resp.rejections(0).message(), HasSubstr("permission denied"));
  resp.Clear();
  ASSERT_TRUE(
      send(testing::Bearer(token), "local/m-0", "local/Deployment/other", seq + 1, &resp).ok());
  ASSERT_EQ(resp.rejections_size(), 1);
  EXPECT_EQ(resp.rejections(0).field(), "workload");
  resp.Clear();
  // Far ahead of any sidecar's numbering: refused, the pod's mark untouched.
  ASSERT_TRUE(send(testing::Bearer(token), "local/m-0", kWorkload, ~uint64_t{0}, &resp).ok());
  ASSERT_EQ(resp.rejections_size(), 1);
  EXPECT_EQ(resp.rejections(0).field(), "seq");
  EXPECT_EQ(send("", "local/m-0", kWorkload, seq + 2, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(send(testing::Bearer(testing::kViewerToken), "local/m-0", kWorkload, seq + 3, &resp)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  const std::string prom = Shell(absl::StrCat("curl -s http://127.0.0.1:", http_, "/metrics"));
  EXPECT_THAT(prom, HasSubstr("zeroscale_ingest_refused_total{reason=\"id\"} 1"));
  EXPECT_THAT(prom, HasSubstr("zeroscale_ingest_refused_total{reason=\"workload\"} 1"));
  EXPECT_THAT(prom, HasSubstr("zeroscale_ingest_refused_total{reason=\"seq\"} 1"));
  EXPECT_THAT(prom, HasSubstr("zeroscale_ingest_refused_total{reason=\"unauthenticated\"} 1"));
  EXPECT_THAT(prom, HasSubstr("zeroscale_ingest_refused_total{reason=\"not_a_pod\"} 1"));
  // The real sidecar's samples keep arriving: its pod stays ready.
  EXPECT_FALSE(ReadyAddresses().empty());
}

}  // namespace
}  // namespace zeroscale
