// zeroscale-decide-latency: end-to-end decision latency of the real scaler with the
// Kubernetes backend, from the sample that makes a rule hold to the scale PATCH reaching
// the API server. Everything runs on 127.0.0.1: a fake API server in this process
// (speaking the real wire format and timestamping each request as it arrives), a real
// redis-server and a real zeroscale-scaler (--backend=kubernetes, --leader-elect=false).
// Samples go over MetricsService.Stream as a sidecar sends them.
//
// Trials are independent: each has its own Deployment (1 replica) and CustomAutoscaler
// (minReplicas 1, maxReplicas 2, INCREASE_INSTANCES when IN_FLIGHT_REQUESTS > 4 over
// 1 s), so each sees exactly one scale-up, never a cooldown or a previous trial's state.
// A trial first sends idle samples (the rule does not hold) and waits for them to be
// acknowledged, then sends one busy sample: the clock starts just before it is written.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/config/flags.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"
#include "tests/testing/fake_apiserver.h"
#include "tests/testing/redis_server.h"
#include "zeroscale/v1/metrics_service.grpc.pb.h"

namespace zeroscale::bench {
namespace {

using json = nlohmann::json;

constexpr char kNamespace[] = "bench";
constexpr char kCrs[] =
    "/apis/autoscaler-group.autoscaler/v1alpha1/namespaces/bench/customautoscalers";

struct Options {
  std::string scaler_bin;
  int64_t trials = 50;
  int64_t idle_samples = 3;
  bool keep_logs = false;
};

Options ParseFlags(int argc, char** argv) {
  Options o;
  config::FlagSet fs("zeroscale-decide-latency",
                     "Time from the sample that makes a rule hold to the scale PATCH reaching "
                     "the API server, through the real scaler (Kubernetes backend)");
  fs.String("scaler", &o.scaler_bin, ZS_SCALER_BIN, "zeroscale-scaler executable");
  fs.Int("trials", &o.trials, 50, "Independent scale-ups measured (one workload each)", 1, 10000);
  fs.Int("idle-samples", &o.idle_samples, 3, "Samples below the threshold before the busy one", 0,
         100);
  fs.Bool("keep-logs", &o.keep_logs, false, "Print the scaler's log path instead of deleting it");
  fs.ParseOrExit(argc, argv);
  return o;
}

std::string WorkloadName(int i) { return absl::StrCat("model-", i); }

std::string CrJson(int i) {
  json rule = {
      {"id", "busy"},
      {"action", "INCREASE_INSTANCES"},
      {"windowSeconds", 1},
      {"cooldownSeconds", 0},
      {"thresholds",
       {{{"metricType", "IN_FLIGHT_REQUESTS"}, {"operator", "GREATER_THAN"}, {"value", 4}}}}};
  json cr = {{"apiVersion", "autoscaler-group.autoscaler/v1alpha1"},
             {"kind", "CustomAutoscaler"},
             {"metadata", {{"name", WorkloadName(i)}, {"namespace", kNamespace}}},
             {"spec",
              {{"scaleTargetRef",
                {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", WorkloadName(i)}}},
               {"minReplicas", 1},
               {"maxReplicas", 2},
               {"rules", json::array({rule})}}}};
  return cr.dump();
}

// One sidecar-like stream. Acknowledgements are read on a thread of their own so that
// the scaler's writes are never held up by an unread response.
class SampleStream {
 public:
  explicit SampleStream(const std::string& address)
      : stub_(v1::MetricsService::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))),
        stream_(stub_->Stream(&ctx_)) {
    reader_ = std::thread([this] {
      v1::StreamResponse r;
      while (stream_->Read(&r)) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          acked_ = std::max<uint64_t>(acked_, r.acked_seq());
          rejected_ += r.rejections_size();
        }
        cv_.notify_all();
      }
    });
  }
  ~SampleStream() {
    stream_->WritesDone();
    ctx_.TryCancel();
    reader_.join();
  }

