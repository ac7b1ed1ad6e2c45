#include "sidecar/cgroup/resource_sampler.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/cgroup/detect.h"
#include "tests/testing/fake_clock.h"

// Counts heap allocations so a test can check that steady-state sampling makes none.
std::atomic<long> g_allocations{0};

// GCC cannot tell that this malloc/free pair is the replaced new/delete pair.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace zeroscale::sidecar {
namespace {

namespace fs = std::filesystem;
using ::testing::DoubleNear;
using ::testing::HasSubstr;

constexpr double kHostMemory = 16000000.0 * 1024;  // MemTotal of the fixtures

// A private copy of one fixture tree, so tests can rewrite counters between samples.
class FixtureTree {
 public:
  explicit FixtureTree(const std::string& name) {
    std::string tmpl = ::testing::TempDir() + "/cgroup_test_XXXXXX";
    char* dir = ::mkdtemp(tmpl.data());
    EXPECT_NE(dir, nullptr);
    root_ = dir;
    fs::copy(fs::path(ZS_CGROUP_TESTDATA) / name, root_, fs::copy_options::recursive);
  }
  ~FixtureTree() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::string cgroup() const { return root_ + "/cgroup"; }
  std::string proc() const { return root_ + "/proc"; }
  std::string path(const std::string& rel) const { return root_ + "/" + rel; }

  void Write(const std::string& rel, const std::string& content) const {
    std::ofstream out(path(rel), std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good()) << rel;
  }
  void Remove(const std::string& rel) const { ASSERT_TRUE(fs::remove(path(rel))) << rel; }

  SamplerOptions Options() const {
    SamplerOptions options;
    options.cgroup_root = cgroup();
    options.proc_root = proc();
    options.disk_paths = {root_};
    return options;
  }

 private:
  std::string root_;
};

std::unique_ptr<ResourceSampler> MustCreate(const SamplerOptions& options, const Clock* clock) {
  absl::StatusOr<std::unique_ptr<ResourceSampler>> sampler =
      ResourceSampler::Create(options, clock);
  EXPECT_TRUE(sampler.ok()) << sampler.status();
  return sampler.ok() ? std::move(sampler).value() : nullptr;
}

ResourceSample MustSample(ResourceSampler& sampler) {
  absl::StatusOr<ResourceSample> sample = sampler.Sample();
  EXPECT_TRUE(sample.ok()) << sample.status();
  return sample.ok() ? *sample : ResourceSample{};
}

// ---- detection ----

TEST(DetectTest, V2ResolvesOwnCgroupRelativeToMountRoot) {
  FixtureTree tree("v2");
  absl::StatusOr<CgroupLayout> layout = DetectCgroupLayout(tree.cgroup(), tree.proc());
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->version, CgroupVersion::kV2);
  // /proc/self/cgroup says /kubepods.slice/pod1/ctr1 and the mount's root is
  // /kubepods.slice/pod1, so the files are in <root>/ctr1.
  EXPECT_EQ(layout->cpu_dir, tree.cgroup() + "/ctr1");
  EXPECT_EQ(layout->memory_dir, tree.cgroup() + "/ctr1");
  EXPECT_EQ(layout->io_dir, tree.cgroup() + "/ctr1");
}

TEST(DetectTest, V2WithoutProcInfoUsesRoot) {
  FixtureTree tree("v2");
  tree.Remove("proc/self/cgroup");
  absl::StatusOr<CgroupLayout> layout = DetectCgroupLayout(tree.cgroup() + "/", tree.proc());
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->version, CgroupVersion::kV2);
  EXPECT_EQ(layout->cpu_dir, tree.cgroup());
}

