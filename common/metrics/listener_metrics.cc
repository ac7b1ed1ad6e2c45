#include "common/metrics/listener_metrics.h"

#include <string>

namespace zeroscale::metrics {

ListenerMetrics::ListenerMetrics(prometheus::Registry* registry)
    : accept_errors_(prometheus::BuildCounter()
                         .Name("zeroscale_listener_accept_errors_total")
                         .Help("Failed accepts (e.g. out of file descriptors), each followed "
                               "by a backoff, by listener")
                         .Register(*registry)),
      connections_(prometheus::BuildGauge()
                       .Name("zeroscale_listener_connections")
                       .Help("Open client connections, by listener")
                       .Register(*registry)),
      at_capacity_(prometheus::BuildCounter()
                       .Name("zeroscale_listener_at_capacity_total")
                       .Help("Times a listener stopped accepting at its connection cap "
                             "(new connections wait in the backlog), by listener")
                       .Register(*registry)) {}

// Family::Add finds the labelled series or creates it: a handful of listeners per program.
void ListenerMetrics::OnAccepted(absl::string_view listener) {
  connections_.Add({{"listener", std::string(listener)}}).Increment();
}
void ListenerMetrics::OnClosed(absl::string_view listener) {
  connections_.Add({{"listener", std::string(listener)}}).Decrement();
}
void ListenerMetrics::OnAcceptError(absl::string_view listener) {
  accept_errors_.Add({{"listener", std::string(listener)}}).Increment();
}
void ListenerMetrics::OnAtCapacity(absl::string_view listener) {
  at_capacity_.Add({{"listener", std::string(listener)}}).Increment();
}

}  // namespace zeroscale::metrics