  // Sends one sample of pod `pod` of workload `i`; returns its sequence number.
  uint64_t Send(int i, const std::string& pod, double in_flight) {
    v1::StreamRequest req;
    v1::Podmetric* m = req.add_samples();
    m->set_id(absl::StrCat(kNamespace, "/", pod));
    m->set_workload(absl::StrCat(kNamespace, "/Deployment/", WorkloadName(i)));
    m->set_cpu_usage(20);
    m->set_memory_usage(30);
    m->set_request_count(in_flight > 0 ? 20 : 0);
    m->set_request_rate(in_flight > 0 ? 20 : 0);
    m->set_average_response_time(in_flight > 0 ? 50 : 0);
    m->set_in_flight(in_flight);
    m->set_sampled_at(absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()));
    m->set_ready(true);
    m->set_seq(++seq_);
    stream_->Write(req);
    return seq_;
  }

  bool WaitAcked(uint64_t seq, absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return acked_ >= seq; });
  }
  int rejected() {
    std::lock_guard<std::mutex> lock(mu_);
    return rejected_;
  }

 private:
  std::unique_ptr<v1::MetricsService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>> stream_;
  std::thread reader_;
  uint64_t seq_ = 0;  // writer thread only
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t acked_ = 0;
  int rejected_ = 0;
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[k];
}

