// TLS on a real gRPC server and channel on loopback, through the credentials every
// program builds (common/grpcutil/credentials.h): the right CA connects, a wrong CA, a
// plain-text client and a certificate for another name fail with the reason, the host
// name override, a replaced certificate served to new connections, and flag errors.
// The server's ActivationService is the generated base class, whose methods answer
// UNIMPLEMENTED: a call that gets that far proves the TLS handshake completed.
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/grpcutil/credentials.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/common/tls_testing.h"
#include "tests/testing/child_process.h"
#include "zeroscale/v1/activation.grpc.pb.h"

namespace zeroscale::grpcutil {
namespace {

using ::testing::HasSubstr;
using zeroscale::testing::CertFiles;

ScalerTls CaFile(const std::string& path) {
  ScalerTls tls;
  tls.ca_file = path;
  return tls;
}

ServerTlsFiles Files(const std::string& cert = "", const std::string& key = "") {
  ServerTlsFiles files;
  files.cert_file = cert;
  files.key_file = key;
  files.reload_check = absl::Seconds(1);
  return files;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class GrpcTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = zeroscale::testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    absl::StatusOr<CertFiles> first = zeroscale::testing::WriteSelfSignedCert(dir_, "first", "1");
    ASSERT_TRUE(first.ok()) << first.status();
    first_ = *first;
    // The serving pair lives under names of its own, as in a mounted Secret.
    serving_ = {dir_ + "/tls.crt", dir_ + "/tls.key"};
    ASSERT_TRUE(std::system(absl::StrCat("cp '", first_.cert, "' '", serving_.cert, "' && cp '",
                                         first_.key, "' '", serving_.key, "'")
                                .c_str()) == 0);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    std::system(absl::StrCat("rm -rf '", dir_, "'").c_str());
  }

  void Serve(const CertFiles& files) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
        MakeServerCredentials(Files(files.cert, files.key));
    ASSERT_TRUE(creds.ok()) << creds.status();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *creds, &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }

