#include "scaler/activation/activation_service.h"

#include <deque>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/grpcutil/status.h"
#include "common/log/log.h"

namespace zeroscale::activation {
namespace {

class WatchReactor;

struct WatchShared {
  std::recursive_mutex mu;  // gRPC may run reactions inline from Start* calls
  WatchReactor* reactor = nullptr;
};

class WatchReactor : public grpc::ServerWriteReactor<v1::WorkloadState> {
 public:
  WatchReactor(EndpointRegistry* registry, std::string workload)
      : registry_(registry), shared_(std::make_shared<WatchShared>()) {
    shared_->reactor = this;
    std::shared_ptr<WatchShared> keep = shared_;
    std::lock_guard<std::recursive_mutex> lock(keep->mu);
    // Register before taking the snapshot so no change falls between the two.
    listener_ = registry_->AddListener(workload, [keep](const WorkloadEndpoints& state) {
      std::lock_guard<std::recursive_mutex> lock(keep->mu);
      if (keep->reactor != nullptr) keep->reactor->EnqueueLocked(state);
    });
    if (workload.empty()) {
      for (const WorkloadEndpoints& s : registry_->All()) EnqueueLocked(s);
    } else {
      EnqueueLocked(registry_->Get(workload));
    }
  }

  void OnWriteDone(bool ok) override {
    std::shared_ptr<WatchShared> keep = shared_;
    std::lock_guard<std::recursive_mutex> lock(keep->mu);
    writing_ = false;
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      finished_ = true;
      return;
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    std::shared_ptr<WatchShared> keep = shared_;
    std::lock_guard<std::recursive_mutex> lock(keep->mu);
    if (finished_) return;
    finished_ = true;
    Finish(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    registry_->RemoveListener(listener_);
    {
      std::lock_guard<std::recursive_mutex> lock(shared_->mu);
      shared_->reactor = nullptr;
    }
    delete this;
  }

 private:
  void EnqueueLocked(const WorkloadEndpoints& state) {
    if (finished_) return;
    // Only the newest state of a workload matters: replace it if not yet sent.
    for (auto& s : pending_) {
      if (s.workload() == state.workload) {
        ToProto(state, &s);
        return;
      }
    }
    pending_.emplace_back();
    ToProto(state, &pending_.back());
    WriteNextLocked();
  }

  void WriteNextLocked() {
    if (writing_ || finished_ || pending_.empty()) return;
    current_ = std::move(pending_.front());
    pending_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  EndpointRegistry* const registry_;
  std::shared_ptr<WatchShared> shared_;
  uint64_t listener_ = 0;
  std::deque<v1::WorkloadState> pending_;
  v1::WorkloadState current_;
  bool writing_ = false;
  bool finished_ = false;
};

class TrafficReactor : public grpc::ServerReadReactor<v1::TrafficReport> {
 public:
  TrafficReactor(decide::Decider* decider, const Clock* clock) : decider_(decider), clock_(clock) {
    StartRead(&report_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    if (!report_.workload().empty()) {
      decide::TrafficReport r;
      r.at = clock_->Now();
      r.requests = report_.requests();
      r.in_flight = report_.in_flight();
      decider_->OnTraffic(report_.workload(), r);
    }
    StartRead(&report_);
  }

  void OnDone() override { delete this; }

 private:
  decide::Decider* const decider_;
  const Clock* const clock_;
  v1::TrafficReport report_;
};

}  // namespace

void ToProto(const WorkloadEndpoints& state, v1::WorkloadState* out) {
  out->Clear();
  out->set_workload(state.workload);
  out->set_replicas(static_cast<uint32_t>(std::max(0, state.replicas)));
  out->set_ready_replicas(static_cast<uint32_t>(state.ready()));
  for (const Endpoint& e : state.endpoints) {
    v1::Endpoint* p = out->add_endpoints();
    p->set_pod(e.pod);
    p->set_address(e.address);
    p->set_ready(e.ready);
  }
}

grpc::ServerUnaryReactor* ActivationServiceImpl::Activate(grpc::CallbackServerContext* context,
                                                          const v1::ActivateRequest* request,
                                                          v1::WorkloadState* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const std::string workload = request->workload();
  if (workload.empty()) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "workload: must not be empty"));
    return reactor;
  }
  // Held requests count as traffic in flight: a workload being woken is never idle.
  decide::TrafficReport traffic;
  traffic.at = clock_->Now();
  traffic.in_flight = request->held_requests();
  decider_->OnTraffic(workload, traffic);
  decider_->GetStatus(
      workload, [this, reactor, response, workload](absl::StatusOr<decide::WorkloadStatus> status) {
        if (!status.ok()) {
          reactor->Finish(
              ToGrpcStatus(status.status().code() == absl::StatusCode::kNotFound
                               ? absl::NotFoundError(absl::StrCat("workload '", workload,
                                                                  "' is not managed by zeroscale"))
                               : status.status()));
          return;
        }
        decider_->Activate(workload, [workload](absl::Status s) {
          if (!s.ok()) {
            ZS_LOG(kWarning, "wake did not complete", {"workload", workload},
                   {"error", std::string(s.message())});
          }
        });
        ToProto(registry_->Get(workload), response);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

grpc::ServerWriteReactor<v1::WorkloadState>* ActivationServiceImpl::Watch(
    grpc::CallbackServerContext* context, const v1::WatchRequest* request) {
  return new WatchReactor(registry_, request->workload());
}

grpc::ServerReadReactor<v1::TrafficReport>* ActivationServiceImpl::ReportTraffic(
    grpc::CallbackServerContext* context, v1::TrafficAck* response) {
  return new TrafficReactor(decider_, clock_);
}

}  // namespace zeroscale::activation