int Run(int argc, char** argv) {
  const Options o = ParseFlags(argc, argv);
  const int trials = static_cast<int>(o.trials);

  testing::FakeApiServer api;
  if (absl::Status s = api.Start(); !s.ok()) {
    std::fprintf(stderr, "fake API server: %s\n", s.ToString().c_str());
    return 1;
  }
  testing::RedisServer redis;
  if (absl::Status s = redis.Start(); !s.ok()) {
    std::fprintf(stderr, "redis-server: %s\n", s.ToString().c_str());
    return 1;
  }
  // Every CR exists before the scaler starts, so its first list holds them all and no
  // trial runs while the scaler is still applying CRs.
  for (int i = 0; i < trials; ++i) {
    if (!api.CreateWorkload(kNamespace, "Deployment", WorkloadName(i), 1).ok() ||
        !api.Create(kCrs, CrJson(i)).ok()) {
      std::fprintf(stderr, "cannot create workload %d in the fake API server\n", i);
      return 1;
    }
  }

  char dir_template[] = "/tmp/zs-decide-latency-XXXXXX";
  const std::string dir = ::mkdtemp(dir_template);
  const std::string kubeconfig = dir + "/kubeconfig";
  if (FILE* f = std::fopen(kubeconfig.c_str(), "w")) {
    std::fprintf(f,
                 "apiVersion: v1\nkind: Config\n"
                 "clusters:\n- name: fake\n  cluster:\n    server: %s\n"
                 "users:\n- name: bench\n  user:\n    token: bench\n"
                 "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: bench\n"
                 "    namespace: %s\n"
                 "current-context: fake\n",
                 api.url().c_str(), kNamespace);
    std::fclose(f);
  }
  const uint16_t grpc_port = testing::FreePort();
  const uint16_t http_port = testing::FreePort();
  testing::ChildProcess scaler(
      {o.scaler_bin, absl::StrCat("--redis=", redis.address()),
       absl::StrCat("--grpc-listen=127.0.0.1:", grpc_port),
       absl::StrCat("--http-listen=127.0.0.1:", http_port),
       absl::StrCat("--webhook-listen=127.0.0.1:", testing::FreePort()), "--backend=kubernetes",
       "--kubeconfig=" + kubeconfig, "--leader-elect=false",
       absl::StrCat("--namespace=", kNamespace), "--log-level=warning",
       // Measures deciding; ingest with identity checks is bench/ingest_bench.sh's.
       "--insecure"},
      dir + "/scaler.log");
  if (absl::Status s = scaler.Start(); !s.ok()) {
    std::fprintf(stderr, "scaler: %s\n", s.ToString().c_str());
    return 1;
  }
  // Ready once every CR carries a status: the scaler writes it after handing the CR to
  // its decider.
  const bool applied = testing::WaitFor(
      [&] {
        int with_status = 0;
        for (const std::string& text : api.List(kCrs)) {
          json cr = json::parse(text);
          if (cr.contains("status") && !cr["status"].value("state", "").empty()) ++with_status;
        }
        return with_status == trials;
      },
      absl::Seconds(60));
  if (!applied || testing::HttpGetStatus(http_port, "/readyz") != 200) {
    std::fprintf(stderr, "the scaler did not apply every CustomAutoscaler; log: %s\n%s\n",
                 scaler.log_path().c_str(), scaler.ReadLog().c_str());
    return 1;
  }

  SampleStream stream(absl::StrCat("127.0.0.1:", grpc_port));
  std::vector<double> ms;
  int missed = 0;
  for (int i = 0; i < trials; ++i) {
    const std::string pod = absl::StrCat(WorkloadName(i), "-0");
    uint64_t last = 0;
    for (int k = 0; k < o.idle_samples; ++k) {
      last = stream.Send(i, pod, 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Acknowledged means stored, which the scaler does after handing the samples to the
    // decider: the automaton has seen the idle window before the busy sample comes.
    if (last > 0 && !stream.WaitAcked(last, absl::Seconds(10))) {
      std::fprintf(stderr, "trial %d: idle samples not acknowledged\n", i);
      ++missed;
      continue;
    }
    const std::string scale_path =
        absl::StrCat("/namespaces/", kNamespace, "/deployments/", WorkloadName(i), "/scale");
    // A PATCH already there would mean the idle samples made the rule hold: the trial
    // would not measure what it claims to.
    if (api.CountRequests("PATCH", scale_path) != 0) {
      std::fprintf(stderr, "trial %d: scaled before the busy sample\n", i);
      ++missed;
      continue;
    }
    const size_t from = api.request_count();
    const absl::Time sent = absl::Now();
    stream.Send(i, pod, 100);  // mean over the window: 100 / (idle_samples + 1) > 4
    std::optional<testing::FakeApiServer::RequestRecord> patch =
        api.WaitForRequest("PATCH", scale_path, absl::Seconds(10), from);
    if (!patch) {
      std::fprintf(stderr, "trial %d: no scale PATCH within 10 s\n", i);
      ++missed;
      continue;
    }
    ms.push_back(absl::ToDoubleMilliseconds(patch->received_at - sent));
  }

  // Exactly one scale-up per trial, to 2 replicas.
  for (int i = 0; i < trials; ++i) {
    const std::string path =
        absl::StrCat("/apis/apps/v1/namespaces/", kNamespace, "/deployments/", WorkloadName(i));
    absl::StatusOr<std::string> d = api.Get(path);
    const int replicas = d.ok() ? json::parse(*d)["spec"].value("replicas", 0) : -1;
    const int patches = api.CountRequests("PATCH", path + "/scale");
    if (replicas != 2 || patches != 1) {
      std::fprintf(stderr, "trial %d: %d replicas after %d scale PATCHes (want 2 after 1)\n", i,
                   replicas, patches);
      ++missed;
    }
  }
  if (ms.empty()) {
    std::fprintf(stderr, "no trial completed; scaler log: %s\n", scaler.log_path().c_str());
    return 1;
  }
  double sum = 0;
  for (double v : ms) sum += v;
  std::printf(
      "RESULT decision latency, sample that makes a rule hold -> scale PATCH at the API server "
      "(real zeroscale-scaler, --backend=kubernetes, loopback): trials=%zu missed=%d\n",
      ms.size(), missed);
  std::printf("RESULT p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms, mean %.2f ms\n",
              Percentile(ms, 0.5), Percentile(ms, 0.9), Percentile(ms, 0.99),
              *std::max_element(ms.begin(), ms.end()), sum / ms.size());
  std::printf("RESULT target: median under 100 ms -> %s\n",
              Percentile(ms, 0.5) < 100 ? "met" : "NOT met");
  std::printf(
      "RESULT reference (documented defaults, not measured): Kubernetes HPA syncs every 15 s "
      "(--horizontal-pod-autoscaler-sync-period), KEDA polls every 30 s (pollingInterval), "
      "Knative's autoscaler ticks every 2 s (tick-interval)\n");
  if (stream.rejected() > 0) std::fprintf(stderr, "%d samples rejected\n", stream.rejected());

  scaler.Stop();
  if (o.keep_logs) {
    std::printf("scaler log: %s\n", scaler.log_path().c_str());
  } else {
    std::remove((dir + "/scaler.log").c_str());
    std::remove(kubeconfig.c_str());
    ::rmdir(dir.c_str());
  }
  return missed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace zeroscale::bench

int main(int argc, char** argv) { return zeroscale::bench::Run(argc, argv); }
