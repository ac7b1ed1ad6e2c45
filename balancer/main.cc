// zeroscale-balancer: wires routing, the dispatcher (policies, holding while at zero),
// the scaler client, settings, request logs and the admin API around the streaming
// proxy engine.
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "balancer/activation/scaler_client.h"
#include "balancer/admin/admin_api.h"
#include "balancer/discovery/kube_discovery.h"
#include "balancer/dispatch/dispatcher.h"
#include "balancer/leader/lease_follower.h"
#include "balancer/logs/request_log.h"
#include "balancer/metrics/balancer_metrics.h"
#include "balancer/policy/settings_store.h"
#include "balancer/routing/routes.h"
#include "common/auth/access_control.h"
#include "common/auth/kube_review.h"
#include "common/auth/static_tokens.h"
#include "common/auth/token_file.h"
#include "common/config/flags.h"
#include "common/grpcutil/credentials.h"
#include "common/http/http_server.h"
#include "common/http/tls_server.h"
#include "common/kube/config.h"
#include "common/log/log.h"
#include "common/metrics/listener_metrics.h"
#include "common/process/signals.h"
#include "common/proxy/proxy.h"
#include "common/redis/redis.h"
#include "grpcpp/security/credentials.h"
#include "prometheus/registry.h"

namespace zeroscale::balancer {
namespace {

struct Flags {
  config::HostPort scaler, redis, listen, admin_listen;
  std::string routes, environment, log_level, admin_token, discovery, kubeconfig, namespace_;
  std::string auth_tokens, token_file;
  bool insecure = false;
  std::string scaler_lease, lease_namespace, lease_name;  // the last two parsed from the first
  std::string admin_tls_cert, admin_tls_key;
  grpcutil::ScalerTls scaler_tls;
  absl::Duration default_activation_timeout, connect_timeout, settings_refresh;
  int64_t threads = 2, max_queue = 10000, log_cap = 100000;
  int64_t max_connections = 16384, admin_max_connections = 256;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  config::FlagSet fs("zeroscale-balancer",
                     "Load balancer and activator in front of workloads: routes requests to "
                     "ready pods by policy, holds them while a workload wakes from zero.");
  fs.Address("scaler", &f.scaler, "127.0.0.1:9090",
             "The scaler's gRPC ActivationService (with --scaler-lease: while no leader is "
             "known)");
  fs.String("scaler-lease", &f.scaler_lease, "",
            "NAMESPACE/NAME of the scaler's Lease: ActivationService calls go to the address "
            "its holder publishes (annotation zeroscale.io/grpc-address); empty: always "
            "--scaler");
  fs.Address("redis", &f.redis, "127.0.0.1:6379", "Redis: settings and request logs");
  fs.Address("listen", &f.listen, "0.0.0.0:8000", "Data plane (HTTP/1.1)");
  fs.Address("admin-listen", &f.admin_listen, "0.0.0.0:8001",
             "Admin API: /loadbalancer/settings, /proxy/logs, /metrics, /healthz");
  fs.String("admin-tls-cert", &f.admin_tls_cert, "",
            "TLS certificate (PEM chain) of --admin-listen, re-read when the file changes; "
            "empty: plain HTTP");
  fs.String("admin-tls-key", &f.admin_tls_key, "", "TLS private key (PEM) of --admin-tls-cert");
  grpcutil::RegisterScalerTlsFlags(&fs, &f.scaler_tls);
  fs.String("routes", &f.routes, "",
            "Routes file: the workloads file (YAML) with each workload's route");
  fs.Enum("discovery", &f.discovery, "auto", {"auto", "kubernetes", "none"},
          "Where routes and pods also come from: kubernetes watches CustomAutoscalers "
          "(spec.route) and EndpointSlices; auto means kubernetes when a cluster "
          "configuration is found; none: the routes file and the scaler only");
  fs.String("kubeconfig", &f.kubeconfig, "",
            "kubeconfig file (default: in-cluster config, else $KUBECONFIG)");
  fs.String("namespace", &f.namespace_, "",
            "Namespace whose CustomAutoscalers and EndpointSlices are watched (default: all)");
  fs.String("environment", &f.environment, "default", "Settings environment this balancer serves");
  fs.Duration("default-activation-timeout", &f.default_activation_timeout, absl::Minutes(5),
              "How long a request is held for a workload at zero unless its route sets "
              "activationTimeoutSeconds");
  fs.Int("threads", &f.threads, 2, "Data-plane worker threads", 1, 256);
  fs.Int("max-queue", &f.max_queue, 10000,
         "Requests waiting per workload (for a pod or a connection slot) before 503", 1, 10000000);
  fs.Int("log-cap", &f.log_cap, 100000, "Request log entries kept in Redis", 100, 100000000);
  fs.Int("max-connections", &f.max_connections, 16384,
         "Client connections the data plane keeps open at once; more wait in the backlog "
         "(0: no cap)",
         0, 10000000);
  fs.Int("admin-max-connections", &f.admin_max_connections, 256,
         "Connections the admin port keeps open at once; more wait in the backlog (0: no cap)", 0,
         10000000);
  fs.Duration("connect-timeout", &f.connect_timeout, absl::Seconds(5), "Upstream connect timeout");
  fs.Duration("settings-refresh", &f.settings_refresh, absl::Seconds(5),
              "How often settings are re-read from Redis (other replicas' changes)");
  fs.String("admin-token", &f.admin_token, "",
            "A bearer token granted everything on the admin port (a zeroscale:operators token; "
            "kept for earlier command lines, --auth-tokens says more)");
  fs.String("auth-tokens", &f.auth_tokens, "",
            "Static bearer tokens for the admin port, one per line: token,name,group[,group...] "
            "(zeroscale:operators everything, zeroscale:viewers read-only)");
  fs.String("token-file", &f.token_file, "",
            "Bearer token sent to the scaler on every ActivationService call (re-read when it "
            "changes: the kubelet rotates projected tokens)");
  fs.Bool("insecure", &f.insecure, false,
          "Turn the admin port's credential checks off: anyone who reaches it may change "
          "settings and read request logs");
  fs.Enum("log-level", &f.log_level, "info", log::LevelNames(), "Lowest level logged");
  fs.ParseOrExit(argc, argv);
  if (f.admin_tls_cert.empty() != f.admin_tls_key.empty()) {
    std::cerr << "zeroscale-balancer: --admin-tls-cert and --admin-tls-key go together\n";
    std::exit(2);
  }
  if (absl::Status s = grpcutil::ValidateScalerTls(f.scaler_tls); !s.ok()) {
    std::cerr << "zeroscale-balancer: " << s.message() << "\n";
    std::exit(2);
  }
  if (!f.scaler_lease.empty()) {
    if (absl::Status s = ParseLeaseRef(f.scaler_lease, &f.lease_namespace, &f.lease_name);
        !s.ok()) {
      std::cerr << "zeroscale-balancer: " << s.message() << "\n";
      std::exit(2);
    }
  }
  return f;
}

// Says where requests can be routed from, once it is known whether Kubernetes is watched.
void LogRouteSources(const Flags& flags, size_t file_routes, bool kubernetes) {
  if (kubernetes) {
    ZS_LOG(kInfo, "routes from CustomAutoscalers' spec.route, pods from their EndpointSlices",
           {"routes_file", flags.routes.empty() ? "(none)" : flags.routes},
           {"file_routes", absl::StrCat(file_routes)});
    return;
  }
  const char* why =
      flags.discovery == "none" ? "--discovery=none" : "no cluster configuration found";
  if (flags.routes.empty()) {
    ZS_LOG(kWarning,
           "no --routes file and no Kubernetes discovery: every request will be answered 404",
           {"discovery", why});
  } else {
    ZS_LOG(kInfo, "routes from the routes file only, pods from the scaler",
           {"routes_file", flags.routes}, {"routes", absl::StrCat(file_routes)},
           {"discovery", why});
  }
}

std::unique_ptr<HiredisClient> NewRedis(const config::HostPort& addr) {
  RedisOptions o;
  o.host = addr.host;
  o.port = addr.port;
  o.connect_timeout = absl::Milliseconds(500);
  o.command_timeout = absl::Seconds(2);
  return std::make_unique<HiredisClient>(o, RealClock::Get());
}

int Run(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  log::SetComponent("balancer");
  log::SetLevelByName(flags.log_level);

  std::vector<Route> route_list;
  if (!flags.routes.empty()) {
    absl::StatusOr<std::vector<Route>> loaded = LoadRoutesFile(flags.routes);
    if (!loaded.ok()) {
      std::cerr << "zeroscale-balancer: " << loaded.status().message() << "\n";
      return 2;
    }
    route_list = *std::move(loaded);
  }
  absl::StatusOr<RouteTable> routes = RouteTable::Create(route_list);
  if (!routes.ok()) {
    std::cerr << "zeroscale-balancer: " << flags.routes << ": " << routes.status().message()
              << "\n";
    return 2;
  }
  if (absl::Status s = ValidateEnvironment(flags.environment); !s.ok()) {
    std::cerr << "zeroscale-balancer: --" << s.message() << "\n";
    return 2;
  }
  std::optional<kube::ClusterConfig> cluster;
  if (flags.discovery != "none" || !flags.scaler_lease.empty()) {
    absl::StatusOr<kube::ClusterConfig> found =
        kube::LoadDefaultConfig(flags.kubeconfig, config::ProcessEnv());
    if (found.ok()) {
      cluster = *std::move(found);
    } else if (flags.discovery == "kubernetes" || !flags.scaler_lease.empty()) {
      std::cerr << "zeroscale-balancer: "
                << (flags.discovery == "kubernetes" ? "--discovery=kubernetes: "
                                                    : "--scaler-lease needs a cluster: ")
                << found.status().message() << "\n";
      return 2;
    }
  }
  const bool watch_routes = cluster && flags.discovery != "none";
  LogRouteSources(flags, route_list.size(), watch_routes);
  BlockTerminationSignals();

  const Clock* clock = RealClock::Get();
  auto registry = std::make_shared<prometheus::Registry>();
  BalancerMetrics metrics(registry.get());

  SettingsStore settings(NewRedis(flags.redis), clock, flags.environment);
  if (absl::Status s = settings.Load(); !s.ok()) {
    ZS_LOG(kWarning, "cannot load settings from Redis; using defaults until it is back",
           {"error", std::string(s.message())});
  }

  ScalerClientOptions scaler_options;
  scaler_options.target = flags.scaler.ToString();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      grpcutil::MakeChannelCredentials(flags.scaler_tls);
  if (!credentials.ok()) {
    std::cerr << "zeroscale-balancer: " << credentials.status().message() << "\n";
    return 2;
  }
  scaler_options.credentials = *std::move(credentials);
  scaler_options.server_name = flags.scaler_tls.server_name;
  if (!flags.scaler_tls.enabled()) {
    grpcutil::WarnIfPlaintext(flags.scaler_lease.empty() ? flags.scaler.host : "the leader",
                              "the ActivationService calls to the scaler",
                              "--scaler-ca or --scaler-ca-data");
  }
  std::unique_ptr<auth::TokenFile> token_file;
  if (!flags.token_file.empty()) {
    token_file = std::make_unique<auth::TokenFile>(flags.token_file);
    if (absl::StatusOr<std::string> t = token_file->Get(); !t.ok()) {
      ZS_LOG(kWarning, "no token to send to the scaler yet",
             {"error", std::string(t.status().message())});
    }
    scaler_options.authorization = [tf = token_file.get()] { return tf->AuthorizationValue(); };
  }
  ScalerClient scaler(scaler_options);

  DispatcherOptions dispatcher_options;
  dispatcher_options.default_activation_timeout = flags.default_activation_timeout;
  dispatcher_options.max_queue = static_cast<size_t>(flags.max_queue);
  Dispatcher dispatcher(*routes, &scaler, &metrics, clock, dispatcher_options);
  settings.SetListener([&dispatcher](const Settings& s) { dispatcher.SetSettings(s); });
  metrics.routes().Set(static_cast<double>(routes->routes().size()));

  std::unique_ptr<KubeDiscovery> discovery;
  if (watch_routes) {
    ClusterSinks sinks;
    sinks.routes = [&dispatcher, &metrics](RouteTable table) {
      metrics.routes().Set(static_cast<double>(table.routes().size()));
      dispatcher.SetRoutes(std::move(table));
    };
    sinks.pods = [&dispatcher](const std::string& workload,
                               std::optional<std::vector<ListedPod>> pods) {
      dispatcher.OnListedPods(workload, std::move(pods));
    };
    sinks.ignored = [&metrics](size_t ignored_now) {
      metrics.endpointslices_ignored().Set(static_cast<double>(ignored_now));
    };
    sinks.refused = [&metrics](const std::string&, const std::string&, size_t refused_now) {
      metrics.routes_refused().Set(static_cast<double>(refused_now));
    };
    absl::StatusOr<std::unique_ptr<KubeDiscovery>> created = KubeDiscovery::Create(
        *cluster, flags.namespace_, route_list, std::move(sinks),
        [&metrics](const absl::Status&) { metrics.kube_watch_errors().Increment(); });
    if (!created.ok()) {
      std::cerr << "zeroscale-balancer: " << cluster->source << ": " << created.status().message()
                << "\n";
      return 2;
    }
    discovery = *std::move(created);
    discovery->Start();
    // As informers do: serve once the cluster's routes and pods are known, or after a
    // bounded wait (the API server may be down; routes and pods then arrive later).
    if (!discovery->WaitForSync(absl::Seconds(10))) {
      ZS_LOG(kWarning, "serving before the first list of CustomAutoscalers and EndpointSlices");
    }
    ZS_LOG(kInfo, "watching CustomAutoscalers and EndpointSlices", {"cluster", cluster->source},
           {"namespace", flags.namespace_.empty() ? "(all)" : flags.namespace_});
  }

  // The scaler's leader, when asked to follow it: the client starts pointed at it.
  std::unique_ptr<kube::KubeClient> lease_client;
  std::unique_ptr<LeaseFollower> leader;
  if (!flags.scaler_lease.empty()) {
    absl::StatusOr<std::unique_ptr<kube::KubeClient>> client = kube::KubeClient::Create(*cluster);
    if (!client.ok()) {
      std::cerr << "zeroscale-balancer: " << cluster->source << ": " << client.status().message()
                << "\n";
      return 2;
    }
    lease_client = *std::move(client);
    LeaseFollowerOptions lease_options;
    lease_options.namespace_ = flags.lease_namespace;
    lease_options.name = flags.lease_name;
    lease_options.watch.on_error = [&metrics](const absl::Status&) {
      metrics.kube_watch_errors().Increment();
    };
    leader = std::make_unique<LeaseFollower>(
        lease_client.get(), lease_options,
        [&scaler, &dispatcher, &metrics,
         fallback = flags.scaler.ToString()](const std::string& address) {
          metrics.scaler_leader_known().Set(address.empty() ? 0 : 1);
          const std::string target = address.empty() ? fallback : address;
          if (target == scaler.target()) return;
          scaler.SetTarget(target);
          metrics.scaler_switches().Increment();
          dispatcher.OnScalerChanged();
        });
    scaler.OnNotLeader([&leader](const std::string&) { leader->Reread(); });
    leader->Start();
    if (!leader->WaitForSync(absl::Seconds(5))) {
      ZS_LOG(kWarning, "the scaler's Lease could not be read yet; calling --scaler meanwhile",
             {"lease", flags.scaler_lease}, {"scaler", flags.scaler.ToString()});
    }
  }

  LogWriterOptions log_options;
  log_options.max_entries = static_cast<size_t>(flags.log_cap);
  LogWriter log_writer(
      NewRedis(flags.redis), log_options,
      [&metrics](uint64_t n) { metrics.logs_written().Increment(static_cast<double>(n)); },
      [&metrics](uint64_t n) { metrics.logs_dropped().Increment(static_cast<double>(n)); });
  log_writer.Start();
  dispatcher.SetRequestLogger([&log_writer](LogEntry e) { log_writer.Append(std::move(e)); });
  dispatcher.Start();

  absl::Status started =
      scaler.Start([&dispatcher](const WorkloadState& s) { dispatcher.OnWorkloadState(s); },
                   [&metrics](bool connected) {
                     metrics.scaler_connected().Set(connected ? 1 : 0);
                     if (!connected) metrics.watch_reconnects().Increment();
                   },
                   [&dispatcher] { return dispatcher.TakeTraffic(); });
  if (!started.ok()) {
    std::cerr << "zeroscale-balancer: " << started.message() << "\n";
    return 2;
  }

  proxy::ProxyOptions proxy_options;
  proxy_options.listen = flags.listen;
  proxy_options.threads = static_cast<int>(flags.threads);
  proxy_options.connect_timeout = flags.connect_timeout;
  metrics::ListenerMetrics listener_metrics(registry.get());
  proxy_options.max_connections = flags.max_connections;
  proxy_options.observer = &listener_metrics;
  // Each pick carries timeout_seconds as set at that moment; this is only the fallback.
  proxy_options.upstream_timeout = absl::Seconds(settings.Serving().timeout_seconds);
  proxy::Proxy proxy(proxy_options, &dispatcher, &dispatcher);
  if (absl::Status s = proxy.Start(); !s.ok()) {
    std::cerr << "zeroscale-balancer: " << s.message() << "\n";
    return 2;
  }

  // Who may use the admin port: static tokens, and in a cluster TokenReview and
  // SubjectAccessReview.
  std::unique_ptr<auth::StaticTokens> static_tokens;
  if (!flags.auth_tokens.empty()) {
    absl::StatusOr<std::unique_ptr<auth::StaticTokens>> loaded =
        auth::StaticTokens::LoadFile(flags.auth_tokens);
    if (!loaded.ok()) {
      std::cerr << "zeroscale-balancer: --auth-tokens: " << loaded.status().message() << "\n";
      return 2;
    }
    static_tokens = *std::move(loaded);
  }
  if (!flags.admin_token.empty()) {
    if (static_tokens == nullptr) static_tokens = std::make_unique<auth::StaticTokens>();
    static_tokens->Add(flags.admin_token, "admin-token", {std::string(auth::kOperatorsGroup)});
  }
  std::unique_ptr<kube::KubeClient> review_client;
  auth::KubeReviewers reviewers;
  if (cluster && !flags.insecure) {
    absl::StatusOr<std::unique_ptr<kube::KubeClient>> client = kube::KubeClient::Create(*cluster);
    if (!client.ok()) {
      std::cerr << "zeroscale-balancer: " << cluster->source << ": " << client.status().message()
                << "\n";
      return 2;
    }
    review_client = *std::move(client);
    reviewers = auth::NewKubeReviewers(
        [c = review_client.get()](const std::string& path, const std::string& body) {
          return c->Call("POST", path, body);
        },
        clock);
  }
  auth::AccessControlOptions access_options;
  access_options.insecure = flags.insecure;
  access_options.tokens = static_tokens.get();
  access_options.kube_authenticator = reviewers.authenticator.get();
  access_options.kube_authorizer = reviewers.authorizer.get();
  access_options.how_to_configure = auth::HowToConfigure("balancer");
  auth::AccessControl access(access_options);
  if (flags.insecure) {
    ZS_LOG(kWarning,
           "--insecure: the admin port checks no credential; anyone who reaches it may change "
           "settings and read request logs (client IPs, URLs)");
  }

  LogReader log_reader(NewRedis(flags.redis));
  http::Router router;
  AdminApiDeps deps;
  deps.settings = &settings;
  deps.logs = &log_reader;
  deps.registry = registry.get();
  deps.access = &access;
  deps.refresh_metrics = [&dispatcher] { dispatcher.RefreshHeldAges(); };
  RegisterAdminRoutes(deps, &router);
  http::ServerOptions admin_options;
  admin_options.listen = flags.admin_listen;
  admin_options.threads = 1;
  admin_options.max_connections = flags.admin_max_connections;
  admin_options.name = "admin";
  admin_options.observer = &listener_metrics;
  std::unique_ptr<http::Server> admin =
      flags.admin_tls_cert.empty()
          ? std::make_unique<http::Server>(admin_options, router.AsHandler())
          : http::NewTlsServer(admin_options, {flags.admin_tls_cert, flags.admin_tls_key},
                               router.AsHandler());
  if (absl::Status s = admin->Start(); !s.ok()) {
    std::cerr << "zeroscale-balancer: " << s.message() << "\n";
    return 2;
  }
  settings.StartRefreshLoop(flags.settings_refresh);
  ZS_LOG(kInfo, "balancer started", {"listen", flags.listen.ToString()},
         {"admin", flags.admin_listen.ToString()}, {"scaler", scaler.target()},
         {"redis", flags.redis.ToString()}, {"routes", absl::StrCat(routes->routes().size())},
         {"environment", flags.environment},
         {"scaler_tls", flags.scaler_tls.enabled() ? "on" : "off"},
         {"admin_tls", flags.admin_tls_cert.empty() ? "off" : "on"});

  const int sig = WaitForTerminationSignal();
  ZS_LOG(kInfo, "shutting down", {"signal", absl::StrCat(sig)});
  admin->Stop();
  if (leader) leader->Stop();
  if (discovery) discovery->Stop();
  settings.Stop();
  // Held requests are answered before the engine stops (no PickDone may outlive it).
  dispatcher.Shutdown();
  proxy.Stop();
  scaler.Stop();
  log_writer.Stop();
  return 0;
}

}  // namespace
}  // namespace zeroscale::balancer

int main(int argc, char** argv) { return zeroscale::balancer::Run(argc, argv); }
