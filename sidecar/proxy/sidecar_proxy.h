// The sidecar's latency-measuring reverse proxy: the proxy-port listener forwarding every
// request to the app on 127.0.0.1:<app port>, recording each request's latency and the
// requests in flight for the per-interval Podmetric figures.
//
// Thread-safety: Start/Stop from one thread; TakeIntervalStats and the counters may be
// called from any thread while the proxy runs.
#ifndef ZEROSCALE_SIDECAR_PROXY_SIDECAR_PROXY_H_
#define ZEROSCALE_SIDECAR_PROXY_SIDECAR_PROXY_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/config/flags.h"
#include "common/proxy/proxy.h"
#include "common/time/clock.h"
#include "sidecar/proxy/latency_stats.h"

namespace zeroscale::sidecar {

struct SidecarProxyOptions {
  config::HostPort listen{"0.0.0.0", 8012};
  uint16_t app_port = 0;
  // Engine settings (timeouts, threads); its `listen` is replaced by the one above.
  proxy::ProxyOptions engine;
};

class SidecarProxy {
 public:
  // `clock` (not owned; RealClock::Get() when null) times the intervals and in-flight
  // integral; request latencies are measured by the engine on a monotonic clock.
  explicit SidecarProxy(SidecarProxyOptions options, const Clock* clock = nullptr);
  ~SidecarProxy();
  SidecarProxy(const SidecarProxy&) = delete;
  SidecarProxy& operator=(const SidecarProxy&) = delete;

  absl::Status Start();
  void Stop();
  uint16_t port() const;

  // Figures since the previous call (or Start), then starts a new interval at `now`.
  IntervalStats TakeIntervalStats(absl::Time now);

  // Since start, for the sidecar's /metrics.
  int64_t total_requests() const;
  int64_t upstream_errors() const;    // 502s
  int64_t upstream_timeouts() const;  // 504s
  int64_t in_flight() const;
  proxy::ProxyStats engine_stats() const;

 private:
  class Observer;
  const SidecarProxyOptions options_;
  const Clock* const clock_;
  LatencyStats stats_;
  std::unique_ptr<proxy::FixedUpstreamPicker> picker_;
  std::unique_ptr<Observer> observer_;
  std::unique_ptr<proxy::Proxy> proxy_;
};

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_PROXY_SIDECAR_PROXY_H_
