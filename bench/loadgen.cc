// zeroscale-loadgen: N simulated pods, each with its own MetricsService stream, sending
// Podmetric samples at a given rate (or as fast as acknowledgements allow) and
// counting what the scaler acknowledged. Prints one line per second and a summary
// (acknowledged samples/s over the measured part of the run).
//
// One process, gRPC callback reactors: no thread per simulated pod.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/config/flags.h"
#include "common/grpcutil/credentials.h"
#include "common/model/podmetric.h"
#include "common/model/proto_convert.h"
#include "grpcpp/grpcpp.h"
#include "zeroscale/v1/metrics_service.grpc.pb.h"

namespace zeroscale::bench {
namespace {

struct Options {
  config::HostPort scaler;
  int64_t pods = 100;
  double rate = 0;  // samples/s per pod; 0: as fast as the window allows
  int64_t batch = 1;
  int64_t window = 64;
  absl::Duration duration = absl::Seconds(10);
  absl::Duration warmup = absl::Seconds(2);
  int64_t channels = 4;
  bool print_sample = false;
  bool quiet = false;
  // Each pod's stream presents "Bearer <prefix><pod>" (a zeroscale:pods token of
  // bench/pod-<pod> in the scaler's --auth-tokens); "": none.
  std::string token_prefix;
};

struct Stats {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> acked{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> failed_streams{0};
};

Podmetric MakeSample(int pod, uint64_t seq, std::mt19937& rng) {
  std::uniform_real_distribution<double> pct(0, 100);
  Podmetric m;
  m.id = absl::StrCat("bench/pod-", pod);
  m.workload = absl::StrCat("bench/Deployment/model-", pod % 100);
  m.cpu_usage = pct(rng);
  m.memory_usage = pct(rng);
  m.disk_usage = pct(rng);
  m.average_response_time = pct(rng);
  m.request_count = static_cast<uint64_t>(pct(rng));
  m.request_rate = pct(rng);
  m.in_flight = pct(rng) / 10;
  m.p99_response_time = pct(rng) * 3;
  m.cpu_cores = pct(rng) / 50;
  m.memory_bytes = 1e9 + pct(rng) * 1e7;
  m.sampled_at = absl::Now();
  m.ready = true;
  m.seq = seq;
  return m;
}

class PodStream : public grpc::ClientBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  PodStream(v1::MetricsService::Stub* stub, int pod, const Options& o, Stats* stats)
      : pod_(pod), options_(o), stats_(stats), rng_(pod) {
    if (!options_.token_prefix.empty()) {
      ctx_.AddMetadata("authorization", absl::StrCat("Bearer ", options_.token_prefix, pod));
    }
    stub->async()->Stream(&ctx_, this);
    StartRead(&response_);
    StartCall();
  }

  // Adds the samples due since the last tick (rate mode) and sends what it can.
  void Tick(double seconds) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (options_.rate > 0) {
        budget_ = std::min(budget_ + options_.rate * seconds, static_cast<double>(options_.window));
      }
    }
    TrySend();
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (!writing_ && !closed_) {
      closed_ = true;
      StartWritesDone();
    }
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (stopping_ && !closed_) {
        closed_ = true;
        StartWritesDone();
        return;
      }
      if (!ok) return;
    }
    TrySend();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    const uint64_t acked = response_.acked_seq();
    stats_->rejected += response_.rejections_size();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (acked > acked_) {
        stats_->acked += acked - acked_;
        acked_ = acked;
      }
    }
    StartRead(&response_);
    TrySend();
  }

  void OnDone(const grpc::Status& s) override {
    if (!s.ok()) ++stats_->failed_streams;
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    cv_.notify_all();
  }

  void Await() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [this] { return done_; });
  }

 private:
  void TrySend() {
    std::unique_lock<std::mutex> lock(mu_);
    if (writing_ || stopping_ || done_) return;
    int64_t n = std::min<int64_t>(options_.batch,
                                  options_.window - static_cast<int64_t>(next_seq_ - 1 - acked_));
    if (options_.rate > 0) n = std::min<int64_t>(n, static_cast<int64_t>(budget_));
    if (n <= 0) return;
    request_.Clear();
    for (int64_t i = 0; i < n; ++i) {
      PodmetricToProto(MakeSample(pod_, next_seq_++, rng_), request_.add_samples());
    }
    if (options_.rate > 0) budget_ -= static_cast<double>(n);
    writing_ = true;
    stats_->sent += n;
    lock.unlock();
    StartWrite(&request_);
  }

  const int pod_;
  const Options& options_;
  Stats* const stats_;
  std::mt19937 rng_;
  grpc::ClientContext ctx_;
  v1::StreamRequest request_;
  v1::StreamResponse response_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_seq_ = 1;
  uint64_t acked_ = 0;
  double budget_ = 0;
  bool writing_ = false;
  bool stopping_ = false;
  bool closed_ = false;
  bool done_ = false;
};

