// zeroscale-scaler: wires ingest, storage, rules and the HTTP/gRPC endpoints together.
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/config/flags.h"
#include "common/http/http_server.h"
#include "common/log/log.h"
#include "common/metrics/exposition.h"
#include "common/process/signals.h"
#include "common/redis/redis.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/registry.h"
#include "scaler/ingest/http_ingest.h"
#include "scaler/ingest/ingest_metrics.h"
#include "scaler/ingest/ingest_queue.h"
#include "scaler/ingest/metrics_service.h"
#include "scaler/rules/rules_service.h"
#include "scaler/store/podmetric_store.h"
#include "scaler/store/rule_store.h"

namespace zeroscale {
namespace {

struct Flags {
  config::HostPort redis, grpc_listen, http_listen, webhook_listen;
  std::string backend, workloads, kubeconfig, namespace_, webhook_cert, webhook_key, log_level;
  absl::Duration retention;
  bool leader_elect = true, dry_run = false;
  int64_t ingest_batch = 4096, ingest_queue = 200000;
};

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
            "kubeconfig file (default: in-cluster config, else $KUBECONFIG)");
  fs.String("namespace", &f.namespace_, "", "Namespace to watch (default: all)");
  fs.Bool("leader-elect", &f.leader_elect, true, "Take a Lease so one replica decides");
  fs.Bool("dry-run", &f.dry_run, false, "Compute, explain and record decisions; apply none");
  fs.String("webhook-cert", &f.webhook_cert, "", "TLS certificate (PEM) of the webhook");
  fs.String("webhook-key", &f.webhook_key, "", "TLS private key (PEM) of the webhook");
  fs.Int("ingest-batch", &f.ingest_batch, 4096, "Samples per Redis round trip", 1, 100000);
  fs.Int("ingest-queue", &f.ingest_queue, 200000,
         "Samples queued before streams are paused (backpressure)", 100, 100000000);
  fs.Enum("log-level", &f.log_level, "info", {"debug", "info", "warning", "error"},
          "Lowest level logged");
  fs.ParseOrExit(argc, argv);
  return f;
}

log::Level LevelOf(const std::string& name) {
  if (name == "debug") return log::Level::kDebug;
  if (name == "warning") return log::Level::kWarning;
  if (name == "error") return log::Level::kError;
  return log::Level::kInfo;
}

int Run(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  log::SetComponent("scaler");
  log::SetLevel(LevelOf(flags.log_level));
  if (flags.backend == "kubernetes" || flags.backend == "local") {
    std::cerr << "zeroscale-scaler: --backend=" << flags.backend
              << " is not available in this build yet; use --backend=none or auto\n";
    return 2;
  }
  BlockTerminationSignals();
  ZS_LOG(kInfo, "no replica backend: ingesting, storing and evaluating only; nothing is applied",
         {"backend", flags.backend});

  const Clock* clock = RealClock::Get();
  auto registry = std::make_shared<prometheus::Registry>();
  ingest::IngestMetrics ingest_metrics(registry.get());

  RedisOptions redis_options;
  redis_options.host = flags.redis.host;
  redis_options.port = flags.redis.port;
  HiredisClient writer_redis(redis_options, clock);
  HiredisClient api_redis(redis_options, clock);

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

  store::RuleStore rule_store(&api_redis);
  rules::RulesServiceImpl rules_service(&rule_store);
  ingest::MetricsServiceImpl metrics_service(&queue, &ingest_metrics, clock);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(flags.grpc_listen.ToString(), grpc::InsecureServerCredentials(),
                           &grpc_port);
  builder.RegisterService(&metrics_service);
  builder.RegisterService(&rules_service);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || grpc_port == 0) {
    std::cerr << "zeroscale-scaler: cannot listen for gRPC on " << flags.grpc_listen.ToString()
              << "\n";
    return 2;
  }

  http::Router router;
  router.Handle("POST", "/metrics", ingest::HttpIngestHandler(&queue, &ingest_metrics, clock));
  router.HandleSync("GET", "/metrics", metrics::ExpositionHandler(registry.get()));
  router.HandleSync("GET", "/healthz", [](const http::Request&) {
    return http::Response::Text(200, "ok\n");
  });
  router.HandleSync("GET", "/readyz", [&queue](const http::Request&) {
    if (!queue.redis_up()) return http::Response::Text(503, "redis unreachable\n");
    return http::Response::Text(200, "ready\n");
  });
  http::ServerOptions http_options;
  http_options.listen = flags.http_listen;
  http_options.threads = 2;
  http::Server http_server(http_options, [&router](http::Request&& req, http::Responder r) {
    router.Dispatch(std::move(req), std::move(r));
  });
  if (absl::Status s = http_server.Start(); !s.ok()) {
    std::cerr << "zeroscale-scaler: " << s.message() << "\n";
    return 2;
  }
  ZS_LOG(kInfo, "scaler started", {"grpc", flags.grpc_listen.ToString()},
         {"http", flags.http_listen.ToString()}, {"redis", flags.redis.ToString()});

  const int sig = WaitForTerminationSignal();
  ZS_LOG(kInfo, "stopping", {"signal", absl::StrCat(sig)});
  http_server.Stop();
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  queue.Stop(absl::Seconds(3));
  return 0;
}

}  // namespace
}  // namespace zeroscale

int main(int argc, char** argv) { return zeroscale::Run(argc, argv); }
