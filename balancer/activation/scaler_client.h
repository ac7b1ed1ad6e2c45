// The balancer's side of the scaler's ActivationService (proto/zeroscale/v1/activation.proto):
// Activate wakes a workload, Watch streams every workload's endpoints and readiness,
// ReportTraffic tells the scaler which workloads receive requests. The Watch stream and
// the traffic stream reconnect with jittered exponential backoff whenever the scaler
// goes away; what was learnt last stays in force meanwhile (the dispatcher keeps routing
// to known-ready pods). The target can change at run time (SetTarget: the scaler's
// leader moved): streams reopen there at once and Activate calls in flight are sent
// there again, so no wake is lost in the switch. A scaler that answers
// FAILED_PRECONDITION is not the leader; the client says so (OnNotLeader) so that the
// target can be looked up again. gRPC stays out of this header.
//
// Thread-safety: all methods may be called from any thread. Callbacks run on the
// client's own threads (Watch, traffic) or gRPC's (Activate), never with a caller's lock.
#ifndef ZEROSCALE_BALANCER_ACTIVATION_SCALER_CLIENT_H_
#define ZEROSCALE_BALANCER_ACTIVATION_SCALER_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace zeroscale::balancer {

struct EndpointInfo {
  std::string pod;
  std::string address;  // host:port of the pod's proxy
  bool ready = false;
};

struct WorkloadState {
  std::string workload;
  uint32_t replicas = 0;
  uint32_t ready_replicas = 0;
  std::vector<EndpointInfo> endpoints;
};

struct TrafficSample {
  std::string workload;
  uint64_t requests = 0;   // since the previous report
  uint32_t in_flight = 0;  // held or forwarded now
};

// What the dispatcher needs of the scaler; a fake stands in for it in tests.
class Activator {
 public:
  virtual ~Activator() = default;
  using ActivateDone = std::function<void(absl::StatusOr<WorkloadState>)>;
  // Asks the scaler to wake `workload`; `done` runs once, possibly before this returns.
  // kUnavailable / kDeadlineExceeded: the scaler could not be reached (retry).
  virtual void Activate(const std::string& workload, uint32_t held_requests, ActivateDone done) = 0;
};

struct ScalerClientOptions {
  std::string target;  // host:port of the scaler's gRPC endpoint
  // Insecure when null (common/grpcutil/credentials.h makes TLS ones).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // With TLS credentials: the name the scaler's certificate must carry instead of the
  // host of the target (the leader's address is its pod IP; its certificate names the
  // Service).
  std::string server_name;
  absl::Duration activate_timeout = absl::Seconds(5);
  absl::Duration report_interval = absl::Seconds(1);
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // The "authorization" metadata of every call ("Bearer <token>"; "" or empty: none),
  // asked per call so a rotated token file is used at once. Added with
  // ClientContext::AddMetadata, which also travels on channels without TLS.
  std::function<std::string()> authorization;
};

class ScalerClient : public Activator {
 public:
  using StateCallback = std::function<void(const WorkloadState&)>;
  using ConnectionCallback = std::function<void(bool connected)>;
  using TrafficSource = std::function<std::vector<TrafficSample>()>;

  using NotLeaderCallback = std::function<void(const std::string& target)>;

  explicit ScalerClient(ScalerClientOptions options);
  ~ScalerClient() override;  // stops
  ScalerClient(const ScalerClient&) = delete;
  ScalerClient& operator=(const ScalerClient&) = delete;

  // Starts watching all workloads and reporting traffic every report interval.
  // `on_state` hears every WorkloadState (the scaler sends each workload's state when a
  // stream opens, then every change); `on_connection` hears the Watch stream opening and
  // breaking; `traffic` is asked for samples each interval. kFailedPrecondition when
  // already started.
  absl::Status Start(StateCallback on_state, ConnectionCallback on_connection,
                     TrafficSource traffic);
  void Stop();

  void Activate(const std::string& workload, uint32_t held_requests, ActivateDone done) override;

  // Sends every call to `target` (host:port) from now on. No-op when it is the current one.
  void SetTarget(const std::string& target);
  std::string target() const;
  // `fn` hears the target that answered FAILED_PRECONDITION ("not the leader"), on a
  // client thread; set before Start.
  void OnNotLeader(NotLeaderCallback fn);

  bool watch_connected() const;
  uint64_t watch_failures() const;
  uint64_t report_failures() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Splits "host:port" (IPv6 as "[::1]:80"); kInvalidArgument otherwise.
absl::Status SplitAddress(const std::string& address, std::string* host, uint16_t* port);

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_ACTIVATION_SCALER_CLIENT_H_
