// What a test on the real control plane starts from: one control plane and one kubelet
// stand-in per test binary (started on first use, ~10 s, stopped at exit), a fixture
// giving each test a namespace of its own, and helpers that keep scenarios short.
//
//   class WakeTest : public testing::KubeTest {};
//   TEST_F(WakeTest, AnswersAfterScaleUp) {
//     ZS_ASSERT_OK(Apply(R"(
//       apiVersion: apps/v1
//       kind: Deployment
//       ...)"));
//     ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> pods, WaitForReadyPods("app=echo", 1));
//     EXPECT_EQ(HttpGet(PodIP(pods[0]), 8080, "/")->status, 200);
//   }
//
// Binaries link zs_kube_test_main, whose main() moves the process into its own network
// namespace first (private_network.h). A test is skipped, with a message saying what to
// set, when ZEROSCALE_KUBE_ASSETS is unset, the assets or etcd are missing or the test
// does not run as root; with ZEROSCALE_REQUIRE_KUBE=1 each of these is a failure.
//
// The kubelet's image table holds (name -> program):
//   zeroscale.test/app                     zs-kube-test-app (see kube_test_app.cc)
//   ghcr.io/zeroscale/zeroscale-sidecar    the built zeroscale-sidecar (what the webhook
//                                          injects by default)
//   ghcr.io/zeroscale/zeroscale-scaler     the built zeroscale-scaler
//   ghcr.io/zeroscale/zeroscale-balancer   the built zeroscale-balancer
//   redis                                  redis-server --protected-mode no
// (any tag); add more with kubelet().SetImage. The node has cpu 8, memory 16Gi, pods
// 110 and nvidia.com/gpu 1.
//
// Thread-safety: the environment's accessors are thread-safe after start; fixtures are
// used by their test's thread.
#ifndef ZEROSCALE_TESTS_TESTING_KUBE_TEST_ENV_H_
#define ZEROSCALE_TESTS_TESTING_KUBE_TEST_ENV_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kube/transport.h"
#include "gtest/gtest.h"
#include "tests/testing/kube_api.h"
#include "tests/testing/kube_control_plane.h"
#include "tests/testing/kubelet.h"

// Assertions on absl::Status / StatusOr with the status in the failure message.
#define ZS_ASSERT_OK(expr)                                                                        \
  do {                                                                                            \
    const auto& zs_assert_ok_ = (expr);                                                           \
    ASSERT_TRUE(zs_assert_ok_.ok()) << ::zeroscale::testing::internal::StatusText(zs_assert_ok_); \
  } while (0)
#define ZS_EXPECT_OK(expr)                                                                        \
  do {                                                                                            \
    const auto& zs_expect_ok_ = (expr);                                                           \
    EXPECT_TRUE(zs_expect_ok_.ok()) << ::zeroscale::testing::internal::StatusText(zs_expect_ok_); \
  } while (0)
#define ZS_ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ZS_ASSERT_OK_AND_ASSIGN_IMPL_(ZS_KUBE_CONCAT_(zs_statusor_, __LINE__), lhs, rexpr)
#define ZS_KUBE_CONCAT_INNER_(a, b) a##b
#define ZS_KUBE_CONCAT_(a, b) ZS_KUBE_CONCAT_INNER_(a, b)
#define ZS_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr)                           \
  auto statusor = (rexpr);                                                            \
  ASSERT_TRUE(statusor.ok()) << ::zeroscale::testing::internal::StatusText(statusor); \
  lhs = std::move(statusor).value()

namespace zeroscale::testing {

namespace internal {
inline std::string StatusText(const absl::Status& s) { return s.ToString(); }
template <typename T>
std::string StatusText(const absl::StatusOr<T>& s) {
  return s.status().ToString();
}
}  // namespace internal

class KubeEnvironment {
 public:
  // The binary's environment, started on first call; nullptr when it cannot run here,
  // with the reason in `*why` and `*skip` telling a missing prerequisite (skip, unless
  // ZEROSCALE_REQUIRE_KUBE=1) from a failure to start (always a failure).
  static KubeEnvironment* Get(std::string* why, bool* skip);
  // ZEROSCALE_REQUIRE_KUBE=1.
  static bool Required();

  KubeControlPlane& cluster() { return *cluster_; }
  KubeApi& api() { return cluster_->admin(); }
  Kubelet& kubelet() { return *kubelet_; }

  // Stops the kubelet and the control plane (at exit).
  void Shutdown();

 private:
  std::unique_ptr<KubeControlPlane> cluster_;
  std::unique_ptr<Kubelet> kubelet_;
};

// A test with a namespace of its own ("<test-name>-<random>", the default
// ServiceAccount and kube-root-ca.crt in place). On failure, TearDown prints the
// namespace's pods, Events and container logs. The namespace is deleted afterwards and
// its pods' processes killed at once; cluster-scoped objects a test makes (webhook
// configurations, ClusterRoles, CRDs) are its own to delete.
class KubeTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  KubeControlPlane& cluster() { return env_->cluster(); }
  KubeApi& api() { return env_->api(); }
  Kubelet& kubelet() { return env_->kubelet(); }
  const std::string& ns() const { return ns_; }

  // Another namespace for this test (deleted with it).
  absl::StatusOr<std::string> CreateNamespace(absl::string_view prefix);
  // Server-side apply of every document of `yaml`, namespaced ones into ns() unless
  // they name their own.
  absl::StatusOr<std::vector<json>> Apply(absl::string_view yaml);
  // Pods of ns() matching `selector`, once exactly `count` are Ready (and none other is
  // matched, terminating ones included).
  absl::StatusOr<std::vector<json>> WaitForReadyPods(absl::string_view selector, int count,
                                                     absl::Duration timeout = absl::Seconds(60));
  // EndpointSlice endpoints of Service `service` in ns(), flattened: each an object with
  // "address", "ready", "serving", "terminating", "pod" (targetRef name), "nodeName".
  absl::StatusOr<std::vector<json>> Endpoints(absl::string_view service);
  // Waits until `condition` holds for Endpoints(service); returns them.
  absl::StatusOr<std::vector<json>> WaitForEndpoints(
      absl::string_view service, const std::function<bool(const std::vector<json>&)>& condition,
      absl::Duration timeout = absl::Seconds(60), absl::string_view what = "");
  // METHOD http://HOST:PORT/PATH from the test's network namespace (a new connection
  // each time).
  absl::StatusOr<kube::HttpResponse> Http(absl::string_view method, absl::string_view host,
                                          int port, absl::string_view path,
                                          absl::Duration timeout = absl::Seconds(10));
  absl::StatusOr<kube::HttpResponse> HttpGet(absl::string_view host, int port,
                                             absl::string_view path = "/",
                                             absl::Duration timeout = absl::Seconds(10)) {
    return Http("GET", host, port, path, timeout);
  }
  // The namespace's pods, Events and container logs, for failure messages.
  std::string Diagnostics(absl::string_view ns = "");
  // Prints the file (e.g. a ChildProcess's log_path() of a program under test) with the
  // diagnostics if the test fails; read at TearDown, so it may outlive its process.
  void PrintOnFailure(std::string title, std::string path);

 private:
  KubeEnvironment* env_ = nullptr;
  std::string ns_;
  std::vector<std::string> namespaces_;
  std::vector<std::pair<std::string, std::string>> failure_files_;
};

// status.podIP of a Pod.
std::string PodIP(const json& pod);

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_KUBE_TEST_ENV_H_
