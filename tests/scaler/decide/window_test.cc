#include "scaler/decide/window.h"

#include "gtest/gtest.h"
#include "tests/scaler/decide/test_util.h"

namespace zeroscale::decide {
namespace {

using testing::Sample;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);
constexpr absl::Duration kWindow = absl::Seconds(60);

class WindowTest : public ::testing::Test {
 protected:
  SampleWindow window_{absl::Seconds(5)};
  Podmetric At(const std::string& pod, absl::Duration ago, bool ready = true) {
    return Sample(pod, kNow - ago, ready);
  }
};

TEST_F(WindowTest, CpuIsTheMeanOfEachPodsMean) {
  Podmetric m = At("a", absl::Seconds(2));
  m.cpu_usage = 10;
  window_.Add(m);
  m = At("a", absl::Seconds(1));
  m.cpu_usage = 20;
  window_.Add(m);
  m = At("a", absl::Seconds(0));
  m.cpu_usage = 30;
  window_.Add(m);
  m = At("b", absl::Seconds(0));
  m.cpu_usage = 60;
  m.memory_usage = 40;
  m.disk_usage = 7;
  window_.Add(m);
  WindowStats st = window_.Compute(kWindow, kNow);
  // Pod means 20 and 60: 40, not the sample mean 30.
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kCpuUsage), 40);
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kMemoryUsage), 20);
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kDiskUsage), 3.5);
  EXPECT_EQ(st.pods_ready, 2);
  EXPECT_EQ(st.samples, 4u);
}

TEST_F(WindowTest, OnlyReadyPodsAndTheirReadySamplesCount) {
  Podmetric loading = At("a", absl::Seconds(3), /*ready=*/false);
  loading.cpu_usage = 100;  // a model loading: must not count
  window_.Add(loading);
  Podmetric ready = At("a", absl::Seconds(1));
  ready.cpu_usage = 20;
  window_.Add(ready);
  Podmetric not_ready = At("b", absl::Seconds(0), /*ready=*/false);
  not_ready.cpu_usage = 90;
  window_.Add(not_ready);
  WindowStats st = window_.Compute(kWindow, kNow);
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kCpuUsage), 20);
  EXPECT_EQ(st.pods_reporting, 2);
  EXPECT_EQ(st.pods_ready, 1);
}

TEST_F(WindowTest, ResponseTimeIsRequestWeightedAndIgnoresIdleSamples) {
  Podmetric a = At("a", absl::Seconds(2));
  a.average_response_time = 100;
  a.request_count = 1;
  window_.Add(a);
  Podmetric idle = At("a", absl::Seconds(1));  // no requests: latency 0 must not count
  window_.Add(idle);
  Podmetric b = At("b", absl::Seconds(1));
  b.average_response_time = 10;
  b.request_count = 9;
  b.p99_response_time = 40;
  window_.Add(b);
  a = At("a", absl::Seconds(0));
  a.average_response_time = 50;
  a.request_count = 2;
  a.p99_response_time = 120;
  window_.Add(a);
  WindowStats st = window_.Compute(kWindow, kNow);
  // (100*1 + 10*9 + 50*2) / 12.
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kAverageResponseTime), 290.0 / 12);
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kP99ResponseTime), 120);
}

TEST_F(WindowTest, NoRequestsMeansNoLatencyNotZero) {
  window_.Add(At("a", absl::Seconds(0)));
  WindowStats st = window_.Compute(kWindow, kNow);
  EXPECT_FALSE(st.Get(MetricType::kAverageResponseTime).has_value());
  EXPECT_FALSE(st.Get(MetricType::kP99ResponseTime).has_value());
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kRequestRate), 0);
}

TEST_F(WindowTest, SeedSampleWithoutCountWeighsOne) {
  Podmetric m = At("a", absl::Seconds(0));
  m.average_response_time = 30;
  window_.Add(m);
  EXPECT_DOUBLE_EQ(*window_.Compute(kWindow, kNow).Get(MetricType::kAverageResponseTime), 30);
}

TEST_F(WindowTest, RateAndInFlightAreWorkloadTotals) {
  for (int i = 0; i < 2; ++i) {
    Podmetric a = At("a", absl::Seconds(i));
    a.request_rate = i == 0 ? 10 : 20;  // mean 15
    a.in_flight = 2;
    window_.Add(a);
  }
  Podmetric b = At("b", absl::Seconds(0));
  b.request_rate = 5;
  b.in_flight = 1.5;
  window_.Add(b);
  WindowStats st = window_.Compute(kWindow, kNow);
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kRequestRate), 20);
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kInFlightRequests), 3.5);
  EXPECT_DOUBLE_EQ(window_.InFlightNow(kNow), 3.5);
}

TEST_F(WindowTest, WindowEdges) {
  Podmetric at_start = At("a", kWindow);  // exactly now - window: inside
  at_start.cpu_usage = 10;
  window_.Add(at_start);
  Podmetric before = At("a", kWindow + absl::Milliseconds(1));  // just outside
  before.cpu_usage = 1000;
  window_.Add(before);
  Podmetric latest = At("a", absl::ZeroDuration());
  latest.cpu_usage = 30;
  window_.Add(latest);
  Podmetric future = At("a", -absl::Seconds(1));  // after now: not yet
  future.cpu_usage = 5000;
  window_.Add(future);
  WindowStats st = window_.Compute(kWindow, kNow);
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kCpuUsage), 20);
  EXPECT_EQ(st.samples, 2u);
}

