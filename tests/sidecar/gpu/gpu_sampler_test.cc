// The GPU sampler against the tests' fake NVML (fake_nvml.cc), with a fake clock: a
// library that is absent, one that fails to initialise, two pods sharing a GPU, a GPU
// that disappears and comes back, oversize process lists. And the PIDs the resource
// sampler hands it.
#include "sidecar/gpu/gpu_sampler.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/cgroup/resource_sampler.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::sidecar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr unsigned long long kGiB = 1ULL << 30;  // NOLINT
constexpr absl::Duration kRetry = absl::Seconds(5);

class GpuSamplerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("FAKE_NVML_CONFIG", config_.c_str(), 1);
    Configure("");
    // The same handle the sampler gets (dlopen counts references): the fake's counters.
    fake_ = ::dlopen(ZS_FAKE_NVML, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(fake_, nullptr) << ::dlerror();
    init_calls_ = reinterpret_cast<int (*)()>(::dlsym(fake_, "fake_nvml_init_calls"));
    live_ = reinterpret_cast<int (*)()>(::dlsym(fake_, "fake_nvml_live"));
    ASSERT_NE(init_calls_, nullptr);
    ASSERT_NE(live_, nullptr);
  }
  void TearDown() override {
    ::dlclose(fake_);
    std::remove(config_.c_str());
  }

  void Configure(const std::string& text) { std::ofstream(config_, std::ios::trunc) << text; }

  std::unique_ptr<GpuSampler> NewSampler(size_t max_processes = 4096, size_t max_devices = 64) {
    GpuSamplerOptions options;
    options.library = ZS_FAKE_NVML;
    options.retry = {kRetry, absl::Minutes(1), 2.0, Jitter::kNone};
    options.max_processes = max_processes;
    options.max_devices = max_devices;
    return GpuSampler::Create(options, &clock_);
  }

  static bool Empty(const GpuUsage& u) {
    return !u.usage_percent && !u.memory_usage_percent && !u.memory_bytes;
  }

  const std::string config_ =
      absl::StrCat(::testing::TempDir(), "/fake-nvml-", ::getpid(), ".conf");
  testing::FakeClock clock_;
  void* fake_ = nullptr;
  int (*init_calls_)() = nullptr;
  int (*live_)() = nullptr;
};

TEST_F(GpuSamplerTest, WithoutTheLibraryTheSamplerIsOffAndSaysWhy) {
  GpuSamplerOptions options;
  options.library = "/nonexistent/libnvidia-ml.so.1";
  std::unique_ptr<GpuSampler> gpu = GpuSampler::Create(options, &clock_);
  EXPECT_EQ(gpu->state(), GpuSampler::State::kNoLibrary);
  EXPECT_THAT(gpu->why(), HasSubstr("/nonexistent/libnvidia-ml.so.1 not found"));
  const std::vector<int> pids = {1};
  EXPECT_TRUE(Empty(gpu->Sample(pids)));
  clock_.Advance(absl::Hours(1));  // never retried: nothing will change
  EXPECT_TRUE(Empty(gpu->Sample(pids)));
  EXPECT_EQ(gpu->state(), GpuSampler::State::kNoLibrary);
}

TEST_F(GpuSamplerTest, ALibraryWithoutNvmlIsRefusedNamingTheMissingEntryPoint) {
  GpuSamplerOptions options;
  options.library = "libc.so.6";
  std::unique_ptr<GpuSampler> gpu = GpuSampler::Create(options, &clock_);
  EXPECT_EQ(gpu->state(), GpuSampler::State::kNoLibrary);
  EXPECT_THAT(gpu->why(), HasSubstr("has no nvmlInit_v2"));
}

