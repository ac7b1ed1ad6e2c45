#include "tests/balancer/fake_scaler.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "zeroscale/v1/activation.grpc.pb.h"

namespace zeroscale::testing {

class FakeScaler::Impl : public v1::ActivationService::Service {
 public:
  explicit Impl(uint16_t port) : port_(port) {}

  absl::Status Start() {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
    grpc::ServerBuilder b;
    int bound = 0;
    b.AddListeningPort(absl::StrCat("127.0.0.1:", port_), grpc::InsecureServerCredentials(),
                       &bound);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
    if (!server_ || bound == 0) return absl::UnavailableError("fake scaler cannot listen");
    port_ = static_cast<uint16_t>(bound);
    return absl::OkStatus();
  }

  void Stop() {
    std::unique_ptr<grpc::Server> server;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      server = std::move(server_);
    }
    cv_.notify_all();
    if (server) {
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
      server->Wait();
    }
  }

  static grpc::Status NotLeaderStatus() {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this scaler does not hold the Lease");
  }

  grpc::Status Activate(grpc::ServerContext*, const v1::ActivateRequest* req,
                        v1::WorkloadState* resp) override {
    ActivateCall call{req->workload(), req->held_requests()};
    std::function<void(const ActivateCall&)> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back(call);
      if (not_leader_) {
        not_leader_answers_++;
        return NotLeaderStatus();
      }
      hook = hook_;
    }
    if (hook) hook(call);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states_.find(req->workload());
    if (it != states_.end()) {
      *resp = it->second;
    } else {
      resp->set_workload(req->workload());
    }
    return grpc::Status::OK;
  }

  grpc::Status Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                     grpc::ServerWriter<v1::WorkloadState>* writer) override {
    std::deque<v1::WorkloadState> queue;
    std::unique_lock<std::mutex> lock(mu_);
    if (not_leader_) {
      not_leader_answers_++;
      return NotLeaderStatus();
    }
    for (const auto& [w, s] : states_) queue.push_back(s);
    watchers_.insert(&queue);
    watch_opened_++;
    cv_.notify_all();
    while (!stopping_ && !ctx->IsCancelled()) {
      if (not_leader_) {
        watchers_.erase(&queue);
        not_leader_answers_++;
        return NotLeaderStatus();
      }
      while (!queue.empty()) {
        v1::WorkloadState s = std::move(queue.front());
        queue.pop_front();
        lock.unlock();
        const bool ok = writer->Write(s);
        lock.lock();
        if (!ok) {
          watchers_.erase(&queue);
          return grpc::Status::OK;
        }
      }
      cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
    watchers_.erase(&queue);
    return grpc::Status::OK;
  }

  grpc::Status ReportTraffic(grpc::ServerContext*, grpc::ServerReader<v1::TrafficReport>* reader,
                             v1::TrafficAck*) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (not_leader_) {
        not_leader_answers_++;
        return NotLeaderStatus();
      }
    }
    v1::TrafficReport r;
    while (reader->Read(&r)) {
      std::lock_guard<std::mutex> lock(mu_);
      traffic_.push_back({r.workload(), r.requests(), r.in_flight()});
      cv_.notify_all();
    }
    return grpc::Status::OK;
  }

  void Push(const std::string& workload, std::vector<FakeEndpoint> endpoints, uint32_t replicas) {
    v1::WorkloadState s;
    s.set_workload(workload);
    uint32_t ready = 0;
    for (const FakeEndpoint& e : endpoints) {
      auto* p = s.add_endpoints();
      p->set_pod(e.pod);
      p->set_address(e.address);
      p->set_ready(e.ready);
      ready += e.ready ? 1 : 0;
    }
    s.set_replicas(replicas ? replicas : static_cast<uint32_t>(endpoints.size()));
    s.set_ready_replicas(ready);
    std::lock_guard<std::mutex> lock(mu_);
    states_[workload] = s;
    for (auto* q : watchers_) q->push_back(s);
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  uint16_t port_;
  bool stopping_ = false;
  std::unique_ptr<grpc::Server> server_;
  std::map<std::string, v1::WorkloadState> states_;
  std::set<std::deque<v1::WorkloadState>*> watchers_;
  std::vector<ActivateCall> calls_;
  std::vector<TrafficRecord> traffic_;
  std::function<void(const ActivateCall&)> hook_;
  int watch_opened_ = 0;
  bool not_leader_ = false;
  int not_leader_answers_ = 0;
};

FakeScaler::FakeScaler(uint16_t port) : impl_(std::make_unique<Impl>(port)) {}
FakeScaler::~FakeScaler() { impl_->Stop(); }
absl::Status FakeScaler::Start() { return impl_->Start(); }
void FakeScaler::Stop() { impl_->Stop(); }
uint16_t FakeScaler::port() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->port_;
}
std::string FakeScaler::address() const { return absl::StrCat("127.0.0.1:", port()); }
void FakeScaler::Push(const std::string& workload, std::vector<FakeEndpoint> endpoints,
                      uint32_t replicas) {
  impl_->Push(workload, std::move(endpoints), replicas);
}
void FakeScaler::OnActivate(std::function<void(const ActivateCall&)> hook) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->hook_ = std::move(hook);
}
void FakeScaler::SetNotLeader(bool not_leader) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->not_leader_ = not_leader;
  impl_->cv_.notify_all();
}
int FakeScaler::not_leader_answers() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->not_leader_answers_;
}
std::vector<ActivateCall> FakeScaler::activate_calls() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->calls_;
}
std::vector<TrafficRecord> FakeScaler::traffic() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->traffic_;
}
int FakeScaler::watch_streams_opened() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->watch_opened_;
}
bool FakeScaler::WaitForTraffic(const std::function<bool(const std::vector<TrafficRecord>&)>& pred,
                                absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(impl_->mu_);
  return impl_->cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                             [&] { return pred(impl_->traffic_); });
}
bool FakeScaler::WaitForWatchers(int n, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(impl_->mu_);
  return impl_->cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                             [&] { return static_cast<int>(impl_->watchers_.size()) >= n; });
}

}  // namespace zeroscale::testing
