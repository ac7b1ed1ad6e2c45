// The per-process accounting rules of gpu_accounting.h, on readings built by hand.
#include "sidecar/gpu/gpu_accounting.h"

#include <vector>

#include "gtest/gtest.h"

namespace zeroscale::sidecar {
namespace {

constexpr unsigned long long kGiB = 1ULL << 30;  // NOLINT

GpuReading Gpu(unsigned int index, unsigned long long total,  // NOLINT
               std::vector<nvmlProcessInfo_t> processes,
               std::vector<nvmlProcessUtilizationSample_t> samples = {}) {
  GpuReading r;
  r.index = index;
  r.memory_total = total;
  r.processes = std::move(processes);
  r.util_samples = std::move(samples);
  return r;
}

nvmlProcessUtilizationSample_t Util(unsigned int pid, unsigned int sm) {
  return {pid, 1000, sm, 0, 0, 0};
}

TEST(GpuAccountingTest, APodOnNoGpuReportsNothingNotZero) {
  const std::vector<GpuReading> gpus = {Gpu(0, 16 * kGiB, {{100, kGiB, 0, 0}}, {Util(100, 40)})};
  const std::vector<int> pod = {7, 8};
  GpuUsage u = AccountPod(pod, gpus);
  EXPECT_EQ(u.gpus, 0);
  EXPECT_FALSE(u.usage_percent.has_value());
  EXPECT_FALSE(u.memory_usage_percent.has_value());
  EXPECT_FALSE(u.memory_bytes.has_value());
}

TEST(GpuAccountingTest, APodOnAnIdleGpuReportsZero) {
  // No utilisation sample since the last read: nobody ran a kernel.
  const std::vector<GpuReading> gpus = {Gpu(0, 16 * kGiB, {{100, 0, 0, 0}})};
  const std::vector<int> pod = {100};
  GpuUsage u = AccountPod(pod, gpus);
  EXPECT_EQ(u.gpus, 1);
  ASSERT_TRUE(u.usage_percent.has_value());
  EXPECT_EQ(*u.usage_percent, 0);
  EXPECT_EQ(*u.memory_bytes, 0);
  EXPECT_EQ(*u.memory_usage_percent, 0);
}

TEST(GpuAccountingTest, TwoPodsSharingAGpuEachCountOnlyTheirOwnProcesses) {
  const std::vector<GpuReading> gpus = {
      Gpu(0, 16 * kGiB, {{100, 2 * kGiB, 0, 0}, {101, 2 * kGiB, 0, 0}, {200, 4 * kGiB, 0, 0}},
          {Util(100, 30), Util(101, 20), Util(200, 45)})};
  const std::vector<int> a = {100, 101}, b = {200};
  GpuUsage ua = AccountPod(a, gpus), ub = AccountPod(b, gpus);
  EXPECT_DOUBLE_EQ(*ua.usage_percent, 50);
  EXPECT_DOUBLE_EQ(*ua.memory_bytes, 4.0 * kGiB);
  EXPECT_DOUBLE_EQ(*ua.memory_usage_percent, 25);
  EXPECT_DOUBLE_EQ(*ub.usage_percent, 45);
  EXPECT_DOUBLE_EQ(*ub.memory_bytes, 4.0 * kGiB);
  EXPECT_DOUBLE_EQ(*ub.memory_usage_percent, 25);
}

TEST(GpuAccountingTest, SeveralSamplesOfOneProcessCountWithTheirMean) {
  const std::vector<GpuReading> gpus = {
      Gpu(0, 8 * kGiB, {{100, kGiB, 0, 0}}, {Util(100, 20), Util(100, 60)})};
  const std::vector<int> pod = {100};
  EXPECT_DOUBLE_EQ(*AccountPod(pod, gpus).usage_percent, 40);
}

TEST(GpuAccountingTest, UtilisationIsTheMeanOverThePodsGpusAndMemoryOverTheirTotal) {
  const std::vector<GpuReading> gpus = {
      Gpu(0, 8 * kGiB, {{100, 2 * kGiB, 0, 0}}, {Util(100, 80)}),
      Gpu(1, 8 * kGiB, {{100, 2 * kGiB, 0, 0}}, {Util(100, 20)}),
      Gpu(2, 80 * kGiB, {{300, 2 * kGiB, 0, 0}}, {Util(300, 99)}),  // not the pod's
  };
  const std::vector<int> pod = {100};
  GpuUsage u = AccountPod(pod, gpus);
  EXPECT_EQ(u.gpus, 2);
  EXPECT_DOUBLE_EQ(*u.usage_percent, 50);
  EXPECT_DOUBLE_EQ(*u.memory_bytes, 4.0 * kGiB);
  EXPECT_DOUBLE_EQ(*u.memory_usage_percent, 25);
}

TEST(GpuAccountingTest, UnknownMemoryIsLeftOutAndNoneKnownIsAbsent) {
  const std::vector<GpuReading> gpus = {
      Gpu(0, 8 * kGiB, {{100, NVML_VALUE_NOT_AVAILABLE, 0, 0}}, {Util(100, 10)})};
  const std::vector<int> pod = {100};
  GpuUsage u = AccountPod(pod, gpus);
  EXPECT_DOUBLE_EQ(*u.usage_percent, 10);
  EXPECT_FALSE(u.memory_bytes.has_value());
  EXPECT_FALSE(u.memory_usage_percent.has_value());
}

TEST(GpuAccountingTest, TheGpusOwnUtilisationStandsInWithoutPerProcessSamples) {
  GpuReading gpu = Gpu(0, 8 * kGiB, {{100, kGiB, 0, 0}});
  gpu.per_process_util = false;
  gpu.device_util = 70;
  const std::vector<int> pod = {100};
  EXPECT_DOUBLE_EQ(*AccountPod(pod, {gpu}).usage_percent, 70);
  gpu.device_util.reset();  // not even that: unknown, not 0
  EXPECT_FALSE(AccountPod(pod, {gpu}).usage_percent.has_value());
}

TEST(GpuAccountingTest, SamplesInAnotherPidNamespaceAreNotReadAsIdle) {
  // The process list names 100 (the pod's); the samples name a host PID.
  const std::vector<GpuReading> gpus = {Gpu(0, 8 * kGiB, {{100, kGiB, 0, 0}}, {Util(645400, 60)})};
  const std::vector<int> pod = {100};
  GpuUsage u = AccountPod(pod, gpus);
  EXPECT_EQ(u.unattributable_gpus, 1);
  EXPECT_FALSE(u.usage_percent.has_value());
  EXPECT_DOUBLE_EQ(*u.memory_bytes, 1.0 * kGiB);
}

TEST(GpuAccountingTest, HostileValuesAreCapped) {
  const std::vector<GpuReading> gpus = {Gpu(0, 8 * kGiB, {{100, kGiB, 0, 0}, {101, kGiB, 0, 0}},
                                            {Util(100, 4000000000u), Util(101, 90)})};
  const std::vector<int> pod = {100, 101};
  EXPECT_DOUBLE_EQ(*AccountPod(pod, gpus).usage_percent, 100);
  const std::vector<GpuReading> overfull = {Gpu(0, 1, {{100, kGiB, 0, 0}})};
  EXPECT_DOUBLE_EQ(*AccountPod(pod, overfull).memory_usage_percent, 100);
}

}  // namespace
}  // namespace zeroscale::sidecar
