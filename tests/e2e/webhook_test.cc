// The real zeroscale-scaler serving the admission webhook over HTTPS with a throwaway
// certificate; refusing to start on a bad one; and running without one, webhook off.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/tls_testing.h"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"

namespace zeroscale {
namespace {

using json = nlohmann::json;
using testing::ChildProcess;
using testing::FreePort;
using ::testing::HasSubstr;

class WebhookE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    absl::StatusOr<testing::CertFiles> cert = testing::WriteSelfSignedCert(dir_, "tls", "e2e");
    ASSERT_TRUE(cert.ok()) << cert.status();
    cert_ = *cert;
    webhook_port_ = FreePort();
  }
  void TearDown() override { std::system(absl::StrCat("rm -rf '", dir_, "'").c_str()); }

  // The scaler with no Redis and no backend: the webhook needs neither.
  std::unique_ptr<ChildProcess> Scaler(std::vector<std::string> extra) {
    std::vector<std::string> argv = {ZS_SCALER_BIN,
                                     "--backend=none",
                                     absl::StrCat("--redis=127.0.0.1:", FreePort()),
                                     absl::StrCat("--http-listen=127.0.0.1:", FreePort()),
                                     absl::StrCat("--grpc-listen=127.0.0.1:", FreePort()),
                                     absl::StrCat("--webhook-listen=127.0.0.1:", webhook_port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<ChildProcess>(argv, absl::StrCat(dir_, "/scaler.log"));
  }

  std::string dir_;
  testing::CertFiles cert_;
  uint16_t webhook_port_ = 0;
};

TEST_F(WebhookE2E, MutatesPodsOverHttps) {
  auto scaler = Scaler({"--webhook-cert=" + cert_.cert, "--webhook-key=" + cert_.key,
                        "--sidecar-image=example.test/sidecar:e2e",
                        "--sidecar-scaler-address=scaler.e2e.svc:9090"});
  ASSERT_TRUE(scaler->Start().ok());
  ASSERT_TRUE(testing::WaitForTcpPort(webhook_port_, absl::Seconds(20)).ok()) << scaler->ReadLog();

  const json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"generateName", "llama-5f7b9c-"},
        {"labels", {{"pod-template-hash", "5f7b9c"}}},
        {"annotations", {{"zeroscale.io/inject", "true"}, {"zeroscale.io/port", "8080"}}},
        {"ownerReferences",
         json::array({{{"kind", "ReplicaSet"}, {"name", "llama-5f7b9c"}, {"controller", true}}})}}},
      {"spec", {{"containers", json::array({{{"name", "model"}, {"image", "llama"}}})}}}};
  const json review = {{"apiVersion", "admission.k8s.io/v1"},
                       {"kind", "AdmissionReview"},
                       {"request",
                        {{"uid", "e2e-uid"},
                         {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
                         {"namespace", "ml"},
                         {"operation", "CREATE"},
                         {"object", pod}}}};
  testing::HttpsReply reply =
      testing::HttpsPost(webhook_port_, "/mutate", review.dump(), cert_.cert);
  ASSERT_EQ(reply.status, 200) << reply.body << scaler->ReadLog();
  const json r = json::parse(reply.body)["response"];
  EXPECT_EQ(r["uid"], "e2e-uid");
  EXPECT_EQ(r["allowed"], true);
  EXPECT_EQ(r["patchType"], "JSONPatch");
  std::string patch;
  ASSERT_TRUE(absl::Base64Unescape(r["patch"].get<std::string>(), &patch));
  const json patched = pod.patch(json::parse(patch));
  EXPECT_EQ(patched["spec"]["shareProcessNamespace"], true);
  const json sidecar = patched["spec"]["containers"][1];
  EXPECT_EQ(sidecar["image"], "example.test/sidecar:e2e");
  EXPECT_THAT(sidecar["args"], ::testing::Contains("--measure=processes"));
  EXPECT_THAT(sidecar["args"], ::testing::Contains("--scaler=scaler.e2e.svc:9090"));
  EXPECT_THAT(sidecar["args"], ::testing::Contains("--workload=ml/Deployment/llama"));

  reply = testing::HttpsPost(webhook_port_, "/mutate", "{}", cert_.cert);
  EXPECT_EQ(reply.status, 400);
  EXPECT_THAT(reply.body, HasSubstr("apiVersion"));
  const int status = scaler->Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(WebhookE2E, ABadCertificateStopsTheScalerWithExitCode2) {
  const std::string bad = dir_ + "/bad.crt";
  std::ofstream(bad) << "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  auto scaler = Scaler({"--webhook-cert=" + bad, "--webhook-key=" + cert_.key});
  ASSERT_TRUE(scaler->Start().ok());
  ASSERT_TRUE(testing::WaitFor(
      [&] { return scaler->ReadLog().find("zeroscale-scaler: ") != std::string::npos; },
      absl::Seconds(20)))
      << scaler->ReadLog();
  const int status = scaler->Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
  EXPECT_THAT(scaler->ReadLog(), HasSubstr("TLS certificate " + bad));
}

TEST_F(WebhookE2E, WithoutACertificateTheWebhookIsOffAndTheScalerRuns) {
  auto scaler = Scaler({});
  ASSERT_TRUE(scaler->Start().ok());
  ASSERT_TRUE(testing::WaitFor(
      [&] { return scaler->ReadLog().find("scaler started") != std::string::npos; },
      absl::Seconds(20)))
      << scaler->ReadLog();
  EXPECT_THAT(scaler->ReadLog(), HasSubstr("admission webhook off"));
  EXPECT_FALSE(testing::TcpPortOpen(webhook_port_));
  EXPECT_TRUE(scaler->running());
}

}  // namespace
}  // namespace zeroscale