TEST(DetectTest, HybridRootIsV1WithPerControllerDirectories) {
  FixtureTree tree("v1");
  absl::StatusOr<CgroupLayout> layout = DetectCgroupLayout(tree.cgroup(), tree.proc());
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->version, CgroupVersion::kV1);
  EXPECT_EQ(layout->cpu_dir, tree.cgroup() + "/cpu,cpuacct/kubepods/pod1/ctr1");
  EXPECT_EQ(layout->cpuacct_dir, tree.cgroup() + "/cpu,cpuacct/kubepods/pod1/ctr1");
  EXPECT_EQ(layout->memory_dir, tree.cgroup() + "/memory/kubepods/pod1/ctr1");
  EXPECT_EQ(layout->io_dir, tree.cgroup() + "/blkio/kubepods/pod1/ctr1");
}

TEST(DetectTest, UnifiedMountBesideV1IsV2) {
  FixtureTree tree("v1");
  absl::StatusOr<CgroupLayout> layout = DetectCgroupLayout(tree.cgroup() + "/unified", tree.proc());
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->version, CgroupVersion::kV2);
  EXPECT_EQ(layout->cpu_dir, tree.cgroup() + "/unified");
}

TEST(DetectTest, EmptyRootIsNoneAndMissingRootIsAnError) {
  FixtureTree tree("v1");
  absl::StatusOr<CgroupLayout> layout = DetectCgroupLayout(tree.proc() + "/self", tree.proc());
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->version, CgroupVersion::kNone);
  layout = DetectCgroupLayout("", tree.proc());
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->version, CgroupVersion::kNone);

  layout = DetectCgroupLayout(tree.path("no/such/dir"), tree.proc());
  EXPECT_EQ(layout.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(layout.status().message(), HasSubstr(tree.path("no/such/dir")));
}

// ---- cgroup v2 ----

TEST(ResourceSamplerV2Test, PercentagesOverTwoSamples) {
  FixtureTree tree("v2");
  testing::FakeClock clock;
  auto sampler = MustCreate(tree.Options(), &clock);
  ASSERT_NE(sampler, nullptr);

  // No time has passed since the baseline: rates are 0, levels are already known.
  ResourceSample first = MustSample(*sampler);
  EXPECT_EQ(first.source, "cgroup2");
  EXPECT_EQ(first.cpu_cores, 0);
  EXPECT_EQ(first.cpu_usage_percent, 0);
  EXPECT_EQ(first.disk_read_bytes_per_second, 0);
  // 1 GiB current - 256 MiB inactive file = 768 MiB of a 2 GiB limit.
  EXPECT_EQ(first.memory_bytes, 805306368.0);
  EXPECT_DOUBLE_EQ(first.memory_usage_percent, 37.5);
  EXPECT_EQ(first.memory_limit_bytes, 2147483648.0);
  EXPECT_EQ(first.cpu_limit_cores, 2.0);

  clock.Advance(absl::Seconds(2));
  tree.Write("cgroup/ctr1/cpu.stat", "usage_usec 4000000\nuser_usec 1\nsystem_usec 1\n");
  tree.Write("cgroup/ctr1/io.stat",
             "8:0 rbytes=9000 wbytes=6000 rios=9 wios=9 dbytes=0 dios=0\n"
             "253:0 rbytes=2500 wbytes=2000 rios=1 wios=1 dbytes=0 dios=0\n");
  ResourceSample second = MustSample(*sampler);
  EXPECT_EQ(second.interval, absl::Seconds(2));
  EXPECT_EQ(second.sampled_at, clock.Now());
  // 3 s of CPU in 2 s = 1.5 cores of a 2-core limit.
  EXPECT_DOUBLE_EQ(second.cpu_cores, 1.5);
  EXPECT_DOUBLE_EQ(second.cpu_usage_percent, 75.0);
  // (11500 - 1500) / 2 s and (8000 - 2000) / 2 s.
  EXPECT_DOUBLE_EQ(second.disk_read_bytes_per_second, 5000.0);
  EXPECT_DOUBLE_EQ(second.disk_write_bytes_per_second, 3000.0);
}

