// zeroscale-scaler: wires ingest, storage, rules and the HTTP/gRPC endpoints together.
#include <unistd.h>

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/auth/access_control.h"
#include "common/auth/kube_review.h"
#include "common/auth/static_tokens.h"
#include "common/config/flags.h"
#include "common/grpcutil/credentials.h"
#include "common/http/http_server.h"
#include "common/http/tls_server.h"
#include "common/kube/config.h"
#include "common/log/log.h"
#include "common/metrics/exposition.h"
#include "common/metrics/listener_metrics.h"
#include "common/process/signals.h"
#include "common/redis/redis.h"
#include "common/workloads/workloads.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/registry.h"
#include "scaler/activation/activation_service.h"
#include "scaler/activation/endpoint_registry.h"
#include "scaler/actuate/scale_actuator.h"
#include "scaler/decide/decider.h"
#include "scaler/decide/history.h"
#include "scaler/decide/sample_tail.h"
#include "scaler/decide/scheduler.h"
#include "scaler/ingest/http_ingest.h"
#include "scaler/ingest/ingest_metrics.h"
#include "scaler/ingest/ingest_queue.h"
#include "scaler/ingest/metrics_service.h"
#include "scaler/ingest/sample_auth.h"
#include "scaler/ingest/sample_listener.h"
#include "scaler/leader/leadership.h"
#include "scaler/local/local_backend.h"
#include "scaler/reconcile/reconciler.h"
#include "scaler/report/decision_sinks.h"
#include "scaler/report/kube_reporter.h"
#include "scaler/report/leader_gauge.h"
#include "scaler/report/status_board.h"
#include "scaler/report/status_http.h"
#include "scaler/rules/rules_service.h"
#include "scaler/rules/stored_rules_watcher.h"
#include "scaler/store/podmetric_store.h"
#include "scaler/store/rule_store.h"
#include "scaler/webhook/webhook_server.h"