TEST_F(WindowTest, StalePodsDoNotCountAndNoDataIsNotZero) {
  Podmetric old = At("a", absl::Seconds(6));
  old.cpu_usage = 50;
  window_.Add(old);
  WindowStats st = window_.Compute(kWindow, kNow);
  EXPECT_EQ(st.pods_reporting, 0);
  EXPECT_FALSE(st.Get(MetricType::kCpuUsage).has_value());
  EXPECT_FALSE(st.Get(MetricType::kRequestRate).has_value());
  EXPECT_EQ(window_.ReportingPods(kNow), 0);
  EXPECT_FALSE(window_.AnyFreshReady(kNow));
}

TEST_F(WindowTest, DuplicatesAreIgnoredAndOldSamplesPruned) {
  Podmetric m = At("a", absl::Seconds(1));
  m.seq = 7;
  m.cpu_usage = 10;
  window_.Add(m);
  m.cpu_usage = 90;  // same pod, time and seq: the same sample replayed
  window_.Add(m);
  EXPECT_EQ(window_.Compute(kWindow, kNow).samples, 1u);
  window_.set_retention(kWindow);
  window_.Prune(kNow + absl::Seconds(70));
  EXPECT_EQ(window_.pod_count(), 0u);
}

TEST_F(WindowTest, AddReportsAPodTurningReady) {
  EXPECT_FALSE(window_.Add(At("a", absl::Seconds(2), false)));
  EXPECT_TRUE(window_.Add(At("a", absl::Seconds(1), true)));
  EXPECT_FALSE(window_.Add(At("a", absl::Seconds(0), true)));
}

TEST_F(WindowTest, GpuIsTheMeanOverPodsThatReportOne) {
  Podmetric m = At("a", absl::Seconds(1));
  m.gpu_usage = 80;
  m.gpu_memory_usage = 50;
  window_.Add(m);
  m = At("a", absl::Seconds(0));  // a sample without GPU data does not pull the mean down
  window_.Add(m);
  m = At("b", absl::Seconds(0));
  m.gpu_usage = 40;
  window_.Add(m);
  window_.Add(At("c", absl::Seconds(0)));  // no GPU at all
  WindowStats st = window_.Compute(kWindow, kNow);
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kGpuUsage), 60);
  EXPECT_DOUBLE_EQ(*st.Get(MetricType::kGpuMemoryUsage), 50);
}

TEST_F(WindowTest, NoGpuDataIsNoValueNotZero) {
  window_.Add(At("a", absl::Seconds(0)));
  WindowStats st = window_.Compute(kWindow, kNow);
  EXPECT_FALSE(st.Get(MetricType::kGpuUsage).has_value());
  EXPECT_FALSE(st.Get(MetricType::kGpuMemoryUsage).has_value());
}

Threshold Custom(const std::string& name, Aggregation aggregation) {
  Threshold t;
  t.metric_type = MetricType::kCustom;
  t.metric_name = name;
  t.aggregation = aggregation;
  return t;
}

TEST_F(WindowTest, CustomSeriesAreMeanOrSumAcrossPods) {
  window_.set_custom_series({"vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc"});
  Podmetric m = At("a", absl::Seconds(1));
  m.app_metrics = {{"vllm:num_requests_waiting", 2}, {"vllm:gpu_cache_usage_perc", 0.2},
                   {"not_named_by_any_rule", 99}};
  window_.Add(m);
  m = At("a", absl::Seconds(0));
  m.app_metrics = {{"vllm:num_requests_waiting", 4}};  // the cache series missed a scrape
  window_.Add(m);
  m = At("b", absl::Seconds(0));
  m.app_metrics = {{"vllm:num_requests_waiting", 6}, {"vllm:gpu_cache_usage_perc", 0.6}};
  window_.Add(m);
  WindowStats st = window_.Compute(kWindow, kNow);
  // Pod means 3 and 6.
  EXPECT_DOUBLE_EQ(*st.Get(Custom("vllm:num_requests_waiting", Aggregation::kMean)), 4.5);
  EXPECT_DOUBLE_EQ(*st.Get(Custom("vllm:num_requests_waiting", Aggregation::kSum)), 9);
  EXPECT_DOUBLE_EQ(*st.Get(Custom("vllm:gpu_cache_usage_perc", Aggregation::kMean)), 0.4);
  EXPECT_FALSE(st.Get(Custom("not_named_by_any_rule", Aggregation::kMean)).has_value());
}

TEST_F(WindowTest, AMissingSeriesHasNoValueAndRenamingKeepsHeldValues) {
  window_.set_custom_series({"a_series"});
  Podmetric m = At("a", absl::Seconds(1));
  m.app_metrics = {{"a_series", 1}, {"b_series", 5}};
  window_.Add(m);
  EXPECT_FALSE(window_.Compute(kWindow, kNow).Get(Custom("b_series", Aggregation::kSum)));
  // A rule change adding b_series: samples held so far did not keep it (no data, not 0);
  // a_series keeps its value.
  window_.set_custom_series({"b_series", "a_series"});
  WindowStats st = window_.Compute(kWindow, kNow);
  EXPECT_FALSE(st.Get(Custom("b_series", Aggregation::kSum)).has_value());
  EXPECT_DOUBLE_EQ(*st.Get(Custom("a_series", Aggregation::kMean)), 1);
  m = At("a", absl::Seconds(0));
  m.app_metrics = {{"b_series", 5}};
  window_.Add(m);
  EXPECT_DOUBLE_EQ(*window_.Compute(kWindow, kNow).Get(Custom("b_series", Aggregation::kSum)), 5);
}

}  // namespace
}  // namespace zeroscale::decide
