// Nothing acknowledged is lost: pods stream samples to the real zeroscale-scaler while
// redis-server (run with the persistence the chart and the demo ship) and the scaler are
// killed with SIGKILL at random moments and restarted. Each simulated pod behaves as a
// sidecar does: one MetricsService stream, a window of unacknowledged samples, and after a
// broken stream a new one that replays everything after the last acknowledgement. At the
// end every (pod, seq) a sender saw acknowledged must be in Redis, once.
//
// No timing assertions: the random moments only vary where the kills land. The run is
// bounded (a few kill cycles; ZEROSCALE_DURABILITY_CYCLES, _PODS and _SEED make longer
// or repeatable runs, e.g. for the README's figures).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/auth_files.h"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"
#include "zeroscale/v1/metrics_service.grpc.pb.h"

namespace zeroscale {
namespace {

using testing::ChildProcess;
using testing::FreePort;
using testing::WaitFor;

constexpr char kWorkload[] = "durability/Deployment/m";

int64_t EnvInt(const char* name, int64_t fallback) {
  int64_t v = 0;
  const char* s = std::getenv(name);
  return s != nullptr && absl::SimpleAtoi(s, &v) ? v : fallback;
}

// One simulated pod's sender: its own thread, one stream at a time.
class PodSender {
 public:
  PodSender(std::string id, std::shared_ptr<grpc::Channel> channel, double rate)
      : id_(std::move(id)), stub_(v1::MetricsService::NewStub(channel)), rate_(rate) {}
  ~PodSender() { Join(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  // Stops taking new samples; keeps replaying until everything sent is acknowledged.
  void StopNew() { stop_new_ = true; }
  // Stops at once.
  void Stop() {
    stop_ = true;
    std::lock_guard<std::mutex> lock(mu_);
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  bool Drained() const { return acked_ + 1 >= next_seq_; }

  const std::string& id() const { return id_; }
  uint64_t acked() const { return acked_; }
  uint64_t generated() const { return next_seq_ - 1; }
  uint64_t streams() const { return streams_; }
  uint64_t rejections() const { return rejections_; }

 private:
  static constexpr uint64_t kWindow = 256;
  static constexpr uint64_t kBatch = 16;

  v1::Podmetric Sample(uint64_t seq) const {
    v1::Podmetric p;
    p.set_id(id_);
    p.set_workload(kWorkload);
    p.set_cpu_usage(static_cast<double>(seq % 100));
    p.set_memory_usage(50);
    p.set_in_flight(1);
    p.set_ready(true);
    p.set_seq(seq);
    return p;
  }

  void Run() {
    while (!stop_ && !(stop_new_ && Drained())) {
      RunStream();
      if (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // One stream: replays what is unacknowledged, then sends new samples, until it breaks.
  void RunStream() {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", testing::Bearer(testing::PodToken(id_)));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      ctx_ = &ctx;
    }
    std::unique_ptr<grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>> stream =
        stub_->Stream(&ctx);
    ++streams_;
    std::atomic<bool> broken{false};
    std::thread reader([&] {
      v1::StreamResponse resp;
      while (stream->Read(&resp)) {
        if (resp.acked_seq() > acked_) acked_ = resp.acked_seq();
        rejections_ += resp.rejections_size();
      }
      broken = true;
    });
    uint64_t sent = acked_;  // a new stream starts after the last acknowledgement
    const auto start = std::chrono::steady_clock::now();
    uint64_t new_samples = 0;
    while (!stop_ && !broken) {
      if (stop_new_ && sent + 1 >= next_seq_) {
        if (Drained()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      if (sent >= acked_ + kWindow) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      v1::StreamRequest req;
      while (req.samples_size() < static_cast<int>(kBatch) && sent < acked_ + kWindow) {
        if (sent + 1 == next_seq_) {
          if (stop_new_) break;
          if (rate_ > 0) {  // paced like a sidecar: rate samples/s
            const double elapsed =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (static_cast<double>(new_samples) >= elapsed * rate_) break;
          }
          ++next_seq_;
          ++new_samples;
        }
        *req.add_samples() = Sample(++sent);
      }
      if (req.samples_size() == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      if (!stream->Write(req)) break;
    }
    if (!broken && !stop_) stream->WritesDone();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ctx_ = nullptr;
    }
    ctx.TryCancel();
    reader.join();
    (void)stream->Finish();
  }

  const std::string id_;
  std::unique_ptr<v1::MetricsService::Stub> stub_;
  const double rate_;  // new samples per second; 0: as fast as acknowledged
  std::atomic<bool> stop_{false};
  std::atomic<bool> stop_new_{false};
  std::atomic<uint64_t> acked_{0};     // highest cumulative acknowledgement
  std::atomic<uint64_t> next_seq_{1};  // the next new sample's seq
  std::atomic<uint64_t> streams_{0};
  std::atomic<uint64_t> rejections_{0};
  std::mutex mu_;
  grpc::ClientContext* ctx_ = nullptr;  // the stream's, while one is open (guarded by mu_)
  std::thread thread_;
};

class Durability : public ::testing::Test {
 protected:
  void StartScaler() {
    http_ = FreePort();
    grpc_ = FreePort();
    // Each simulated pod streams with a credential of its own, as sidecars do.
    std::vector<std::string> pods;
    for (int p = 0; p < kMaxPods; ++p) pods.push_back(absl::StrCat("durability/pod-", p));
    const std::string tokens = testing::WriteTestTokens(
        absl::StrCat(::testing::TempDir(), "/durability-", ::getpid()), pods);
    scaler_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{ZS_SCALER_BIN, absl::StrCat("--redis=", redis_->address()),
                                 absl::StrCat("--http-listen=127.0.0.1:", http_),
                                 absl::StrCat("--grpc-listen=127.0.0.1:", grpc_),
                                 absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()),
                                 "--backend=none", "--auth-tokens=" + tokens});
    ASSERT_TRUE(scaler_->Start().ok());
    WaitScaler();
  }
  void WaitScaler() {
    ASSERT_TRUE(WaitFor([&] { return testing::HttpGetStatus(http_, "/healthz") == 200; },
                        absl::Seconds(30)))
        << scaler_->ReadLog();
  }

  static constexpr int kMaxPods = 256;  // the most a run may simulate (credentials made)

  void StartSenders(int pods, double rate) {
    ASSERT_LE(pods, kMaxPods);
    grpc::ChannelArguments args;
    // Reconnect to a restarted scaler at once, not after gRPC's default backoff.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    for (int c = 0; c < 2; ++c) {
      args.SetInt("zeroscale.test.channel", c);  // two connections, not one shared
      channels.push_back(grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", grpc_),
                                                   grpc::InsecureChannelCredentials(), args));
    }
    for (int p = 0; p < pods; ++p) {
      senders_.push_back(
          std::make_unique<PodSender>(absl::StrCat("durability/pod-", p), channels[p % 2], rate));
      senders_.back()->Start();
    }
  }

  // The seqs stored for `pod` and how many members hold them (more: a duplicate).
  std::pair<std::set<uint64_t>, size_t> Stored(const std::string& pod) {
    std::set<uint64_t> seqs;
    size_t members = 0;
    // redis-cli prints one member per line (JSON has no raw newline).
    std::stringstream lines(redis_->Cli(absl::StrCat("ZRANGE podmetric:", pod, " 0 -1")));
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      seqs.insert(nlohmann::json::parse(line)["seq"].get<uint64_t>());
      ++members;
    }
    return {seqs, members};
  }

  std::unique_ptr<testing::RedisServer> redis_;
  uint16_t http_ = 0, grpc_ = 0;
  std::unique_ptr<ChildProcess> scaler_;
  std::vector<std::unique_ptr<PodSender>> senders_;
};

// Acknowledged minus stored = 0 across SIGKILLs of Redis and of the scaler.
TEST_F(Durability, KillsOfRedisAndTheScalerLoseNoAcknowledgedSample) {
  const int64_t cycles = EnvInt("ZEROSCALE_DURABILITY_CYCLES", 4);
  const int64_t pods = EnvInt("ZEROSCALE_DURABILITY_PODS", 12);
  const uint64_t seed = static_cast<uint64_t>(
      EnvInt("ZEROSCALE_DURABILITY_SEED", static_cast<int64_t>(std::random_device{}())));
  std::printf("seed %llu (ZEROSCALE_DURABILITY_SEED repeats the kill schedule)\n",
              static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  redis_ = std::make_unique<testing::RedisServer>(/*persistent=*/true);
  ASSERT_TRUE(redis_->Start().ok());
  StartScaler();
  StartSenders(static_cast<int>(pods), /*rate=*/0);

  int redis_kills = 0, scaler_kills = 0;
  std::uniform_int_distribution<int> pause_ms(200, 1500), down_ms(0, 500), what(0, 2);
  for (int64_t c = 0; c < cycles; ++c) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    const int target = what(rng);  // 0: Redis, 1: the scaler, 2: both
    if (target != 1) {
      redis_->Kill();
      ++redis_kills;
    }
    if (target != 0) {
      scaler_->Kill();
      ++scaler_kills;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms(rng)));
    if (target != 1) ASSERT_TRUE(redis_->Start().ok()) << "cycle " << c;
    if (target != 0) {
      ASSERT_TRUE(scaler_->Start().ok());
      WaitScaler();
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (auto& s : senders_) s->StopNew();
  const bool drained = WaitFor(
      [&] {
        for (auto& s : senders_) {
          if (!s->Drained()) return false;
        }
        return true;
      },
      absl::Seconds(120));
  for (auto& s : senders_) s->Stop();
  for (auto& s : senders_) s->Join();
  EXPECT_TRUE(drained) << "not everything sent was acknowledged in 2 minutes\n"
                       << scaler_->ReadLog();

  uint64_t acknowledged = 0, lost = 0, stored_total = 0, duplicates = 0, streams = 0;
  for (auto& s : senders_) {
    const auto [seqs, members] = Stored(s->id());
    uint64_t missing = 0;
    for (uint64_t seq = 1; seq <= s->acked(); ++seq) missing += seqs.count(seq) == 0 ? 1 : 0;
    EXPECT_EQ(missing, 0u) << s->id() << ": " << missing << " of " << s->acked()
                           << " acknowledged samples are not in Redis";
    EXPECT_EQ(members, seqs.size()) << s->id() << ": a sample stored twice";
    EXPECT_EQ(s->rejections(), 0u) << s->id();
    acknowledged += s->acked();
    lost += missing;
    stored_total += seqs.size();
    duplicates += members - seqs.size();
    streams += s->streams();
  }
  EXPECT_GT(acknowledged, 0u);
  // Every pod is in the index a new leader reads windows through.
  const std::string indexed =
      redis_->Cli(absl::StrCat("SCARD zeroscale:workload:", kWorkload, ":pods"));
  EXPECT_EQ(indexed, absl::StrCat(pods, "\n"));
  std::printf(
      "RESULT cycles %lld (redis kills %d, scaler kills %d), pods %lld, stream attempts %llu: "
      "acknowledged %llu, stored %llu, acknowledged but not stored %llu, duplicates %llu\n",
      static_cast<long long>(cycles), redis_kills, scaler_kills, static_cast<long long>(pods),
      static_cast<unsigned long long>(streams), static_cast<unsigned long long>(acknowledged),
      static_cast<unsigned long long>(stored_total), static_cast<unsigned long long>(lost),
      static_cast<unsigned long long>(duplicates));
}

// A Redis without persistence (or whose volume was lost) comes back empty while pods
// stream at a sidecar's pace: the scaler writes its indexes again, so every pod that
// still reports is found by a leader reading windows through them.
TEST_F(Durability, ARedisBackEmptyGetsEveryReportingPodBackInTheIndex) {
  redis_ = std::make_unique<testing::RedisServer>(/*persistent=*/false);
  ASSERT_TRUE(redis_->Start().ok());
  StartScaler();
  constexpr int kPods = 6;
  StartSenders(kPods, /*rate=*/2);
  const std::string scard = absl::StrCat("SCARD zeroscale:workload:", kWorkload, ":pods");
  const std::string all = absl::StrCat(kPods, "\n");
  ASSERT_TRUE(WaitFor([&] { return redis_->Cli(scard) == all; }, absl::Seconds(30)));
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(redis_->Restart().ok());
    EXPECT_TRUE(WaitFor([&] { return redis_->Cli(scard) == all; }, absl::Seconds(30)))
        << "round " << round << ": " << redis_->Cli(scard) << scaler_->ReadLog();
    EXPECT_EQ(redis_->Cli("SISMEMBER zeroscale:workloads " + std::string(kWorkload)), "1\n");
  }
  for (auto& s : senders_) s->Stop();
  for (auto& s : senders_) s->Join();
}

}  // namespace
}  // namespace zeroscale
