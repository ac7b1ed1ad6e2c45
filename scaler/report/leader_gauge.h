// zeroscale_scaler_leader on the scaler's /metrics: 1 while this replica is the one that
// decides (it holds the Lease, or leads alone: leader election off, or a backend without
// Kubernetes), 0 while it only ingests. The value is read from `leading` on each Refresh,
// which the /metrics handler runs before every scrape, so a scrape sees leadership as it
// is at that moment (it drops the instant the Lease is lost, before the term winds down).
// Alerts take max() over the replicas: below 1 means no replica decides.
//
// Thread-safety: Refresh may be called from any thread; `leading` must be thread-safe.
#ifndef ZEROSCALE_SCALER_REPORT_LEADER_GAUGE_H_
#define ZEROSCALE_SCALER_REPORT_LEADER_GAUGE_H_

#include <functional>

#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace zeroscale::report {

class LeaderGauge {
 public:
  // Registers the gauge in `registry` (which must outlive this) and sets it once.
  LeaderGauge(prometheus::Registry* registry, std::function<bool()> leading);

  void Refresh();

 private:
  const std::function<bool()> leading_;
  prometheus::Gauge& gauge_;
};

}  // namespace zeroscale::report

#endif  // ZEROSCALE_SCALER_REPORT_LEADER_GAUGE_H_
