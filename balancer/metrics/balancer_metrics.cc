#include "balancer/metrics/balancer_metrics.h"

#include "absl/strings/str_cat.h"
#include "common/metrics/exposition.h"

namespace zeroscale::balancer {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

}  // namespace

BalancerMetrics::BalancerMetrics(prometheus::Registry* r)
    : requests_(BuildCounter()
                    .Name("zeroscale_balancer_requests_total")
                    .Help("Requests answered, by workload (empty: no route) and status code")
                    .Register(*r)),
      held_(BuildGauge()
                .Name("zeroscale_balancer_held_requests")
                .Help("Requests held now: waiting for a ready pod or a free connection slot")
                .Register(*r)),
      in_flight_(BuildGauge()
                     .Name("zeroscale_balancer_in_flight_requests")
                     .Help("Requests forwarded to a pod and not yet answered")
                     .Register(*r)),
      ready_(BuildGauge()
                 .Name("zeroscale_balancer_ready_endpoints")
                 .Help("Ready endpoints known for the workload")
                 .Register(*r)),
      oldest_held_age_(BuildGauge()
                           .Name("zeroscale_balancer_oldest_held_request_age_seconds")
                           .Help("How long the oldest request held now has waited (0: none "
                                 "held), as of the scrape")
                           .Register(*r)),
      activation_timeout_(BuildGauge()
                              .Name("zeroscale_balancer_activation_timeout_seconds")
                              .Help("How long a request is held for the workload while it has "
                                    "no ready pod before it is answered 503 (the route's "
                                    "activationTimeoutSeconds or --default-activation-timeout)")
                              .Register(*r)),
      hold_seconds_(BuildHistogram()
                        .Name("zeroscale_balancer_hold_duration_seconds")
                        .Help("How long held requests waited before release or timeout: the "
                              "cold-start delay users see")
                        .Register(*r)),
      upstream_seconds_(BuildHistogram()
                            .Name("zeroscale_balancer_upstream_latency_seconds")
                            .Help("From forwarding a request to its last response byte")
                            .Register(*r)),
      activations_(BuildCounter()
                       .Name("zeroscale_balancer_activations_total")
                       .Help("Activate calls accepted by the scaler (one per wake)")
                       .Register(*r)),
      activation_failures_(BuildCounter()
                               .Name("zeroscale_balancer_activation_failures_total")
                               .Help("Activate calls that failed (retried with backoff)")
                               .Register(*r)),
      cancelled_(BuildCounter()
                     .Name("zeroscale_balancer_cancelled_while_held_total")
                     .Help("Requests whose client went away while they were held")
                     .Register(*r)),
      hold_timeouts_(BuildCounter()
                         .Name("zeroscale_balancer_hold_timeouts_total")
                         .Help("Held requests answered 503 because no pod became ready in time")
                         .Register(*r)),
      queue_full_(BuildCounter()
                      .Name("zeroscale_balancer_queue_full_total")
                      .Help("Requests answered 503 because the workload's queue was full")
                      .Register(*r)) {
  logs_written_ = &BuildCounter()
                       .Name("zeroscale_balancer_logs_written_total")
                       .Help("Request log entries stored in Redis")
                       .Register(*r)
                       .Add({});
  logs_dropped_ = &BuildCounter()
                       .Name("zeroscale_balancer_logs_dropped_total")
                       .Help("Request log entries dropped (Redis unavailable or backlog full)")
                       .Register(*r)
                       .Add({});
  scaler_connected_ = &BuildGauge()
                           .Name("zeroscale_balancer_scaler_connected")
                           .Help("1 while the Watch stream to the scaler is open")
                           .Register(*r)
                           .Add({});
  watch_reconnects_ = &BuildCounter()
                           .Name("zeroscale_balancer_watch_reconnects_total")
                           .Help("Watch streams to the scaler that broke or failed to open")
                           .Register(*r)
                           .Add({});
  routes_ = &BuildGauge()
                 .Name("zeroscale_balancer_routes")
                 .Help("Routes in force (routes file and CustomAutoscalers)")
                 .Register(*r)
                 .Add({});
  routes_refused_ = &BuildGauge()
                         .Name("zeroscale_balancer_routes_refused")
                         .Help(
                             "CustomAutoscalers whose spec.route is malformed or conflicts "
                             "with another route (see the balancer's log)")
                         .Register(*r)
                         .Add({});
  kube_watch_errors_ = &BuildCounter()
                            .Name("zeroscale_balancer_kube_watch_errors_total")
                            .Help("Kubernetes list/watch failures (retried with backoff)")
                            .Register(*r)
                            .Add({});
  endpointslices_ignored_ = &BuildGauge()
                                 .Name("zeroscale_balancer_endpointslices_ignored")
                                 .Help(
                                     "EndpointSlices ignored because their addressType is not "
                                     "IPv4 or IPv6 (FQDN): the proxy connects to IP addresses")
                                 .Register(*r)
                                 .Add({});
  scaler_leader_known_ = &BuildGauge()
                              .Name("zeroscale_balancer_scaler_leader_known")
                              .Help(
                                  "1 while the ActivationService calls go to the holder of the "
                                  "scaler's Lease (--scaler-lease), 0 while they go to --scaler")
                              .Register(*r)
                              .Add({});
  scaler_switches_ = &BuildCounter()
                          .Name("zeroscale_balancer_scaler_switches_total")
                          .Help(
                              "Times the balancer pointed its ActivationService calls at "
                              "another scaler (the Lease holder changed)")
                          .Register(*r)
                          .Add({});
  traffic_reports_failed_ = &BuildCounter()
                                 .Name("zeroscale_balancer_traffic_report_failures_total")
                                 .Help("ReportTraffic streams that broke or failed to open")
                                 .Register(*r)
                                 .Add({});
}

WorkloadMetrics* BalancerMetrics::Workload(const std::string& workload) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = workloads_[workload];
  if (slot) return slot.get();
  slot = std::make_unique<WorkloadMetrics>();
  const std::map<std::string, std::string> l = {{"workload", workload}};
  slot->workload = workload;
  slot->held = &held_.Add(l);
  slot->in_flight = &in_flight_.Add(l);
  slot->ready_endpoints = &ready_.Add(l);
  slot->oldest_held_age = &oldest_held_age_.Add(l);
  slot->activation_timeout = &activation_timeout_.Add(l);
  slot->hold_seconds = &hold_seconds_.Add(l, metrics::LatencyBuckets());
  slot->upstream_seconds = &upstream_seconds_.Add(l, metrics::LatencyBuckets());
  slot->activations = &activations_.Add(l);
  slot->activation_failures = &activation_failures_.Add(l);
  slot->cancelled_while_held = &cancelled_.Add(l);
  slot->hold_timeouts = &hold_timeouts_.Add(l);
  slot->queue_full = &queue_full_.Add(l);
  return slot.get();
}

prometheus::Counter* BalancerMetrics::Requests(const std::string& workload, int code) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& c = requests_cache_[{workload, code}];
  if (c == nullptr) c = &requests_.Add({{"workload", workload}, {"code", absl::StrCat(code)}});
  return c;
}

}  // namespace zeroscale::balancer
