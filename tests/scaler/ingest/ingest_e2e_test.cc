// The real zeroscale-scaler binary with a real redis-server: gRPC streams, POST
// /metrics, RulesService, Prometheus text, and Redis dying mid-stream.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"
#include "zeroscale/v1/metrics_service.grpc.pb.h"
#include "zeroscale/v1/rules.grpc.pb.h"

namespace zeroscale {
namespace {

using testing::ChildProcess;
using testing::FreePort;
using ::testing::HasSubstr;
using testing::Shell;
using testing::WaitFor;

class ScalerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    http_ = FreePort();
    grpc_ = FreePort();
    scaler_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{ZS_SCALER_BIN, absl::StrCat("--redis=", redis_.address()),
                                 absl::StrCat("--http-listen=127.0.0.1:", http_),
                                 absl::StrCat("--grpc-listen=127.0.0.1:", grpc_),
                                 absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()),
                                 // About ingest itself (seed 004's POST /metrics bodies,
                                 // several pods per stream, Redis faults), so identity is
                                 // off; tests/e2e/auth_e2e_test.cc checks it.
                                 "--insecure"});
    ASSERT_TRUE(scaler_->Start().ok());
    ASSERT_TRUE(
        WaitFor([&] { return testing::HttpGetStatus(http_, "/readyz") == 200; }, absl::Seconds(20)))
        << scaler_->ReadLog();
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_), grpc::InsecureChannelCredentials());
  }

  std::string Post(const std::string& body) {
    return Shell(
        absl::StrCat("curl -s -w ' %{http_code}' -H 'Content-Type: application/json' "
                     "--data-binary '",
                     body, "' http://127.0.0.1:", http_, "/metrics"));
  }

  int64_t Card(const std::string& key) { return std::stoll(redis_.Cli("ZCARD " + key)); }

  static v1::Podmetric Sample(const std::string& id, uint64_t seq, double cpu = 10) {
    v1::Podmetric p;
    p.set_id(id);
    p.set_workload("e2e/Deployment/m");
    p.set_cpu_usage(cpu);
    p.set_seq(seq);
    p.set_ready(true);
    return p;
  }

  testing::RedisServer redis_{/*persistent=*/true};
  uint16_t http_ = 0, grpc_ = 0;
  std::unique_ptr<ChildProcess> scaler_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ScalerE2E, StreamedSamplesLandAndAreAcknowledged) {
  auto stub = v1::MetricsService::NewStub(channel_);
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  v1::StreamRequest req;
  for (uint64_t s = 1; s <= 5; ++s) *req.add_samples() = Sample("e2e/p1", s);
  ASSERT_TRUE(stream->Write(req));
  req.Clear();
  for (uint64_t s = 6; s <= 10; ++s) *req.add_samples() = Sample("e2e/p1", s);
  ASSERT_TRUE(stream->Write(req));
  v1::StreamResponse resp;
  uint64_t acked = 0;
  while (acked < 10 && stream->Read(&resp)) acked = resp.acked_seq();
  EXPECT_EQ(acked, 10u);
  // Acknowledged means stored.
  EXPECT_EQ(Card("podmetric:e2e/p1"), 10);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  // Members with equal scores sort by their bytes: collect the seqs as a set.
  std::set<uint64_t> seqs;
  std::stringstream members(redis_.Cli("ZRANGE podmetric:e2e/p1 0 -1"));
  for (std::string line; std::getline(members, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["workload"], "e2e/Deployment/m");
    EXPECT_TRUE(j.contains("receivedAt"));
    seqs.insert(j["seq"].get<uint64_t>());
  }
  EXPECT_EQ(seqs.size(), 10u);
  EXPECT_EQ(*seqs.begin(), 1u);
  EXPECT_EQ(*seqs.rbegin(), 10u);
}

