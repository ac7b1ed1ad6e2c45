// A tiny HTTP/1.1 backend for balancer tests on 127.0.0.1: answers every request with
// "<name> <target>", records the targets in arrival order and the peak of concurrent
// requests, and delays each answer by a fixed latency (a slow pod) or, for targets
// containing /gate, until Release(). A thread per connection; keep-alive.
//
// Thread-safety: all methods are thread-safe.
#ifndef ZEROSCALE_TESTS_BALANCER_RECORDING_BACKEND_H_
#define ZEROSCALE_TESTS_BALANCER_RECORDING_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace zeroscale::testing {

class RecordingBackend {
 public:
  explicit RecordingBackend(std::string name, absl::Duration latency = absl::ZeroDuration());
  ~RecordingBackend();

  uint16_t port() const;
  std::string address() const;  // 127.0.0.1:port
  const std::string& name() const;
  std::vector<std::string> targets() const;
  size_t count() const;
  int max_concurrent() const;
  bool WaitForCount(size_t n, absl::Duration timeout) const;
  void Release();  // answers /gate requests, now and later

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_BALANCER_RECORDING_BACKEND_H_
