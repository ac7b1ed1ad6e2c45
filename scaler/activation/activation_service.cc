#include "scaler/activation/activation_service.h"

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpcutil/metadata.h"
#include "common/grpcutil/status.h"
#include "common/log/log.h"

namespace zeroscale::activation {

// A stream that can be ended from outside (CloseStreams).
class ClosableStream {
 public:
  virtual ~ClosableStream() = default;
  // Ends the stream with `status` unless it is over already. The stream's lock is held.
  virtual void CloseLocked(const grpc::Status& status) = 0;
};

// What a stream shares with whoever may close it; `reactor` is null once it is done.
struct StreamShared {
  std::recursive_mutex mu;  // gRPC may run reactions inline from Start* calls
  ClosableStream* reactor = nullptr;
};

class StreamSet {
 public:
  void Add(std::shared_ptr<StreamShared> s) {
    std::lock_guard<std::mutex> lock(mu_);
    set_.insert(std::move(s));
  }
  void Remove(const std::shared_ptr<StreamShared>& s) {
    std::lock_guard<std::mutex> lock(mu_);
    set_.erase(s);
  }
  std::vector<std::shared_ptr<StreamShared>> All() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {set_.begin(), set_.end()};
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return set_.size();
  }

 private:
  mutable std::mutex mu_;
  std::set<std::shared_ptr<StreamShared>> set_;
};

namespace {

// What every stream does: it joins the service's set while it runs, so CloseStreams
// reaches it, or ends at once when the replica may not serve.
template <typename ReactorBase>
class Stream : public ReactorBase, public ClosableStream {
 protected:
  explicit Stream(std::shared_ptr<StreamSet> streams)
      : streams_(std::move(streams)), shared_(std::make_shared<StreamShared>()) {
    shared_->reactor = this;
  }
  // True when `refusal` is OK and the stream joined the set; otherwise it is finished
  // with the refusal. The stream's lock is held.
  bool Admit(const grpc::Status& refusal) {
    if (!refusal.ok()) {
      finished_ = true;
      this->Finish(refusal);
      return false;
    }
    streams_->Add(shared_);
    return true;
  }
  // From OnDone, before the reactor deletes itself.
  void Leave() {
    streams_->Remove(shared_);
    std::lock_guard<std::recursive_mutex> lock(shared_->mu);
    shared_->reactor = nullptr;
  }

  const std::shared_ptr<StreamSet> streams_;
  std::shared_ptr<StreamShared> shared_;
  bool finished_ = false;
};

class WatchReactor : public Stream<grpc::ServerWriteReactor<v1::WorkloadState>> {
 public:
  // `refusal` not OK: the stream ends at once with it.
  WatchReactor(EndpointRegistry* registry, std::string workload, std::shared_ptr<StreamSet> streams,
               const grpc::Status& refusal)
      : Stream(std::move(streams)), registry_(registry) {
    std::shared_ptr<StreamShared> keep = shared_;
    std::lock_guard<std::recursive_mutex> lock(keep->mu);
    if (!Admit(refusal)) return;
    // Register before taking the snapshot so no change falls between the two.
    listener_ = registry_->AddListener(workload, [keep](const WorkloadEndpoints& state) {
      std::lock_guard<std::recursive_mutex> lock(keep->mu);
      if (keep->reactor != nullptr) static_cast<WatchReactor*>(keep->reactor)->EnqueueLocked(state);
    });
    if (workload.empty()) {
      for (const WorkloadEndpoints& s : registry_->All()) EnqueueLocked(s);
    } else {
      EnqueueLocked(registry_->Get(workload));
    }
  }