TEST_F(ScalerE2E, AMalformedSampleIsRejectedAndTheStreamGoesOn) {
  auto stub = v1::MetricsService::NewStub(channel_);
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  v1::StreamRequest req;
  *req.add_samples() = Sample("e2e/p2", 1);
  *req.add_samples() = Sample("e2e/p2", 2, -5);
  ASSERT_TRUE(stream->Write(req));
  req.Clear();
  *req.add_samples() = Sample("e2e/p2", 3);
  ASSERT_TRUE(stream->Write(req));
  v1::StreamResponse resp;
  uint64_t acked = 0;
  std::vector<v1::Rejection> rejections;
  while (acked < 3 && stream->Read(&resp)) {
    acked = resp.acked_seq();
    for (const auto& r : resp.rejections()) rejections.push_back(r);
  }
  EXPECT_EQ(acked, 3u);
  ASSERT_EQ(rejections.size(), 1u);
  EXPECT_EQ(rejections[0].seq(), 2u);
  EXPECT_EQ(rejections[0].field(), "cpuUsage");
  EXPECT_THAT(rejections[0].message(), HasSubstr("negative"));
  EXPECT_EQ(Card("podmetric:e2e/p2"), 2);
  ctx.TryCancel();
}

TEST_F(ScalerE2E, RedisKilledMidStreamLosesNoAcknowledgedSample) {
  auto stub = v1::MetricsService::NewStub(channel_);
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  std::atomic<uint64_t> acked{0};
  std::thread reader([&] {
    v1::StreamResponse resp;
    while (stream->Read(&resp)) acked = resp.acked_seq();
  });
  constexpr uint64_t kTotal = 300;
  for (uint64_t s = 1; s <= kTotal; ++s) {
    v1::StreamRequest req;
    *req.add_samples() = Sample("e2e/p3", s);
    ASSERT_TRUE(stream->Write(req));
    if (s == 100) {
      ASSERT_TRUE(WaitFor([&] { return acked >= 100; }, absl::Seconds(10)));
      redis_.Kill();
      // While Redis is down: not ready, and nothing more is acknowledged.
      EXPECT_TRUE(WaitFor([&] { return testing::HttpGetStatus(http_, "/readyz") == 503; },
                          absl::Seconds(10)));
    }
    if (s == 200) {
      EXPECT_LE(acked.load(), 100u);
      ASSERT_TRUE(redis_.Start().ok());
    }
  }
  ASSERT_TRUE(WaitFor([&] { return acked >= kTotal; }, absl::Seconds(30)))
      << "acked " << acked << "\n"
      << scaler_->ReadLog();
  EXPECT_EQ(Card("podmetric:e2e/p3"), static_cast<int64_t>(kTotal));
  EXPECT_EQ(testing::HttpGetStatus(http_, "/readyz"), 200);
  stream->WritesDone();
  reader.join();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ScalerE2E, ReplayAfterReconnectIsStoredOnce) {
  auto stub = v1::MetricsService::NewStub(channel_);
  for (int round = 0; round < 2; ++round) {  // the second stream replays seq 1..5
    grpc::ClientContext ctx;
    auto stream = stub->Stream(&ctx);
    v1::StreamRequest req;
    for (uint64_t s = 1; s <= 5u + round * 3u; ++s) *req.add_samples() = Sample("e2e/p4", s);
    ASSERT_TRUE(stream->Write(req));
    stream->WritesDone();
    v1::StreamResponse resp;
    uint64_t acked = 0;
    while (stream->Read(&resp)) acked = resp.acked_seq();
    EXPECT_EQ(acked, 5u + round * 3u);
    EXPECT_TRUE(stream->Finish().ok());
  }
  EXPECT_EQ(Card("podmetric:e2e/p4"), 8);
}

