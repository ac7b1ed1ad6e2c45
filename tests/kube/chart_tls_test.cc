// The chart's TLS certificates on the real API server with the real helm: `helm install`,
// then two `helm upgrade`s with the same values change none of the certificate Secrets nor
// the workloads (no pod rolls), and the serving certificates verify against the release CA
// for their Services' names (openssl verify). Pods are not run (replicas 0, external Redis):
// what is checked is what Helm stores.
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/kube_test_env.h"

namespace zeroscale::testing {
namespace {

using ::testing::HasSubstr;

class ChartTlsTest : public KubeTest {
 protected:
  // Release name: its cluster-scoped objects (ClusterRoles, the webhook configuration) are
  // named after it, so it is this test's own.
  static constexpr char kRelease[] = "ztls";

  CommandResult Helm(const std::string& verb) {
    return cluster().Helm({verb, kRelease, ZS_SOURCE_DIR "/charts/zeroscale", "--namespace", ns(),
                           "--set", "scaler.replicas=0", "--set", "balancer.replicas=0",
                           "--set", "redis.enabled=false", "--set",
                           "redis.externalAddress=redis.example:6379", "--set",
                           "webhook.onlyLabelledNamespaces=true"});
  }

  // resourceVersion of each object that must not change on an upgrade with the same values.
  std::map<std::string, std::string> Versions() {
    std::map<std::string, std::string> out;
    for (const ObjectRef& ref :
         {ObjectRef{"v1", "Secret", ns(), "ztls-zeroscale-webhook-ca"},
          ObjectRef{"v1", "Secret", ns(), "ztls-zeroscale-webhook-tls"},
          ObjectRef{"v1", "Secret", ns(), "ztls-zeroscale-balancer-admin-tls"},
          ObjectRef{"apps/v1", "Deployment", ns(), "ztls-zeroscale-scaler"},
          ObjectRef{"apps/v1", "Deployment", ns(), "ztls-zeroscale-balancer"},
          ObjectRef{"admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "",
                    "ztls-zeroscale-sidecar-injector"}}) {
      absl::StatusOr<json> o = api().Get(ref);
      EXPECT_TRUE(o.ok()) << ref.ToString() << ": " << o.status();
      if (!o.ok()) continue;
      // A Deployment's status is written by its controller while pods come and go (here
      // they never run): its generation is what counts a change of what helm wrote.
      const json& meta = (*o)["metadata"];
      out[ref.ToString()] = ref.kind == "Deployment"
                                ? absl::StrCat("generation ", meta.value("generation", 0))
                                : meta["resourceVersion"].get<std::string>();
    }
    return out;
  }

  // Writes the Secret's `key` (base64 in .data) to a file; its path.
  std::string Save(const std::string& secret, const std::string& key, const std::string& dir) {
    absl::StatusOr<json> s = api().Get({"v1", "Secret", ns(), secret});
    EXPECT_TRUE(s.ok()) << s.status();
    std::string pem;
    EXPECT_TRUE(absl::Base64Unescape((*s)["data"][key].get<std::string>(), &pem));
    const std::string path = absl::StrCat(dir, "/", secret, "-", key);
    std::ofstream(path) << pem;
    return path;
  }
};

TEST_F(ChartTlsTest, UpgradesKeepTheCertificatesAndTheyVerifyAgainstTheReleaseCa) {
  CommandResult installed = Helm("install");
  ASSERT_TRUE(installed.ok()) << installed.output;
  const std::map<std::string, std::string> first = Versions();
  ASSERT_EQ(first.size(), 6u);
  for (int i = 0; i < 2; ++i) {
    CommandResult upgraded = Helm("upgrade");
    ASSERT_TRUE(upgraded.ok()) << upgraded.output;
    EXPECT_EQ(Versions(), first) << "upgrade " << i + 1 << " changed an object";
  }

  const std::string dir = ::testing::TempDir();
  const std::string ca = Save("ztls-zeroscale-webhook-ca", "tls.crt", dir);
  for (const auto& [secret, name] :
       {std::pair<std::string, std::string>{"ztls-zeroscale-webhook-tls",
                                            absl::StrCat("ztls-zeroscale-scaler.", ns(), ".svc")},
        {"ztls-zeroscale-balancer-admin-tls",
         absl::StrCat("ztls-zeroscale-balancer-admin.", ns(), ".svc")}}) {
    // The CA the programs get is the release CA.
    EXPECT_EQ(Shell(absl::StrCat("cmp '", ca, "' '", Save(secret, "ca.crt", dir), "' && echo same")),
              "same\n")
        << secret;
    const std::string cert = Save(secret, "tls.crt", dir);
    EXPECT_THAT(Shell(absl::StrCat("openssl verify -CAfile '", ca, "' -verify_hostname '", name,
                                   "' '", cert, "'")),
                HasSubstr(": OK"))
        << secret;
  }
  absl::StatusOr<json> scaler = api().Get({"apps/v1", "Deployment", ns(), "ztls-zeroscale-scaler"});
  ASSERT_TRUE(scaler.ok());
  EXPECT_THAT(scaler->dump(), HasSubstr("--tls-cert=/etc/zeroscale/tls/tls.crt"));
  CommandResult uninstalled =
      cluster().Helm({"uninstall", kRelease, "--namespace", ns(), "--wait"});
  EXPECT_TRUE(uninstalled.ok()) << uninstalled.output;
}

}  // namespace
}  // namespace zeroscale::testing