TEST(ResourceSamplerV2Test, NoLimitIsOneCoreAndHostMemory) {
  FixtureTree tree("v2");
  tree.Write("cgroup/ctr1/cpu.max", "max 100000\n");
  tree.Write("cgroup/ctr1/memory.max", "max\n");
  testing::FakeClock clock;
  auto sampler = MustCreate(tree.Options(), &clock);
  ASSERT_NE(sampler, nullptr);
  clock.Advance(absl::Seconds(2));
  tree.Write("cgroup/ctr1/cpu.stat", "usage_usec 4000000\n");
  ResourceSample s = MustSample(*sampler);
  EXPECT_EQ(s.cpu_limit_cores, 0);
  EXPECT_DOUBLE_EQ(s.cpu_usage_percent, 150.0);  // over one core
  EXPECT_EQ(s.memory_limit_bytes, kHostMemory);
  EXPECT_DOUBLE_EQ(s.memory_usage_percent, 805306368.0 / kHostMemory * 100);
}

TEST(ResourceSamplerV2Test, LimitAboveHostMemoryCountsAsHostMemory) {
  FixtureTree tree("v2");
  tree.Write("cgroup/ctr1/memory.max", "68719476736\n");  // 64 GiB on a 15.3 GiB host
  testing::FakeClock clock;
  auto sampler = MustCreate(tree.Options(), &clock);
  ASSERT_NE(sampler, nullptr);
  EXPECT_EQ(MustSample(*sampler).memory_limit_bytes, kHostMemory);
}

TEST(ResourceSamplerV2Test, CounterResetGivesZeroRateThenRecovers) {
  FixtureTree tree("v2");
  testing::FakeClock clock;
  auto sampler = MustCreate(tree.Options(), &clock);
  ASSERT_NE(sampler, nullptr);
  clock.Advance(absl::Seconds(1));
  tree.Write("cgroup/ctr1/cpu.stat", "usage_usec 10\n");
  EXPECT_EQ(MustSample(*sampler).cpu_cores, 0);
  clock.Advance(absl::Seconds(1));
  tree.Write("cgroup/ctr1/cpu.stat", "usage_usec 500010\n");
  EXPECT_DOUBLE_EQ(MustSample(*sampler).cpu_cores, 0.5);
}

TEST(ResourceSamplerV2Test, UnreadableMemoryFallsBackToProcForThatResource) {
  FixtureTree tree("v2");
  testing::FakeClock clock;
  auto sampler = MustCreate(tree.Options(), &clock);
  ASSERT_NE(sampler, nullptr);
  tree.Remove("cgroup/ctr1/memory.current");
  ResourceSample s = MustSample(*sampler);
  EXPECT_EQ(s.source, "cgroup2+proc");
  // statm resident pages x page size, of host memory.
  const double rss = 12800.0 * static_cast<double>(::sysconf(_SC_PAGESIZE));
  EXPECT_EQ(s.memory_bytes, rss);
  EXPECT_DOUBLE_EQ(s.memory_usage_percent, rss / kHostMemory * 100);
}

TEST(ResourceSamplerV2Test, NothingReadableIsUnavailable) {
  FixtureTree tree("v2");
  testing::FakeClock clock;
  auto sampler = MustCreate(tree.Options(), &clock);
  ASSERT_NE(sampler, nullptr);
  tree.Remove("cgroup/ctr1/memory.current");
  tree.Remove("proc/self/statm");
  absl::StatusOr<ResourceSample> s = sampler->Sample();
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.status().message(), HasSubstr("memory.current"));
}

// ---- cgroup v1 ----

