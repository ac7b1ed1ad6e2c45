// A streaming HTTP/1.1 reverse-proxy engine shared by the sidecar and the balancer.
//
// Each worker thread runs its own io_context, acceptor (SO_REUSEPORT) and pool of idle
// upstream connections, so the data path takes no locks. Bodies stream in fixed-size
// pieces in both directions (server-sent events and chunked responses flow as produced);
// nothing is buffered whole. Where each request goes is decided per request by an
// UpstreamPicker, which may answer later from any thread (the balancer holds requests
// while a workload wakes). Boost.Beast stays out of this header.
//
// Thread-safety: Start/Stop from one thread. Picker and observer methods run on the
// worker threads (concurrently when threads > 1); PickDone may be called from any thread.
#ifndef ZEROSCALE_COMMON_PROXY_PROXY_H_
#define ZEROSCALE_COMMON_PROXY_PROXY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/config/flags.h"
#include "common/net/accept_control.h"

namespace zeroscale::proxy {

// What a picker or observer sees of a request. The session owns it and reuses its
// storage across keep-alive requests, so it is valid only until OnRequestDone returns;
// copy what must outlive that.
struct RequestHead {
  uint64_t id = 0;  // unique per request within one Proxy
  std::string method;
  std::string target;  // as sent: path and query
  std::string host;    // the Host header
  std::string client_ip;
  unsigned version = 11;  // 10 or 11

  // Case-insensitive lookup of a request header as the client sent it; "" when absent.
  absl::string_view Header(absl::string_view name) const;
  // Calls fn for each header in order.
  void ForEachHeader(const std::function<void(absl::string_view, absl::string_view)>& fn) const;

  const void* fields = nullptr;  // engine-private
};

// Hosts are IP literals (pod IPs, 127.0.0.1) or "localhost"; names are not resolved.
struct Upstream {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;
};

struct PickResult {
  Upstream upstream;  // used when error_status == 0
  // Replaces ProxyOptions::upstream_timeout for this request when positive, so a policy
  // changed at run time (the balancer's timeout_seconds) applies to the next request.
  absl::Duration upstream_timeout = absl::ZeroDuration();
  // Non-zero: answer the client with this instead of forwarding.
  int error_status = 0;
  std::string error_body;
  std::vector<std::pair<std::string, std::string>> error_headers;  // e.g. Retry-After

  bool ok() const { return error_status == 0; }
  static PickResult Forward(Upstream upstream);
  static PickResult Reject(int status, std::string body,
                           std::vector<std::pair<std::string, std::string>> headers = {});
};

namespace internal {
class PickSink {
 public:
  virtual ~PickSink() = default;
  virtual void DeliverPick(PickResult result) = 0;
};
}  // namespace internal

// The completion of one Pick. Move-only; call it once, from any thread. Keeps the
// session alive until called or destroyed; destroyed uncalled, it answers 502.
// Calls after the client went away are ignored.
class PickDone {
 public:
  PickDone() = default;
  explicit PickDone(std::shared_ptr<internal::PickSink> sink) : sink_(std::move(sink)) {}
  PickDone(PickDone&&) noexcept = default;
  PickDone& operator=(PickDone&& other) noexcept;
  PickDone(const PickDone&) = delete;
  PickDone& operator=(const PickDone&) = delete;
  ~PickDone();

  void operator()(PickResult result);
  explicit operator bool() const { return sink_ != nullptr; }

 private:
  std::shared_ptr<internal::PickSink> sink_;
};

class UpstreamPicker {
 public:
  virtual ~UpstreamPicker() = default;
  // Chooses where the request goes. May call `done` before returning (the fast path)
  // or keep it and call it later from any thread.
  virtual void Pick(const RequestHead& head, PickDone done) = 0;
  // The client went away while the pick for `head` was pending. The picker should drop
  // or call the PickDone it holds for head.id (the result is ignored).
  virtual void Cancel(const RequestHead& head) {}
};

// Always the same upstream: the sidecar's case.
class FixedUpstreamPicker : public UpstreamPicker {
 public:
  explicit FixedUpstreamPicker(Upstream upstream) : upstream_(std::move(upstream)) {}
  void Pick(const RequestHead& head, PickDone done) override;

