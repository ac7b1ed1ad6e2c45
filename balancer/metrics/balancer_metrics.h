// The balancer's Prometheus metrics (zeroscale_balancer_*), with per-workload children
// resolved once and cached, so the data path does not look labels up per request.
//
// Thread-safe: prometheus-cpp metrics are; the workload and status caches take a lock
// only when a new label value first appears.
#ifndef ZEROSCALE_BALANCER_METRICS_BALANCER_METRICS_H_
#define ZEROSCALE_BALANCER_METRICS_BALANCER_METRICS_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace zeroscale::balancer {

// One workload's metrics. Pointers into the registry; valid as long as it is.
struct WorkloadMetrics {
  prometheus::Gauge* held = nullptr;       // requests waiting (for a pod or a slot)
  prometheus::Gauge* in_flight = nullptr;  // requests forwarded and not yet done
  prometheus::Gauge* ready_endpoints = nullptr;
  prometheus::Gauge* oldest_held_age = nullptr;       // seconds; set on each scrape
  prometheus::Gauge* activation_timeout = nullptr;    // seconds; the hold limit at zero
  prometheus::Histogram* hold_seconds = nullptr;      // wait of each request that waited
  prometheus::Histogram* upstream_seconds = nullptr;  // from release to the last byte
  prometheus::Counter* activations = nullptr;         // Activate calls the scaler accepted
  prometheus::Counter* activation_failures = nullptr;
  prometheus::Counter* cancelled_while_held = nullptr;
  prometheus::Counter* hold_timeouts = nullptr;
  prometheus::Counter* queue_full = nullptr;
  // requests_total{workload, code}; looked up through Requests().
  std::string workload;
};

class BalancerMetrics {
 public:
  explicit BalancerMetrics(prometheus::Registry* registry);

  WorkloadMetrics* Workload(const std::string& workload);
  // zeroscale_balancer_requests_total{workload=..., code=...}; "" workload means no route.
  prometheus::Counter* Requests(const std::string& workload, int code);

  prometheus::Counter& logs_written() { return *logs_written_; }
  prometheus::Counter& logs_dropped() { return *logs_dropped_; }
  prometheus::Gauge& scaler_connected() { return *scaler_connected_; }
  prometheus::Counter& watch_reconnects() { return *watch_reconnects_; }
  prometheus::Counter& traffic_reports_failed() { return *traffic_reports_failed_; }
  prometheus::Gauge& routes() { return *routes_; }
  prometheus::Gauge& routes_refused() { return *routes_refused_; }
  prometheus::Counter& kube_watch_errors() { return *kube_watch_errors_; }
  prometheus::Gauge& endpointslices_ignored() { return *endpointslices_ignored_; }
  prometheus::Gauge& scaler_leader_known() { return *scaler_leader_known_; }
  prometheus::Counter& scaler_switches() { return *scaler_switches_; }

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Gauge>& held_;
  prometheus::Family<prometheus::Gauge>& in_flight_;
  prometheus::Family<prometheus::Gauge>& ready_;
  prometheus::Family<prometheus::Gauge>& oldest_held_age_;
  prometheus::Family<prometheus::Gauge>& activation_timeout_;
  prometheus::Family<prometheus::Histogram>& hold_seconds_;
  prometheus::Family<prometheus::Histogram>& upstream_seconds_;
  prometheus::Family<prometheus::Counter>& activations_;
  prometheus::Family<prometheus::Counter>& activation_failures_;
  prometheus::Family<prometheus::Counter>& cancelled_;
  prometheus::Family<prometheus::Counter>& hold_timeouts_;
  prometheus::Family<prometheus::Counter>& queue_full_;
  prometheus::Counter* logs_written_;
  prometheus::Counter* logs_dropped_;
  prometheus::Gauge* scaler_connected_;
  prometheus::Counter* watch_reconnects_;
  prometheus::Counter* traffic_reports_failed_;
  prometheus::Gauge* routes_;
  prometheus::Gauge* routes_refused_;
  prometheus::Counter* kube_watch_errors_;
  prometheus::Gauge* endpointslices_ignored_;
  prometheus::Gauge* scaler_leader_known_;
  prometheus::Counter* scaler_switches_;

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<WorkloadMetrics>> workloads_;
  std::map<std::pair<std::string, int>, prometheus::Counter*> requests_cache_;
};

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_METRICS_BALANCER_METRICS_H_
