// The chart against the real API server, as `helm install` leaves it: lint and render
// (validated by the server), install, its programs running as the pods the chart
// describes (the kubelet stand-in runs the scaler and balancer images with the chart's
// args, in-cluster configuration and projected ServiceAccount tokens), two upgrades with
// the same values that change nothing, and uninstall. chart_helm_test checks the
// rendered objects one by one without a cluster.
#include <filesystem>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kube/zeroscale_release.h"
#include "tests/testing/command.h"
#include "tests/testing/kube_test_env.h"
#include "tests/testing/yaml_json.h"

namespace zeroscale::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kChart[] = ZS_SOURCE_DIR "/charts/zeroscale";
constexpr char kRelease[] = "zsh";

class ChartReleaseTest : public KubeTest {
 protected:
  std::vector<std::string> Values() {
    // Its scaler and balancer act on nothing but this namespace, and its webhook sees no
    // namespace (none is labelled): the other scenarios of the binary run beside it.
    return {"--set", "webhook.onlyLabelledNamespaces=true",
            "--set", "scaler.watchNamespace=" + ns(),
            "--set", "balancer.watchNamespace=" + ns()};
  }

  CommandResult Helm(std::vector<std::string> args, bool with_values = true) {
    args.push_back("--namespace");
    args.push_back(ns());
    if (with_values) {
      for (const std::string& v : Values()) args.push_back(v);
    }
    return cluster().Helm(args);
  }

  // The release's objects as `helm get manifest` lists them.
  absl::StatusOr<std::vector<ObjectRef>> Manifest() {
    CommandResult manifest = Helm({"get", "manifest", kRelease}, false);
    if (!manifest.ok()) return absl::InternalError(manifest.output);
    absl::StatusOr<std::vector<json>> docs = YamlDocumentsToJson(manifest.output);
    if (!docs.ok()) return docs.status();
    std::vector<ObjectRef> out;
    for (const json& d : *docs) {
      if (!d.is_object()) continue;
      ObjectRef ref = ObjectRef::Of(d);
      if (ref.ns.empty() && ref.kind != "ClusterRole" && ref.kind != "ClusterRoleBinding" &&
          ref.kind != "MutatingWebhookConfiguration") {
        ref.ns = ns();
      }
      out.push_back(ref);
    }
    return out;
  }

  // What an upgrade that changes nothing leaves alone: each object's generation (spec
  // changes) where it has one, else its resourceVersion; and the ReplicaSets (a rolled
  // pod template makes a new one).
  absl::StatusOr<std::map<std::string, std::string>> Snapshot() {
    absl::StatusOr<std::vector<ObjectRef>> refs = Manifest();
    if (!refs.ok()) return refs.status();
    std::map<std::string, std::string> out;
    for (const ObjectRef& ref : *refs) {
      absl::StatusOr<json> o = api().Get(ref);
      if (!o.ok()) return o.status();
      const json& meta = (*o)["metadata"];
      out[ref.ToString()] =
          meta.contains("generation")
              ? absl::StrCat("generation ", meta["generation"].dump())
              : absl::StrCat("resourceVersion ", meta.value("resourceVersion", ""));
    }
    absl::StatusOr<std::vector<json>> sets = api().List({"apps/v1", "ReplicaSet", ns(), ""});
    if (!sets.ok()) return sets.status();
    for (const json& rs : *sets) out["ReplicaSet " + NameOf(rs)] = "exists";
    return out;
  }
};