namespace zeroscale {
namespace {

struct Flags {
  config::HostPort redis, grpc_listen, http_listen, webhook_listen;
  std::string backend, workloads, kubeconfig, namespace_, webhook_cert, webhook_key, log_level;
  std::string tls_cert, tls_key, sidecar_scaler_ca;
  absl::Duration retention;
  bool leader_elect = true, dry_run = false, insecure = false;
  std::string auth_tokens;
  int64_t ingest_batch = 4096, ingest_queue = 200000;
  int64_t http_max_body_bytes = 1 << 20, ingest_max_items = 1000;
  int64_t http_max_connections = 1024, webhook_max_connections = 256;
  int64_t grpc_max_message_bytes = 4 << 20, grpc_max_samples_per_message = 1024,
          grpc_max_pods_per_stream = 16;
  std::string sidecar_bin, replica_log_dir, sidecar_image, sidecar_scaler_address;
  absl::Duration staleness;
  absl::Duration follow_interval;
  absl::Duration rules_reload_interval;
  bool rules_configure_notifications = true;
  absl::Duration lease_duration, renew_deadline, retry_period;
  config::HostPort advertise_address;
};

// The lease timing must let a leader step down before others may take over, and an
// advertised address must be one other pods can dial.
absl::Status ValidateLeaderFlags(const Flags& f) {
  auto flag = [](absl::string_view name, absl::Duration d) {
    return absl::StrCat("--", name, "=", absl::FormatDuration(d));
  };
  if (f.lease_duration < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag("lease-duration", f.lease_duration), ": must be at least 1s"));
  }
  if (f.renew_deadline <= absl::ZeroDuration() || f.renew_deadline >= f.lease_duration) {
    return absl::InvalidArgumentError(absl::StrCat(flag("renew-deadline", f.renew_deadline),
                                                   ": must be above 0 and below --lease-duration (",
                                                   absl::FormatDuration(f.lease_duration), ")"));
  }
  if (f.retry_period <= absl::ZeroDuration() || f.retry_period >= f.renew_deadline) {
    return absl::InvalidArgumentError(absl::StrCat(flag("retry-period", f.retry_period),
                                                   ": must be above 0 and below --renew-deadline (",
                                                   absl::FormatDuration(f.renew_deadline), ")"));
  }
  const config::HostPort& a = f.advertise_address;
  if (!a.host.empty() && (a.port == 0 || a.host == "0.0.0.0" || a.host == "::")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--advertise-address=", a.ToString(),
                     ": must be an address other pods can dial (e.g. the pod IP) with a port"));
  }
  return absl::OkStatus();
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  config::FlagSet fs("zeroscale-scaler",
                     "Ingests pod metrics into Redis, evaluates ScalingRules and sets replica "
                     "counts (down to zero).");
  fs.Address("redis", &f.redis, "127.0.0.1:6379", "Redis server");
  fs.Address("grpc-listen", &f.grpc_listen, "0.0.0.0:9090",
             "gRPC: MetricsService, RulesService, ActivationService, health, reflection");
  fs.Address("http-listen", &f.http_listen, "0.0.0.0:8080",
             "HTTP: POST /metrics (ingest), GET /metrics (Prometheus), /healthz, /readyz");
  fs.Address("webhook-listen", &f.webhook_listen, "0.0.0.0:8443",
             "HTTPS: POST /mutate, the sidecar-injecting admission webhook");
  fs.Enum("backend", &f.backend, "auto", {"auto", "kubernetes", "local", "none"},
          "Where replica counts are applied; auto: kubernetes when a cluster is found, "
          "else none (ingest, store and evaluate only)");
  fs.String("workloads", &f.workloads, "", "Workloads file (YAML) of the local backend");
  fs.Duration("retention", &f.retention, absl::Minutes(15), "Podmetric history kept in Redis");
  fs.String("kubeconfig", &f.kubeconfig, "",
            "kubeconfig file (default: in-cluster config, else $KUBECONFIG); with "
            "--backend=local or none it is used to check tokens only");
  fs.String("namespace", &f.namespace_, "", "Namespace to watch (default: all)");
  fs.Bool("leader-elect", &f.leader_elect, true, "Take a Lease so one replica decides");
  fs.Duration("lease-duration", &f.lease_duration, absl::Seconds(5),
              "How long a Lease holder that stopped renewing keeps it before another replica "
              "takes over (whole seconds on the Lease, rounded up)");
  fs.Duration("renew-deadline", &f.renew_deadline, absl::Seconds(3),
              "A leader that could not renew for this long steps down (below --lease-duration)");
  fs.Duration("retry-period", &f.retry_period, absl::Seconds(1),
              "How often the Lease is renewed or tried (below --renew-deadline)");
  fs.Address("advertise-address", &f.advertise_address, "",
             "HOST:PORT where other pods reach this replica's gRPC port (in Kubernetes: the pod "
             "IP); published on the Lease while leading, for the balancers' ActivationService "
             "calls");
  fs.Bool("dry-run", &f.dry_run, false, "Compute, explain and record decisions; apply none");
  fs.String("webhook-cert", &f.webhook_cert, "", "TLS certificate (PEM) of the webhook");
  fs.String("webhook-key", &f.webhook_key, "", "TLS private key (PEM) of the webhook");
  fs.String("tls-cert", &f.tls_cert, "",
            "TLS certificate (PEM chain) of --grpc-listen and --http-listen, re-read when the "
            "file changes; empty: both plain text");
  fs.String("tls-key", &f.tls_key, "", "TLS private key (PEM) of --tls-cert");
  fs.String("sidecar-scaler-ca", &f.sidecar_scaler_ca, "",
            "PEM CA bundle sidecars verify this scaler's certificate with: injected by the "
            "webhook (re-read when it changes) and given to the local backend's sidecars");
  fs.String("sidecar-image", &f.sidecar_image, webhook::DefaultSidecarImage(),
            "Image of the sidecar the webhook injects");
  fs.String("sidecar-scaler-address", &f.sidecar_scaler_address, "",
            "--scaler of injected sidecars (default: zeroscale-scaler.<this namespace>.svc:"
            "<gRPC port>)");
  fs.Int("ingest-batch", &f.ingest_batch, 4096, "Samples per Redis round trip", 1, 100000);
  fs.Int("ingest-queue", &f.ingest_queue, 200000,
         "Samples queued before streams are paused (backpressure)", 100, 100000000);
  fs.Int("http-max-body-bytes", &f.http_max_body_bytes, 1 << 20,
         "Largest request body on --http-listen (POST /metrics); larger is a 413", 1024, 1 << 30);
  fs.Int("http-max-connections", &f.http_max_connections, 1024,
         "Connections --http-listen keeps open at once; more wait in the backlog (0: no cap)", 0,
         10000000);
  fs.Int("webhook-max-connections", &f.webhook_max_connections, 256,
         "Connections --webhook-listen keeps open at once; more wait in the backlog (0: no cap)", 0,
         10000000);
  fs.Int("ingest-max-items", &f.ingest_max_items, 1000,
         "Most samples in one POST /metrics body; more is a 413", 1, 1000000);
  fs.Int("grpc-max-message-bytes", &f.grpc_max_message_bytes, 4 << 20,
         "Largest gRPC message received; larger ends the call with RESOURCE_EXHAUSTED", 1024,
         1 << 30);
  fs.Int("grpc-max-samples-per-message", &f.grpc_max_samples_per_message, 1024,
         "Most samples in one MetricsService.Stream message (the sidecar sends at most 64); "
         "more ends the stream with RESOURCE_EXHAUSTED",
         1, 1000000);
  fs.Int("grpc-max-pods-per-stream", &f.grpc_max_pods_per_stream, 16,
         "Most distinct pod ids one MetricsService stream may report (a sidecar reports its "
         "own pod); samples of further pods are rejected",
         1, 1000000);
  fs.String("sidecar-bin", &f.sidecar_bin, "",
            "zeroscale-sidecar executable for local replicas (default: next to this binary)");
  fs.String("replica-log-dir", &f.replica_log_dir, "",
            "Local backend: write each replica's output to files here (default: inherit)");
  fs.Duration("staleness", &f.staleness, absl::Seconds(5),
              "A pod whose newest sample is older than this is not reporting");
  fs.Duration("follow-interval", &f.follow_interval, absl::Seconds(1),
              "Kubernetes leader: how often to read the samples other replicas stored in "
              "Redis, so decisions hear every pod (0: never)");
  fs.String("auth-tokens", &f.auth_tokens, "",
            "Static bearer tokens, one per line: token,name,group[,group...] with groups "
            "zeroscale:operators (everything), zeroscale:balancers (activate, watch, report "
            "traffic, list endpoints), zeroscale:viewers (read-only), zeroscale:pods (name "
            "NAMESPACE/NAME: that pod's samples)");
  fs.Bool("insecure", &f.insecure, false,
          "Turn every credential check off (samples, rules, activation, /workloads, "
          "/decisions): anyone who reaches a port may do anything");
  fs.Duration("rules-reload-interval", &f.rules_reload_interval, absl::Seconds(5),
              "How often every rule stored under scaling_rule:<id> is reloaded, the safety net "
              "behind Redis keyspace notifications (changes normally apply within a second)");
  fs.Bool("rules-configure-notifications", &f.rules_configure_notifications, true,
          "Turn on Redis keyspace notifications for scaling_rule:* (CONFIG SET "
          "notify-keyspace-events, adding K$gx); false: use what Redis has");
  fs.Enum("log-level", &f.log_level, "info", log::LevelNames(), "Lowest level logged");
  fs.ParseOrExit(argc, argv);
  if (f.webhook_cert.empty() != f.webhook_key.empty()) {
    std::cerr << "zeroscale-scaler: --webhook-cert and --webhook-key go together\n";
    std::exit(2);
  }
  if (f.tls_cert.empty() != f.tls_key.empty()) {
    std::cerr << "zeroscale-scaler: --tls-cert and --tls-key go together\n";
    std::exit(2);
  }
  if (f.backend == "local" && f.workloads.empty()) {
    std::cerr << "zeroscale-scaler: --backend=local needs --workloads=FILE\n";
    std::exit(2);
  }
  if (f.rules_reload_interval < absl::Milliseconds(100)) {
    std::cerr << "zeroscale-scaler: --rules-reload-interval: must be at least 100ms\n";
    std::exit(2);
  }
  if (absl::Status s = ValidateLeaderFlags(f); !s.ok()) {
    std::cerr << "zeroscale-scaler: " << s.message() << "\n";
    std::exit(2);
  }
  return f;
}

