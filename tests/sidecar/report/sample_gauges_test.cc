#include "sidecar/report/sample_gauges.h"

#include "common/metrics/exposition.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::sidecar {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kLabel[] = "{workload=\"ml/Deployment/llm\"} ";

std::string Line(const std::string& name, const std::string& value) {
  return "\n" + name + kLabel + value + "\n";
}

Podmetric Sample() {
  Podmetric m;
  m.id = "ml/llm-0";
  m.workload = "ml/Deployment/llm";
  m.cpu_usage = 42.5;
  m.cpu_cores = 0.85;
  m.memory_usage = 12.5;
  m.memory_bytes = 268435456;
  m.disk_usage = 3;
  m.disk_bytes = 1048576;
  m.request_rate = 7.5;
  m.in_flight = 2;
  m.average_response_time = 120;  // ms
  m.p99_response_time = 850;
  return m;
}

// Before the first sample nothing (prometheus-cpp leaves families without series out): no
// pod shows 0 % CPU it never measured.
TEST(SampleGaugesTest, NothingBeforeTheFirstSample) {
  prometheus::Registry registry;
  SampleGauges gauges(&registry, "ml/Deployment/llm");
  EXPECT_THAT(metrics::Serialize(registry), Not(HasSubstr("zeroscale_sidecar_")));
}

// Each field of the latest sample, response times in seconds, labelled with the workload;
// the next sample replaces the values.
TEST(SampleGaugesTest, TheLatestSampleWithItsWorkload) {
  prometheus::Registry registry;
  SampleGauges gauges(&registry, "ml/Deployment/llm");
  gauges.Record(Sample());
  std::string text = metrics::Serialize(registry);
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_cpu_usage_percent", "42.5")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_cpu_cores", "0.85")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_memory_usage_percent", "12.5")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_memory_bytes", "268435456")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_disk_usage_percent", "3")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_disk_bytes", "1048576")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_requests_per_second", "7.5")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_in_flight_requests", "2")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_average_response_time_seconds", "0.12")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_p99_response_time_seconds", "0.85")));
  // No GPU readings: no GPU series.
  EXPECT_THAT(text, Not(HasSubstr("zeroscale_sidecar_gpu_usage_percent{")));

  Podmetric idle = Sample();
  idle.request_rate = 0;
  idle.cpu_usage = 1;
  gauges.Record(idle);
  text = metrics::Serialize(registry);
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_requests_per_second", "0")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_cpu_usage_percent", "1")));
}

// GPU gauges exist while the samples carry GPU readings, each on its own, and leave no
// stale value when the readings stop.
TEST(SampleGaugesTest, GpuGaugesOnlyWithReadings) {
  prometheus::Registry registry;
  SampleGauges gauges(&registry, "ml/Deployment/llm");
  Podmetric gpu = Sample();
  gpu.gpu_usage = 93;
  gpu.gpu_memory_usage = 61.5;
  gpu.gpu_memory_bytes = 25769803776.0;
  gauges.Record(gpu);
  std::string text = metrics::Serialize(registry);
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_gpu_usage_percent", "93")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_gpu_memory_usage_percent", "61.5")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_gpu_memory_bytes", "25769803776")));

  gpu.gpu_usage.reset();  // one reading failed
  gauges.Record(gpu);
  text = metrics::Serialize(registry);
  EXPECT_THAT(text, Not(HasSubstr("zeroscale_sidecar_gpu_usage_percent{")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_gpu_memory_usage_percent", "61.5")));

  gauges.Record(Sample());  // no GPU readings at all
  text = metrics::Serialize(registry);
  EXPECT_THAT(text, Not(HasSubstr("zeroscale_sidecar_gpu_memory_usage_percent{")));
  EXPECT_THAT(text, Not(HasSubstr("zeroscale_sidecar_gpu_memory_bytes{")));
  EXPECT_THAT(text, HasSubstr(Line("zeroscale_sidecar_cpu_usage_percent", "42.5")));
}

}  // namespace
}  // namespace zeroscale::sidecar