TEST_F(ScalerE2E, PostMetricsSeedFormat) {
  EXPECT_EQ(Post(R"({"id":"e2e/http","cpuUsage":42.5,"memoryUsage":61.0,"diskUsage":7.25,)"
                 R"("averageResponseTime":12.5,"receivedAt":"2020-01-01T00:00:00Z"})"),
            "{\"stored\":1}\n 200");
  const nlohmann::json j = nlohmann::json::parse(redis_.Cli("ZRANGE podmetric:e2e/http 0 0"));
  EXPECT_EQ(j["cpuUsage"], 42.5);
  EXPECT_NE(j["receivedAt"], "2020-01-01T00:00:00.000Z");  // stamped on receipt
  const std::string bad = Post(R"({"id":"e2e/bad","cpuUsage":-5})");
  EXPECT_THAT(bad, HasSubstr("cpuUsage"));
  EXPECT_THAT(bad, HasSubstr(" 400"));
  EXPECT_THAT(Post(R"([{"id":"e2e/arr"},{"id":"e2e/arr2","diskUsage":-1}])"),
              HasSubstr("[1].diskUsage"));
  EXPECT_EQ(Card("podmetric:e2e/bad"), 0);
  EXPECT_EQ(Card("podmetric:e2e/arr"), 0);  // a batch is all or nothing
  EXPECT_THAT(Post("{not json"), HasSubstr("not valid JSON"));
  // A single object is not named by index, even when a value holds a bracket.
  EXPECT_THAT(Post(R"({"id":"e2e/x[1]","cpuUsage":-1})"), HasSubstr("{\"error\":\"cpuUsage:"));
  EXPECT_THAT(Post(R"( [{"id":"e2e/y","cpuUsage":-1}])"), HasSubstr("{\"error\":\"[0].cpuUsage:"));
}

// Resident memory of a process in bytes, from /proc.
int64_t RssBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

// Issue 10: a 13 MiB array of 780k samples took the scaler from 22 MB to 1.34 GB in one
// request (2.07 GB after three). Bodies and item counts are bounded now, and memory
// stays flat under a stream of the largest bodies allowed.
TEST_F(ScalerE2E, PostMetricsIsBoundedInSizeItemsAndMemory) {
  const std::string file = absl::StrCat(::testing::TempDir(), "/big_body.json");
  auto post_file = [&](const std::string& body) {
    std::ofstream(file, std::ios::binary | std::ios::trunc) << body;
    return Shell(
        absl::StrCat("curl -s -w ' %{http_code}' -H 'Content-Type: application/json' "
                     "--data-binary @",
                     file, " http://127.0.0.1:", http_, "/metrics"));
  };
  auto items = [](size_t n, size_t first, const std::string& extra) {
    std::string body = "[";
    for (size_t i = 0; i < n; ++i) {
      absl::StrAppend(&body, i ? "," : "", R"({"id":"m/)", first + i, R"(")", extra, "}");
    }
    return body + "]";
  };
  const int64_t before = RssBytes(scaler_->pid());
  ASSERT_GT(before, 0);
  // The reproducer: 780,000 samples with distinct ids in one body, then a million
  // identical ones.
  std::string reply = post_file(items(780000, 0, ""));
  EXPECT_THAT(reply, HasSubstr(" 413"));
  EXPECT_THAT(reply, HasSubstr("exceeds 1048576 bytes"));
  std::string same = "[";
  for (int i = 0; i < 1000000; ++i) absl::StrAppend(&same, i ? "," : "", R"({"id":"m/x"})");
  EXPECT_THAT(post_file(same + "]"), HasSubstr(" 413"));
  // Under the size limit but over the item limit.
  reply = post_file(items(1001, 0, ""));
  EXPECT_THAT(reply, HasSubstr(" 413"));
  EXPECT_THAT(reply, HasSubstr("more than the limit of 1000 per request"));
  EXPECT_EQ(std::stoll(redis_.Cli("DBSIZE")), 0);
  // The largest bodies allowed, many times over: stored, and memory stays flat.
  for (int round = 0; round < 40; ++round) {
    ASSERT_THAT(post_file(items(1000, round * 1000, R"(,"cpuUsage":1)")),
                HasSubstr("{\"stored\":1000}\n 200"));
  }
  const int64_t after = RssBytes(scaler_->pid());
  std::cout << "scaler RSS " << (before >> 20) << " MiB -> " << (after >> 20) << " MiB\n";
  EXPECT_LT(after - before, 64 << 20) << "RSS " << before << " -> " << after;
  std::remove(file.c_str());
}

