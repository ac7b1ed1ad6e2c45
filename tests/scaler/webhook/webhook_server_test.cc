// The webhook's HTTPS endpoint on loopback with a throwaway certificate: AdmissionReviews
// POSTed over verified TLS, bad requests, and the Prometheus counters.
#include "scaler/webhook/webhook_server.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/metrics/exposition.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/tls_testing.h"

namespace zeroscale::webhook {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using zeroscale::testing::HttpsPost;

json Review(json annotations, json containers) {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "u-1"},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"namespace", "ml"},
            {"operation", "CREATE"},
            {"object",
             {{"metadata",
               {{"generateName", "m-"},
                {"annotations", std::move(annotations)},
                {"ownerReferences",
                 json::array({{{"kind", "StatefulSet"}, {"name", "m"}, {"controller", true}}})}}},
              {"spec", {{"containers", std::move(containers)}}}}}}}};
}

class WebhookServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = zeroscale::testing::MakeTempDir();
    absl::StatusOr<zeroscale::testing::CertFiles> cert =
        zeroscale::testing::WriteSelfSignedCert(dir_, "webhook", "webhook");
    ASSERT_TRUE(cert.ok()) << cert.status();
    ca_ = cert->cert;
    WebhookOptions o;
    o.listen = {"127.0.0.1", 0};
    o.cert_file = cert->cert;
    o.key_file = cert->key;
    o.injector.sidecar_image = "sidecar:test";
    o.injector.scaler_address = "scaler.zs.svc:9090";
    absl::StatusOr<std::unique_ptr<WebhookServer>> s = WebhookServer::Start(o, &registry_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }
  void TearDown() override { std::system(absl::StrCat("rm -rf '", dir_, "'").c_str()); }

  zeroscale::testing::HttpsReply Post(const std::string& body) {
    return HttpsPost(server_->port(), "/mutate", body, ca_);
  }

  std::string dir_, ca_;
  prometheus::Registry registry_;
  std::unique_ptr<WebhookServer> server_;
};

