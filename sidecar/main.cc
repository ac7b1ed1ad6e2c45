// zeroscale-sidecar: wires the resource sampler, the latency-measuring proxy, the
// readiness prober and the metrics stream together, runs the sample loop, and drains on
// SIGTERM: it announces not-ready at once, keeps proxying for --drain-timeout while the
// balancer and Kubernetes take the pod out of rotation, lets requests in flight finish,
// then stops.
#include <algorithm>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/auth/token_file.h"
#include "common/config/flags.h"
#include "common/grpcutil/credentials.h"
#include "common/http/http_server.h"
#include "common/http/tls_server.h"
#include "common/log/log.h"
#include "common/metrics/exposition.h"
#include "common/metrics/listener_metrics.h"
#include "common/model/podmetric.h"
#include "common/process/signals.h"
#include "grpcpp/security/credentials.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "sidecar/appmetrics/flags.h"
#include "sidecar/cgroup/resource_sampler.h"
#include "sidecar/gpu/gpu_sampler.h"
#include "sidecar/proxy/sidecar_proxy.h"
#include "sidecar/readiness/readiness_prober.h"
#include "sidecar/report/sample_gauges.h"
#include "sidecar/stream/metrics_stream.h"

namespace zeroscale::sidecar {
namespace {

struct Flags {
  config::HostPort scaler, admin_listen, proxy_listen;
  int64_t app_port = 0, proxy_port = 8012, buffer = 600, app_pid = 0;
  int64_t cpu_limit_millicores = 0, memory_limit_bytes = 0;
  int64_t max_connections = 4096, admin_max_connections = 64;
  std::string pod, workload, cgroup_root, disk_paths, readiness_path, log_level, advertise;
  std::string measure, admin_tls_cert, admin_tls_key, token_file, nvml_library;
  grpcutil::ScalerTls scaler_tls;
  AppMetricsFlags app_metrics;
  absl::Duration sample_interval, drain_timeout;
};

// How long a drain may be asked to last; past this, a value is a mistake (Kubernetes
// kills the pod after its terminationGracePeriodSeconds anyway).
constexpr absl::Duration kMaxDrain = absl::Hours(1);
// How long the not-ready announcement waits for its acknowledgement: at least 1 s even
// with --drain-timeout=0 (the scaler must hear it before the process is gone), at most 2 s
// (a scaler that is away, or stopping itself, must not hold the drain up).
constexpr absl::Duration kMinAckWait = absl::Seconds(1);
constexpr absl::Duration kMaxAckWait = absl::Seconds(2);

[[noreturn]] void Refuse(const std::string& message) {
  std::cerr << "zeroscale-sidecar: " << message << "\n";
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  config::FlagSet fs("zeroscale-sidecar",
                     "Per-pod agent: proxies the app's port measuring every request, samples "
                     "the pod's CPU, memory and disk, and streams Podmetrics to the scaler.");
  fs.Address("scaler", &f.scaler, "127.0.0.1:9090", "The scaler's gRPC address");
  fs.Int("app-port", &f.app_port, 0, "The app's port on localhost (required)", 0, 65535);
  fs.Int("proxy-port", &f.proxy_port, 8012,
         "Port the proxy listens on, on every interface (--proxy-listen sets the address)", 1,
         65535);
  fs.Address("proxy-listen", &f.proxy_listen, "",
             "ADDR:PORT the proxy listens on; when set, --proxy-port is ignored (default: "
             "0.0.0.0:<--proxy-port>)");
  fs.String("pod", &f.pod, "", "This pod, NAMESPACE/NAME (required; from the Downward API)");
  fs.String("workload", &f.workload, "", "The pod's workload, NAMESPACE/KIND/NAME");
  fs.Duration("sample-interval", &f.sample_interval, absl::Seconds(1),
              "How often a sample is sent");
  fs.String("cgroup-root", &f.cgroup_root, "/sys/fs/cgroup",
            "cgroup mount (v1 or v2) or the pod's cgroup directory; empty: /proc only");
  fs.Int("app-pid", &f.app_pid, 0,
         "Measure this process through /proc instead of a cgroup (a replica of the local "
         "backend has no container of its own); 0: the cgroup",
         0, 4194304);
  fs.Enum("measure", &f.measure, "cgroup", {"cgroup", "processes"},
          "What is measured: this container's cgroup (or --app-pid), or every process this "
          "sidecar can see but itself and a pause PID 1 (in Kubernetes the webhook sets "
          "shareProcessNamespace so those are the app's)");
  fs.Int("cpu-limit-millicores", &f.cpu_limit_millicores, 0,
         "The app's CPU limit, the denominator of cpuUsage when what is measured has no limit "
         "of its own (the webhook passes the app container's limits.cpu); 0: one core",
         0, INT64_MAX);
  fs.Int("memory-limit-bytes", &f.memory_limit_bytes, 0,
         "The app's memory limit, the denominator of memoryUsage likewise (limits.memory); "
         "0: the host's memory",
         0, INT64_MAX);
  fs.String("disk-paths", &f.disk_paths, "/", "Comma-separated filesystems to watch");
  fs.String("nvml-library", &f.nvml_library, "libnvidia-ml.so.1",
            "NVML (the NVIDIA driver's library), loaded at start to report the GPU use of "
            "what is measured (gpuUsage, gpuMemoryUsage, gpuMemoryBytes of its own "
            "processes); where it cannot be loaded the sidecar says so once and samples "
            "the rest; empty: GPU metrics off");
  fs.String("readiness-path", &f.readiness_path, "",
            "The app's readiness path (HTTP GET, 2xx = ready); empty: TCP connect");
  fs.String("advertise-address", &f.advertise, "",
            "HOST:PORT where the balancer reaches this proxy (in Kubernetes: the pod IP and "
            "--proxy-port, from the Downward API); empty: not announced");
  fs.Address("admin-listen", &f.admin_listen, "0.0.0.0:8013",
             "HTTP: GET /metrics (Prometheus) and /healthz of the sidecar itself");
  fs.String("admin-tls-cert", &f.admin_tls_cert, "",
            "TLS certificate (PEM chain) of --admin-listen, re-read when the file changes; "
            "empty: plain HTTP");
  fs.String("admin-tls-key", &f.admin_tls_key, "", "TLS private key (PEM) of --admin-tls-cert");
  grpcutil::RegisterScalerTlsFlags(&fs, &f.scaler_tls);
  RegisterAppMetricsFlags(&fs, &f.app_metrics);
  fs.Int("buffer", &f.buffer, 600, "Unacknowledged samples kept for replay", 1, 1000000);
  fs.Duration("drain-timeout", &f.drain_timeout, absl::Seconds(5),
              "On SIGTERM: how long the proxy keeps taking new requests after announcing "
              "not-ready (while the balancer and Kubernetes take the pod out of rotation); "
              "ends early when the app stops accepting connections. Requests in flight then "
              "finish before the sidecar exits. Keep it under the pod's "
              "terminationGracePeriodSeconds");
  fs.Int("max-connections", &f.max_connections, 4096,
         "Client connections the proxy keeps open at once; more wait in the backlog (0: no "
         "cap)",
         0, 10000000);
  fs.Int("admin-max-connections", &f.admin_max_connections, 64,
         "Connections the admin port keeps open at once; more wait in the backlog (0: no cap)", 0,
         10000000);
  fs.String("token-file", &f.token_file, "",
            "Bearer token sent to the scaler on every stream (re-read when it changes: the "
            "kubelet rotates projected tokens); the webhook projects a service-account token "
            "for audience zeroscale, the local backend writes one per replica");
  fs.Enum("log-level", &f.log_level, "info", log::LevelNames(), "Lowest level logged");
  fs.ParseOrExit(argc, argv);
  if (f.app_port == 0) Refuse("--app-port is required (the app's port on localhost)");
  if (f.proxy_listen.host.empty()) {
    f.proxy_listen = {"0.0.0.0", static_cast<uint16_t>(f.proxy_port)};
  } else if (f.proxy_listen.port == 0) {
    Refuse(absl::StrCat("invalid value '", f.proxy_listen.ToString(),
                        "' for --proxy-listen: needs a port"));
  }
  f.proxy_port = f.proxy_listen.port;
  if (f.app_port == f.proxy_port) {
    Refuse(absl::StrCat("--proxy-port/--proxy-listen port ", f.proxy_port,
                        " must differ from --app-port"));
  }
  if (f.admin_tls_cert.empty() != f.admin_tls_key.empty()) {
    Refuse("--admin-tls-cert and --admin-tls-key go together");
  }
  if (absl::Status s = grpcutil::ValidateScalerTls(f.scaler_tls); !s.ok()) {
    Refuse(std::string(s.message()));
  }
  if (f.pod.empty()) Refuse("--pod is required, as NAMESPACE/NAME");
  Podmetric probe;
  probe.id = f.pod;
  probe.workload = f.workload;
  probe.address = f.advertise;
  if (std::count(f.pod.begin(), f.pod.end(), '/') != 1) {
    Refuse(absl::StrCat("invalid value '", f.pod, "' for --pod: expected NAMESPACE/NAME"));
  }
  if (absl::Status s = ValidatePodmetric(probe, absl::Now()); !s.ok()) {
    Refuse(absl::StrCat("invalid --pod, --workload or --advertise-address: ", s.message()));
  }
  if (f.sample_interval < absl::Milliseconds(100)) {
    Refuse(absl::StrCat("invalid value '", absl::FormatDuration(f.sample_interval),
                        "' for --sample-interval: must be at least 100ms"));
  }
  if (f.drain_timeout < absl::ZeroDuration() || f.drain_timeout > kMaxDrain) {
    Refuse(absl::StrCat("invalid value '", absl::FormatDuration(f.drain_timeout),
                        "' for --drain-timeout: must be between 0s and ",
                        absl::FormatDuration(kMaxDrain)));
  }
  return f;
}

// The sample loop: one sample per interval, and one more at once when readiness flips or
// a drain begins. While draining every sample says not ready, whatever the app says.
class Sampler {
 public:
  Sampler(const Flags& flags, ResourceSampler* resources, GpuSampler* gpu, SidecarProxy* proxy,
          MetricsStream* stream, AppMetricsScraper* app_metrics, prometheus::Registry* registry)
      : flags_(flags),
        resources_(resources),
        gpu_(gpu),
        proxy_(proxy),
        stream_(stream),
        app_metrics_(app_metrics),
        sample_errors_(prometheus::BuildCounter()
                           .Name("zeroscale_sidecar_sample_errors_total")
                           .Help("Resource samples that could not be read (last values reused)")
                           .Register(*registry)
                           .Add({})),
        requests_(prometheus::BuildCounter()
                      .Name("zeroscale_sidecar_requests_total")
                      .Help("Requests proxied to the app")
                      .Register(*registry)
                      .Add({})),
        upstream_errors_(prometheus::BuildCounter()
                             .Name("zeroscale_sidecar_upstream_errors_total")
                             .Help("Requests answered 502 (app refused) or 504 (app timed out)")
                             .Register(*registry)),
        ready_gauge_(prometheus::BuildGauge()
                         .Name("zeroscale_sidecar_app_ready")
                         .Help("1 when the app's readiness probe passes and the sidecar is "
                               "not draining (what the samples announce)")
                         .Register(*registry)
                         .Add({})),
        sample_gauges_(registry, flags.workload) {}

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  // Stops the loop after one last sample, so requests served since the previous one are
  // reported too.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // From now on the pod reports not ready. Sends that sample at once and returns its
  // sequence number, for the caller to wait for its acknowledgement.
  absl::StatusOr<uint64_t> BeginDrain() {
    std::unique_lock<std::mutex> lock(mu_);
    draining_ = true;
    urgent_ = true;
    cv_.notify_all();
    // The loop's thread samples (the samplers are not thread-safe); it answers at once.
    cv_.wait(lock, [this] { return drain_seq_.has_value() || !thread_.joinable(); });
    if (!drain_seq_) return absl::FailedPreconditionError("the sample loop is not running");
    return *drain_seq_;
  }

