// ActivationService: the balancer's line to the scaler. Activate asks the workload's
// automaton to wake it and answers at once with what is known of its pods; Watch
// streams every change of a workload's pods and readiness, so held requests go out the
// moment a pod is ready; ReportTraffic tells the automata about requests the balancer
// sees or holds, so a workload with traffic is never judged idle.
//
// Thread-safe: gRPC callback reactors; registry listeners may fire from any thread.
#ifndef ZEROSCALE_SCALER_ACTIVATION_ACTIVATION_SERVICE_H_
#define ZEROSCALE_SCALER_ACTIVATION_ACTIVATION_SERVICE_H_

#include "common/time/clock.h"
#include "scaler/activation/endpoint_registry.h"
#include "scaler/decide/decider.h"
#include "zeroscale/v1/activation.grpc.pb.h"

namespace zeroscale::activation {

void ToProto(const WorkloadEndpoints& state, v1::WorkloadState* out);

class ActivationServiceImpl : public v1::ActivationService::CallbackService {
 public:
  ActivationServiceImpl(decide::Decider* decider, EndpointRegistry* registry, const Clock* clock)
      : decider_(decider), registry_(registry), clock_(clock) {}

  grpc::ServerUnaryReactor* Activate(grpc::CallbackServerContext* context,
                                     const v1::ActivateRequest* request,
                                     v1::WorkloadState* response) override;
  grpc::ServerWriteReactor<v1::WorkloadState>* Watch(grpc::CallbackServerContext* context,
                                                     const v1::WatchRequest* request) override;
  grpc::ServerReadReactor<v1::TrafficReport>* ReportTraffic(grpc::CallbackServerContext* context,
                                                            v1::TrafficAck* response) override;

 private:
  decide::Decider* const decider_;
  EndpointRegistry* const registry_;
  const Clock* const clock_;
};

}  // namespace zeroscale::activation

#endif  // ZEROSCALE_SCALER_ACTIVATION_ACTIVATION_SERVICE_H_
