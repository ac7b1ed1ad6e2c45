// Watches whether the app next to the sidecar is ready, so the sidecar can announce a
// change the moment it happens (SPEC.md section 5: "announces readiness of the app as
// soon as its readiness probe passes"). With a readiness path it sends
// GET http://127.0.0.1:<port><path> (2xx = ready); without one, the app is ready when
// its port accepts a TCP connection. While not ready it probes faster, so a model that
// finishes loading is noticed within a fraction of the normal interval.
//
// One background thread probes; the callback runs on it and should not block long.
// Thread-safe: ready() and Stop() may be called from any thread (not from the callback).
#ifndef ZEROSCALE_SIDECAR_READINESS_READINESS_PROBER_H_
#define ZEROSCALE_SIDECAR_READINESS_READINESS_PROBER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace zeroscale::sidecar {

struct ReadinessOptions {
  uint16_t app_port = 0;
  // Must start with '/'; empty means the TCP connect check.
  std::string path;
  absl::Duration interval = absl::Seconds(1);                   // while ready
  absl::Duration not_ready_interval = absl::Milliseconds(100);  // while not ready
  // Per probe, connect through response header; a slower app counts as not ready.
  absl::Duration timeout = absl::Seconds(1);
};

// One probe, synchronously: OK when ready, otherwise kUnavailable saying why (refused,
// timed out, status 503...). Exposed so main() can check once before serving.
absl::Status ProbeReadiness(const ReadinessOptions& options);

class ReadinessProber {
 public:
  // Called with the new state each time it flips, never twice with the same value.
  // The state starts as not ready, so the first successful probe calls it with true.
  using OnChange = std::function<void(bool ready)>;

  ReadinessProber(ReadinessOptions options, OnChange on_change);
  ~ReadinessProber();  // Stop()

  ReadinessProber(const ReadinessProber&) = delete;
  ReadinessProber& operator=(const ReadinessProber&) = delete;

  // Starts probing at once. kInvalidArgument naming the option when the options cannot
  // work; kFailedPrecondition when already started.
  absl::Status Start();
  // Interrupts a probe in progress and joins the thread. Idempotent.
  void Stop();

  bool ready() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_READINESS_READINESS_PROBER_H_