TEST_F(GpuSamplerTest, AFailingInitIsRetriedAfterTheBackoffThenSucceeds) {
  Configure("init_error 9\ndevice 17179869184\nprocess 0 100 1073741824\n");
  const int before = init_calls_();
  std::unique_ptr<GpuSampler> gpu = NewSampler();
  EXPECT_EQ(gpu->state(), GpuSampler::State::kRetrying);
  EXPECT_THAT(gpu->why(), HasSubstr("nvmlInit failed: Driver Not Loaded (9)"));
  EXPECT_EQ(init_calls_() - before, 1);
  const std::vector<int> pids = {100};
  EXPECT_TRUE(Empty(gpu->Sample(pids)));
  clock_.Advance(kRetry - absl::Milliseconds(1));
  EXPECT_TRUE(Empty(gpu->Sample(pids)));
  EXPECT_EQ(init_calls_() - before, 1) << "retried before the backoff";
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(Empty(gpu->Sample(pids)));  // still failing: the next wait doubles
  EXPECT_EQ(init_calls_() - before, 2);
  Configure("device 17179869184\nprocess 0 100 1073741824\n");
  clock_.Advance(2 * kRetry - absl::Milliseconds(1));
  EXPECT_TRUE(Empty(gpu->Sample(pids)));
  EXPECT_EQ(init_calls_() - before, 2);
  clock_.Advance(absl::Milliseconds(1));
  GpuUsage u = gpu->Sample(pids);
  EXPECT_EQ(gpu->state(), GpuSampler::State::kReady);
  ASSERT_TRUE(u.memory_bytes.has_value());
  EXPECT_DOUBLE_EQ(*u.memory_bytes, 1.0 * kGiB);
  EXPECT_DOUBLE_EQ(*u.memory_usage_percent, 100.0 / 16);
  EXPECT_EQ(*u.usage_percent, 0);  // on the GPU, no kernel ran: 0, not absent
  gpu.reset();
  EXPECT_EQ(live_(), 0) << "nvmlShutdown owed";
}

TEST_F(GpuSamplerTest, TwoPodsSharingAGpuEachMeasureOnlyTheirOwnProcesses) {
  Configure(
      "device 17179869184\n"
      "process 0 100 2147483648\n"
      "process 0 101 2147483648\n"
      "process 0 200 4294967296\n"
      "sample 0 100 30 1000\n"
      "sample 0 101 20 1000\n"
      "sample 0 200 45 1000\n");
  std::unique_ptr<GpuSampler> a = NewSampler(), b = NewSampler(), idle = NewSampler();
  ASSERT_EQ(a->state(), GpuSampler::State::kReady);
  const std::vector<int> pids_a = {101, 100}, pids_b = {200}, pids_idle = {300};
  GpuUsage ua = a->Sample(pids_a), ub = b->Sample(pids_b), ui = idle->Sample(pids_idle);
  EXPECT_DOUBLE_EQ(*ua.usage_percent, 50);
  EXPECT_DOUBLE_EQ(*ua.memory_bytes, 4.0 * kGiB);
  EXPECT_DOUBLE_EQ(*ua.memory_usage_percent, 25);
  EXPECT_DOUBLE_EQ(*ub.usage_percent, 45);
  EXPECT_DOUBLE_EQ(*ub.memory_bytes, 4.0 * kGiB);
  EXPECT_TRUE(Empty(ui)) << "a pod on no GPU reports no GPU data";
  // The samples were read; none newer: both pods idle now, still on the GPU.
  ua = a->Sample(pids_a);
  EXPECT_EQ(*ua.usage_percent, 0);
  EXPECT_DOUBLE_EQ(*ua.memory_bytes, 4.0 * kGiB);
}

TEST_F(GpuSamplerTest, AGpuThatDisappearsDropsGpuDataAndComesBackAfterTheBackoff) {
  const std::string healthy = "device 8589934592\nprocess 0 100 1073741824\nsample 0 100 70 now\n";
  Configure(healthy);
  std::unique_ptr<GpuSampler> gpu = NewSampler();
  const std::vector<int> pids = {100};
  GpuUsage u = gpu->Sample(pids);
  ASSERT_TRUE(u.usage_percent.has_value());
  EXPECT_DOUBLE_EQ(*u.usage_percent, 70);
  const int inits = init_calls_();

  Configure(healthy + "lost 1\n");
  EXPECT_TRUE(Empty(gpu->Sample(pids)));
  EXPECT_EQ(gpu->state(), GpuSampler::State::kRetrying);
  EXPECT_THAT(gpu->why(), HasSubstr("GPU is lost (15)"));
  EXPECT_EQ(live_(), 0) << "NVML shut down after the loss";
  // Still lost at the first retry: init succeeds but the handle does not.
  clock_.Advance(kRetry);
  EXPECT_TRUE(Empty(gpu->Sample(pids)));
  EXPECT_EQ(init_calls_(), inits + 1);
  EXPECT_EQ(gpu->state(), GpuSampler::State::kRetrying);
  EXPECT_EQ(live_(), 0);

  Configure(healthy);
  clock_.Advance(kRetry);  // the second wait is twice as long
  EXPECT_TRUE(Empty(gpu->Sample(pids)));
  EXPECT_EQ(init_calls_(), inits + 1);
  clock_.Advance(kRetry);
  u = gpu->Sample(pids);
  EXPECT_EQ(gpu->state(), GpuSampler::State::kReady);
  ASSERT_TRUE(u.usage_percent.has_value());
  EXPECT_DOUBLE_EQ(*u.usage_percent, 70);
  EXPECT_DOUBLE_EQ(*u.memory_bytes, 1.0 * kGiB);
  EXPECT_EQ(live_(), 1);
}

