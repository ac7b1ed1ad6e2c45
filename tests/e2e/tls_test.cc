// TLS on every port that has it, with the real binaries on loopback and throwaway
// certificates (openssl CLI; curl as the HTTPS client): the scaler's HTTP and gRPC ports,
// the sidecar's and the balancer's admin ports. Each does a handshake with the right CA
// and refuses a wrong CA and plain text; each serves a replaced certificate to new
// connections without a restart; the sidecar and the balancer verify the scaler's
// certificate and say why when it does not verify.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/tls_testing.h"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"

namespace zeroscale {
namespace {

using testing::CertFiles;
using testing::ChildProcess;
using testing::FreePort;
using ::testing::HasSubstr;

// Files re-read within this in the programs (HTTP: 5 s checks; gRPC: 5 s refresh).
constexpr absl::Duration kReload = absl::Seconds(30);
constexpr absl::Duration kStart = absl::Seconds(20);

class TlsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    scaler_cert_ = Cert("scaler");
    admin_cert_ = Cert("admin");
    wrong_ = Cert("wrong");
    ASSERT_TRUE(redis_.Start().ok());
    http_port_ = FreePort();
    grpc_port_ = FreePort();
  }
  void TearDown() override { std::system(absl::StrCat("rm -rf '", dir_, "'").c_str()); }

  // A self-signed pair for localhost and 127.0.0.1, and a copy of its certificate as a
  // CA file that stays when the pair is rotated away.
  CertFiles Cert(const std::string& name) {
    absl::StatusOr<CertFiles> c = testing::WriteSelfSignedCert(dir_, name, name);
    EXPECT_TRUE(c.ok()) << c.status();
    std::system(absl::StrCat("cp '", c->cert, "' '", Ca(name), "'").c_str());
    return *c;
  }
  std::string Ca(const std::string& name) const { return absl::StrCat(dir_, "/", name, "-ca.pem"); }

  // `backend`: none, or local with one workload at zero (so the ActivationService has a
  // workload state to send the balancer).
  std::unique_ptr<ChildProcess> StartScaler(const std::string& backend = "none") {
    std::string workloads;
    if (backend == "local") {
      workloads = dir_ + "/workloads.yaml";
      std::ofstream(workloads) << "workloads:\n  - name: tls-e2e\n    command: [\"/bin/true\", \"{port}\"]\n"
                                  "    port: 0\n    minReplicas: 0\n    maxReplicas: 1\n";
    }
    auto p = std::make_unique<ChildProcess>(
        std::vector<std::string>{ZS_SCALER_BIN, "--backend=" + backend,
                                 "--workloads=" + workloads, "--redis=" + redis_.address(),
                                 absl::StrCat("--http-listen=127.0.0.1:", http_port_),
                                 absl::StrCat("--grpc-listen=127.0.0.1:", grpc_port_),
                                 absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()),
                                 "--tls-cert=" + scaler_cert_.cert, "--tls-key=" + scaler_cert_.key,
                                 "--auth-tokens=" + Tokens()},
        dir_ + "/scaler.log");
    EXPECT_TRUE(p->Start().ok());
    EXPECT_TRUE(testing::WaitForTcpPort(http_port_, kStart).ok()) << p->ReadLog();
    EXPECT_TRUE(testing::WaitForTcpPort(grpc_port_, kStart).ok()) << p->ReadLog();
    return p;
  }

  // TLS together with the checks that are on by default: a credential for each sidecar's
  // pod and one for the balancers (--auth-tokens), handed out as --token-file.
  std::string Tokens() {
    const std::string path = dir_ + "/tokens";
    std::ofstream out(path);
    out << "balancer-token-0123456789,balancer,zeroscale:balancers\n";
    for (const char* pod : {"good", "wrong-ca", "plain", "before", "after"}) {
      out << "pod-token-" << pod << "-0123456789,e2e/" << pod << ",zeroscale:pods\n";
    }
    return path;
  }
  std::string TokenFile(const std::string& token) {
    const std::string path = dir_ + "/" + token + ".token";
    std::ofstream(path) << token << "\n";
    return path;
  }

  struct Sidecar {
    std::unique_ptr<ChildProcess> process;
    uint16_t admin_port = 0;
  };
  // A sidecar streaming to the scaler with `scaler_flags`, its admin port over TLS.
  Sidecar StartSidecar(const std::string& name, std::vector<std::string> scaler_flags) {
    Sidecar s;
    s.admin_port = FreePort();
    std::vector<std::string> argv = {ZS_SIDECAR_BIN,
                                     absl::StrCat("--scaler=127.0.0.1:", grpc_port_),
                                     absl::StrCat("--app-port=", FreePort()),
                                     absl::StrCat("--proxy-listen=127.0.0.1:", FreePort()),
                                     absl::StrCat("--admin-listen=127.0.0.1:", s.admin_port),
                                     "--admin-tls-cert=" + admin_cert_.cert,
                                     "--admin-tls-key=" + admin_cert_.key,
                                     "--pod=e2e/" + name,
                                     "--workload=e2e/Deployment/tls",
                                     "--cgroup-root=",
                                     "--sample-interval=200ms",
                                     "--token-file=" + TokenFile("pod-token-" + name + "-0123456789")};
    argv.insert(argv.end(), scaler_flags.begin(), scaler_flags.end());
    s.process = std::make_unique<ChildProcess>(argv, absl::StrCat(dir_, "/", name, ".log"));
    EXPECT_TRUE(s.process->Start().ok());
    EXPECT_TRUE(testing::WaitForTcpPort(s.admin_port, kStart).ok()) << s.process->ReadLog();
    return s;
  }

  // A Prometheus line of an admin port read over TLS with `ca`, e.g. "name 1".
  bool MetricsShow(uint16_t port, const std::string& ca, const std::string& line) {
    testing::HttpsReply r = testing::HttpsGet(port, "/metrics", ca);
    return r.status == 200 && absl::StrContains(r.body, "\n" + line + "\n");
  }

  // The port answers `ca` with 200 and refuses a wrong CA and plain HTTP.
  void ExpectTlsOnly(uint16_t port, const std::string& ca, const std::string& path) {
    testing::HttpsReply ok = testing::HttpsGet(port, path, ca);
    EXPECT_EQ(ok.status, 200) << ok.body;
    testing::HttpsReply wrong = testing::HttpsGet(port, path, Ca("wrong"));
    EXPECT_EQ(wrong.status, 0);
    EXPECT_THAT(wrong.body, HasSubstr("certificate")) << wrong.body;
    EXPECT_NE(testing::HttpGetStatus(port, path), 200);
  }

  // Replaces `files` with a new pair; returns the new pair's CA file.
  std::string Rotate(const CertFiles& files, const std::string& name) {
    CertFiles next = Cert(name);
    EXPECT_TRUE(testing::RotateInto(next, files));
    return Ca(name);
  }

  std::string dir_;
  CertFiles scaler_cert_, admin_cert_, wrong_;
  testing::RedisServer redis_;
  uint16_t http_port_ = 0, grpc_port_ = 0;
};