 private:
  const Upstream upstream_;
};

enum class Outcome {
  kOk,              // the upstream's response was relayed in full
  kRejected,        // the picker answered with an error response
  kBadGateway,      // 502: upstream refused, reset, or sent a malformed response
  kGatewayTimeout,  // 504: upstream did not connect or answer in time
  kClientGone,      // the client disconnected or stalled before the response ended
  kBadRequest,      // the client sent a malformed request body
};
absl::string_view OutcomeName(Outcome outcome);

struct RequestResult {
  const RequestHead* head = nullptr;
  const Upstream* upstream = nullptr;  // null when none was picked
  // Status relayed or generated; 499 when the client left before any status.
  int status = 0;
  Outcome outcome = Outcome::kOk;
  // From the end of the request header to the last response byte written (or failure).
  absl::Duration latency;
  uint64_t request_body_bytes = 0;
  uint64_t response_body_bytes = 0;
  bool reused_connection = false;
  // Once the status line went out, an upstream failure can only cut the response short.
  bool response_truncated = false;
};

class ProxyObserver {
 public:
  virtual ~ProxyObserver() = default;
  virtual void OnRequestStart(const RequestHead& head) {}
  // Exactly once per OnRequestStart.
  virtual void OnRequestDone(const RequestResult& result) {}
};

struct ProxyOptions {
  config::HostPort listen;
  int threads = 1;
  absl::Duration connect_timeout = absl::Seconds(5);
  // Longest wait for the upstream's response header, and between two reads of its body
  // (as nginx's proxy_read_timeout): SSE streams may run for hours if they keep talking.
  absl::Duration upstream_timeout = absl::Seconds(60);
  // Longest stall of a client mid-request or while it is sent the response.
  absl::Duration client_timeout = absl::Seconds(60);
  // Idle downstream keep-alive connections are closed after this.
  absl::Duration client_idle_timeout = absl::Seconds(75);
  // Idle upstream connections kept per upstream and worker, and for how long.
  int max_idle_per_upstream = 64;
  absl::Duration upstream_idle_timeout = absl::Seconds(30);
  // Bytes per body piece relayed in each direction (per connection).
  size_t body_buffer_bytes = 32 << 10;
  size_t max_header_bytes = 64 << 10;
  bool add_x_forwarded_for = true;
  // Granularity of timeouts; each worker checks deadlines this often.
  absl::Duration timer_tick = absl::Milliseconds(50);
  // Client connections open at once, over all workers (0: no cap); beyond it new ones
  // wait in the backlog. See common/net/accept_control.h, also for the backoff after a
  // failed accept (out of file descriptors).
  int64_t max_connections = 10000;
  std::string name = "proxy";                 // in logs and metrics
  net::ListenerObserver* observer = nullptr;  // not owned; may be null
};

struct ProxyStats {
  uint64_t requests = 0;
  uint64_t in_flight = 0;
  uint64_t connections_accepted = 0;
  uint64_t upstream_connects = 0;
  uint64_t upstream_reuses = 0;
  uint64_t upstream_retries = 0;  // a reused connection had closed; resent on a fresh one
  uint64_t rejected = 0;
  uint64_t bad_gateway = 0;
  uint64_t gateway_timeout = 0;
  uint64_t client_gone = 0;
  uint64_t bad_request = 0;  // request heads refused (400, 431, 501)
  net::ListenerStats listener;
};

class Proxy {
 public:
  // picker and observer (may be null) are not owned and must outlive the Proxy, and every
  // PickDone must be called or destroyed before the Proxy is.
  Proxy(ProxyOptions options, UpstreamPicker* picker, ProxyObserver* observer);
  ~Proxy();  // stops
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Binds and starts the worker threads. kFailedPrecondition names the address when it
  // cannot be bound.
  absl::Status Start();
  // Closes the listener and all connections; in-flight requests are cut.
  void Stop();
  uint16_t port() const;
  ProxyStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zeroscale::proxy

#endif  // ZEROSCALE_COMMON_PROXY_PROXY_H_