  // The pod's readiness as announced: the app's, unless draining.
  bool ready() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ready_ && !draining_;
  }
  bool draining() const {
    std::lock_guard<std::mutex> lock(mu_);
    return draining_;
  }
  bool app_ready() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ready_;
  }

  void OnReadiness(bool ready) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_ = ready;
      urgent_ = true;
    }
    ZS_LOG(kInfo, ready ? "app is ready" : "app is not ready", {"pod", flags_.pod});
    cv_.notify_all();
  }

 private:
  void Run() {
    absl::Time next = absl::Now() + flags_.sample_interval;
    for (;;) {
      bool urgent = false, ready = false, stopping = false, draining = false;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_until(lock, absl::ToChronoTime(next), [this] { return stopping_ || urgent_; });
        stopping = stopping_;
        urgent = urgent_;
        urgent_ = false;
        ready = ready_ && !draining_;
        draining = draining_;
      }
      const absl::Time now = absl::Now();
      if (!urgent) next += flags_.sample_interval;
      if (next < now) next = now + flags_.sample_interval;  // fell behind: don't burst
      absl::StatusOr<uint64_t> seq = SendSample(now, ready, urgent || stopping);
      if (draining) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!drain_seq_) {
          drain_seq_ = seq.ok() ? *seq : 0;
          cv_.notify_all();
        }
      }
      if (stopping) return;
    }
  }

  absl::StatusOr<uint64_t> SendSample(absl::Time now, bool ready, bool urgent) {
    absl::StatusOr<ResourceSample> rs = resources_->Sample();
    if (rs.ok()) {
      last_resources_ = *rs;
    } else {
      sample_errors_.Increment();
      ZS_LOG(kWarning, "cannot sample resources; reusing the last values",
             {"error", std::string(rs.status().message())});
    }
    const IntervalStats st = proxy_->TakeIntervalStats(now);
    Podmetric m;
    if (gpu_ != nullptr) {
      // The processes just measured, intersected with each GPU's (no GPU: no fields).
      resources_->ListPids(&pids_);
      const GpuUsage gpu = gpu_->Sample(pids_);
      m.gpu_usage = gpu.usage_percent;
      m.gpu_memory_usage = gpu.memory_usage_percent;
      m.gpu_memory_bytes = gpu.memory_bytes;
    }
    m.id = flags_.pod;
    m.workload = flags_.workload;
    m.cpu_usage = last_resources_.cpu_usage_percent;
    m.memory_usage = last_resources_.memory_usage_percent;
    m.disk_usage = last_resources_.disk_usage_percent;
    m.cpu_cores = last_resources_.cpu_cores;
    m.memory_bytes = last_resources_.memory_bytes;
    m.disk_bytes = last_resources_.disk_bytes;
    m.disk_read_bytes_per_second = last_resources_.disk_read_bytes_per_second;
    m.disk_write_bytes_per_second = last_resources_.disk_write_bytes_per_second;
    m.average_response_time = st.mean_latency_ms;
    m.p99_response_time = st.p99_latency_ms;
    m.request_count = static_cast<uint64_t>(st.request_count);
    m.request_rate = st.request_rate;
    m.in_flight = st.mean_in_flight;
    m.sampled_at = now;
    m.ready = ready;
    m.address = flags_.advertise;
    // The last scrape's series, never waiting for one in progress.
    if (app_metrics_ != nullptr) m.app_metrics = app_metrics_->Latest();
    requests_.Increment(static_cast<double>(st.request_count));
    if (st.upstream_errors > 0) {
      upstream_errors_.Add({{"status", "502"}}).Increment(static_cast<double>(st.upstream_errors));
    }
    if (st.upstream_timeouts > 0) {
      upstream_errors_.Add({{"status", "504"}})
          .Increment(static_cast<double>(st.upstream_timeouts));
    }
    ready_gauge_.Set(ready ? 1 : 0);
    sample_gauges_.Record(m);
    absl::StatusOr<uint64_t> seq =
        urgent ? stream_->SubmitUrgent(std::move(m)) : stream_->Submit(std::move(m));
    if (!seq.ok()) {
      ZS_LOG(kWarning, "sample not queued", {"error", std::string(seq.status().message())});
    }
    return seq;
  }

  const Flags& flags_;
  ResourceSampler* const resources_;
  GpuSampler* const gpu_;  // null: --nvml-library=""
  std::vector<int> pids_;  // reused per sample
  SidecarProxy* const proxy_;
  MetricsStream* const stream_;
  AppMetricsScraper* const app_metrics_;  // null: no --app-metrics-*
  prometheus::Counter& sample_errors_;
  prometheus::Counter& requests_;
  prometheus::Family<prometheus::Counter>& upstream_errors_;
  prometheus::Gauge& ready_gauge_;
  SampleGauges sample_gauges_;  // the sample's values on /metrics
  ResourceSample last_resources_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool urgent_ = false;
  bool ready_ = false;                 // the app's, from the prober
  bool draining_ = false;              // SIGTERM received: announce not ready
  std::optional<uint64_t> drain_seq_;  // the first not-ready sample of the drain (0: not queued)
  std::thread thread_;
};