// Hands every accepted sample to the endpoint registry (readiness for the balancer)
// and to the decision engine, once: a sidecar replaying unacknowledged samples after a
// reconnect, or the tail of what other replicas stored, may bring one again, and an old
// sample must not count twice nor flip a pod's readiness back.
class SampleFeed : public ingest::SampleListener {
 public:
  SampleFeed(decide::Decider* decider, activation::EndpointRegistry* registry,
             decide::SeenSamples* seen, const Clock* clock)
      : decider_(decider), registry_(registry), seen_(seen), clock_(clock) {}
  void OnSamples(std::vector<Podmetric> samples) override {
    seen_->MaybeForget(clock_->Now());
    seen_->KeepUnseen(&samples);
    if (!samples.empty()) Deliver(std::move(samples));
  }
  // Also for samples other replicas received, once the tail found them unseen.
  void Deliver(std::vector<Podmetric> samples) {
    for (const Podmetric& m : samples) {
      if (!m.workload.empty()) {
        registry_->OnSample(m.workload, m.id, m.ready, m.address, m.received_at);
      }
    }
    decider_->OnSamples(std::move(samples));
  }

 private:
  decide::Decider* const decider_;
  activation::EndpointRegistry* const registry_;
  decide::SeenSamples* const seen_;
  const Clock* const clock_;
};

// --backend=none: evaluate and explain, apply nothing.
class NoBackend : public decide::ReplicaSetter {
 public:
  void SetReplicas(const std::string& workload, int32_t, int32_t, const std::string&,
                   std::function<void(absl::Status)> done) override {
    done(absl::FailedPreconditionError("--backend=none applies nothing"));
  }
  void GetReplicas(const std::string& workload,
                   std::function<void(absl::StatusOr<int32_t>)> done) override {
    done(absl::FailedPreconditionError("--backend=none observes nothing"));
  }
};

