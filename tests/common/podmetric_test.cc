#include "common/model/podmetric.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace zeroscale {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const absl::Time kNow = absl::FromUnixMillis(1'800'000'000'123);

Podmetric Full() {
  Podmetric m;
  m.id = "ml/llama-7d9f-abc";
  m.cpu_usage = 42.5;
  m.memory_usage = 61.0;
  m.disk_usage = 7.25;
  m.average_response_time = 12.5;
  m.received_at = kNow;
  m.workload = "ml/Deployment/llama";
  m.request_count = 17;
  m.request_rate = 17.0;
  m.in_flight = 1.5;
  m.p99_response_time = 80.25;
  m.cpu_cores = 0.85;
  m.memory_bytes = 1.5e9;
  m.disk_bytes = 2e10;
  m.disk_read_bytes_per_second = 1024;
  m.disk_write_bytes_per_second = 2048;
  m.sampled_at = kNow - absl::Milliseconds(3);
  m.ready = true;
  m.seq = 1'800'000'000'000'001;
  m.dropped = 2;
  m.address = "10.1.2.3:8012";
  m.gpu_usage = 87.5;
  m.gpu_memory_usage = 0;  // present and zero: an idle GPU, not "no GPU"
  m.gpu_memory_bytes = 1.25e10;
  m.app_metrics = {{"vllm:num_requests_waiting", 3}, {"vllm:gpu_cache_usage_perc", 0.5}};
  return m;
}

TEST(PodmetricJson, RoundTripsEveryField) {
  const Podmetric m = Full();
  absl::StatusOr<Podmetric> back = PodmetricFromJson(PodmetricToJson(m));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, m);
}

TEST(PodmetricJson, UsesTheSpecFieldNamesInAFixedOrder) {
  const std::string json = PodmetricToJson(Full());
  EXPECT_THAT(json, StartsWith("{\"id\":\"ml/llama-7d9f-abc\",\"cpuUsage\":42.5,"
                               "\"memoryUsage\":61.0,\"diskUsage\":7.25,"
                               "\"averageResponseTime\":12.5,"
                               "\"receivedAt\":\"2027-01-15T08:00:00.123Z\","));
  const nlohmann::json j = nlohmann::json::parse(json);
  for (const char* f : {"workload", "requestCount", "requestRate", "inFlight", "p99ResponseTime",
                        "cpuCores", "memoryBytes", "diskBytes", "sampledAt", "ready", "seq"}) {
    EXPECT_TRUE(j.contains(f)) << f;
  }
}

TEST(PodmetricJson, SameSampleSerialisesIdentically) {
  EXPECT_EQ(PodmetricToJson(Full()), PodmetricToJson(Full()));
}

TEST(PodmetricJson, SeedOnlyObjectParses) {
  absl::StatusOr<Podmetric> m = PodmetricFromJson(
      R"({"id":"a/b","cpuUsage":1,"memoryUsage":2,"diskUsage":3,"averageResponseTime":4,
          "receivedAt":"2026-11-25T03:38:33Z","unknownField":true})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->id, "a/b");
  EXPECT_EQ(m->average_response_time, 4);
  EXPECT_EQ(m->received_at, absl::FromUnixSeconds(1795577913));
}

TEST(PodmetricJson, WrongTypeNamesTheField) {
  absl::StatusOr<Podmetric> m = PodmetricFromJson(R"({"id":"a/b","cpuUsage":"high"})");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), StartsWith("cpuUsage:"));
  EXPECT_EQ(FieldOfError(m.status()), "cpuUsage");

  m = PodmetricFromJson(R"({"id":"a/b","requestCount":-3})");
  EXPECT_EQ(FieldOfError(m.status()), "requestCount");
  m = PodmetricFromJson(R"({"id":"a/b","sampledAt":"yesterday"})");
  EXPECT_EQ(FieldOfError(m.status()), "sampledAt");
}

TEST(PodmetricJson, MalformedJsonIsAClearError) {
  absl::StatusOr<Podmetric> m = PodmetricFromJson("{\"id\": ");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("not valid JSON"));
  m = PodmetricFromJson("[1,2]");
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("object"));
}

TEST(PodmetricJson, BodyMayBeAnObjectOrAnArray) {
  auto one = PodmetricsFromJsonBody(R"({"id":"a/b"})");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  auto many = PodmetricsFromJsonBody(R"([{"id":"a/b"},{"id":"a/c"}])");
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->size(), 2u);
  auto bad = PodmetricsFromJsonBody(R"([{"id":"a/b"},{"id":"a/c","diskUsage":[]}])");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), StartsWith("[1].diskUsage:"));
}

TEST(PodmetricValidation, AcceptsAFullSample) { EXPECT_TRUE(ValidatePodmetric(Full(), kNow).ok()); }

TEST(PodmetricValidation, CpuAboveHundredIsFineWithoutALimit) {
  Podmetric m = Full();
  m.cpu_usage = 350;
  EXPECT_TRUE(ValidatePodmetric(m, kNow).ok());
}

struct BadCase {
  const char* field;
  void (*mutate)(Podmetric&);
};

class PodmetricBadValue : public ::testing::TestWithParam<BadCase> {};

TEST_P(PodmetricBadValue, IsRejectedNamingTheField) {
  Podmetric m = Full();
  GetParam().mutate(m);
  absl::Status s = ValidatePodmetric(m, kNow);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOfError(s), GetParam().field) << s;
}