// After SIGTERM: announce not-ready and wait (briefly) until the scaler has it, keep
// proxying for the drain period unless the app stops accepting connections (then new
// requests could only fail) or a second signal says to hurry, then let requests in
// flight finish. Kubernetes sends SIGTERM to every container at once and the app may
// still be serving; the balancer drops the pod on the announcement, Kubernetes on the
// pod's deletion, and other clients of its Service need a moment to follow.
void Drain(const Flags& flags, Sampler* sampler, MetricsStream* stream, SidecarProxy* proxy) {
  const absl::Time start = absl::Now();
  const absl::Time end = start + flags.drain_timeout;
  absl::StatusOr<uint64_t> seq = sampler->BeginDrain();
  ZS_LOG(kInfo, "draining: announced not ready; still proxying",
         {"drain_timeout", absl::FormatDuration(flags.drain_timeout)},
         {"in_flight", absl::StrCat(proxy->in_flight())});
  if (seq.ok() && *seq != 0) {
    absl::Status acked =
        stream->WaitForAck(*seq, std::clamp(flags.drain_timeout, kMinAckWait, kMaxAckWait));
    if (acked.ok()) {
      ZS_LOG(kInfo, "the scaler has the not-ready announcement",
             {"after", absl::FormatDuration(absl::Now() - start)});
    } else {
      ZS_LOG(kWarning, "the not-ready announcement was not acknowledged",
             {"error", std::string(acked.message())});
    }
  }
  // Polled in short slices: the same wait watches the clock, the app and a second signal.
  constexpr absl::Duration kSlice = absl::Milliseconds(50);
  for (absl::Time now = absl::Now(); now < end; now = absl::Now()) {
    if (!sampler->app_ready()) {
      ZS_LOG(kInfo, "the app no longer accepts connections: drain ends early");
      break;
    }
    if (const int sig = WaitForTerminationSignalFor(std::min(kSlice, end - now)); sig != 0) {
      ZS_LOG(kWarning, "second signal: drain cut short", {"signal", absl::StrCat(sig)});
      return;
    }
  }
  while (proxy->in_flight() > 0) {
    if (const int sig = WaitForTerminationSignalFor(kSlice); sig != 0) {
      ZS_LOG(kWarning, "second signal: requests in flight are cut",
             {"in_flight", absl::StrCat(proxy->in_flight())}, {"signal", absl::StrCat(sig)});
      return;
    }
  }
  ZS_LOG(kInfo, "drained", {"after", absl::FormatDuration(absl::Now() - start)});
}

