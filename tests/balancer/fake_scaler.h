// An in-test ActivationService: records Activate calls and traffic reports, and streams
// the WorkloadStates a test pushes to every Watch stream (current states first, as the
// real scaler does). Listens on 127.0.0.1; can be stopped and started again on the same
// port to play a scaler that goes away and comes back.
//
// Thread-safety: all methods are thread-safe.
#ifndef ZEROSCALE_TESTS_BALANCER_FAKE_SCALER_H_
#define ZEROSCALE_TESTS_BALANCER_FAKE_SCALER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace zeroscale::testing {

struct FakeEndpoint {
  std::string pod;
  std::string address;
  bool ready = true;
};

struct ActivateCall {
  std::string workload;
  uint32_t held_requests = 0;
};

struct TrafficRecord {
  std::string workload;
  uint64_t requests = 0;
  uint32_t in_flight = 0;
};

class FakeScaler {
 public:
  explicit FakeScaler(uint16_t port = 0);  // 0: an ephemeral port, kept across restarts
  ~FakeScaler();

  absl::Status Start();
  void Stop();
  uint16_t port() const;
  std::string address() const;

  // Sets a workload's state and sends it to every Watch stream.
  void Push(const std::string& workload, std::vector<FakeEndpoint> endpoints,
            uint32_t replicas = 0);
  // Runs on every Activate, after it is recorded and before it is answered.
  void OnActivate(std::function<void(const ActivateCall&)> hook);
  // While set, every call is answered FAILED_PRECONDITION, as a scaler that does not hold
  // the Lease answers (open Watch streams end so too); Activate calls are still recorded.
  void SetNotLeader(bool not_leader);
  // Calls answered FAILED_PRECONDITION so far.
  int not_leader_answers() const;

  std::vector<ActivateCall> activate_calls() const;
  std::vector<TrafficRecord> traffic() const;
  int watch_streams_opened() const;
  // Waits until `pred` holds over the traffic records so far.
  bool WaitForTraffic(const std::function<bool(const std::vector<TrafficRecord>&)>& pred,
                      absl::Duration timeout);
  bool WaitForWatchers(int n, absl::Duration timeout);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_BALANCER_FAKE_SCALER_H_