int Run(int argc, char** argv) {
  Options o;
  config::FlagSet fs("zeroscale-loadgen",
                     "Simulates N pods streaming Podmetric samples to a scaler.");
  fs.Address("scaler", &o.scaler, "127.0.0.1:9090", "The scaler's gRPC address");
  fs.Int("pods", &o.pods, 100, "Simulated pods (one stream each)", 1, 1000000);
  std::string rate = "0";
  fs.String("rate", &rate, "0", "Samples per second per pod; 0: as fast as acknowledged");
  fs.Int("batch", &o.batch, 1, "Samples per stream message", 1, 10000);
  fs.Int("window", &o.window, 64, "Unacknowledged samples allowed per stream", 1, 1000000);
  fs.Duration("duration", &o.duration, absl::Seconds(10), "How long to send");
  fs.Duration("warmup", &o.warmup, absl::Seconds(2), "Not counted in the summary");
  fs.Int("channels", &o.channels, 4, "gRPC channels (connections) shared by the streams", 1, 1000);
  fs.Bool("print-sample", &o.print_sample, false,
          "Print one sample as the scaler stores it, then exit");
  fs.Bool("quiet", &o.quiet, false, "Only the summary line");
  grpcutil::ScalerTls tls;
  grpcutil::RegisterScalerTlsFlags(&fs, &tls);
  fs.String("token-prefix", &o.token_prefix, "",
            "Each pod's stream sends the bearer token <prefix><pod number> (pod credentials "
            "in the scaler's --auth-tokens); empty: none");
  fs.ParseOrExit(argc, argv);
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      grpcutil::MakeChannelCredentials(tls);
  if (!credentials.ok()) {
    std::fprintf(stderr, "zeroscale-loadgen: %s\n",
                 std::string(credentials.status().message()).c_str());
    return 2;
  }
  if (!absl::SimpleAtod(rate, &o.rate) || o.rate < 0) {
    std::fprintf(stderr, "zeroscale-loadgen: invalid value '%s' for --rate\n", rate.c_str());
    return 2;
  }
  if (o.print_sample) {
    std::mt19937 rng(1);
    Podmetric m = MakeSample(1, 1'800'000'000'000'000, rng);
    m.received_at = absl::Now();
    std::printf("%s\n", PodmetricToJson(m).c_str());
    return 0;
  }

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::MetricsService::Stub>> stubs;
  for (int64_t i = 0; i < o.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("zs_channel", static_cast<int>(i));  // distinct channels, distinct connections
    if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
    channels.push_back(grpc::CreateCustomChannel(o.scaler.ToString(), *credentials, args));
    stubs.push_back(v1::MetricsService::NewStub(channels.back()));
  }
  Stats stats;
  std::vector<std::unique_ptr<PodStream>> streams;
  streams.reserve(o.pods);
  for (int64_t i = 0; i < o.pods; ++i) {
    streams.push_back(
        std::make_unique<PodStream>(stubs[i % o.channels].get(), static_cast<int>(i), o, &stats));
  }
  const absl::Time start = absl::Now();
  const absl::Time end = start + o.duration;
  absl::Time last = start, last_print = start, measure_from = start + o.warmup;
  uint64_t acked_at_print = 0, acked_at_measure = 0;
  bool measuring = false;
  while (absl::Now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(o.rate > 0 ? 10 : 100));
    const absl::Time now = absl::Now();
    const double dt = absl::ToDoubleSeconds(now - last);
    last = now;
    for (auto& s : streams) s->Tick(dt);
    if (!measuring && now >= measure_from) {
      measuring = true;
      measure_from = now;
      acked_at_measure = stats.acked;
    }
    if (now - last_print >= absl::Seconds(1)) {
      const uint64_t acked = stats.acked;
      if (!o.quiet) {
        std::printf("t=%.0fs acked/s=%.0f sent=%lu acked=%lu rejected=%lu\n",
                    absl::ToDoubleSeconds(now - start),
                    (acked - acked_at_print) / absl::ToDoubleSeconds(now - last_print),
                    static_cast<unsigned long>(stats.sent.load()),
                    static_cast<unsigned long>(acked),
                    static_cast<unsigned long>(stats.rejected.load()));
        std::fflush(stdout);
      }
      acked_at_print = acked;
      last_print = now;
    }
  }
  const double measured = absl::ToDoubleSeconds(absl::Now() - measure_from);
  const uint64_t acked_measured = stats.acked - acked_at_measure;
  for (auto& s : streams) s->Stop();
  for (auto& s : streams) s->Await();
  std::printf(
      "summary pods=%ld batch=%ld window=%ld rate=%s acked_per_s=%.0f sent=%lu "
      "acked=%lu rejected=%lu failed_streams=%lu\n",
      static_cast<long>(o.pods), static_cast<long>(o.batch), static_cast<long>(o.window),
      rate.c_str(), acked_measured / measured, static_cast<unsigned long>(stats.sent.load()),
      static_cast<unsigned long>(stats.acked.load()),
      static_cast<unsigned long>(stats.rejected.load()),
      static_cast<unsigned long>(stats.failed_streams.load()));
  return stats.failed_streams > 0 ? 1 : 0;
}

}  // namespace
}  // namespace zeroscale::bench

int main(int argc, char** argv) { return zeroscale::bench::Run(argc, argv); }