INSTANTIATE_TEST_SUITE_P(
    All, PodmetricBadValue,
    ::testing::Values(
        BadCase{"id", [](Podmetric& m) { m.id = ""; }},
        BadCase{"id", [](Podmetric& m) { m.id = std::string(kMaxPodIdLength + 1, 'x'); }},
        BadCase{"id", [](Podmetric& m) { m.id = "ml/has space"; }},
        BadCase{"workload", [](Podmetric& m) { m.workload = "llama"; }},
        BadCase{"cpuUsage", [](Podmetric& m) { m.cpu_usage = -5; }},
        BadCase{"cpuUsage", [](Podmetric& m) { m.cpu_usage = std::nan(""); }},
        BadCase{"memoryUsage",
                [](Podmetric& m) { m.memory_usage = std::numeric_limits<double>::infinity(); }},
        BadCase{"diskUsage", [](Podmetric& m) { m.disk_usage = -0.1; }},
        BadCase{"averageResponseTime", [](Podmetric& m) { m.average_response_time = -1; }},
        BadCase{"requestRate", [](Podmetric& m) { m.request_rate = std::nan(""); }},
        BadCase{"inFlight", [](Podmetric& m) { m.in_flight = -2; }},
        BadCase{
            "p99ResponseTime",
            [](Podmetric& m) { m.p99_response_time = -std::numeric_limits<double>::infinity(); }},
        BadCase{"sampledAt", [](Podmetric& m) { m.sampled_at = kNow + absl::Hours(1); }},
        BadCase{"address", [](Podmetric& m) { m.address = "10.1.2.3"; }},
        BadCase{"address", [](Podmetric& m) { m.address = "10.1.2.3:0"; }},
        BadCase{"address", [](Podmetric& m) { m.address = ":8012"; }},
        BadCase{"address", [](Podmetric& m) { m.address = "a b:80"; }},
        BadCase{"gpuUsage", [](Podmetric& m) { m.gpu_usage = 100.5; }},
        BadCase{"gpuMemoryUsage", [](Podmetric& m) { m.gpu_memory_usage = -1; }},
        BadCase{"gpuMemoryBytes", [](Podmetric& m) { m.gpu_memory_bytes = std::nan(""); }},
        BadCase{"appMetrics", [](Podmetric& m) { m.app_metrics["bad name{x=\"1\"}"] = 1; }},
        BadCase{"appMetrics", [](Podmetric& m) { m.app_metrics["9lives"] = 1; }},
        BadCase{"appMetrics",
                [](Podmetric& m) {
                  m.app_metrics["q"] = std::numeric_limits<double>::infinity();
                }},
        BadCase{"appMetrics", [](Podmetric& m) {
                  for (size_t i = 0; i <= kMaxAppMetrics; ++i) {
                    m.app_metrics["series_" + std::to_string(i)] = 1;
                  }
                }}));

TEST(PodmetricJson, GpuAndAppMetricsAreAbsentUnlessSet) {
  Podmetric m = Full();
  m.gpu_usage.reset();
  m.gpu_memory_usage.reset();
  m.gpu_memory_bytes.reset();
  m.app_metrics.clear();
  const nlohmann::json j = nlohmann::json::parse(PodmetricToJson(m));
  for (const char* f : {"gpuUsage", "gpuMemoryUsage", "gpuMemoryBytes", "appMetrics"}) {
    EXPECT_FALSE(j.contains(f)) << f;
  }
  const nlohmann::json full = nlohmann::json::parse(PodmetricToJson(Full()));
  EXPECT_EQ(full["gpuMemoryUsage"], 0.0);
  EXPECT_EQ(full["appMetrics"]["vllm:num_requests_waiting"], 3.0);
  // Negative gauges are legal in appMetrics.
  m.app_metrics["temperature_delta"] = -2;
  EXPECT_TRUE(ValidatePodmetric(m, kNow).ok());
}

TEST(PodmetricJson, AppMetricsOfTheWrongShapeNameTheField) {
  auto bad = PodmetricFromJson(R"({"id":"a/b","appMetrics":{"x":"1"}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), StartsWith("appMetrics:"));
  bad = PodmetricFromJson(R"({"id":"a/b","appMetrics":[1]})");
  EXPECT_THAT(std::string(bad.status().message()), StartsWith("appMetrics:"));
  bad = PodmetricFromJson(R"({"id":"a/b","gpuUsage":"high"})");
  EXPECT_THAT(std::string(bad.status().message()), StartsWith("gpuUsage:"));
  // A huge map is read only up to one past the limit, then refused by validation.
  std::string big = R"({"id":"a/b","appMetrics":{)";
  for (int i = 0; i < 10000; ++i) big += (i ? "," : "") + ("\"s" + std::to_string(i) + "\":1");
  big += "}}";
  auto parsed = PodmetricFromJson(big);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->app_metrics.size(), kMaxAppMetrics + 1);
  EXPECT_EQ(FieldOfError(ValidatePodmetric(*parsed, kNow)), "appMetrics");
}

TEST(PodmetricValidation, SmallClockSkewIsTolerated) {
  Podmetric m = Full();
  m.sampled_at = kNow + absl::Seconds(30);
  EXPECT_TRUE(ValidatePodmetric(m, kNow).ok());
}

}  // namespace
}  // namespace zeroscale
