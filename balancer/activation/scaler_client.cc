#include "balancer/activation/scaler_client.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpcutil/status.h"
#include "common/log/log.h"
#include "common/time/backoff.h"
#include "grpcpp/grpcpp.h"
#include "zeroscale/v1/activation.grpc.pb.h"

namespace zeroscale::balancer {
namespace {

WorkloadState FromProto(const v1::WorkloadState& p) {
  WorkloadState s;
  s.workload = p.workload();
  s.replicas = p.replicas();
  s.ready_replicas = p.ready_replicas();
  s.endpoints.reserve(p.endpoints_size());
  for (const auto& e : p.endpoints()) s.endpoints.push_back({e.pod(), e.address(), e.ready()});
  return s;
}

}  // namespace

absl::Status SplitAddress(const std::string& address, std::string* host, uint16_t* port) {
  size_t colon;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("bad address \"", address, "\""));
    }
    *host = address.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad address \"", address, "\""));
    }
    *host = address.substr(0, colon);
  }
  uint32_t p = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &p) || p == 0 || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in address \"", address, "\""));
  }
  *port = static_cast<uint16_t>(p);
  return absl::OkStatus();
}

class ScalerClient::Impl {
 public:
  explicit Impl(ScalerClientOptions o) : options_(std::move(o)) {
    target_ = options_.target;
    stub_ = NewStub(target_);
  }

  ~Impl() { Stop(); }

