// Wake from zero through the real control plane, next to the same wake on the local
// backend, in one run on one machine:
//
//   cluster: a request at zero reaches the balancer -> the scaler's scale PATCH is stored
//            by kube-apiserver (its audit event's stageTimestamp, microseconds) -> the
//            first byte of the answer reaches the client. zeroscale installed by helm as
//            in tests/kube (zeroscale_release.h): the Deployment controller, ReplicaSet
//            controller, the chart's webhook called by the API server, the kubelet
//            stand-in starting the pod, the EndpointSlice controller, the sidecar.
//   local:   the same request -> the scaler's decision to wake (its log, milliseconds)
//            -> first byte, with --backend=local starting the same app behind the same
//            sidecar as processes.
//
// The app is the tests' app (zs-kube-test-app) ready 200 ms after it starts, so what is
// measured is zeroscale and the platform, not a model loading.
//
//   sudo ZEROSCALE_KUBE_ASSETS=... build/tests/kube/zeroscale-kube-wake-bench
//   env: ZEROSCALE_BENCH_TRIALS (default 10)
//
// A gtest binary on the kube test harness (it needs root and the assets, as the tests).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/kube/zeroscale_release.h"
#include "tests/testing/kube_test_env.h"

namespace zeroscale::testing {
namespace {

int Trials() {
  const char* v = std::getenv("ZEROSCALE_BENCH_TRIALS");
  int n = 10;
  if (v != nullptr && absl::SimpleAtoi(v, &n) && n > 0) return n;
  return 10;
}

struct Trial {
  absl::Duration to_scale;       // request sent -> scale stored (cluster) / decided (local)
  absl::Duration to_first_byte;  // request sent -> first byte
};

void Print(const char* what, std::vector<Trial> trials) {
  auto stat = [&](auto field, const char* name) {
    std::vector<double> ms;
    for (const Trial& t : trials) ms.push_back(absl::ToDoubleMilliseconds(t.*field));
    std::sort(ms.begin(), ms.end());
    if (ms.empty()) return;
    std::printf("  %-38s p50 %8.1f ms   min %8.1f   max %8.1f   (%zu trials)\n", name,
                ms[ms.size() / 2], ms.front(), ms.back(), ms.size());
  };
  std::printf("%s\n", what);
  stat(&Trial::to_scale, "request -> scale");
  stat(&Trial::to_first_byte, "request -> first byte");
  std::vector<Trial> rest = trials;
  for (Trial& t : rest) t.to_scale = t.to_first_byte - t.to_scale;
  std::vector<double> ms;
  for (const Trial& t : rest) ms.push_back(absl::ToDoubleMilliseconds(t.to_scale));
  std::sort(ms.begin(), ms.end());
  if (!ms.empty()) {
    std::printf("  %-38s p50 %8.1f ms   min %8.1f   max %8.1f\n", "scale -> first byte",
                ms[ms.size() / 2], ms.front(), ms.back());
  }
}

absl::Time ParseTime(const std::string& rfc3339) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) return absl::InfinitePast();
  return t;
}

class KubeWakeBench : public KubeTest {};