TEST(ResourceSamplerV1Test, PercentagesOverTwoSamples) {
  FixtureTree tree("v1");
  testing::FakeClock clock;
  auto sampler = MustCreate(tree.Options(), &clock);
  ASSERT_NE(sampler, nullptr);
  EXPECT_EQ(sampler->layout().version, CgroupVersion::kV1);

  const std::string cpu = "cgroup/cpu,cpuacct/kubepods/pod1/ctr1/";
  const std::string blkio =
      "cgroup/blkio/kubepods/pod1/ctr1/blkio.throttle.io_service_bytes_recursive";
  clock.Advance(absl::Seconds(4));
  tree.Write(cpu + "cpuacct.usage", "6000000000\n");
  tree.Write(blkio,
             "8:0 Read 30000\n8:0 Write 24000\n8:0 Sync 0\n8:0 Async 0\n8:0 Total 54000\n"
             "8:16 Read 500\n8:16 Write 700\n8:16 Total 1200\nTotal 55200\n");
  ResourceSample s = MustSample(*sampler);
  EXPECT_EQ(s.source, "cgroup1");
  // 1 s of CPU in 4 s = 0.25 cores of a 0.5-core quota (50000 / 100000).
  EXPECT_EQ(s.cpu_limit_cores, 0.5);
  EXPECT_DOUBLE_EQ(s.cpu_cores, 0.25);
  EXPECT_DOUBLE_EQ(s.cpu_usage_percent, 50.0);
  // 512 MiB usage - 96 MiB total_inactive_file = 416 MiB of 1 GiB.
  EXPECT_EQ(s.memory_bytes, 436207616.0);
  EXPECT_DOUBLE_EQ(s.memory_usage_percent, 40.625);
  // Read 10500 -> 30500 and Write 20700 -> 24700 over 4 s.
  EXPECT_DOUBLE_EQ(s.disk_read_bytes_per_second, 5000.0);
  EXPECT_DOUBLE_EQ(s.disk_write_bytes_per_second, 1000.0);
}

TEST(ResourceSamplerV1Test, NoLimitIsOneCoreAndHostMemory) {
  FixtureTree tree("v1");
  const std::string cpu = "cgroup/cpu,cpuacct/kubepods/pod1/ctr1/";
  tree.Write(cpu + "cpu.cfs_quota_us", "-1\n");
  tree.Write("cgroup/memory/kubepods/pod1/ctr1/memory.limit_in_bytes", "9223372036854771712\n");
  testing::FakeClock clock;
  auto sampler = MustCreate(tree.Options(), &clock);
  ASSERT_NE(sampler, nullptr);
  clock.Advance(absl::Seconds(4));
  tree.Write(cpu + "cpuacct.usage", "6000000000\n");
  ResourceSample s = MustSample(*sampler);
  EXPECT_EQ(s.cpu_limit_cores, 0);
  EXPECT_DOUBLE_EQ(s.cpu_usage_percent, 25.0);
  EXPECT_EQ(s.memory_limit_bytes, kHostMemory);
  EXPECT_DOUBLE_EQ(s.memory_usage_percent, 436207616.0 / kHostMemory * 100);
}

TEST(ResourceSamplerV1Test, PlainBlkioFileWhenRecursiveIsAbsent) {
  FixtureTree tree("v1");
  const std::string dir = "cgroup/blkio/kubepods/pod1/ctr1/";
  tree.Remove(dir + "blkio.throttle.io_service_bytes_recursive");
  tree.Write(dir + "blkio.throttle.io_service_bytes", "8:0 Read 100\n8:0 Write 0\nTotal 100\n");
  testing::FakeClock clock;
  auto sampler = MustCreate(tree.Options(), &clock);
  ASSERT_NE(sampler, nullptr);
  clock.Advance(absl::Seconds(1));
  tree.Write(dir + "blkio.throttle.io_service_bytes", "8:0 Read 400\n8:0 Write 50\nTotal 450\n");
  ResourceSample s = MustSample(*sampler);
  EXPECT_DOUBLE_EQ(s.disk_read_bytes_per_second, 300.0);
  EXPECT_DOUBLE_EQ(s.disk_write_bytes_per_second, 50.0);
}

// ---- /proc fallback ----