  // One call on a new channel to `host`:port_; OK status means UNIMPLEMENTED came back.
  grpc::Status Call(const ScalerTls& tls, const std::string& host = "127.0.0.1") {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = MakeChannelCredentials(tls);
    if (!creds.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, std::string(creds.status().message()));
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
    auto stub = v1::ActivationService::NewStub(
        grpc::CreateCustomChannel(absl::StrCat(host, ":", port_), *creds, args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ActivateRequest req;
    v1::WorkloadState resp;
    grpc::Status s = stub->Activate(&ctx, req, &resp);
    if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) return grpc::Status::OK;
    return s;
  }

  std::string dir_;
  CertFiles first_, serving_;
  // The generated base class: every method answers UNIMPLEMENTED.
  v1::ActivationService::Service service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(GrpcTlsTest, TheRightCaConnectsByFileAndByData) {
  Serve(serving_);
  grpc::Status s = Call(CaFile(first_.cert));
  EXPECT_TRUE(s.ok()) << s.error_message();
  ScalerTls inline_ca;
  inline_ca.ca_data = Slurp(first_.cert);
  s = Call(inline_ca);
  EXPECT_TRUE(s.ok()) << s.error_message();
  s = Call(CaFile(first_.cert), "localhost");
  EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(GrpcTlsTest, AWrongCaFailsAndSaysTheHandshakeFailed) {
  Serve(serving_);
  absl::StatusOr<CertFiles> other = zeroscale::testing::WriteSelfSignedCert(dir_, "other", "o");
  ASSERT_TRUE(other.ok());
  const grpc::Status s = Call(CaFile(other->cert));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("andshake")) << s.error_message();
}

TEST_F(GrpcTlsTest, APlainTextClientIsRefused) {
  Serve(serving_);
  const grpc::Status s = Call(ScalerTls());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(GrpcTlsTest, TheHostNameIsCheckedAndCanBeOverridden) {
  // As the chart's certificate: the Service's names only, dialled at a pod IP.
  absl::StatusOr<CertFiles> svc = zeroscale::testing::WriteSelfSignedCert(
      dir_, "svc", "svc", "DNS:zeroscale-scaler.zs.svc");
  ASSERT_TRUE(svc.ok());
  Serve(*svc);
  grpc::Status s = Call(CaFile(svc->cert));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  ScalerTls named = CaFile(svc->cert);
  named.server_name = "zeroscale-scaler.zs.svc";
  s = Call(named);
  EXPECT_TRUE(s.ok()) << s.error_message();
  named.server_name = "zeroscale-scaler.other.svc";
  s = Call(named);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(GrpcTlsTest, AReplacedCertificateIsServedToNewConnections) {
  Serve(serving_);
  ASSERT_TRUE(Call(CaFile(first_.cert)).ok());
  absl::StatusOr<CertFiles> second = zeroscale::testing::WriteSelfSignedCert(dir_, "second", "2");
  ASSERT_TRUE(second.ok());
  const std::string second_ca = dir_ + "/second-ca.crt";
  ASSERT_EQ(std::system(absl::StrCat("cp '", second->cert, "' '", second_ca, "'").c_str()), 0);
  ASSERT_TRUE(zeroscale::testing::RotateInto(*second, serving_));
  // gRPC re-reads the files on its refresh interval (1 s here).
  EXPECT_TRUE(zeroscale::testing::WaitFor([&] { return Call(CaFile(second_ca)).ok(); },
                                          absl::Seconds(30)));
  EXPECT_EQ(Call(CaFile(first_.cert)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GrpcTlsTest, ServerFilesAreCheckedAtStart) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> c =
      MakeServerCredentials(Files(dir_ + "/missing.crt", first_.key));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(c.status().message(), HasSubstr("missing.crt"));
  c = MakeServerCredentials(Files(first_.cert, ""));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<CertFiles> other = zeroscale::testing::WriteSelfSignedCert(dir_, "other", "o");
  ASSERT_TRUE(other.ok());
  c = MakeServerCredentials(Files(first_.cert, other->key));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(c.status().message(), HasSubstr(other->key));
  EXPECT_TRUE(MakeServerCredentials(Files()).ok());  // plain text
}

TEST_F(GrpcTlsTest, ClientFlagsAreChecked) {
  ScalerTls both = CaFile(first_.cert);
  both.ca_data = Slurp(first_.cert);
  EXPECT_THAT(ValidateScalerTls(both).message(), HasSubstr("give one of them"));
  ScalerTls name_only;
  name_only.server_name = "x";
  EXPECT_THAT(ValidateScalerTls(name_only).message(), HasSubstr("--scaler-tls-server-name"));
  ScalerTls missing = CaFile(dir_ + "/missing.crt");
  EXPECT_EQ(ValidateScalerTls(missing).code(), absl::StatusCode::kFailedPrecondition);
  ScalerTls garbage;
  garbage.ca_data = "not a certificate";
  EXPECT_THAT(ValidateScalerTls(garbage).message(), HasSubstr("--scaler-ca-data: no PEM"));
  garbage.ca_data = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
  EXPECT_EQ(ValidateScalerTls(garbage).code(), absl::StatusCode::kInvalidArgument);
  garbage.ca_data = Slurp(first_.cert) + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  EXPECT_THAT(ValidateScalerTls(garbage).message(), HasSubstr("certificate 2 does not parse"));
  ScalerTls good = CaFile(first_.cert);
  EXPECT_TRUE(ValidateScalerTls(good).ok());
  EXPECT_TRUE(ValidateScalerTls(ScalerTls()).ok());
}

TEST(LoopbackTest, KnowsLoopbackHosts) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("[::1]"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("zeroscale-scaler.zs.svc"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.7"));
}

}  // namespace
}  // namespace zeroscale::grpcutil