  void OnWriteDone(bool ok) override {
    std::shared_ptr<StreamShared> keep = shared_;
    std::lock_guard<std::recursive_mutex> lock(keep->mu);
    writing_ = false;
    if (pending_finish_) {
      const grpc::Status status = *pending_finish_;
      pending_finish_.reset();
      Finish(status);
      return;
    }
    if (finished_) return;
    if (!ok) {
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
      return;
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    std::shared_ptr<StreamShared> keep = shared_;
    std::lock_guard<std::recursive_mutex> lock(keep->mu);
    CloseLocked(grpc::Status::CANCELLED);
  }

  void CloseLocked(const grpc::Status& status) override {
    if (finished_) return;
    finished_ = true;
    // A write in progress finishes first; the status goes out after it.
    if (writing_) {
      pending_finish_ = status;
    } else {
      Finish(status);
    }
  }

  void OnDone() override {
    if (listener_ != 0) registry_->RemoveListener(listener_);
    Leave();
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
  uint64_t listener_ = 0;
  std::deque<v1::WorkloadState> pending_;
  v1::WorkloadState current_;
  bool writing_ = false;
  std::optional<grpc::Status> pending_finish_;
};

class TrafficReactor : public Stream<grpc::ServerReadReactor<v1::TrafficReport>> {
 public:
  TrafficReactor(decide::Decider* decider, const Clock* clock, std::shared_ptr<StreamSet> streams,
                 const grpc::Status& refusal)
      : Stream(std::move(streams)), decider_(decider), clock_(clock) {
    std::shared_ptr<StreamShared> keep = shared_;
    std::lock_guard<std::recursive_mutex> lock(keep->mu);
    if (Admit(refusal)) StartRead(&report_);
  }

  void OnReadDone(bool ok) override {
    std::shared_ptr<StreamShared> keep = shared_;
    std::lock_guard<std::recursive_mutex> lock(keep->mu);
    if (finished_) return;
    if (!ok) {
      finished_ = true;
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

  void CloseLocked(const grpc::Status& status) override {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  void OnDone() override {
    Leave();
    delete this;
  }

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
  if (grpc::Status refused = Refusal(context, {auth::actions::kActivate}); !refused.ok()) {
    reactor->Finish(refused);
    return reactor;
  }
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
  return new WatchReactor(registry_, request->workload(), streams_,
                          Refusal(context, {auth::actions::kWatch, auth::actions::kListEndpoints}));
}

grpc::ServerReadReactor<v1::TrafficReport>* ActivationServiceImpl::ReportTraffic(
    grpc::CallbackServerContext* context, v1::TrafficAck* response) {
  return new TrafficReactor(decider_, clock_, streams_,
                            Refusal(context, {auth::actions::kReportTraffic}));
}

ActivationServiceImpl::ActivationServiceImpl(decide::Decider* decider, EndpointRegistry* registry,
                                             const Clock* clock, ServingCheck serving,
                                             auth::AccessControl* access)
    : decider_(decider),
      registry_(registry),
      clock_(clock),
      serving_(std::move(serving)),
      access_(access),
      streams_(std::make_shared<StreamSet>()) {}

ActivationServiceImpl::~ActivationServiceImpl() = default;

grpc::Status ActivationServiceImpl::Refusal(const grpc::CallbackServerContext* context,
                                            std::initializer_list<auth::Action> needed) const {
  if (access_ != nullptr) {
    const std::string authorization = AuthorizationOf(*context);
    for (const auth::Action& a : needed) {
      absl::StatusOr<auth::Identity> who = access_->Check(authorization, a);
      if (!who.ok()) return ToGrpcStatus(who.status());
    }
  }
  if (!serving_) return grpc::Status::OK;
  absl::Status s = serving_();
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::string(s.message()));
}

void ActivationServiceImpl::CloseStreams(const absl::Status& status) {
  const grpc::Status closing(grpc::StatusCode::FAILED_PRECONDITION, std::string(status.message()));
  for (const std::shared_ptr<StreamShared>& s : streams_->All()) {
    std::lock_guard<std::recursive_mutex> lock(s->mu);
    if (s->reactor != nullptr) s->reactor->CloseLocked(closing);
  }
}

size_t ActivationServiceImpl::open_streams() const { return streams_->size(); }

}  // namespace zeroscale::activation