TEST_F(WebhookServerTest, InjectsOverTlsOnceAndCounts) {
  const json app = json::array({{{"name", "model"}, {"image", "m"}}});
  const json review = Review({{"zeroscale.io/port", "8080"}}, app);
  auto reply = Post(review.dump());
  ASSERT_EQ(reply.status, 200) << reply.body;
  const json r = json::parse(reply.body)["response"];
  EXPECT_EQ(r["uid"], "u-1");
  EXPECT_EQ(r["allowed"], true);
  std::string patch;
  ASSERT_TRUE(absl::Base64Unescape(r["patch"].get<std::string>(), &patch));
  const json pod = review["request"]["object"].patch(json::parse(patch));
  const json& sidecar = pod["spec"]["containers"][1];
  EXPECT_EQ(sidecar["image"], "sidecar:test");
  EXPECT_THAT(sidecar["args"], ::testing::Contains("--workload=ml/StatefulSet/m"));

  // The API server may call again (reinvocation): the injected pod is left alone.
  json again = review;
  again["request"]["object"] = pod;
  reply = Post(again.dump());
  ASSERT_EQ(reply.status, 200);
  EXPECT_FALSE(json::parse(reply.body)["response"].contains("patch"));

  reply = Post(Review({{"zeroscale.io/inject", "true"}}, app).dump());
  ASSERT_EQ(reply.status, 200);
  EXPECT_THAT(json::parse(reply.body)["response"]["warnings"][0].get<std::string>(),
              HasSubstr("zeroscale.io/port"));

  const std::string metrics = metrics::Serialize(registry_);
  EXPECT_THAT(metrics, HasSubstr("zeroscale_webhook_injected_total 1"));
  EXPECT_THAT(metrics, HasSubstr("zeroscale_webhook_skipped_total{reason=\"already_injected\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("zeroscale_webhook_skipped_total{reason=\"missing_port\"} 1"));
}

TEST_F(WebhookServerTest, AMalformedReviewIs400NamingTheProblem) {
  auto reply = Post("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}");
  EXPECT_EQ(reply.status, 400);
  EXPECT_THAT(reply.body, HasSubstr("request is missing"));
  reply = Post("not json");
  EXPECT_EQ(reply.status, 400);
  EXPECT_THAT(metrics::Serialize(registry_),
              HasSubstr("zeroscale_webhook_errors_total{reason=\"bad_request\"} 2"));
}


namespace scaler_ca {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The ZEROSCALE_SCALER_CA_DATA the webhook injects into a pod, "" when none.
std::string InjectedCa(uint16_t port, const std::string& ca) {
  const json review =
      Review({{"zeroscale.io/port", "8080"}}, json::array({{{"name", "model"}, {"image", "m"}}}));
  zeroscale::testing::HttpsReply reply = HttpsPost(port, "/mutate", review.dump(), ca);
  EXPECT_EQ(reply.status, 200) << reply.body;
  std::string patch;
  EXPECT_TRUE(absl::Base64Unescape(
      json::parse(reply.body)["response"]["patch"].get<std::string>(), &patch));
  const json pod = review["request"]["object"].patch(json::parse(patch));
  for (const json& e : pod["spec"]["containers"][1]["env"]) {
    if (e["name"] == "ZEROSCALE_SCALER_CA_DATA") return e["value"];
  }
  return "";
}

TEST(WebhookScalerCaTest, InjectsTheCurrentCaBundleAndKeepsTheLastGoodOne) {
  const std::string dir = zeroscale::testing::MakeTempDir();
  auto serving = zeroscale::testing::WriteSelfSignedCert(dir, "webhook", "webhook");
  auto ca1 = zeroscale::testing::WriteSelfSignedCert(dir, "ca1", "ca1");
  auto ca2 = zeroscale::testing::WriteSelfSignedCert(dir, "ca2", "ca2");
  ASSERT_TRUE(serving.ok() && ca1.ok() && ca2.ok());
  const std::string bundle = dir + "/ca.crt";
  std::ofstream(bundle) << Slurp(ca1->cert);
  prometheus::Registry registry;
  WebhookOptions o;
  o.listen = {"127.0.0.1", 0};
  o.cert_file = serving->cert;
  o.key_file = serving->key;
  o.cert_reload_check = absl::ZeroDuration();
  o.scaler_ca_file = bundle;
  o.injector.scaler_address = "scaler.zs.svc:9090";
  absl::StatusOr<std::unique_ptr<WebhookServer>> server = WebhookServer::Start(o, &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->port();
  EXPECT_EQ(InjectedCa(port, serving->cert), Slurp(ca1->cert));

  // A new bundle (both CAs while one replaces the other) is injected from the next pod on.
  const std::string both = Slurp(ca2->cert) + Slurp(ca1->cert);
  std::ofstream(bundle + ".new") << both;
  ASSERT_EQ(std::rename((bundle + ".new").c_str(), bundle.c_str()), 0);
  EXPECT_EQ(InjectedCa(port, serving->cert), both);

  // A bundle that does not parse is not injected: the last good one is.
  std::ofstream(bundle + ".new") << "not a certificate\n";
  ASSERT_EQ(std::rename((bundle + ".new").c_str(), bundle.c_str()), 0);
  EXPECT_EQ(InjectedCa(port, serving->cert), both);
  (*server)->Stop();

  // At start, a bad bundle stops the webhook, naming the file.
  absl::StatusOr<std::unique_ptr<WebhookServer>> bad = WebhookServer::Start(o, &registry);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bad.status().message(), HasSubstr(bundle));
  std::system(absl::StrCat("rm -rf '", dir, "'").c_str());
}

TEST(WebhookScalerCaTest, WithoutABundleNoCaIsInjected) {
  const std::string dir = zeroscale::testing::MakeTempDir();
  auto serving = zeroscale::testing::WriteSelfSignedCert(dir, "webhook", "webhook");
  ASSERT_TRUE(serving.ok());
  prometheus::Registry registry;
  WebhookOptions o;
  o.listen = {"127.0.0.1", 0};
  o.cert_file = serving->cert;
  o.key_file = serving->key;
  o.injector.scaler_address = "scaler.zs.svc:9090";
  absl::StatusOr<std::unique_ptr<WebhookServer>> server = WebhookServer::Start(o, &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(InjectedCa((*server)->port(), serving->cert), "");
  std::system(absl::StrCat("rm -rf '", dir, "'").c_str());
}

}  // namespace scaler_ca

}  // namespace
}  // namespace zeroscale::webhook