// Out-of-order samples are rejected; the acknowledgement must never fall back below a
// sequence number already stored (the sidecar would replay what is stored).
TEST_F(ScalerE2E, AnOutOfOrderSampleNeverTakesTheAcknowledgementBack) {
  auto stub = v1::MetricsService::NewStub(channel_);
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  v1::StreamRequest req;
  *req.add_samples() = Sample("e2e/order", 5);
  ASSERT_TRUE(stream->Write(req));
  req.Clear();
  *req.add_samples() = Sample("e2e/order", 3);
  ASSERT_TRUE(stream->Write(req));
  stream->WritesDone();
  v1::StreamResponse resp;
  uint64_t last = 0;
  bool rejected = false;
  while (stream->Read(&resp)) {
    EXPECT_GE(resp.acked_seq(), last);
    last = resp.acked_seq();
    for (const auto& r : resp.rejections()) rejected |= r.seq() == 3 && r.field() == "seq";
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(rejected);
  EXPECT_EQ(last, 5u);
  EXPECT_EQ(std::stoll(redis_.Cli("HGET zeroscale:lastseq e2e/order")), 5);
}

// A message that is not a StreamRequest ends the stream with a status saying so (gRPC
// would have ended it with OK, as if the sidecar had closed it).
TEST_F(ScalerE2E, AnInvalidProtobufEndsTheStreamWithInvalidArgument) {
  grpc::GenericStub generic(channel_);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  auto call = generic.PrepareCall(&ctx, "/zeroscale.v1.MetricsService/Stream", &cq);
  auto wait = [&cq] {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(wait());
  // Field 1 (samples), three bytes long, holding a truncated varint.
  const char bytes[] = {0x0a, 0x03, '\xff', '\xff', '\xff'};
  grpc::Slice slice(bytes, sizeof(bytes));
  grpc::ByteBuffer buffer(&slice, 1);
  call->Write(buffer, reinterpret_cast<void*>(2));
  wait();
  call->WritesDone(reinterpret_cast<void*>(3));
  wait();
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  ASSERT_TRUE(wait());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("not a zeroscale.v1.StreamRequest"));
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(ScalerE2E, StreamsAreBoundedInSamplesPerMessageAndPods) {
  auto stub = v1::MetricsService::NewStub(channel_);
  {
    grpc::ClientContext ctx;
    auto stream = stub->Stream(&ctx);
    v1::StreamRequest req;
    for (uint64_t s = 1; s <= 1025; ++s) *req.add_samples() = Sample("e2e/many", s);
    stream->Write(req);
    stream->WritesDone();
    v1::StreamResponse resp;
    while (stream->Read(&resp)) {
    }
    const grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(status.error_message(), HasSubstr("at most 1024"));
  }
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  v1::StreamRequest req;
  for (uint64_t s = 1; s <= 17; ++s) *req.add_samples() = Sample(absl::StrCat("e2e/pod", s), s);
  ASSERT_TRUE(stream->Write(req));
  stream->WritesDone();
  v1::StreamResponse resp;
  std::vector<v1::Rejection> rejections;
  uint64_t acked = 0;
  while (stream->Read(&resp)) {
    acked = resp.acked_seq();
    for (const auto& r : resp.rejections()) rejections.push_back(r);
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(acked, 17u);
  ASSERT_EQ(rejections.size(), 1u);
  EXPECT_EQ(rejections[0].seq(), 17u);
  EXPECT_EQ(rejections[0].field(), "id");
  EXPECT_THAT(rejections[0].message(), HasSubstr("16 pods"));
  EXPECT_EQ(Card("podmetric:e2e/pod16"), 1);
  EXPECT_EQ(Card("podmetric:e2e/pod17"), 0);
}

TEST_F(ScalerE2E, PostMetricsWhileRedisIsDownIs503) {
  redis_.Kill();
  ASSERT_TRUE(
      WaitFor([&] { return testing::HttpGetStatus(http_, "/readyz") == 503; }, absl::Seconds(10)));
  EXPECT_THAT(Post(R"({"id":"e2e/down"})"), HasSubstr(" 503"));
}

TEST_F(ScalerE2E, PrometheusMetrics) {
  Post(R"({"id":"e2e/m","cpuUsage":-1})");
  const std::string text = Shell(absl::StrCat("curl -s http://127.0.0.1:", http_, "/metrics"));
  EXPECT_THAT(text, HasSubstr("# TYPE zeroscale_ingest_samples_received_total counter"));
  EXPECT_THAT(text, HasSubstr("zeroscale_ingest_samples_rejected_total{reason=\"cpuUsage\"} 1"));
  EXPECT_THAT(text, HasSubstr("zeroscale_redis_up 1"));
  EXPECT_THAT(text, HasSubstr("zeroscale_redis_write_seconds_bucket"));
  EXPECT_THAT(text, HasSubstr("zeroscale_ingest_active_streams"));
}

TEST_F(ScalerE2E, RulesService) {
  auto stub = v1::RulesService::NewStub(channel_);
  v1::ScalingRule rule;
  rule.set_id("busy");
  rule.set_action(v1::INCREASE_INSTANCES);
  rule.set_target("e2e/Deployment/m");
  auto* t = rule.add_thresholds();
  t->set_metric_type(v1::IN_FLIGHT_REQUESTS);
  t->set_operator_(v1::GREATER_THAN);
  t->set_value(4);
  {
    grpc::ClientContext ctx;
    v1::ScalingRule out;
    ASSERT_TRUE(stub->CreateRule(&ctx, rule, &out).ok());
    EXPECT_EQ(out.window_seconds(), 60u);
  }
  EXPECT_THAT(redis_.Cli("GET scaling_rule:busy"),
              HasSubstr("\"metricType\":\"IN_FLIGHT_REQUESTS\""));
  {
    grpc::ClientContext ctx;
    v1::ScalingRule out;
    grpc::Status s = stub->CreateRule(&ctx, rule, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  }
  {
    v1::ScalingRule bad = rule;
    bad.set_id("bad");
    bad.clear_thresholds();
    grpc::ClientContext ctx;
    v1::ScalingRule out;
    grpc::Status s = stub->CreateRule(&ctx, bad, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("thresholds"));
  }
  {
    v1::ScalingRule bad = rule;
    bad.set_id("nan");
    bad.mutable_thresholds(0)->set_value(std::nan(""));
    grpc::ClientContext ctx;
    v1::ScalingRule out;
    EXPECT_THAT(stub->CreateRule(&ctx, bad, &out).error_message(),
                HasSubstr("thresholds[0].value"));
  }
  {
    grpc::ClientContext ctx;
    v1::ListRulesRequest req;
    req.set_target("e2e/Deployment/m");
    v1::ListRulesResponse out;
    ASSERT_TRUE(stub->ListRules(&ctx, req, &out).ok());
    ASSERT_EQ(out.rules_size(), 1);
  }
  {
    grpc::ClientContext ctx;
    v1::DeleteRuleRequest req;
    req.set_id("busy");
    v1::DeleteRuleResponse out;
    ASSERT_TRUE(stub->DeleteRule(&ctx, req, &out).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::GetRuleRequest req;
    req.set_id("busy");
    v1::ScalingRule out;
    EXPECT_EQ(stub->GetRule(&ctx, req, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

TEST(ScalerFlags, BadValueIsRefusedAtStartNamingIt) {
  const std::string out = Shell(absl::StrCat(ZS_SCALER_BIN, " --retention=forever; echo rc=$?"));
  EXPECT_THAT(out, HasSubstr("invalid value 'forever' for --retention"));
  EXPECT_THAT(out, HasSubstr("rc=2"));
  const std::string env =
      Shell(absl::StrCat("ZEROSCALE_REDIS=nowhere ", ZS_SCALER_BIN, "; echo rc=$?"));
  EXPECT_THAT(env, HasSubstr("ZEROSCALE_REDIS"));
  EXPECT_THAT(env, HasSubstr("rc=2"));
}

}  // namespace
}  // namespace zeroscale
