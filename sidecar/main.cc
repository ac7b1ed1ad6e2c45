// zeroscale-sidecar: wires the resource sampler, the latency-measuring proxy, the
// readiness prober and the metrics stream together, and runs the sample loop.
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/config/flags.h"
#include "common/http/http_server.h"
#include "common/log/log.h"
#include "common/metrics/exposition.h"
#include "common/metrics/listener_metrics.h"
#include "common/model/podmetric.h"
#include "common/process/signals.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "sidecar/cgroup/resource_sampler.h"
#include "sidecar/proxy/sidecar_proxy.h"
#include "sidecar/readiness/readiness_prober.h"
#include "sidecar/stream/metrics_stream.h"

namespace zeroscale::sidecar {
namespace {

struct Flags {
  config::HostPort scaler, admin_listen;
  int64_t app_port = 0, proxy_port = 8012, buffer = 600, app_pid = 0;
  int64_t cpu_limit_millicores = 0, memory_limit_bytes = 0;
  int64_t max_connections = 4096, admin_max_connections = 64;
  std::string pod, workload, cgroup_root, disk_paths, readiness_path, log_level, advertise;
  std::string measure;
  absl::Duration sample_interval;
};

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
  fs.Int("proxy-port", &f.proxy_port, 8012, "Port the proxy listens on", 1, 65535);
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
  fs.String("readiness-path", &f.readiness_path, "",
            "The app's readiness path (HTTP GET, 2xx = ready); empty: TCP connect");
  fs.String("advertise-address", &f.advertise, "",
            "HOST:PORT where the balancer reaches this proxy (in Kubernetes: the pod IP and "
            "--proxy-port, from the Downward API); empty: not announced");
  fs.Address("admin-listen", &f.admin_listen, "0.0.0.0:8013",
             "HTTP: GET /metrics (Prometheus) and /healthz of the sidecar itself");
  fs.Int("buffer", &f.buffer, 600, "Unacknowledged samples kept for replay", 1, 1000000);
  fs.Int("max-connections", &f.max_connections, 4096,
         "Client connections the proxy keeps open at once; more wait in the backlog (0: no "
         "cap)",
         0, 10000000);
  fs.Int("admin-max-connections", &f.admin_max_connections, 64,
         "Connections the admin port keeps open at once; more wait in the backlog (0: no cap)", 0,
         10000000);
  fs.Enum("log-level", &f.log_level, "info", log::LevelNames(), "Lowest level logged");
  fs.ParseOrExit(argc, argv);
  if (f.app_port == 0) Refuse("--app-port is required (the app's port on localhost)");
  if (f.app_port == f.proxy_port) {
    Refuse(absl::StrCat("--proxy-port ", f.proxy_port, " must differ from --app-port"));
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
  return f;
}

// The sample loop: one sample per interval, and one more at once when readiness flips.
class Sampler {
 public:
  Sampler(const Flags& flags, ResourceSampler* resources, SidecarProxy* proxy,
          MetricsStream* stream, prometheus::Registry* registry)
      : flags_(flags),
        resources_(resources),
        proxy_(proxy),
        stream_(stream),
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
                         .Help("1 when the app's readiness probe passes")
                         .Register(*registry)
                         .Add({})) {}

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
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
      bool urgent = false, ready = false;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_until(lock, absl::ToChronoTime(next), [this] { return stopping_ || urgent_; });
        if (stopping_) return;
        urgent = urgent_;
        urgent_ = false;
        ready = ready_;
      }
      const absl::Time now = absl::Now();
      if (!urgent) next += flags_.sample_interval;
      if (next < now) next = now + flags_.sample_interval;  // fell behind: don't burst
      SendSample(now, ready, urgent);
    }
  }

  void SendSample(absl::Time now, bool ready, bool urgent) {
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
    requests_.Increment(static_cast<double>(st.request_count));
    if (st.upstream_errors > 0) {
      upstream_errors_.Add({{"status", "502"}}).Increment(static_cast<double>(st.upstream_errors));
    }
    if (st.upstream_timeouts > 0) {
      upstream_errors_.Add({{"status", "504"}})
          .Increment(static_cast<double>(st.upstream_timeouts));
    }
    ready_gauge_.Set(ready ? 1 : 0);
    absl::StatusOr<uint64_t> seq =
        urgent ? stream_->SubmitUrgent(std::move(m)) : stream_->Submit(std::move(m));
    if (!seq.ok()) {
      ZS_LOG(kWarning, "sample not queued", {"error", std::string(seq.status().message())});
    }
  }

  const Flags& flags_;
  ResourceSampler* const resources_;
  SidecarProxy* const proxy_;
  MetricsStream* const stream_;
  prometheus::Counter& sample_errors_;
  prometheus::Counter& requests_;
  prometheus::Family<prometheus::Counter>& upstream_errors_;
  prometheus::Gauge& ready_gauge_;
  ResourceSample last_resources_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool urgent_ = false;
  bool ready_ = false;
  std::thread thread_;
};

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

  MetricsStreamOptions stream_options;
  stream_options.scaler = flags.scaler.ToString();
  stream_options.buffer_capacity = static_cast<size_t>(flags.buffer);
  stream_options.registry = registry.get();
  MetricsStream stream(stream_options);
  if (absl::Status s = stream.Start(); !s.ok()) Refuse(std::string(s.message()));

  SidecarProxyOptions proxy_options;
  proxy_options.listen = {"0.0.0.0", static_cast<uint16_t>(flags.proxy_port)};
  proxy_options.app_port = static_cast<uint16_t>(flags.app_port);
  metrics::ListenerMetrics listener_metrics(registry.get());
  proxy_options.engine.max_connections = flags.max_connections;
  proxy_options.engine.observer = &listener_metrics;
  SidecarProxy proxy(proxy_options);
  if (absl::Status s = proxy.Start(); !s.ok()) Refuse(std::string(s.message()));

  Sampler sampler(flags, resources->get(), &proxy, &stream, registry.get());
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
  http::ServerOptions admin_options;
  admin_options.listen = flags.admin_listen;
  admin_options.max_connections = flags.admin_max_connections;
  admin_options.name = "admin";
  admin_options.observer = &listener_metrics;
  http::Server admin(admin_options, router.AsHandler());
  if (absl::Status s = admin.Start(); !s.ok()) Refuse(std::string(s.message()));

  ZS_LOG(kInfo, "sidecar started", {"pod", flags.pod}, {"workload", flags.workload},
         {"proxy", absl::StrCat(":", flags.proxy_port, " -> 127.0.0.1:", flags.app_port)},
         {"scaler", flags.scaler.ToString()},
         {"resources", flags.measure == "processes"                           ? "processes"
                       : (*resources)->layout().version == CgroupVersion::kV2 ? "cgroup2"
                       : (*resources)->layout().version == CgroupVersion::kV1 ? "cgroup1"
                                                                              : "proc"});
  const int sig = WaitForTerminationSignal();
  ZS_LOG(kInfo, "stopping", {"signal", absl::StrCat(sig)});
  readiness.Stop();
  sampler.Stop();
  proxy.Stop();
  admin.Stop();
  (void)stream.Stop(absl::Seconds(2));
  return 0;
}

}  // namespace
}  // namespace zeroscale::sidecar

int main(int argc, char** argv) { return zeroscale::sidecar::Run(argc, argv); }