TEST_F(GpuSamplerTest, ProcessListsGrowToTheCapAndBeyondItTheSampleHasNoGpuData) {
  // 300 processes: more than the first buffer, within the cap.
  Configure("device 8589934592\nprocesses 0 300 1000 1048576\n");
  std::unique_ptr<GpuSampler> gpu = NewSampler(/*max_processes=*/500);
  const std::vector<int> pids = {1000, 1299};
  GpuUsage u = gpu->Sample(pids);
  ASSERT_TRUE(u.memory_bytes.has_value());
  EXPECT_DOUBLE_EQ(*u.memory_bytes, 2.0 * 1048576);
  // 600: beyond it. No partial list is read; the sampler stays up.
  Configure("device 8589934592\nprocesses 0 600 1000 1048576\n");
  EXPECT_TRUE(Empty(gpu->Sample(pids)));
  EXPECT_THAT(gpu->why(), HasSubstr("more than 500 compute processes"));
  EXPECT_EQ(gpu->state(), GpuSampler::State::kReady);
  Configure("device 8589934592\nprocesses 0 10 1000 1048576\n");
  EXPECT_TRUE(gpu->Sample(pids).memory_bytes.has_value());
}

TEST_F(GpuSamplerTest, TheDeviceCountIsCapped) {
  Configure("device 1\ndevice 1\ndevice 1\nprocess 2 100 1\n");
  std::unique_ptr<GpuSampler> gpu = NewSampler(4096, /*max_devices=*/2);
  EXPECT_EQ(gpu->devices(), 2);
  const std::vector<int> pids = {100};
  EXPECT_TRUE(Empty(gpu->Sample(pids))) << "GPU 2 is not looked at";
}

TEST_F(GpuSamplerTest, WithoutPerProcessUtilisationTheGpusOwnStandsIn) {
  Configure("device 8589934592 util 35 no_process_util\nprocess 0 100 1073741824\n");
  std::unique_ptr<GpuSampler> gpu = NewSampler();
  const std::vector<int> pids = {100};
  GpuUsage u = gpu->Sample(pids);
  ASSERT_TRUE(u.usage_percent.has_value());
  EXPECT_DOUBLE_EQ(*u.usage_percent, 35);
}

// The PIDs the sidecar hands the GPU sampler when it measures a cgroup: the cgroup's and
// those of the cgroups below it (a pod-level directory), once each.
TEST(ResourceSamplerPidsTest, ACgroupListsItsProcessesAndThoseBelowIt) {
  const std::string root = absl::StrCat(::testing::TempDir(), "/cgroup-pids-", ::getpid());
  ASSERT_EQ(
      std::system(
          absl::StrCat("rm -rf ", root, " && mkdir -p ", root, "/c1/sub ", root, "/c2").c_str()),
      0);
  std::ofstream(root + "/cgroup.controllers") << "cpu memory io\n";
  std::ofstream(root + "/cgroup.procs") << "";
  std::ofstream(root + "/c1/cgroup.procs") << "12\n7\n";
  std::ofstream(root + "/c1/sub/cgroup.procs") << "40\n";
  std::ofstream(root + "/c2/cgroup.procs") << "7\n9\ngarbage\n";
  SamplerOptions options;
  options.cgroup_root = root;
  testing::FakeClock clock;
  absl::StatusOr<std::unique_ptr<ResourceSampler>> sampler =
      ResourceSampler::Create(options, &clock);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  std::vector<int> pids = {99};
  (*sampler)->ListPids(&pids);
  EXPECT_THAT(pids, ElementsAre(7, 9, 12, 40));
  (void)std::system(absl::StrCat("rm -rf ", root).c_str());
}

TEST(ResourceSamplerPidsTest, OneMeasuredProcessIsItsOwnList) {
  SamplerOptions options;
  options.cgroup_root = "";
  options.fallback_pid = static_cast<int>(::getpid());
  testing::FakeClock clock;
  absl::StatusOr<std::unique_ptr<ResourceSampler>> sampler =
      ResourceSampler::Create(options, &clock);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  std::vector<int> pids;
  (*sampler)->ListPids(&pids);
  EXPECT_THAT(pids, ElementsAre(static_cast<int>(::getpid())));
}

}  // namespace
}  // namespace zeroscale::sidecar