std::string SidecarPath(const Flags& flags, const char* argv0) {
  if (!flags.sidecar_bin.empty()) return flags.sidecar_bin;
  // The build tree and an install both put the sidecar beside or near the scaler.
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string dir = n > 0 ? std::string(self, n) : std::string(argv0);
  dir = dir.substr(0, dir.rfind('/'));
  for (const std::string& candidate :
       {dir + "/zeroscale-sidecar", dir + "/../sidecar/zeroscale-sidecar"}) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "zeroscale-sidecar";  // from PATH
}

grpcutil::ServerTlsFiles GrpcTlsFiles(const Flags& flags) {
  grpcutil::ServerTlsFiles files;
  files.cert_file = flags.tls_cert;
  files.key_file = flags.tls_key;
  return files;
}

// The admission webhook when it has a certificate; nullptr (said once) without one.
absl::StatusOr<std::unique_ptr<webhook::WebhookServer>> StartWebhook(
    const Flags& flags, const std::string& scaler_namespace, prometheus::Registry* registry,
    net::ListenerObserver* observer) {
  if (flags.webhook_cert.empty()) {
    ZS_LOG(kInfo, "admission webhook off: no --webhook-cert and --webhook-key",
           {"webhook_listen", flags.webhook_listen.ToString()});
    return nullptr;
  }
  webhook::WebhookOptions options;
  options.listen = flags.webhook_listen;
  options.cert_file = flags.webhook_cert;
  options.key_file = flags.webhook_key;
  options.max_connections = flags.webhook_max_connections;
  options.observer = observer;
  options.scaler_ca_file = flags.sidecar_scaler_ca;
  if (!flags.tls_cert.empty() && flags.sidecar_scaler_ca.empty()) {
    ZS_LOG(kWarning,
           "the scaler serves TLS but injected sidecars get no CA to verify it with: they "
           "will fail to connect; give --sidecar-scaler-ca");
  }
  options.injector.sidecar_image = flags.sidecar_image;
  options.injector.scaler_address = flags.sidecar_scaler_address;
  if (options.injector.scaler_address.empty()) {
    options.injector.scaler_address =
        absl::StrCat("zeroscale-scaler.", scaler_namespace.empty() ? "default" : scaler_namespace,
                     ".svc:", flags.grpc_listen.port);
  }
  return webhook::WebhookServer::Start(std::move(options), registry);
}

// --backend=kubernetes: leadership, the CustomAutoscaler reconciler, the scale actuator
// and the reporter of Events and status, each with its own job.
struct KubeUnits {
  std::unique_ptr<kube::KubeClient> client;
  std::unique_ptr<leader::Leadership> leadership;
  std::unique_ptr<actuate::ScaleActuator> actuator;
  std::unique_ptr<report::KubeReporter> reporter;
  std::unique_ptr<reconcile::Reconciler> reconciler;

  // What the decider is built with (actuator, reporter).
  static absl::StatusOr<std::unique_ptr<KubeUnits>> Make(const Flags& flags,
                                                         const kube::ClusterConfig& cluster) {
    auto u = std::make_unique<KubeUnits>();
    absl::StatusOr<std::unique_ptr<kube::KubeClient>> client =
        kube::KubeClient::Create(cluster, RealClock::Get());
    if (!client.ok()) return client.status();
    u->client = *std::move(client);
    leader::LeadershipOptions lo;
    lo.leader_elect = flags.leader_elect;
    lo.lease_duration = flags.lease_duration;
    lo.renew_deadline = flags.renew_deadline;
    lo.retry_period = flags.retry_period;
    if (const config::HostPort& a = flags.advertise_address; !a.host.empty()) {
      lo.advertise_address = absl::StrContains(a.host, ':')
                                 ? absl::StrCat("[", a.host, "]:", a.port)
                                 : absl::StrCat(a.host, ":", a.port);
    }
    lo.Resolve(cluster.namespace_);
    u->leadership = std::make_unique<leader::Leadership>(u->client.get(), lo, RealClock::Get());
    actuate::ScaleActuatorOptions ao;
    ao.dry_run = flags.dry_run;
    u->actuator = std::make_unique<actuate::ScaleActuator>(u->client.get(), u->leadership.get(), ao,
                                                           RealClock::Get());
    report::KubeReporterOptions ro;
    ro.dry_run = flags.dry_run;
    ro.identity = lo.identity;
    u->reporter = std::make_unique<report::KubeReporter>(u->client.get(), u->leadership.get(), ro,
                                                         RealClock::Get());
    return u;
  }

  // What needs the decider.
  void Wire(const Flags& flags, decide::Decider* decider, Redis* rebuild_redis,
            activation::EndpointRegistry* endpoints, ingest::PodOwners* owners) {
    reconcile::ReconcilerOptions o;
    o.watch_namespace = flags.namespace_;
    // Only pods Kubernetes lists may take traffic, and report for the target.
    o.on_pods = [endpoints, owners](const std::string& workload,
                                    const std::optional<decide::TargetPods>& pods) {
      std::optional<std::vector<std::string>> existing, members;
      if (pods) {
        existing = pods->existing;
        members = pods->members;
      }
      owners->Set(workload, members);
      endpoints->SetPodView(workload, std::move(existing));
    };
    reconciler = std::make_unique<reconcile::Reconciler>(client.get(), leadership.get(), decider,
                                                         actuator.get(), reporter.get(),
                                                         rebuild_redis, o, RealClock::Get());
    actuator->Attach(decider, reporter.get());
    leadership->AddListener(actuator.get());
    leadership->AddListener(reporter.get());
    leadership->AddListener(reconciler.get());
  }