TEST_F(TlsE2E, TheScalersPortsAndTheSidecarsAdminPortServeTlsOnly) {
  auto scaler = StartScaler();
  ExpectTlsOnly(http_port_, Ca("scaler"), "/healthz");
  testing::HttpsReply scrape = testing::HttpsGet(http_port_, "/metrics", Ca("scaler"));
  EXPECT_THAT(scrape.body, HasSubstr("zeroscale_"));

  // gRPC: a sidecar with the right CA streams; its admin port serves TLS only.
  Sidecar good = StartSidecar("good", {"--scaler-ca=" + Ca("scaler")});
  EXPECT_TRUE(testing::WaitFor(
      [&] { return MetricsShow(good.admin_port, Ca("admin"), "zeroscale_sidecar_stream_connected 1"); },
      kStart))
      << good.process->ReadLog() << scaler->ReadLog();
  ExpectTlsOnly(good.admin_port, Ca("admin"), "/healthz");

  // A wrong CA: no stream, and the log says the handshake failed.
  Sidecar wrong = StartSidecar("wrong-ca", {"--scaler-ca=" + Ca("wrong")});
  EXPECT_TRUE(testing::WaitFor(
      [&] { return absl::StrContains(wrong.process->ReadLog(), "cannot reach scaler"); }, kStart));
  EXPECT_THAT(wrong.process->ReadLog(), HasSubstr("andshake"));
  EXPECT_TRUE(MetricsShow(wrong.admin_port, Ca("admin"), "zeroscale_sidecar_stream_connected 0"));

  // Plain text to the TLS port: no stream either.
  Sidecar plain = StartSidecar("plain", {});
  EXPECT_TRUE(testing::WaitFor(
      [&] { return absl::StrContains(plain.process->ReadLog(), "cannot reach scaler"); }, kStart));
  EXPECT_TRUE(MetricsShow(plain.admin_port, Ca("admin"), "zeroscale_sidecar_stream_connected 0"));
  EXPECT_TRUE(MetricsShow(good.admin_port, Ca("admin"), "zeroscale_sidecar_stream_connected 1"));

  const int status = scaler->Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(TlsE2E, ReplacedCertificatesAreServedWithoutARestart) {
  auto scaler = StartScaler();
  Sidecar before = StartSidecar("before", {"--scaler-ca=" + Ca("scaler")});
  ASSERT_TRUE(testing::WaitFor(
      [&] { return MetricsShow(before.admin_port, Ca("admin"), "zeroscale_sidecar_stream_connected 1"); },
      kStart))
      << before.process->ReadLog();

  const std::string scaler2 = Rotate(scaler_cert_, "scaler2");
  const std::string admin2 = Rotate(admin_cert_, "admin2");
  // The scaler's HTTP port.
  EXPECT_TRUE(testing::WaitFor(
      [&] { return testing::HttpsGet(http_port_, "/healthz", scaler2).status == 200; }, kReload))
      << scaler->ReadLog();
  EXPECT_EQ(testing::HttpsGet(http_port_, "/healthz", Ca("scaler")).status, 0);
  // The scaler's gRPC port: a sidecar that trusts only the new certificate connects.
  Sidecar after = StartSidecar("after", {"--scaler-ca=" + scaler2});
  EXPECT_TRUE(testing::WaitFor(
      [&] { return MetricsShow(after.admin_port, admin2, "zeroscale_sidecar_stream_connected 1"); },
      kReload))
      << after.process->ReadLog() << scaler->ReadLog();
  // The sidecar's admin port.
  EXPECT_TRUE(testing::WaitFor(
      [&] { return testing::HttpsGet(before.admin_port, "/healthz", admin2).status == 200; },
      kReload));
  EXPECT_EQ(testing::HttpsGet(before.admin_port, "/healthz", Ca("admin")).status, 0);
  EXPECT_TRUE(scaler->running());
  EXPECT_TRUE(before.process->running());
}

TEST_F(TlsE2E, TheBalancerVerifiesTheScalerAndServesItsAdminPortOverTls) {
  auto scaler = StartScaler("local");
  auto balancer = [&](const std::string& name, std::vector<std::string> scaler_flags,
                      uint16_t admin_port) {
    std::vector<std::string> argv = {ZS_BALANCER_BIN,
                                     absl::StrCat("--scaler=127.0.0.1:", grpc_port_),
                                     "--redis=" + redis_.address(),
                                     "--discovery=none",
                                     absl::StrCat("--listen=127.0.0.1:", FreePort()),
                                     absl::StrCat("--admin-listen=127.0.0.1:", admin_port),
                                     "--admin-tls-cert=" + admin_cert_.cert,
                                     "--admin-tls-key=" + admin_cert_.key,
                                     "--token-file=" + TokenFile("balancer-token-0123456789")};
    argv.insert(argv.end(), scaler_flags.begin(), scaler_flags.end());
    auto p = std::make_unique<ChildProcess>(argv, absl::StrCat(dir_, "/", name, ".log"));
    EXPECT_TRUE(p->Start().ok());
    EXPECT_TRUE(testing::WaitForTcpPort(admin_port, kStart).ok()) << p->ReadLog();
    return p;
  };
  const uint16_t good_admin = FreePort();
  auto good = balancer("balancer", {"--scaler-ca=" + Ca("scaler")}, good_admin);
  EXPECT_TRUE(testing::WaitFor(
      [&] { return MetricsShow(good_admin, Ca("admin"), "zeroscale_balancer_scaler_connected 1"); },
      kStart))
      << good->ReadLog() << scaler->ReadLog();
  ExpectTlsOnly(good_admin, Ca("admin"), "/healthz");

  // The certificate names localhost and 127.0.0.1, not this name.
  const uint16_t misnamed_admin = FreePort();
  auto misnamed = balancer(
      "misnamed", {"--scaler-ca=" + Ca("scaler"), "--scaler-tls-server-name=scaler.example"},
      misnamed_admin);
  EXPECT_TRUE(testing::WaitFor(
      [&] { return absl::StrContains(misnamed->ReadLog(), "cannot reach the scaler"); }, kStart))
      << misnamed->ReadLog();
  EXPECT_TRUE(
      MetricsShow(misnamed_admin, Ca("admin"), "zeroscale_balancer_scaler_connected 0"));

  const uint16_t wrong_admin = FreePort();
  auto wrong = balancer("wrong-ca", {"--scaler-ca=" + Ca("wrong")}, wrong_admin);
  EXPECT_TRUE(testing::WaitFor(
      [&] { return absl::StrContains(wrong->ReadLog(), "cannot reach the scaler"); }, kStart))
      << wrong->ReadLog();
  EXPECT_THAT(wrong->ReadLog(), HasSubstr("andshake"));
  EXPECT_TRUE(MetricsShow(wrong_admin, Ca("admin"), "zeroscale_balancer_scaler_connected 0"));

  // The admin port's certificate replaced in place.
  const std::string admin2 = Rotate(admin_cert_, "admin2");
  EXPECT_TRUE(testing::WaitFor(
      [&] { return testing::HttpsGet(good_admin, "/healthz", admin2).status == 200; }, kReload));
  EXPECT_EQ(testing::HttpsGet(good_admin, "/healthz", Ca("admin")).status, 0);
}

TEST_F(TlsE2E, BadTlsFlagsStopAProgramWithExitCode2) {
  ChildProcess scaler({ZS_SCALER_BIN, "--backend=none", "--tls-cert=" + scaler_cert_.cert},
                      dir_ + "/half.log");
  ASSERT_TRUE(scaler.Start().ok());
  std::optional<int> status = scaler.WaitForExit(kStart);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2);
  EXPECT_THAT(scaler.ReadLog(), HasSubstr("--tls-cert and --tls-key go together"));

  ChildProcess sidecar({ZS_SIDECAR_BIN, "--app-port=1", "--pod=e2e/p", "--scaler-ca=" + dir_ + "/none.pem"},
                       dir_ + "/sidecar-bad.log");
  ASSERT_TRUE(sidecar.Start().ok());
  status = sidecar.WaitForExit(kStart);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2);
  EXPECT_THAT(sidecar.ReadLog(), HasSubstr(dir_ + "/none.pem"));
}

}  // namespace
}  // namespace zeroscale
