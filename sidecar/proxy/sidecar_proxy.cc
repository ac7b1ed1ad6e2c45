#include "sidecar/proxy/sidecar_proxy.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace zeroscale::sidecar {

class SidecarProxy::Observer : public proxy::ProxyObserver {
 public:
  Observer(const Clock* clock, LatencyStats* stats) : clock_(clock), stats_(stats) {}

  void OnRequestStart(const proxy::RequestHead&) override { stats_->OnStart(clock_->Now()); }

  void OnRequestDone(const proxy::RequestResult& r) override {
    stats_->OnDone(clock_->Now(), r.latency, r.outcome == proxy::Outcome::kBadGateway,
                   r.outcome == proxy::Outcome::kGatewayTimeout);
  }

 private:
  const Clock* const clock_;
  LatencyStats* const stats_;
};

SidecarProxy::SidecarProxy(SidecarProxyOptions options, const Clock* clock)
    : options_(std::move(options)),
      clock_(clock != nullptr ? clock : RealClock::Get()),
      stats_(clock_->Now()) {}

SidecarProxy::~SidecarProxy() { Stop(); }

absl::Status SidecarProxy::Start() {
  if (options_.app_port == 0) {
    return absl::InvalidArgumentError("sidecar proxy: app port must be set (1-65535)");
  }
  if (options_.listen.port != 0 && options_.listen.port == options_.app_port &&
      (options_.listen.host == "0.0.0.0" || options_.listen.host == "127.0.0.1" ||
       options_.listen.host == "::")) {
    return absl::InvalidArgumentError(absl::StrCat("sidecar proxy: proxy port ",
                                                   options_.listen.port,
                                                   " is the app port; it would forward to itself"));
  }
  proxy::ProxyOptions engine = options_.engine;
  engine.listen = options_.listen;
  picker_ =
      std::make_unique<proxy::FixedUpstreamPicker>(proxy::Upstream{"127.0.0.1", options_.app_port});
  observer_ = std::make_unique<Observer>(clock_, &stats_);
  proxy_ = std::make_unique<proxy::Proxy>(std::move(engine), picker_.get(), observer_.get());
  stats_.TakeIntervalStats(clock_->Now());
  return proxy_->Start();
}

void SidecarProxy::Stop() {
  if (proxy_) proxy_->Stop();
}

uint16_t SidecarProxy::port() const { return proxy_ ? proxy_->port() : 0; }

IntervalStats SidecarProxy::TakeIntervalStats(absl::Time now) {
  return stats_.TakeIntervalStats(now);
}

int64_t SidecarProxy::total_requests() const { return stats_.total_requests(); }
int64_t SidecarProxy::upstream_errors() const { return stats_.total_upstream_errors(); }
int64_t SidecarProxy::upstream_timeouts() const { return stats_.total_upstream_timeouts(); }
int64_t SidecarProxy::in_flight() const { return stats_.in_flight(); }
proxy::ProxyStats SidecarProxy::engine_stats() const {
  return proxy_ ? proxy_->stats() : proxy::ProxyStats{};
}

}  // namespace zeroscale::sidecar