  void Start() {
    actuator->Start();
    reporter->Start();
    reconciler->Start();
    leadership->Start();
  }

  // Before the decider's loop stops.
  void Stop() {
    leadership->Stop();
    reconciler->Stop();
    actuator->Stop();
    reporter->Stop();
  }
};

// Ends the ActivationService streams open on a replica that stops leading, so the
// balancers reconnect to the leader.
class CloseStreamsOnTermEnd : public leader::TermListener {
 public:
  CloseStreamsOnTermEnd(activation::ActivationServiceImpl* service, KubeUnits* kube)
      : service_(service), kube_(kube) {
    if (kube_ != nullptr) kube_->leadership->AddListener(this);
  }
  void OnTermStart(uint64_t epoch) override {}
  void OnTermEnd(uint64_t epoch) override {
    absl::Status why = kube_->leadership->CheckServing();
    if (why.ok()) why = absl::FailedPreconditionError("this scaler replica stopped leading");
    service_->CloseStreams(why);
  }

 private:
  activation::ActivationServiceImpl* const service_;
  KubeUnits* const kube_;
};

int Run(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  log::SetComponent("scaler");
  log::SetLevelByName(flags.log_level);
  std::string backend = flags.backend;
  absl::StatusOr<kube::ClusterConfig> cluster = absl::NotFoundError("not looked for");
  if (backend == "kubernetes" || backend == "auto") {
    cluster = kube::LoadDefaultConfig(flags.kubeconfig, config::ProcessEnv());
    if (!cluster.ok() && backend == "kubernetes") {
      std::cerr << "zeroscale-scaler: --backend=kubernetes: " << cluster.status().message() << "\n";
      return 2;
    }
    if (backend == "auto") backend = cluster.ok() ? "kubernetes" : "none";
  } else if (!flags.kubeconfig.empty()) {
    // Without the kubernetes backend a cluster still checks tokens (TokenReview,
    // SubjectAccessReview) when one is named.
    cluster = kube::LoadKubeconfig(flags.kubeconfig);
    if (!cluster.ok()) {
      std::cerr << "zeroscale-scaler: --kubeconfig: " << cluster.status().message() << "\n";
      return 2;
    }
  }
  if (backend == "kubernetes" && !flags.workloads.empty()) {
    std::cerr << "zeroscale-scaler: --workloads is for --backend=local (or none); in Kubernetes "
                 "workloads come from CustomAutoscalers\n";
    return 2;
  }
  std::vector<workloads::Workload> workload_list;
  if (!flags.workloads.empty()) {
    absl::StatusOr<std::vector<workloads::Workload>> loaded =
        workloads::LoadWorkloadsFile(flags.workloads);
    if (!loaded.ok()) {
      std::cerr << "zeroscale-scaler: " << loaded.status().message() << "\n";
      return 2;
    }
    workload_list = *std::move(loaded);
  }
  BlockTerminationSignals();
  const bool dry_run = flags.dry_run || backend == "none";
  if (backend == "none") {
    ZS_LOG(kInfo, "no replica backend: ingesting, storing and evaluating only; nothing is applied",
           {"backend", flags.backend});
  }

  const Clock* clock = RealClock::Get();
  auto registry = std::make_shared<prometheus::Registry>();
  ingest::IngestMetrics ingest_metrics(registry.get());
  metrics::ListenerMetrics listener_metrics(registry.get());
  absl::StatusOr<std::unique_ptr<webhook::WebhookServer>> webhook_server = StartWebhook(
      flags, cluster.ok() ? cluster->namespace_ : "", registry.get(), &listener_metrics);
  if (!webhook_server.ok()) {
    std::cerr << "zeroscale-scaler: " << webhook_server.status().message() << "\n";
    return 2;
  }

  RedisOptions redis_options;
  redis_options.host = flags.redis.host;
  redis_options.port = flags.redis.port;
  // One connection per thread that talks to Redis: clients are not thread-safe.
  HiredisClient writer_redis(redis_options, clock);
  HiredisClient api_redis(redis_options, clock);
  HiredisClient history_write_redis(redis_options, clock);
  HiredisClient history_read_redis(redis_options, clock);
  HiredisClient rebuild_redis(redis_options, clock);

  store::PodmetricStore::Options store_options;
  store_options.retention = flags.retention;
  store_options.trim_interval = std::min(absl::Seconds(30), flags.retention / 10);
  store::PodmetricStore podmetric_store(&writer_redis, clock, store_options);
  ingest::IngestQueue::Options queue_options;
  queue_options.max_batch = static_cast<size_t>(flags.ingest_batch);
  queue_options.high_water = static_cast<size_t>(flags.ingest_queue);
  queue_options.low_water = queue_options.high_water / 2;
  ingest::IngestQueue queue(&podmetric_store, &ingest_metrics, clock, queue_options);
  queue.Start();

  // Decisions: one event loop owns every automaton.
  decide::EventLoop loop(clock);
  decide::DecisionHistory history_writer(&history_write_redis);
  decide::DecisionHistory history_reader(&history_read_redis);
  report::LogSink log_sink;
  report::MetricsSink metrics_sink(registry.get());
  report::AsyncSink history_sink(&history_writer, 10000, registry.get());
  // Announcements live on the staleness when Kubernetes does not list the pods.
  activation::EndpointRegistry endpoints(clock, &loop,
                                         activation::EndpointRegistryOptions{flags.staleness});

  // Who may call what (common/auth): static tokens (the file, and the local backend's
  // per-replica credentials), and in a cluster TokenReview and SubjectAccessReview.
  std::unique_ptr<auth::StaticTokens> static_tokens;
  if (!flags.auth_tokens.empty()) {
    absl::StatusOr<std::unique_ptr<auth::StaticTokens>> loaded =
        auth::StaticTokens::LoadFile(flags.auth_tokens);
    if (!loaded.ok()) {
      std::cerr << "zeroscale-scaler: --auth-tokens: " << loaded.status().message() << "\n";
      return 2;
    }
    static_tokens = *std::move(loaded);
  } else if (backend == "local" && !flags.insecure) {
    static_tokens = std::make_unique<auth::StaticTokens>();
  }
  std::unique_ptr<kube::KubeClient> review_client;
  auth::KubeReviewers reviewers;
  if (cluster.ok() && !flags.insecure) {
    absl::StatusOr<std::unique_ptr<kube::KubeClient>> c =
        kube::KubeClient::Create(*cluster, RealClock::Get());
    if (!c.ok()) {
      std::cerr << "zeroscale-scaler: " << c.status().message() << "\n";
      return 2;
    }
    review_client = *std::move(c);
    reviewers = auth::NewKubeReviewers(
        [client = review_client.get()](const std::string& path, const std::string& body) {
          return client->Call("POST", path, body);
        },
        clock);
  }
  auth::AccessControlOptions access_options;
  access_options.insecure = flags.insecure;
  access_options.tokens = static_tokens.get();
  access_options.kube_authenticator = reviewers.authenticator.get();
  access_options.kube_authorizer = reviewers.authorizer.get();
  access_options.how_to_configure = auth::HowToConfigure("scaler");
  auth::AccessControl access(access_options);
  if (flags.insecure) {
    ZS_LOG(kWarning,
           "--insecure: no credential is checked; anyone who reaches the gRPC or HTTP port may "
           "send samples for any pod, change rules, wake workloads and read pod addresses");
  }

  std::unique_ptr<local::LocalBackend> local_backend;
  NoBackend no_backend;
  decide::ReplicaSetter* setter = &no_backend;
  report::StatusBoard status_board;
  std::vector<decide::DecisionSink*> sink_list = {&log_sink, &metrics_sink, &history_sink,
                                                  &status_board, &endpoints};
  HiredisClient kube_rebuild_redis(redis_options, clock);
  std::unique_ptr<KubeUnits> kube;
  if (backend == "kubernetes") {
    absl::StatusOr<std::unique_ptr<KubeUnits>> made = KubeUnits::Make(flags, *cluster);
    if (!made.ok()) {
      std::cerr << "zeroscale-scaler: " << made.status().message() << "\n";
      return 2;
    }
    kube = *std::move(made);
    setter = kube->actuator.get();
    sink_list.push_back(kube->reporter.get());
  }
  if (backend == "local") {
    local::LocalBackendOptions local_options;
    local_options.sidecar_path = SidecarPath(flags, argv[0]);
    local_options.scaler_address =
        absl::StrCat(flags.grpc_listen.host == "0.0.0.0" ? "127.0.0.1" : flags.grpc_listen.host,
                     ":", flags.grpc_listen.port);
    local_options.log_dir = flags.replica_log_dir;
    local_options.scaler_ca_file = flags.sidecar_scaler_ca;
    if (!flags.insecure) local_options.credentials = static_tokens.get();
    local_backend = std::make_unique<local::LocalBackend>(workload_list, local_options);
    local_backend->SetEndpointsListener(
        [&endpoints](const std::string& workload, const std::vector<local::Endpoint>& eps) {
          std::vector<activation::Endpoint> pods;
          for (const local::Endpoint& e : eps) pods.push_back({e.pod, e.address, false});
          endpoints.SetPods(workload, static_cast<int32_t>(pods.size()), std::move(pods));
        });
    setter = local_backend.get();
  }
  decide::DeciderOptions decider_options;
  decider_options.dry_run = dry_run;
  decider_options.staleness = flags.staleness;
  decide::FanoutSink sinks(sink_list);
  decide::Decider decider(clock, &loop, setter, &sinks, decider_options);
  ingest::PodOwners pod_owners;
  if (kube != nullptr) kube->Wire(flags, &decider, &kube_rebuild_redis, &endpoints, &pod_owners);
  // Each sidecar streams to whichever replica it reached, but only the leader decides:
  // while leading, it reads back what the others stored. --backend=local has one replica.
  const bool follow = kube != nullptr && flags.follow_interval > absl::ZeroDuration();
  decide::SeenSamples seen;
  SampleFeed feed(&decider, &endpoints, &seen, clock);
  HiredisClient follow_redis(redis_options, clock);
  decide::SampleTailOptions tail_options;
  tail_options.interval = flags.follow_interval;
  decide::SampleTail tail(
      &follow_redis, clock, &seen,
      [&status_board]() -> absl::StatusOr<std::vector<std::string>> {
        return status_board.Workloads();
      },
      [&kube] { return kube != nullptr && kube->leadership->leading(); },
      [&feed](std::vector<Podmetric> samples) { feed.Deliver(std::move(samples)); }, tail_options);

  store::RuleStore rule_store(&api_redis);
  // A rule id the workload already has from its CustomAutoscaler or workloads file.
  rules::RulesServiceImpl rules_service(
      &rule_store, &access, [&status_board](const std::string& target, const std::string& id) {
        for (const decide::WorkloadStatus& st : status_board.All()) {
          if (st.workload != target) continue;
          for (const decide::RuleRef& r : st.rules) {
            if (r.id == id && r.source != decide::RuleSource::kRedis) {
              return std::string(decide::RuleSourceName(r.source));
            }
          }
        }
        return std::string();
      });
  // Rules stored in Redis (RulesService or straight SETs) join each workload's rules.
  HiredisClient rules_watch_redis(redis_options, clock);
  rules::StoredRulesWatcherOptions rules_watch_options;
  rules_watch_options.redis = redis_options;
  rules_watch_options.reload_interval = flags.rules_reload_interval;
  rules_watch_options.configure_notifications = flags.rules_configure_notifications;
  rules::StoredRulesWatcher* rules_watcher_ptr = nullptr;
  rules::StoredRulesWatcher rules_watcher(
      rules_watch_options, &rules_watch_redis,
      [&decider, &rules_watcher_ptr](std::vector<ScalingRule> rules) {
        decider.SetStoredRules(std::move(rules), [&rules_watcher_ptr](size_t conflicts) {
          rules_watcher_ptr->SetConflicts(conflicts);
        });
      },
      registry.get(), clock);
  rules_watcher_ptr = &rules_watcher;
  ingest::SampleAuth sample_auth(&access, kube != nullptr ? &pod_owners : nullptr, registry.get());
  ingest::StreamLimits stream_limits;
  stream_limits.max_samples_per_message = static_cast<size_t>(flags.grpc_max_samples_per_message);
  stream_limits.max_pods_per_stream = static_cast<size_t>(flags.grpc_max_pods_per_stream);
  ingest::MetricsServiceImpl metrics_service(&queue, &ingest_metrics, clock, &feed, stream_limits,
                                             &sample_auth);
  // With several replicas only the Lease holder answers the balancers.
  activation::ActivationServiceImpl activation_service(
      &decider, &endpoints, clock,
      kube != nullptr
          ? activation::ServingCheck([&kube] { return kube->leadership->CheckServing(); })
          : nullptr,
      &access);
  CloseStreamsOnTermEnd close_streams(&activation_service, kube.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> grpc_credentials =
      grpcutil::MakeServerCredentials(GrpcTlsFiles(flags));
  if (!grpc_credentials.ok()) {
    std::cerr << "zeroscale-scaler: " << grpc_credentials.status().message() << "\n";
    return 2;
  }
  if (flags.tls_cert.empty()) {
    grpcutil::WarnIfPlaintext(flags.grpc_listen.host, "the scaler's gRPC and HTTP ports",
                              "--tls-cert and --tls-key");
  }
  builder.AddListeningPort(flags.grpc_listen.ToString(), *grpc_credentials, &grpc_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(flags.grpc_max_message_bytes));
  builder.RegisterService(&metrics_service);
  builder.RegisterService(&rules_service);
  builder.RegisterService(&activation_service);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || grpc_port == 0) {
    std::cerr << "zeroscale-scaler: cannot listen for gRPC on " << flags.grpc_listen.ToString()
              << "\n";
    return 2;
  }

  http::Router router;
  router.Handle(
      "POST", "/metrics",
      ingest::HttpIngestHandler(&queue, &ingest_metrics, clock, &feed,
                                {static_cast<size_t>(flags.ingest_max_items)}, &sample_auth));
  report::LeaderGauge leader_gauge(
      registry.get(), [&kube] { return kube == nullptr || kube->leadership->leading(); });
  router.HandleSync("GET", "/metrics", metrics::ExpositionHandler(registry.get(), [&leader_gauge] {
                      leader_gauge.Refresh();
                    }));
  router.HandleSync("GET", "/healthz",
                    [](const http::Request&) { return http::Response::Text(200, "ok\n"); });
  router.HandleSync("GET", "/readyz", [&queue](const http::Request&) {
    if (!queue.redis_up()) return http::Response::Text(503, "redis unreachable\n");
    return http::Response::Text(200, "ready\n");
  });
  report::StatusHttp status_http(&status_board, &history_reader, &endpoints, &access);
  status_http.Register(&router);
  // The stored rules are what RulesService.ListRules shows: the same permission.
  router.HandleSync("GET", "/rules", [&rules_watcher, &access](const http::Request& req) {
    absl::StatusOr<auth::Identity> who =
        access.Check(req.Header("Authorization"), auth::actions::kRulesList);
    if (!who.ok()) {
      return http::Response::Error(auth::HttpStatusOf(who.status()), who.status().message());
    }
    return http::Response::Json(200, rules_watcher.SnapshotJson());
  });
  http::ServerOptions http_options;
  http_options.listen = flags.http_listen;
  http_options.threads = 2;
  http_options.max_body_bytes = static_cast<size_t>(flags.http_max_body_bytes);
  http_options.max_connections = flags.http_max_connections;
  http_options.observer = &listener_metrics;
  std::unique_ptr<http::Server> http_server =
      flags.tls_cert.empty()
          ? std::make_unique<http::Server>(http_options, router.AsHandler())
          : http::NewTlsServer(http_options, {flags.tls_cert, flags.tls_key}, router.AsHandler());
  if (absl::Status s = http_server->Start(); !s.ok()) {
    std::cerr << "zeroscale-scaler: " << s.message() << "\n";
    return 2;
  }

  loop.Start();
  // The stored rules before the workloads register, so a restarted scaler decides (and
  // rebuilds windows) with them from its first evaluation; the watcher then follows.
  (void)rules_watcher.Reload("start");
  rules_watcher.Start();
  if (local_backend != nullptr) {
    if (absl::Status s = local_backend->Start(); !s.ok()) {
      std::cerr << "zeroscale-scaler: " << s.message() << "\n";
      return 2;
    }
  }
  if (kube != nullptr) {
    // Leads (or waits for the Lease), then watches CustomAutoscalers and decides.
    kube->Start();
    if (follow) tail.Start();
  }
  for (const workloads::Workload& w : workload_list) {
    decider.Upsert(local::SpecOf(w), 0, [id = w.id](absl::Status s) {
      if (!s.ok()) {
        ZS_LOG(kError, "workload refused", {"workload", id}, {"error", std::string(s.message())});
      }
    });
  }
  // A restarted scaler decides on full windows at once, from the history in Redis.
  if (!workload_list.empty()) {
    if (absl::Status s = decider.RebuildFromRedis(&rebuild_redis); !s.ok()) {
      ZS_LOG(kWarning, "cannot rebuild windows from redis; they fill from new samples",
             {"error", std::string(s.message())});
    }
  }
  ZS_LOG(kInfo, "scaler started", {"grpc", flags.grpc_listen.ToString()},
         {"http", flags.http_listen.ToString()}, {"redis", flags.redis.ToString()},
         {"backend", backend}, {"workloads", absl::StrCat(workload_list.size())},
         {"tls", flags.tls_cert.empty() ? "off" : "on"}, {"dry_run", dry_run ? "true" : "false"},
         {"auth",
          flags.insecure
              ? "off (--insecure)"
              : absl::StrCat(
                    static_tokens != nullptr ? "static tokens" : "",
                    static_tokens != nullptr && reviewers.authenticator != nullptr ? " + " : "",
                    reviewers.authenticator != nullptr ? "TokenReview/SubjectAccessReview" : "",
                    static_tokens == nullptr && reviewers.authenticator == nullptr
                        ? "none configured: checked calls are refused"
                        : "")});

  const int sig = WaitForTerminationSignal();
  ZS_LOG(kInfo, "stopping", {"signal", absl::StrCat(sig)});
  http_server->Stop();
  if (*webhook_server != nullptr) (*webhook_server)->Stop();
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (local_backend != nullptr) local_backend->Shutdown();
  tail.Stop();
  rules_watcher.Stop();
  if (kube != nullptr) kube->Stop();
  loop.Stop();
  queue.Stop(absl::Seconds(3));
  history_sink.Stop();
  return 0;
}

}  // namespace
}  // namespace zeroscale

int main(int argc, char** argv) { return zeroscale::Run(argc, argv); }
