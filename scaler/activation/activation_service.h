// ActivationService: the balancer's line to the scaler. Activate asks the workload's
// automaton to wake it and answers at once with what is known of its pods; Watch
// streams every change of a workload's pods and readiness, so held requests go out the
// moment a pod is ready; ReportTraffic tells the automata about requests the balancer
// sees or holds, so a workload with traffic is never judged idle.
//
// Only a replica that has the automata can answer truthfully: with several scaler
// replicas, the Lease holder. The `serving` check decides; a replica it refuses answers
// every call with FAILED_PRECONDITION and the check's message (which names the leader's
// address), and when it stops serving it ends the streams open on it the same way, so
// balancers go to the leader.
//
// Every call is first checked by `access` (when given): Activate needs
// workloads/activation create, Watch workloads/activation watch and workloads/endpoints
// list (it streams pod addresses), ReportTraffic workloads/traffic create; refused
// calls end with UNAUTHENTICATED, PERMISSION_DENIED or UNAVAILABLE before anything else
// is said (not even who leads).
//
// Thread-safe: gRPC callback reactors; registry listeners may fire from any thread.
#ifndef ZEROSCALE_SCALER_ACTIVATION_ACTIVATION_SERVICE_H_
#define ZEROSCALE_SCALER_ACTIVATION_ACTIVATION_SERVICE_H_

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "common/auth/access_control.h"
#include "common/time/clock.h"
#include "scaler/activation/endpoint_registry.h"
#include "scaler/decide/decider.h"
#include "zeroscale/v1/activation.grpc.pb.h"

namespace zeroscale::activation {

void ToProto(const WorkloadEndpoints& state, v1::WorkloadState* out);

class StreamSet;  // activation_service.cc

// OK when this replica may serve ActivationService; otherwise why not (the caller gets it
// as FAILED_PRECONDITION).
using ServingCheck = std::function<absl::Status()>;

class ActivationServiceImpl : public v1::ActivationService::CallbackService {
 public:
  // `serving` may be empty: always serve (one replica, no leader election).
  ActivationServiceImpl(decide::Decider* decider, EndpointRegistry* registry, const Clock* clock,
                        ServingCheck serving = nullptr, auth::AccessControl* access = nullptr);
  ~ActivationServiceImpl() override;

  // Ends every open Watch and ReportTraffic stream with `status` (this replica stopped
  // leading: the balancers must reconnect to the leader).
  void CloseStreams(const absl::Status& status);
  size_t open_streams() const;

  grpc::ServerUnaryReactor* Activate(grpc::CallbackServerContext* context,
                                     const v1::ActivateRequest* request,
                                     v1::WorkloadState* response) override;
  grpc::ServerWriteReactor<v1::WorkloadState>* Watch(grpc::CallbackServerContext* context,
                                                     const v1::WatchRequest* request) override;
  grpc::ServerReadReactor<v1::TrafficReport>* ReportTraffic(grpc::CallbackServerContext* context,
                                                            v1::TrafficAck* response) override;

 private:
  // OK, or the refusal as a gRPC status: access to every one of `needed`, then serving.
  grpc::Status Refusal(const grpc::CallbackServerContext* context,
                       std::initializer_list<auth::Action> needed) const;

  decide::Decider* const decider_;
  EndpointRegistry* const registry_;
  const Clock* const clock_;
  const ServingCheck serving_;
  auth::AccessControl* const access_;
  // Open streams, so CloseStreams can reach them; each removes itself when done.
  const std::shared_ptr<StreamSet> streams_;
};

}  // namespace zeroscale::activation

#endif  // ZEROSCALE_SCALER_ACTIVATION_ACTIVATION_SERVICE_H_
