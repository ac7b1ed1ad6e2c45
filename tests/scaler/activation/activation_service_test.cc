// ActivationService over a real in-process gRPC server on 127.0.0.1: a replica that may
// not serve (not the Lease holder) refuses every call with FAILED_PRECONDITION and the
// reason, and ends the streams open on it when it stops serving.
#include "scaler/activation/activation_service.h"

#include <atomic>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "scaler/decide/decider.h"
#include "scaler/decide/scheduler.h"

namespace zeroscale::activation {
namespace {

using ::testing::HasSubstr;

constexpr char kW[] = "ml/Deployment/llama";
constexpr char kNotLeader[] = "not the leader: b holds the Lease and serves it at 10.0.0.2:9090";

class NoSetter : public decide::ReplicaSetter {
 public:
  void SetReplicas(const std::string&, int32_t, int32_t, const std::string&,
                   std::function<void(absl::Status)> done) override {
    done(absl::OkStatus());
  }
  void GetReplicas(const std::string&, std::function<void(absl::StatusOr<int32_t>)> done) override {
    done(0);
  }
};

class ActivationServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_.Start();
    service_ = std::make_unique<ActivationServiceImpl>(
        &decider_, &registry_, RealClock::Get(), [this]() -> absl::Status {
          if (serving_) return absl::OkStatus();
          return absl::FailedPreconditionError(kNotLeader);
        });
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::ActivationService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                               grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_->Shutdown();
    loop_.Stop();
  }

  grpc::Status Activate() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ActivateRequest req;
    req.set_workload(kW);
    v1::WorkloadState state;
    return stub_->Activate(&ctx, req, &state);
  }

  std::atomic<bool> serving_{true};
  decide::EventLoop loop_;
  NoSetter setter_;
  decide::Decider decider_{RealClock::Get(), &loop_, &setter_, nullptr};
  EndpointRegistry registry_;
  std::unique_ptr<ActivationServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::ActivationService::Stub> stub_;
};

TEST_F(ActivationServiceTest, ANonLeaderRefusesEveryCallNamingTheLeader) {
  serving_ = false;
  const grpc::Status activate = Activate();
  EXPECT_EQ(activate.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(activate.error_message(), HasSubstr("10.0.0.2:9090"));

  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::WatchRequest req;
  req.set_workload(kW);
  auto reader = stub_->Watch(&watch_ctx, req);
  v1::WorkloadState state;
  EXPECT_FALSE(reader->Read(&state));
  const grpc::Status watch = reader->Finish();
  EXPECT_EQ(watch.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(watch.error_message(), HasSubstr("10.0.0.2:9090"));

  grpc::ClientContext traffic_ctx;
  traffic_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::TrafficAck ack;
  auto writer = stub_->ReportTraffic(&traffic_ctx, &ack);
  v1::TrafficReport report;
  report.set_workload(kW);
  writer->Write(report);
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(service_->open_streams(), 0u);
}

TEST_F(ActivationServiceTest, StreamsOpenOnAReplicaThatStopsServingAreEnded) {
  grpc::ClientContext watch_ctx;
  v1::WatchRequest req;
  req.set_workload(kW);
  auto reader = stub_->Watch(&watch_ctx, req);
  v1::WorkloadState state;
  ASSERT_TRUE(reader->Read(&state));  // the workload's state as it is now
  EXPECT_EQ(state.workload(), kW);

  grpc::ClientContext traffic_ctx;
  v1::TrafficAck ack;
  auto writer = stub_->ReportTraffic(&traffic_ctx, &ack);
  v1::TrafficReport report;
  report.set_workload(kW);
  ASSERT_TRUE(writer->Write(report));

  // Both streams are registered once the server has seen them.
  while (service_->open_streams() < 2) std::this_thread::yield();
  serving_ = false;
  service_->CloseStreams(absl::FailedPreconditionError(kNotLeader));
  EXPECT_FALSE(reader->Read(&state));
  const grpc::Status watch = reader->Finish();
  EXPECT_EQ(watch.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(watch.error_message(), HasSubstr("10.0.0.2:9090"));
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace zeroscale::activation
