// zeroscale as a user installs it, for scenarios on the real control plane: the chart
// installed by the real helm (its CRD, ServiceAccounts, RBAC, webhook registration and
// Deployments), and the programs those Deployments describe run as processes of the test,
// each with the arguments the chart rendered and a kubeconfig holding a token of the
// chart's ServiceAccount, so RBAC is the chart's.
//
// What stands in for a cluster's plumbing, and why:
// - The chart's scaler and balancer Deployments are installed with 0 replicas and their
//   pod templates are run here instead (two scalers, one balancer), each on an address
//   of its own in the test's network namespace (198.18.0.2, .3: the scalers; .4: the
//   balancer), as pods would have one: with the chart's ports, `$(POD_IP)` expanded as a
//   kubelet expands it, and the webhook Secret's files where the chart mounts them.
// - No DNS and no kube-proxy: what the chart names by Service DNS name is given by
//   address (--redis: a redis-server of the test, through redis.externalAddress;
//   --sidecar-scaler-address: the second scaler; the balancer's fallback --scaler: the
//   first). The scaler's Service loses its selector and gets an Endpoints object listing
//   the two scaler processes, which is what the API server calls the chart's webhook
//   registration through (--enable-aggregator-routing: by endpoint, not ClusterIP), with
//   the chart's own certificate and caBundle.
//
// The first scaler is started first and waited for as the Lease holder, so the sidecars'
// streams go to the replica that does not lead (as a Service spreads them) and killing
// the leader leaves them streaming.
//
// Thread-safety: none; used by one test thread at a time.
#ifndef ZEROSCALE_TESTS_KUBE_ZEROSCALE_RELEASE_H_
#define ZEROSCALE_TESTS_KUBE_ZEROSCALE_RELEASE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/child_process.h"
#include "tests/testing/kube_api.h"
#include "tests/testing/kube_control_plane.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::testing {

struct ReleaseOptions {
  std::string release = "zs";
  std::string ns = "zeroscale-e2e";
  // Chart values (scaler.leaderElection.*): short, so a leader kill is seen quickly.
  std::string lease_duration = "3s";
  std::string renew_deadline = "2s";
  std::string retry_period = "500ms";
  // Extra `--set` values, e.g. "scaler.logLevel=debug".
  std::vector<std::string> values;
};

class ZeroscaleRelease {
 public:
  static constexpr char kScalerAddress[2][12] = {"198.18.0.2", "198.18.0.3"};
  static constexpr char kBalancerAddress[] = "198.18.0.4";
  static constexpr int kBalancerPort = 8000;
  static constexpr int kBalancerAdminPort = 8001;
  static constexpr int kScalerHttpPort = 8080;

  // Installs the chart and starts Redis, both scalers (the first leading) and the
  // balancer; returns once the balancer follows the leader and the webhook answers.
  static absl::StatusOr<std::unique_ptr<ZeroscaleRelease>> Start(KubeControlPlane* cluster,
                                                                 ReleaseOptions options = {});
  ~ZeroscaleRelease();

  const ReleaseOptions& options() const { return options_; }
  // "system:serviceaccount:<ns>:<release>-zeroscale-scaler" (or -balancer).
  std::string ServiceAccountUser(const std::string& component) const;
  ChildProcess& scaler(int i) { return *scalers_[i]; }
  ChildProcess& balancer() { return *balancer_; }
  // The identity scaler `i` takes the Lease with ("<hostname>-<pid>").
  std::string ScalerIdentity(int i) const;
  // The Lease's holderIdentity, "" when none.
  absl::StatusOr<std::string> LeaseHolder();
  // Waits until scaler `i` holds the Lease.
  absl::Status WaitForLeader(int i, absl::Duration timeout);
  // Kills scaler `i` with SIGKILL and takes it out of the scaler Service's endpoints (as
  // its failing readiness probe would).
  absl::Status KillScaler(int i);
  // Starts scaler `i` again (same command line) and puts it back into the endpoints.
  absl::Status RestartScaler(int i);
  // The logs of the programs, for failure messages.
  std::string Logs() const;

 private:
  ZeroscaleRelease(KubeControlPlane* cluster, ReleaseOptions options)
      : cluster_(cluster), options_(std::move(options)) {}
  absl::Status Install();
  absl::Status SetScalerEndpoints();
  absl::StatusOr<std::vector<std::string>> RenderedArgs(const std::string& deployment);

  KubeControlPlane* cluster_;
  ReleaseOptions options_;
  RedisServer redis_;
  std::string dir_;
  std::unique_ptr<ChildProcess> scalers_[2];
  bool scaler_up_[2] = {false, false};
  std::unique_ptr<ChildProcess> balancer_;
};

// A model server opted in by annotation alone (no zeroscale.io/inject: naming the port
// is enough) - the test app behind the injected sidecar, Deployment "model" with label
// app=model - its Service "model" (port 8012, the sidecar's proxy) and its
// CustomAutoscaler "model" routed by Host `host`.
struct Model {
  int replicas = 0;
  int min_replicas = 0;
  int max_replicas = 3;
  int idle_timeout_seconds = 2;
  std::string app_args = "[--ready-after=200ms]";
  std::string resources = "{}";
  std::string rules;  // YAML list items, indented by 4; "" for none
};
std::string ModelYaml(const Model& m, const std::string& host);

// Whether an audit event is a request the authorizer (RBAC) refused.
bool RefusedByRbac(const json& audit_event);

// One HTTP/1.1 exchange with its timing, from the test's network namespace: `host` is
// the Host header, the connection goes to `address`:`port`.
struct HttpExchange {
  int status = 0;  // 0: no answer (error says why)
  std::string body;
  std::string error;
  absl::Time sent;        // the request written
  absl::Time first_byte;  // the first byte of the answer read
};
HttpExchange HttpRequestTo(const std::string& address, int port, const std::string& host,
                           const std::string& path, absl::Duration timeout = absl::Seconds(60));

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_KUBE_ZEROSCALE_RELEASE_H_
