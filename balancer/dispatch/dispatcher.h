// The balancer's data-path logic, plugged into the streaming proxy engine as its
// UpstreamPicker (where each request goes) and ProxyObserver (when it is done).
//
// A request is routed to its workload (RouteTable, replaceable at run time as
// CustomAutoscalers change). A workload's ready pods come from the scaler's readiness
// announcements (a woken pod takes traffic the moment its sidecar reports ready) and, in
// Kubernetes, from the pods its EndpointSlices list, which decide which pods exist: an
// announcement counts only for a pod Kubernetes still lists and is not taking out of
// service (balancer/pods has the rule). When the workload has a ready pod
// and a free connection slot (max_connections per workload) the pick is answered at
// once by the current policy. Otherwise the request waits in the workload's FIFO queue
// (bounded by max_queue; full means 503): while no pod is ready, the scaler is asked
// ONCE to wake the workload (retried with backoff while it cannot be reached) and the
// queue goes out in arrival order the moment a Watch update (or the Activate answer)
// shows a ready pod. A request that waits longer than the workload's activation timeout
// (or, when pods are ready but all slots are busy, timeout_seconds) is answered 503 with
// Retry-After. A client that leaves while held is dropped from the queue and counted.
// Each PickDone is moved out of the queue exactly once under the lock, so no request is
// lost or sent twice.
//
// Settings (policy, max_connections, timeout_seconds) change at run time without
// touching requests in flight. timeout_seconds bounds the wait for a slot here and the
// upstream's silence (handed to the engine with each pick).
//
// Thread-safety: all methods may be called from any thread. PickDones and the Activator
// are always called without the dispatcher's lock held.
#ifndef ZEROSCALE_BALANCER_DISPATCH_DISPATCHER_H_
#define ZEROSCALE_BALANCER_DISPATCH_DISPATCHER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "balancer/activation/scaler_client.h"
#include "balancer/logs/request_log.h"
#include "balancer/metrics/balancer_metrics.h"
#include "balancer/pods/pod_set.h"
#include "balancer/policy/policy.h"
#include "balancer/policy/settings.h"
#include "balancer/routing/routes.h"
#include "common/proxy/proxy.h"
#include "common/time/backoff.h"
#include "common/time/clock.h"

namespace zeroscale::balancer {

struct DispatcherOptions {
  // Hold limit for workloads whose route sets no activationTimeoutSeconds. Long: models
  // can take minutes to load.
  absl::Duration default_activation_timeout = absl::Minutes(5);
  // Requests waiting per workload (for a pod or a slot) before new ones get 503.
  size_t max_queue = 10000;
  absl::Duration activate_backoff_initial = absl::Milliseconds(100);
  absl::Duration activate_backoff_max = absl::Seconds(5);
  // After the scaler accepted an Activate, ask again only if no pod is ready this much
  // later (the scaler may have lost the wish, e.g. by restarting).
  absl::Duration reactivate_after = absl::Seconds(30);
  // Retry-After (seconds) on a hold timeout and on a full queue.
  int retry_after_hold_seconds = 5;
  int retry_after_queue_seconds = 1;
  // How often waiting requests are checked against their deadlines.
  absl::Duration tick = absl::Milliseconds(10);
};

// A snapshot of one workload, for tests and the admin API.
struct WorkloadStatus {
  size_t held = 0;          // waiting requests
  int in_flight = 0;        // forwarded, not done
  size_t ready = 0;         // ready endpoints
  bool activating = false;  // an Activate is in flight or was accepted for this wake
};

class Dispatcher : public proxy::UpstreamPicker, public proxy::ProxyObserver {
 public:
  // Not owned; all must outlive the Dispatcher. `metrics` may be null.
  Dispatcher(RouteTable routes, Activator* activator, BalancerMetrics* metrics, const Clock* clock,
             DispatcherOptions options = {});
  ~Dispatcher() override;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Starts the deadline thread.
  void Start();
  // Answers every waiting request 503 and every later pick too, and stops the deadline
  // thread. Call before stopping the Proxy: no PickDone is kept after this returns.
  void Shutdown();

  void SetSettings(const Settings& settings);
  // Receives one finished request's log entry (e.g. LogWriter::Append); must not block.
  void SetRequestLogger(std::function<void(LogEntry)> logger);