TEST(ResourceSamplerProcTest, RootWithoutCgroupFilesUsesProc) {
  FixtureTree tree("v2");
  fs::create_directory(tree.path("empty"));
  SamplerOptions options = tree.Options();
  options.cgroup_root = tree.path("empty");
  testing::FakeClock clock;
  auto sampler = MustCreate(options, &clock);
  ASSERT_NE(sampler, nullptr);
  EXPECT_EQ(sampler->layout().version, CgroupVersion::kNone);

  // utime 150 -> 300: 150 more ticks (cutime 10 unchanged) over 2 s.
  clock.Advance(absl::Seconds(2));
  tree.Write("proc/self/stat",
             "4242 (model (srv) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 300 50 10 0 20 0 4 0 "
             "100 200000000 12800\n");
  tree.Write("proc/self/io", "read_bytes: 6096\nwrite_bytes: 8192\n");
  ResourceSample s = MustSample(*sampler);
  EXPECT_EQ(s.source, "proc");
  const double tick = 1.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  EXPECT_THAT(s.cpu_cores, DoubleNear(150 * tick / 2, 1e-9));
  EXPECT_THAT(s.cpu_usage_percent, DoubleNear(150 * tick / 2 * 100, 1e-7));
  const double rss = 12800.0 * static_cast<double>(::sysconf(_SC_PAGESIZE));
  EXPECT_DOUBLE_EQ(s.memory_usage_percent, rss / kHostMemory * 100);
  EXPECT_DOUBLE_EQ(s.disk_read_bytes_per_second, 1000.0);
  EXPECT_DOUBLE_EQ(s.disk_write_bytes_per_second, 0.0);
}

TEST(ResourceSamplerProcTest, SwitchingSourceGivesZeroRateForThatInterval) {
  FixtureTree tree("v2");
  testing::FakeClock clock;
  auto sampler = MustCreate(tree.Options(), &clock);
  ASSERT_NE(sampler, nullptr);
  clock.Advance(absl::Seconds(1));
  tree.Remove("cgroup/ctr1/cpu.stat");  // microseconds of cgroup vs ticks of one process
  ResourceSample s = MustSample(*sampler);
  EXPECT_EQ(s.source, "cgroup2+proc");
  EXPECT_EQ(s.cpu_cores, 0);
}

// ---- configuration errors ----

