// Prometheus counts of every listener of a program (net::ListenerObserver), labelled by
// the listener's name: failed accepts (out of file descriptors), open connections, and
// how often accepting paused at the connection cap. Thread-safe.
#ifndef ZEROSCALE_COMMON_METRICS_LISTENER_METRICS_H_
#define ZEROSCALE_COMMON_METRICS_LISTENER_METRICS_H_

#include "common/net/accept_control.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace zeroscale::metrics {

class ListenerMetrics : public net::ListenerObserver {
 public:
  explicit ListenerMetrics(prometheus::Registry* registry);

  void OnAccepted(absl::string_view listener) override;
  void OnClosed(absl::string_view listener) override;
  void OnAcceptError(absl::string_view listener) override;
  void OnAtCapacity(absl::string_view listener) override;

 private:
  prometheus::Family<prometheus::Counter>& accept_errors_;
  prometheus::Family<prometheus::Gauge>& connections_;
  prometheus::Family<prometheus::Counter>& at_capacity_;
};

}  // namespace zeroscale::metrics

#endif  // ZEROSCALE_COMMON_METRICS_LISTENER_METRICS_H_