TEST_F(KubeWakeBench, RequestAtZeroToScaleToFirstByte) {
  const int trials = Trials();
  // ---- cluster -----------------------------------------------------------------------
  ZS_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZeroscaleRelease> release,
                          ZeroscaleRelease::Start(&cluster()));
  PrintOnFailure("scaler 0", release->scaler(0).log_path());
  PrintOnFailure("balancer", release->balancer().log_path());
  const std::string host = absl::StrCat(ns(), ".bench.test");
  Model m;
  m.idle_timeout_seconds = 1;
  ZS_ASSERT_OK(Apply(ModelYaml(m, host)));
  auto request = [&] {
    return HttpRequestTo(ZeroscaleRelease::kBalancerAddress, ZeroscaleRelease::kBalancerPort, host,
                         "/", absl::Seconds(60));
  };
  HttpExchange first;
  ASSERT_TRUE(WaitFor(
      [&] {
        first = request();
        return first.status != 404;
      },
      absl::Seconds(30)));
  ASSERT_EQ(first.status, 200) << first.error;
  const std::string user = release->ServiceAccountUser("scaler");
  std::vector<Trial> cluster_trials;
  for (int i = 0; i < trials; ++i) {
    ZS_ASSERT_OK(api()
                     .WaitFor(
                         DeploymentRef(ns(), "model"),
                         [](const json& d) { return d["spec"].value("replicas", -1) == 0; },
                         absl::Seconds(60), "at zero")
                     .status());
    ZS_ASSERT_OK(WaitForReadyPods("app=model", 0).status());
    HttpExchange x = request();
    ASSERT_EQ(x.status, 200) << x.error;
    // The PATCH that took it 0 -> 1 for this request: the scaler's first after it was sent.
    ZS_ASSERT_OK_AND_ASSIGN(std::vector<json> patches,
                            cluster().WaitForAuditEvents(
                                [&](const json& e) {
                                  return e["user"].value("username", "") == user &&
                                         e.value("verb", "") == "patch" &&
                                         e["objectRef"].value("namespace", "") == ns() &&
                                         e["objectRef"].value("subresource", "") == "scale" &&
                                         ParseTime(e.value("stageTimestamp", "")) > x.sent;
                                },
                                1));
    const absl::Time stored = ParseTime(patches.front().value("stageTimestamp", ""));
    cluster_trials.push_back({stored - x.sent, x.first_byte - x.sent});
  }
  release.reset();

  // ---- local ---------------------------------------------------------------------------
  RedisServer redis;
  ZS_ASSERT_OK(redis.Start());
  const std::string dir = cluster().work_dir() + "/local-bench";
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  const uint16_t grpc = FreePort(), http = FreePort(), listen = FreePort(), admin = FreePort();
  std::ofstream(dir + "/workloads.yaml") << absl::StrCat(
      R"(workloads:
  - name: model
    command: [")",
      ZS_KUBE_TEST_APP_BIN, R"(", "--listen=127.0.0.1:{port}", "--ready-after=200ms"]
    minReplicas: 0
    maxReplicas: 1
    idleTimeoutSeconds: 1
    readinessPath: /ready
    route: {host: local.bench.test}
)");
  ChildProcess scaler({ZS_SCALER_BIN, "--backend=local", "--workloads=" + dir + "/workloads.yaml",
                       "--sidecar-bin=" ZS_SIDECAR_BIN, "--redis=" + redis.address(),
                       absl::StrCat("--grpc-listen=127.0.0.1:", grpc),
                       absl::StrCat("--http-listen=127.0.0.1:", http)},
                      dir + "/scaler.log");
  ZS_ASSERT_OK(scaler.Start());
  ZS_ASSERT_OK(WaitForTcpPort(grpc, absl::Seconds(30)));
  ChildProcess balancer({ZS_BALANCER_BIN, absl::StrCat("--scaler=127.0.0.1:", grpc),
                         "--redis=" + redis.address(), "--routes=" + dir + "/workloads.yaml",
                         "--discovery=none", absl::StrCat("--listen=127.0.0.1:", listen),
                         absl::StrCat("--admin-listen=127.0.0.1:", admin)},
                        dir + "/balancer.log");
  ZS_ASSERT_OK(balancer.Start());
  ZS_ASSERT_OK(WaitForTcpPort(listen, absl::Seconds(30)));
  PrintOnFailure("local scaler", scaler.log_path());
  std::vector<Trial> local_trials;
  size_t log_seen = 0;
  for (int i = 0; i < trials; ++i) {
    // At zero again: the scaler logged a decision to zero after the last wake.
    ASSERT_TRUE(WaitFor(
        [&] {
          const std::string log = scaler.ReadLog();
          return i == 0 || log.find("\"to\":\"ScaledToZero\"", log_seen) != std::string::npos;
        },
        absl::Seconds(60)));
    log_seen = scaler.ReadLog().size();
    HttpExchange x = HttpRequestTo("127.0.0.1", listen, "local.bench.test", "/", absl::Seconds(60));
    ASSERT_EQ(x.status, 200) << x.error;
    absl::Time decided = absl::InfinitePast();
    const std::string log = scaler.ReadLog().substr(log_seen);
    for (absl::string_view line : absl::StrSplit(log, '\n')) {
      if (!absl::StrContains(line, "\"to\":\"Waking\"")) continue;
      const json j = json::parse(line, nullptr, false);
      if (j.is_object()) decided = ParseTime(j.value("ts", ""));
      break;
    }
    ASSERT_NE(decided, absl::InfinitePast()) << "no wake decision in the scaler's log";
    log_seen = scaler.ReadLog().size();
    local_trials.push_back({decided - x.sent, x.first_byte - x.sent});
  }

  std::printf("\nwake from zero, app ready 200 ms after start, %d trials each\n", trials);
  Print("real control plane (scale = the PATCH stored, audit stageTimestamp)", cluster_trials);
  Print("local backend (scale = the wake decision logged, ms resolution)", local_trials);
}

}  // namespace
}  // namespace zeroscale::testing