  // Replaces the routes; requests already routed are unaffected.
  void SetRoutes(RouteTable routes);
  // A workload's state from the scaler (Watch or Activate).
  void OnWorkloadState(const WorkloadState& state);
  // A workload's pods as its EndpointSlices list them, replacing what they said before;
  // nullopt when Kubernetes no longer lists them (the announcements alone decide again).
  void OnListedPods(const std::string& workload, std::optional<std::vector<ListedPod>> pods);
  // The balancer now talks to another scaler (the leader changed): every workload with
  // held requests and no ready pod asks it for a wake at once, since a wake the previous
  // scaler accepted may have died with it.
  void OnScalerChanged();
  // Requests since the last call and held/in-flight counts per workload with traffic
  // (and once more after traffic stops, so the scaler sees it reach zero).
  std::vector<TrafficSample> TakeTraffic();

  WorkloadStatus Status(const std::string& workload) const;

  // Sets each workload's zeroscale_balancer_oldest_held_request_age_seconds to how long
  // its oldest held request has waited by now (0 when none is held). Run before each
  // /metrics scrape: the age grows with time, not with events.
  void RefreshHeldAges();

  // proxy::UpstreamPicker
  void Pick(const proxy::RequestHead& head, proxy::PickDone done) override;
  void Cancel(const proxy::RequestHead& head) override;
  // proxy::ProxyObserver
  void OnRequestDone(const proxy::RequestResult& result) override;

 private:
  struct Endpoint {
    proxy::Upstream upstream;
    std::string address;
    int active = 0;
  };
  struct Waiter {
    uint64_t id = 0;
    proxy::PickDone done;
    absl::Time arrived;
    absl::Time deadline;
  };
  struct Workload {
    std::string id;
    absl::Duration activation_timeout;
    WorkloadMetrics* metrics = nullptr;
    // Sources of `ready`, merged by RebuildReadyLocked: the scaler's announcements, and
    // the pods Kubernetes lists (nullopt: it lists none for the balancer).
    std::vector<EndpointInfo> announced;
    std::optional<std::vector<ListedPod>> listed;
    std::vector<std::shared_ptr<Endpoint>> ready;
    int active = 0;
    std::deque<Waiter> queue;
    SelectorState selector;
    // Activation of the current wake.
    bool call_in_flight = false;
    bool accepted = false;
    absl::Time accepted_at;
    absl::Time next_attempt;
    Backoff backoff;  // between failed Activate calls
    std::string last_error;
    // requests_total children by status, so a finished request looks up no labels.
    std::vector<std::pair<int, prometheus::Counter*>> requests_by_status;
    // Traffic reports.
    uint64_t requests_since_report = 0;
    bool reported_nonzero = false;
  };
  struct Record {
    Workload* workload = nullptr;
    std::shared_ptr<Endpoint> endpoint;
    absl::Time arrived;
    absl::Time released;
  };
  // Work decided under the lock and done after releasing it.
  struct Actions {
    std::vector<std::pair<proxy::PickDone, proxy::PickResult>> picks;
    std::vector<std::pair<std::string, uint32_t>> activations;
    std::vector<proxy::PickDone> dropped;
  };

  Workload* WorkloadLocked(const std::string& id, const Route* route);
  static void SetActivationTimeoutLocked(Workload* w, absl::Duration timeout);
  proxy::PickResult ForwardLocked(Workload* w, Record* rec, absl::Time now);
  void DrainLocked(Workload* w, absl::Time now, Actions* actions);
  void MaybeActivateLocked(Workload* w, absl::Time now, Actions* actions);
  void ApplyStateLocked(Workload* w, const WorkloadState& state, bool from_activate, absl::Time now,
                        Actions* actions);
  // Recomputes w->ready from its sources, then releases held requests or asks for a wake.
  void RebuildReadyLocked(Workload* w, absl::Time now, Actions* actions);
  std::shared_ptr<const RouteTable> Routes() const;
  void ExpireLocked(Workload* w, absl::Time now, Actions* actions);
  void Run(Actions* actions);
  void OnActivateDone(const std::string& workload, absl::StatusOr<WorkloadState> result);
  void TimerLoop();

  mutable std::mutex routes_mu_;  // guards routes_ only; never held with mu_
  std::shared_ptr<const RouteTable> routes_;
  Activator* const activator_;
  std::unique_ptr<prometheus::Registry> own_registry_;  // when no metrics were given
  std::unique_ptr<BalancerMetrics> own_metrics_;
  BalancerMetrics* metrics_;
  const Clock* const clock_;
  const DispatcherOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Settings settings_;
  absl::flat_hash_map<std::string, std::unique_ptr<Workload>> workloads_;
  absl::flat_hash_map<uint64_t, Record> records_;
  std::vector<proxy::PickDone> dropped_;  // cancelled picks, destroyed off the worker thread
  size_t waiting_ = 0;                    // across workloads
  bool wake_timer_ = false;
  bool shutdown_ = false;
  bool started_ = false;
  std::function<void(LogEntry)> logger_;
  std::thread timer_;
};

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_DISPATCH_DISPATCHER_H_