int Run(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  log::SetComponent("sidecar");
  log::SetLevelByName(flags.log_level);
  BlockTerminationSignals();
  auto registry = std::make_shared<prometheus::Registry>();

  SamplerOptions sampler_options;
  sampler_options.cgroup_root = flags.cgroup_root;
  if (flags.app_pid != 0) {
    sampler_options.cgroup_root = "";
    sampler_options.fallback_pid = static_cast<int>(flags.app_pid);
  }
  if (flags.measure == "processes") sampler_options.measure = Measure::kProcesses;
  sampler_options.cpu_limit_cores = static_cast<double>(flags.cpu_limit_millicores) / 1000.0;
  sampler_options.memory_limit_bytes = static_cast<uint64_t>(flags.memory_limit_bytes);
  sampler_options.disk_paths = absl::StrSplit(flags.disk_paths, ',', absl::SkipEmpty());
  absl::StatusOr<std::unique_ptr<ResourceSampler>> resources =
      ResourceSampler::Create(sampler_options, RealClock::Get());
  if (!resources.ok()) Refuse(std::string(resources.status().message()));
  absl::StatusOr<std::unique_ptr<AppMetricsScraper>> app_metrics =
      NewAppMetricsScraper(flags.app_metrics, static_cast<uint16_t>(flags.app_port),
                           flags.sample_interval, kMaxAppMetrics, registry.get(), RealClock::Get());
  if (!app_metrics.ok()) Refuse(std::string(app_metrics.status().message()));

  MetricsStreamOptions stream_options;
  stream_options.scaler = flags.scaler.ToString();
  stream_options.buffer_capacity = static_cast<size_t>(flags.buffer);
  std::unique_ptr<auth::TokenFile> token_file;
  if (!flags.token_file.empty()) {
    token_file = std::make_unique<auth::TokenFile>(flags.token_file);
    if (absl::StatusOr<std::string> t = token_file->Get(); !t.ok()) {
      // The kubelet may not have written it yet; the scaler refuses until it has.
      ZS_LOG(kWarning, "no token to send to the scaler yet",
             {"error", std::string(t.status().message())});
    }
    stream_options.authorization = [tf = token_file.get()] {
      std::string a = tf->AuthorizationValue();
      if (a.empty()) {
        ZS_LOG(kWarning, "streaming without a token: the token file cannot be read",
               {"token_file", tf->path()});
      }
      return a;
    };
  }
  stream_options.registry = registry.get();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      grpcutil::MakeChannelCredentials(flags.scaler_tls);
  if (!credentials.ok()) Refuse(std::string(credentials.status().message()));
  stream_options.credentials = *std::move(credentials);
  stream_options.server_name = flags.scaler_tls.server_name;
  if (!flags.scaler_tls.enabled()) {
    grpcutil::WarnIfPlaintext(flags.scaler.host, "the metrics stream to the scaler",
                              "--scaler-ca or --scaler-ca-data");
  }
  MetricsStream stream(stream_options);
  if (absl::Status s = stream.Start(); !s.ok()) Refuse(std::string(s.message()));

  SidecarProxyOptions proxy_options;
  proxy_options.listen = flags.proxy_listen;
  proxy_options.app_port = static_cast<uint16_t>(flags.app_port);
  metrics::ListenerMetrics listener_metrics(registry.get());
  proxy_options.engine.max_connections = flags.max_connections;
  proxy_options.engine.observer = &listener_metrics;
  SidecarProxy proxy(proxy_options);
  if (absl::Status s = proxy.Start(); !s.ok()) Refuse(std::string(s.message()));

  if (*app_metrics != nullptr) (*app_metrics)->Start();
  // Before the sample loop: the first nvmlInit may take a while.
  std::unique_ptr<GpuSampler> gpu;
  if (!flags.nvml_library.empty()) {
    GpuSamplerOptions gpu_options;
    gpu_options.library = flags.nvml_library;
    gpu = GpuSampler::Create(gpu_options, RealClock::Get());
  }
  Sampler sampler(flags, resources->get(), gpu.get(), &proxy, &stream, app_metrics->get(),
                  registry.get());
  ReadinessOptions readiness_options;
  readiness_options.app_port = static_cast<uint16_t>(flags.app_port);
  readiness_options.path = flags.readiness_path;
  ReadinessProber readiness(readiness_options,
                            [&sampler](bool ready) { sampler.OnReadiness(ready); });
  if (absl::Status s = readiness.Start(); !s.ok()) Refuse(std::string(s.message()));
  sampler.Start();

  http::Router router;
  router.HandleSync("GET", "/metrics", metrics::ExpositionHandler(registry.get()));
  router.HandleSync("GET", "/healthz",
                    [](const http::Request&) { return http::Response::Text(200, "ok\n"); });
  // Ready for traffic: the app is, and the sidecar is not draining.
  router.HandleSync("GET", "/readyz", [&sampler](const http::Request&) {
    if (sampler.draining()) return http::Response::Text(503, "draining\n");
    return sampler.ready() ? http::Response::Text(200, "ready\n")
                           : http::Response::Text(503, "app not ready\n");
  });
  http::ServerOptions admin_options;
  admin_options.listen = flags.admin_listen;
  admin_options.max_connections = flags.admin_max_connections;
  admin_options.name = "admin";
  admin_options.observer = &listener_metrics;
  std::unique_ptr<http::Server> admin =
      flags.admin_tls_cert.empty()
          ? std::make_unique<http::Server>(admin_options, router.AsHandler())
          : http::NewTlsServer(admin_options, {flags.admin_tls_cert, flags.admin_tls_key},
                               router.AsHandler());
  if (absl::Status s = admin->Start(); !s.ok()) Refuse(std::string(s.message()));

  ZS_LOG(kInfo, "sidecar started", {"pod", flags.pod}, {"workload", flags.workload},
         {"proxy", absl::StrCat(flags.proxy_listen.ToString(), " -> 127.0.0.1:", flags.app_port)},
         {"scaler", flags.scaler.ToString()},
         {"scaler_tls", flags.scaler_tls.enabled() ? "on" : "off"},
         {"admin_tls", flags.admin_tls_cert.empty() ? "off" : "on"},
         {"resources", flags.measure == "processes"                           ? "processes"
                       : (*resources)->layout().version == CgroupVersion::kV2 ? "cgroup2"
                       : (*resources)->layout().version == CgroupVersion::kV1 ? "cgroup1"
                                                                              : "proc"});
  const int sig = WaitForTerminationSignal();
  ZS_LOG(kInfo, "stopping", {"signal", absl::StrCat(sig)});
  Drain(flags, &sampler, &stream, &proxy);
  proxy.Stop();
  sampler.Stop();
  if (*app_metrics != nullptr) (*app_metrics)->Stop();
  readiness.Stop();
  admin->Stop();
  (void)stream.Stop(absl::Seconds(2));
  return 0;
}

}  // namespace
}  // namespace zeroscale::sidecar

int main(int argc, char** argv) { return zeroscale::sidecar::Run(argc, argv); }