TEST_F(ChartReleaseTest, InstallsRunsUpgradesWithoutChangeAndUninstalls) {
  CommandResult lint = cluster().Helm({"lint", "--strict", kChart});
  ASSERT_TRUE(lint.ok()) << lint.output;
  EXPECT_THAT(lint.output, HasSubstr("0 chart(s) failed"));
  // Rendered and validated by the API server (dry run of every object).
  CommandResult rendered = Helm({"template", kRelease, kChart, "--validate"});
  ASSERT_TRUE(rendered.ok()) << rendered.output;

  // The kubelet stand-in makes a volume's mount path on the host when it is missing (see
  // kube_test_env.h): the scaler's certificate mount. Removed again at the end if it
  // was not there before.
  const bool had_mount_dir = std::filesystem::exists("/etc/zeroscale");
  CommandResult installed = Helm({"install", kRelease, kChart});
  ASSERT_TRUE(installed.ok()) << installed.output;
  EXPECT_THAT(installed.output, HasSubstr(absl::StrCat("is installed in namespace ", ns())));

  // The chart's pods run: two scalers and two balancers, ready.
  const std::string scalers =
      absl::StrCat("app.kubernetes.io/name=scaler,app.kubernetes.io/instance=", kRelease);
  const std::string balancers =
      absl::StrCat("app.kubernetes.io/name=balancer,app.kubernetes.io/instance=", kRelease);
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> scaler_pods,
                          WaitForReadyPods(scalers, 2, absl::Seconds(90)));
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> balancer_pods,
                          WaitForReadyPods(balancers, 2, absl::Seconds(90)));
  // The leader publishes its pod IP (Downward API) on the Lease, and the balancers,
  // allowed that one Lease, follow it.
  ZS_ASSERT_OK_AND_ASSIGN(
      json lease, api().WaitFor(
                      {"coordination.k8s.io/v1", "Lease", ns(), "zeroscale-scaler"},
                      [](const json& l) {
                        return l["metadata"].contains("annotations") &&
                               l["metadata"]["annotations"].contains("zeroscale.io/grpc-address");
                      },
                      absl::Seconds(60), "the leader's address on the Lease"));
  const std::string holder = lease["spec"].value("holderIdentity", "");
  std::string holder_ip;
  for (const json& p : scaler_pods) {
    if (absl::StartsWith(holder, NameOf(p) + "-")) holder_ip = PodIP(p);
  }
  ASSERT_FALSE(holder_ip.empty()) << "no scaler pod holds the Lease: " << holder;
  EXPECT_EQ(lease["metadata"]["annotations"]["zeroscale.io/grpc-address"], holder_ip + ":9090");
  for (const json& p : balancer_pods) {
    EXPECT_TRUE(WaitFor(
        [&] {
          // The chart serves the admin port over TLS (its own certificate: not verified
          // here, kube_chart_tls_test does).
          CommandResult m = RunCommand({"curl", "-sk", "--max-time", "2",
                                        absl::StrCat("https://", PodIP(p), ":8001/metrics")});
          return absl::StrContains(m.output, "\nzeroscale_balancer_scaler_leader_known 1");
        },
        absl::Seconds(30)))
        << NameOf(p) << " does not follow the scaler's Lease";
  }
  // Least privilege that is enough: nothing the chart's ServiceAccounts asked was refused.
  const std::string sa_prefix = absl::StrCat("system:serviceaccount:", ns(), ":");
  ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> refused, cluster().AuditEvents([&](const json& e) {
    return absl::StartsWith(e["user"].value("username", ""), sa_prefix) && RefusedByRbac(e);
  }));
  EXPECT_THAT(refused, ::testing::IsEmpty());

  // Upgrades with the same values change no object and roll no pod: the first (which
  // used to regenerate the certificate into the scaler's pod template) and the second.
  ZS_ASSERT_OK_AND_ASSIGN(auto before, Snapshot());
  CommandResult manifest_before = Helm({"get", "manifest", kRelease}, false);
  for (int i = 1; i <= 2; ++i) {
    SCOPED_TRACE(absl::StrCat("upgrade ", i));
    CommandResult upgraded = Helm({"upgrade", kRelease, kChart});
    ASSERT_TRUE(upgraded.ok()) << upgraded.output;
    ZS_ASSERT_OK_AND_ASSIGN(auto after, Snapshot());
    EXPECT_EQ(after, before);
    EXPECT_EQ(Helm({"get", "manifest", kRelease}, false).output, manifest_before.output);
  }

  ZS_ASSERT_OK_AND_ASSIGN(std::vector<ObjectRef> objects, Manifest());
  CommandResult uninstalled = Helm({"uninstall", kRelease, "--wait"}, false);
  ASSERT_TRUE(uninstalled.ok()) << uninstalled.output;
  for (const ObjectRef& ref : objects) {
    ZS_EXPECT_OK(api().WaitForDeletion(ref, absl::Seconds(60)));
  }
  if (!had_mount_dir) {
    std::error_code ignored;
    std::filesystem::remove("/etc/zeroscale/tls", ignored);  // only when empty
    std::filesystem::remove("/etc/zeroscale", ignored);
  }
  // Redis's claim stays (its data), as NOTES says.
  ZS_EXPECT_OK(api()
                   .Get({"v1", "PersistentVolumeClaim", ns(),
                         absl::StrCat("data-", kRelease, "-zeroscale-redis-0")})
                   .status());
}

}  // namespace
}  // namespace zeroscale::testing