TEST(ResourceSamplerConfigTest, MissingCgroupRootIsFailedPrecondition) {
  testing::FakeClock clock;
  SamplerOptions options;
  options.cgroup_root = "/nonexistent/zeroscale/cgroup";
  absl::StatusOr<std::unique_ptr<ResourceSampler>> sampler =
      ResourceSampler::Create(options, &clock);
  EXPECT_EQ(sampler.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(sampler.status().message(), HasSubstr("/nonexistent/zeroscale/cgroup"));
}

TEST(ResourceSamplerConfigTest, MissingDiskPathOrMeminfoIsFailedPrecondition) {
  FixtureTree tree("v2");
  testing::FakeClock clock;
  SamplerOptions options = tree.Options();
  options.disk_paths = {"/", tree.path("no-such-volume")};
  absl::StatusOr<std::unique_ptr<ResourceSampler>> sampler =
      ResourceSampler::Create(options, &clock);
  EXPECT_EQ(sampler.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(sampler.status().message(), HasSubstr("no-such-volume"));

  tree.Remove("proc/meminfo");
  sampler = ResourceSampler::Create(tree.Options(), &clock);
  EXPECT_EQ(sampler.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(sampler.status().message(), HasSubstr("meminfo"));
}

// ---- disk ----

TEST(ResourceSamplerDiskTest, ReportsMostFullWatchedPathAsDf) {
  FixtureTree tree("v2");
  SamplerOptions options = tree.Options();
  options.disk_paths = {tree.path(""), "/", "/dev/shm"};
  testing::FakeClock clock;
  auto sampler = MustCreate(options, &clock);
  ASSERT_NE(sampler, nullptr);
  ResourceSample s = MustSample(*sampler);

  double want_percent = -1, want_bytes = 0;
  for (const std::string& p : options.disk_paths) {
    struct statvfs v;
    ASSERT_EQ(::statvfs(p.c_str(), &v), 0) << p;
    double used = static_cast<double>(v.f_blocks - v.f_bfree) * v.f_frsize;
    double avail = static_cast<double>(v.f_bavail) * v.f_frsize;
    double percent = used + avail > 0 ? used / (used + avail) * 100 : 0;
    if (percent > want_percent) {
      want_percent = percent;
      want_bytes = used;
    }
  }
  // Other processes write to these filesystems meanwhile; allow a little drift.
  EXPECT_THAT(s.disk_usage_percent, DoubleNear(want_percent, 0.5));
  EXPECT_THAT(s.disk_bytes, DoubleNear(want_bytes, 64.0 * 1024 * 1024));
}

// ---- this machine ----

double ProcessCpuSeconds() {
  struct timespec ts;
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

TEST(ResourceSamplerLiveTest, SaneValuesFromThisMachine) {
  auto sampler = MustCreate(SamplerOptions{}, RealClock::Get());
  ASSERT_NE(sampler, nullptr);
  // Burn some CPU so the interval has something to measure.
  volatile double x = 0;
  const double start = ProcessCpuSeconds();
  while (ProcessCpuSeconds() - start < 0.05) x = x + std::sqrt(x + 1);
  ResourceSample s = MustSample(*sampler);
  std::printf(
      "live: source=%s cgroup=%s cpu=%.2f%% (%.3f cores, limit %.2f) mem=%.2f%% (%.0f B) "
      "disk=%.2f%% (%.0f B) read=%.0f B/s write=%.0f B/s\n",
      s.source.c_str(), std::string(CgroupVersionName(sampler->layout().version)).c_str(),
      s.cpu_usage_percent, s.cpu_cores, s.cpu_limit_cores, s.memory_usage_percent, s.memory_bytes,
      s.disk_usage_percent, s.disk_bytes, s.disk_read_bytes_per_second,
      s.disk_write_bytes_per_second);
  for (double v : {s.cpu_usage_percent, s.cpu_cores, s.cpu_limit_cores, s.memory_usage_percent,
                   s.memory_bytes, s.memory_limit_bytes, s.disk_usage_percent, s.disk_bytes,
                   s.disk_read_bytes_per_second, s.disk_write_bytes_per_second}) {
    EXPECT_TRUE(std::isfinite(v)) << v;
    EXPECT_GE(v, 0) << v;
  }
  EXPECT_GT(s.memory_bytes, 0);
  EXPECT_GT(s.memory_limit_bytes, 0);
  EXPECT_LE(s.disk_usage_percent, 100);
  EXPECT_FALSE(s.source.empty());
}

TEST(ResourceSamplerLiveTest, SamplingIsCheap) {
  auto sampler = MustCreate(SamplerOptions{}, RealClock::Get());
  ASSERT_NE(sampler, nullptr);
  constexpr int kSamples = 2000;
  const double start = ProcessCpuSeconds();
  for (int i = 0; i < kSamples; ++i) ASSERT_TRUE(sampler->Sample().ok());
  const double per_sample = (ProcessCpuSeconds() - start) / kSamples;
  std::printf("one Sample(): %.1f us of CPU = %.4f%% of a core at a 1 s interval\n",
              per_sample * 1e6, per_sample * 100);
  // The budget: 0.5% of one core at the default 1 s interval.
  EXPECT_LT(per_sample, 0.005);
}

TEST(ResourceSamplerLiveTest, SteadyStateSamplingDoesNotAllocate) {
  auto sampler = MustCreate(SamplerOptions{}, RealClock::Get());
  ASSERT_NE(sampler, nullptr);
  ASSERT_TRUE(sampler->Sample().ok());  // settles the source trackers
  const long before = g_allocations.load();
  bool ok = true;
  for (int i = 0; i < 100; ++i) ok = ok && sampler->Sample().ok();
  const long allocations = g_allocations.load() - before;
  EXPECT_TRUE(ok);
  EXPECT_EQ(allocations, 0);
}

}  // namespace
}  // namespace zeroscale::sidecar
