// Model-server metrics end to end: the scaler's local backend runs a fake model server that
// serves real vLLM exposition text behind the real sidecar (metrics: {preset: vllm}), the
// sidecar forwards the preset's series, Redis holds them as the Podmetric's appMetrics, and
// a CUSTOM rule on vllm:num_requests_waiting scales the workload up.
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/auth_files.h"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"

namespace zeroscale {
namespace {

using testing::ChildProcess;
using testing::FreePort;
using ::testing::HasSubstr;
using testing::Shell;
using testing::WaitFor;
using json = nlohmann::json;

constexpr char kWorkload[] = "local/Deployment/llm";

class AppMetricsE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    dir_ = absl::StrCat(::testing::TempDir(), "/zs-app-metrics-", ::getpid());
    Shell("mkdir -p " + dir_ + "/site && cp " ZS_PROM_TESTDATA "/vllm.txt " + dir_ +
          "/site/metrics");
    // The model server: a static file server whose /metrics is a real vLLM exposition
    // (3 requests waiting, 7 running).
    const std::string file = dir_ + "/workloads.yaml";
    std::ofstream(file) << "workloads:\n"
                           "  - name: llm\n"
                           "    command: [python3, -m, http.server, '{port}', --bind, 127.0.0.1,\n"
                           "              --directory, '" +
                               dir_ +
                               "/site']\n"
                               "    port: 0\n"
                               "    minReplicas: 1\n"
                               "    maxReplicas: 2\n"
                               "    metrics: {preset: vllm}\n"
                               "    rules:\n"
                               "      - id: queue\n"
                               "        action: INCREASE_INSTANCES\n"
                               "        thresholds: [{metricType: CUSTOM, metricName: "
                               "'vllm:num_requests_waiting', aggregation: SUM, operator: "
                               "GREATER_THAN, value: 2}]\n"
                               "        windowSeconds: 2\n";
    http_ = FreePort();
    scaler_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        ZS_SCALER_BIN, absl::StrCat("--redis=", redis_.address()),
        absl::StrCat("--http-listen=127.0.0.1:", http_),
        absl::StrCat("--grpc-listen=127.0.0.1:", FreePort()),
        absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()), "--backend=local",
        "--workloads=" + file, "--sidecar-bin=" ZS_SIDECAR_BIN, "--replica-log-dir=" + dir_,
        "--auth-tokens=" + testing::WriteTestTokens(dir_)});
    ASSERT_TRUE(scaler_->Start().ok());
    ASSERT_TRUE(
        WaitFor([&] { return testing::HttpGetStatus(http_, "/readyz") == 200; }, absl::Seconds(20)))
        << scaler_->ReadLog();
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "--- scaler log:\n" << scaler_->ReadLog();
    scaler_->Stop();
    Shell("rm -rf " + dir_);
  }

  std::string Get(const std::string& target) {
    return Shell(absl::StrCat("curl -s -H 'Authorization: Bearer ", testing::kViewerToken,
                              "' 'http://127.0.0.1:", http_, target, "'"));
  }

  int Replicas() {
    json all = json::parse(Get("/workloads"), nullptr, false);
    if (!all.is_array()) return -1;
    for (auto& w : all) {
      if (w["workload"] == kWorkload && w.contains("replicas")) return w["replicas"].get<int>();
    }
    return -1;
  }

  // The newest Podmetric stored for any of the workload's pods that carries appMetrics.
  json StoredAppMetrics() {
    for (absl::string_view key :
         absl::StrSplit(redis_.Cli("--scan --pattern podmetric:local/*"), '\n')) {
      key = absl::StripAsciiWhitespace(key);
      if (key.empty()) continue;
      json m = json::parse(redis_.Cli(absl::StrCat("zrange ", key, " -1 -1")), nullptr, false);
      if (m.is_object() && m.contains("appMetrics")) return m;
    }
    return json();
  }

  testing::RedisServer redis_;
  std::string dir_;
  uint16_t http_ = 0;
  std::unique_ptr<ChildProcess> scaler_;
};

TEST_F(AppMetricsE2e, VllmQueueReachesRedisAndACustomRuleScalesUp) {
  json sample;
  ASSERT_TRUE(WaitFor(
      [&] {
        sample = StoredAppMetrics();
        return sample.is_object();
      },
      absl::Seconds(30)));
  EXPECT_EQ(sample["appMetrics"]["vllm:num_requests_waiting"], 3) << sample.dump();
  EXPECT_EQ(sample["appMetrics"]["vllm:num_requests_running"], 7) << sample.dump();
  // Three requests waiting (summed over the one ready pod) > 2: one more replica.
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 2; }, absl::Seconds(30))) << Get("/workloads");
  EXPECT_THAT(Get(absl::StrCat("/decisions?workload=", kWorkload, "&limit=20")),
              HasSubstr("rule 'queue' holds"));
}

}  // namespace
}  // namespace zeroscale