  absl::Status Start(StateCallback on_state, ConnectionCallback on_connection,
                     TrafficSource traffic) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return absl::FailedPreconditionError("scaler client already started");
    started_ = true;
    on_state_ = std::move(on_state);
    on_connection_ = std::move(on_connection);
    traffic_ = std::move(traffic);
    watch_thread_ = std::thread([this] { WatchLoop(); });
    report_thread_ = std::thread([this] { ReportLoop(); });
    return absl::OkStatus();
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      CancelAllLocked();
    }
    cv_.notify_all();
    if (watch_thread_.joinable()) watch_thread_.join();
    if (report_thread_.joinable()) report_thread_.join();
    // Activate callbacks reach into the caller; none may run after Stop returns.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return activate_ctxs_.empty(); });
  }

  void SetTarget(const std::string& target) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || target == target_) return;
      ZS_LOG(kInfo, "ActivationService calls go to another scaler", {"from", target_},
             {"to", target});
      target_ = target;
      stub_ = NewStub(target_);
      ++generation_;
      // Streams reopen on the new stub, and Activate calls in flight are sent again.
      CancelAllLocked();
    }
    cv_.notify_all();
  }

  std::string target() const {
    std::lock_guard<std::mutex> lock(mu_);
    return target_;
  }

  void OnNotLeader(NotLeaderCallback fn) {
    std::lock_guard<std::mutex> lock(mu_);
    on_not_leader_ = std::move(fn);
  }

  void Activate(const std::string& workload, uint32_t held, ActivateDone done) {
    auto call = std::make_unique<ActivateCall>();
    call->req.set_workload(workload);
    call->req.set_held_requests(held);
    call->done = std::move(done);
    StartActivate(std::move(call));
  }

  bool watch_connected() const { return watch_connected_.load(); }
  uint64_t watch_failures() const { return watch_failures_.load(); }
  uint64_t report_failures() const { return report_failures_.load(); }

 private:
  struct ActivateCall {
    grpc::ClientContext ctx;
    v1::ActivateRequest req;
    v1::WorkloadState resp;
    ActivateDone done;
    uint64_t generation = 0;
    std::string target;
    std::shared_ptr<v1::ActivationService::Stub> stub;  // kept alive for the call
  };

  // What a call is made with: the stub of the current target, and which target it is.
  struct Line {
    std::shared_ptr<v1::ActivationService::Stub> stub;
    std::string target;
    uint64_t generation = 0;
  };

  std::shared_ptr<v1::ActivationService::Stub> NewStub(const std::string& target) const {
    grpc::ChannelArguments args;
    // gRPC's own reconnect backoff grows to two minutes by default; a restarted scaler
    // must be found within our backoff instead, or held requests time out needlessly.
    const int max_ms = static_cast<int>(absl::ToInt64Milliseconds(options_.max_backoff));
    const int init_ms = static_cast<int>(absl::ToInt64Milliseconds(options_.initial_backoff));
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::max(init_ms, 1));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::max(init_ms, 1));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, std::max(max_ms, 1));
    if (!options_.server_name.empty()) args.SetSslTargetNameOverride(options_.server_name);
    return v1::ActivationService::NewStub(grpc::CreateCustomChannel(
        target,
        options_.credentials != nullptr ? options_.credentials
                                        : grpc::InsecureChannelCredentials(),
        args));
  }

  Line CurrentLineLocked() const { return Line{stub_, target_, generation_}; }

  void CancelAllLocked() {
    if (watch_ctx_) watch_ctx_->TryCancel();
    if (report_ctx_) report_ctx_->TryCancel();
    for (grpc::ClientContext* c : activate_ctxs_) c->TryCancel();
  }

  // True when the target changed since `generation`: a stream that ended for that
  // reason reopens at once rather than after a backoff.
  bool Retargeted(uint64_t generation) {
    std::lock_guard<std::mutex> lock(mu_);
    return generation != generation_;
  }

  // Tells whoever follows the leader that `target` says it is not the leader.
  void NotLeader(const grpc::Status& s, const std::string& target) {
    if (s.error_code() != grpc::StatusCode::FAILED_PRECONDITION) return;
    NotLeaderCallback fn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn = on_not_leader_;
    }
    ZS_LOG(kDebug, "the scaler is not the leader", {"scaler", target},
           {"error", s.error_message()});
    if (fn) fn(target);
  }

  void StartActivate(std::unique_ptr<ActivateCall> call) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      const Line line = CurrentLineLocked();
      call->stub = line.stub;
      call->target = line.target;
      call->generation = line.generation;
      activate_ctxs_.push_back(&call->ctx);
    }
    call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.activate_timeout));
    Authorize(&call->ctx);
    ActivateCall* raw = call.release();
    raw->stub->async()->Activate(&raw->ctx, &raw->req, &raw->resp,
                                 [this, raw](grpc::Status s) { OnActivateDone(raw, s); });
  }

  void OnActivateDone(ActivateCall* raw, const grpc::Status& s) {
    std::unique_ptr<ActivateCall> call(raw);
    bool again = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Cancelled by a switch of scaler: the same wish goes to the new one.
      again = !stopping_ && s.error_code() == grpc::StatusCode::CANCELLED &&
              call->generation != generation_;
    }
    if (again) {
      auto next = std::make_unique<ActivateCall>();
      next->req = call->req;
      next->done = std::move(call->done);
      StartActivate(std::move(next));
    } else if (s.ok()) {
      call->done(FromProto(call->resp));
    } else {
      NotLeader(s, call->target);
      absl::Status st = FromGrpcStatus(s);
      call->done(absl::Status(st.code(), absl::StrCat("scaler at ", call->target,
                                                      ": Activate failed: ", st.message())));
    }
    // Only now: Stop waits for this, and `done` reaches into the caller.
    std::lock_guard<std::mutex> lock(mu_);
    activate_ctxs_.erase(std::find(activate_ctxs_.begin(), activate_ctxs_.end(), &call->ctx));
    if (activate_ctxs_.empty()) cv_.notify_all();
  }

  // Equal jitter: uniform in [ceiling/2, ceiling], so a fleet of balancers does not
  // reconnect in lockstep yet each retries promptly.
  Backoff NewBackoff() const {
    return Backoff({options_.initial_backoff, options_.max_backoff, 2.0, Jitter::kEqual});
  }
  // Also ends early when the target changes (`generation` is the one the failed call used).
  bool SleepBackoff(Backoff* backoff, uint64_t generation) {
    const absl::Duration d = backoff->Next();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(d),
                 [&] { return stopping_ || generation != generation_; });
    return !stopping_;
  }

  void Authorize(grpc::ClientContext* ctx) const {
    if (!options_.authorization) return;
    if (std::string a = options_.authorization(); !a.empty()) ctx->AddMetadata("authorization", a);
  }

  void WatchLoop() {
    Backoff backoff = NewBackoff();
    bool reported_down = false;  // said once per outage why the scaler cannot be reached
    while (true) {
      grpc::ClientContext ctx;
      Line line;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        watch_ctx_ = &ctx;
        line = CurrentLineLocked();
      }
      Authorize(&ctx);
      v1::WatchRequest req;  // all workloads
      std::unique_ptr<grpc::ClientReader<v1::WorkloadState>> reader = line.stub->Watch(&ctx, req);
      v1::WorkloadState msg;
      while (reader->Read(&msg)) {
        if (!watch_connected_.exchange(true)) {
          reported_down = false;
          ZS_LOG(kInfo, "watching the scaler's workloads", {"scaler", line.target});
          if (on_connection_) on_connection_(true);
        }
        backoff.Reset();
        on_state_(FromProto(msg));
      }
      const grpc::Status st = reader->Finish();
      {
        std::lock_guard<std::mutex> lock(mu_);
        watch_ctx_ = nullptr;
        if (stopping_) return;
      }
      watch_failures_++;
      const bool retargeted = Retargeted(line.generation);
      if (watch_connected_.exchange(false)) {
        reported_down = true;
        if (!retargeted) {
          ZS_LOG(kWarning, "Watch stream to the scaler broke; routing to known-ready pods",
                 {"scaler", line.target}, {"error", st.error_message()});
        }
        if (on_connection_) on_connection_(false);
      } else if (!reported_down && !retargeted) {
        // Never connected: say why (refused, or the TLS handshake failed and why).
        reported_down = true;
        ZS_LOG(kWarning, "cannot reach the scaler; routing to known-ready pods",
               {"scaler", line.target}, {"error", st.error_message()});
      }
      if (retargeted) {
        backoff.Reset();
        continue;
      }
      NotLeader(st, line.target);
      if (!SleepBackoff(&backoff, line.generation)) return;
    }
  }

  void ReportLoop() {
    Backoff backoff = NewBackoff();
    while (true) {
      grpc::ClientContext ctx;
      Line line;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        report_ctx_ = &ctx;
        line = CurrentLineLocked();
      }
      Authorize(&ctx);
      v1::TrafficAck ack;
      std::unique_ptr<grpc::ClientWriter<v1::TrafficReport>> writer =
          line.stub->ReportTraffic(&ctx, &ack);
      bool broken = false;
      while (!broken) {
        {
          std::unique_lock<std::mutex> lock(mu_);
          if (cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.report_interval),
                           [this] { return stopping_; })) {
            break;
          }
        }
        for (const TrafficSample& s : traffic_ ? traffic_() : std::vector<TrafficSample>()) {
          v1::TrafficReport r;
          r.set_workload(s.workload);
          r.set_requests(s.requests);
          r.set_in_flight(s.in_flight);
          if (!writer->Write(r)) {
            broken = true;
            break;
          }
        }
        if (!broken) backoff.Reset();
      }
      if (!broken) writer->WritesDone();
      const grpc::Status st = writer->Finish();
      {
        std::lock_guard<std::mutex> lock(mu_);
        report_ctx_ = nullptr;
        if (stopping_) return;
      }
      report_failures_++;
      ZS_LOG(kDebug, "ReportTraffic stream broke", {"error", st.error_message()});
      if (Retargeted(line.generation)) {
        backoff.Reset();
        continue;
      }
      NotLeader(st, line.target);
      if (!SleepBackoff(&backoff, line.generation)) return;
    }
  }

  const ScalerClientOptions options_;

  mutable std::mutex mu_;
  std::string target_;
  std::shared_ptr<v1::ActivationService::Stub> stub_;
  uint64_t generation_ = 0;  // bumped by every SetTarget
  NotLeaderCallback on_not_leader_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  grpc::ClientContext* watch_ctx_ = nullptr;
  grpc::ClientContext* report_ctx_ = nullptr;
  std::vector<grpc::ClientContext*> activate_ctxs_;
  StateCallback on_state_;
  ConnectionCallback on_connection_;
  TrafficSource traffic_;
  std::thread watch_thread_;
  std::thread report_thread_;
  std::atomic<bool> watch_connected_{false};
  std::atomic<uint64_t> watch_failures_{0};
  std::atomic<uint64_t> report_failures_{0};
};

ScalerClient::ScalerClient(ScalerClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
ScalerClient::~ScalerClient() { impl_->Stop(); }
absl::Status ScalerClient::Start(StateCallback on_state, ConnectionCallback on_connection,
                                 TrafficSource traffic) {
  return impl_->Start(std::move(on_state), std::move(on_connection), std::move(traffic));
}
void ScalerClient::Stop() { impl_->Stop(); }
void ScalerClient::Activate(const std::string& workload, uint32_t held, ActivateDone done) {
  impl_->Activate(workload, held, std::move(done));
}
void ScalerClient::SetTarget(const std::string& target) { impl_->SetTarget(target); }
std::string ScalerClient::target() const { return impl_->target(); }
void ScalerClient::OnNotLeader(NotLeaderCallback fn) { impl_->OnNotLeader(std::move(fn)); }
bool ScalerClient::watch_connected() const { return impl_->watch_connected(); }
uint64_t ScalerClient::watch_failures() const { return impl_->watch_failures(); }
uint64_t ScalerClient::report_failures() const { return impl_->report_failures(); }

}  // namespace zeroscale::balancer
