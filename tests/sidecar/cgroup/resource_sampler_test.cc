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
#include "absl/strings/str_cat.h"
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

// ---- processes (a pod with a shared process namespace) ----

// One process of a fixture /proc tree.
struct FakeProcess {
  int pid;
  std::string comm;
  uint64_t start_time;
  uint64_t utime, stime;
  uint64_t rss_anon_kb, rss_shmem_kb;
  // Negative: no io file, as when it belongs to another user.
  int64_t read_bytes = -1, write_bytes = -1;
};

void WriteProcess(const FixtureTree& tree, const FakeProcess& p) {
  const std::string dir = absl::StrCat("proc/", p.pid);
  fs::create_directories(tree.path(dir));
  tree.Write(dir + "/comm", p.comm + "\n");
  // cutime/cstime (777 888) belong to reaped children, measured while they ran.
  tree.Write(dir + "/stat",
             absl::StrCat(p.pid, " (", p.comm, ") S 1 ", p.pid, " ", p.pid,
                          " 0 -1 4194560 100 0 0 0 ", p.utime, " ", p.stime, " 777 888 20 0 1 0 ",
                          p.start_time, " 100000000 5000 18446744073709551615 0 0 0\n"));
  // RssFile is page cache the kernel can drop: not part of the working set.
  tree.Write(dir + "/status",
             absl::StrCat("Name:\t", p.comm, "\nState:\tS (sleeping)\nPid:\t", p.pid, "\nVmRSS:\t",
                          p.rss_anon_kb + p.rss_shmem_kb + 5000, " kB\nRssAnon:\t", p.rss_anon_kb,
                          " kB\nRssFile:\t    5000 kB\nRssShmem:\t", p.rss_shmem_kb,
                          " kB\nThreads:\t4\n"));
  if (p.read_bytes >= 0) {
    tree.Write(dir + "/io",
               absl::StrCat("rchar: 1\nwchar: 1\nsyscr: 1\nsyscw: 1\nread_bytes: ", p.read_bytes,
                            "\nwrite_bytes: ", p.write_bytes, "\ncancelled_write_bytes: 0\n"));
  }
}

constexpr int kSidecarPid = 30;

// pid 1 pause, the model server and a worker, the sidecar, and a helper of another user.
class ProcessesTest : public ::testing::Test {
 protected:
  ProcessesTest() : tree_("v2") {
    WriteProcess(tree_, {1, "pause", 10, 3, 4, 200, 0, 0, 0});
    WriteProcess(tree_, {7, "python3", 1000, 100, 50, 204800, 10240, 1000, 2000});
    WriteProcess(tree_, {12, "worker", 1100, 40, 10, 102400, 0, 0, 0});
    WriteProcess(tree_, {kSidecarPid, "zeroscale-sidec", 1200, 900, 900, 9000, 0, 0, 0});
    WriteProcess(tree_, {31, "helper", 1300, 8, 2, 1024, 0});
  }

  SamplerOptions Options() const {
    SamplerOptions options = tree_.Options();
    options.measure = Measure::kProcesses;
    options.cgroup_root = "/nonexistent";  // not looked at when measuring processes
    options.self_pid = kSidecarPid;
    return options;
  }

  const double tick_ = 1.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  FixtureTree tree_;
  testing::FakeClock clock_;
};

TEST_F(ProcessesTest, SumsEveryProcessButPauseAndItself) {
  auto sampler = MustCreate(Options(), &clock_);
  ASSERT_NE(sampler, nullptr);
  EXPECT_EQ(sampler->layout().version, CgroupVersion::kNone);
  ResourceSample first = MustSample(*sampler);
  EXPECT_EQ(first.source, "processes");
  EXPECT_EQ(first.cpu_cores, 0);  // no time has passed since the baseline
  // RssAnon + RssShmem of 7, 12 and 31: (204800 + 10240) + 102400 + 1024 kB.
  EXPECT_EQ(first.memory_bytes, 318464.0 * 1024);
  EXPECT_EQ(first.memory_limit_bytes, kHostMemory);
  EXPECT_DOUBLE_EQ(first.memory_usage_percent, 318464.0 * 1024 / kHostMemory * 100);

  clock_.Advance(absl::Seconds(2));
  WriteProcess(tree_, {1, "pause", 10, 900, 900, 200, 0, 0, 0});                   // left out
  WriteProcess(tree_, {7, "python3", 1000, 250, 100, 204800, 10240, 5000, 2400});  // +200
  WriteProcess(tree_, {12, "worker", 1100, 60, 20, 102400, 0, 0, 0});              // +30
  WriteProcess(tree_, {kSidecarPid, "zeroscale-sidec", 1200, 5000, 5000, 9000, 0, 0, 0});
  WriteProcess(tree_, {31, "helper", 1300, 18, 2, 1024, 0});  // +10
  ResourceSample s = MustSample(*sampler);
  // 240 ticks over 2 s, of one core (no limit given).
  EXPECT_THAT(s.cpu_cores, DoubleNear(240 * tick_ / 2, 1e-9));
  EXPECT_THAT(s.cpu_usage_percent, DoubleNear(240 * tick_ / 2 * 100, 1e-7));
  EXPECT_EQ(s.cpu_limit_cores, 0);
  // Only 7 and 12 have readable io: (4000 + 0) / 2 s and (400 + 0) / 2 s.
  EXPECT_DOUBLE_EQ(s.disk_read_bytes_per_second, 2000.0);
  EXPECT_DOUBLE_EQ(s.disk_write_bytes_per_second, 200.0);
}

TEST_F(ProcessesTest, ExitsAndReusedPidsNeverTakeCpuBackwardsNorJump) {
  auto sampler = MustCreate(Options(), &clock_);
  ASSERT_NE(sampler, nullptr);

  // 12 exits, 7 uses 100 ticks, and 40 appears having used 5000 ticks before it was seen.
  clock_.Advance(absl::Seconds(1));
  fs::remove_all(tree_.path("proc/12"));
  WriteProcess(tree_, {7, "python3", 1000, 200, 50, 204800, 10240, 1000, 2000});
  WriteProcess(tree_, {40, "spawned", 1400, 4000, 1000, 4096, 0, 50000, 0});
  ResourceSample s = MustSample(*sampler);
  EXPECT_THAT(s.cpu_cores, DoubleNear(100 * tick_, 1e-9));
  EXPECT_EQ(s.memory_bytes, (204800.0 + 10240 + 1024 + 4096) * 1024);
  EXPECT_EQ(s.disk_read_bytes_per_second, 0);  // 40's bytes predate its first sighting

  // pid 12 comes back as another process (new start time) with fewer ticks than the old
  // one had: it counts from here, and nothing goes negative.
  clock_.Advance(absl::Seconds(1));
  WriteProcess(tree_, {12, "reborn", 2000, 5, 0, 1024, 0, 0, 0});
  WriteProcess(tree_, {40, "spawned", 1400, 4010, 1000, 4096, 0, 50800, 0});
  s = MustSample(*sampler);
  EXPECT_THAT(s.cpu_cores, DoubleNear(10 * tick_, 1e-9));
  EXPECT_DOUBLE_EQ(s.disk_read_bytes_per_second, 800.0);

  // The same pid reused again, this time with more ticks than before: still no jump.
  clock_.Advance(absl::Seconds(1));
  WriteProcess(tree_, {12, "again", 2100, 90000, 0, 1024, 0, 0, 0});
  s = MustSample(*sampler);
  EXPECT_EQ(s.cpu_cores, 0);

  clock_.Advance(absl::Seconds(1));
  WriteProcess(tree_, {12, "again", 2100, 90050, 0, 1024, 0, 0, 0});
  s = MustSample(*sampler);
  EXPECT_THAT(s.cpu_cores, DoubleNear(50 * tick_, 1e-9));
}

TEST_F(ProcessesTest, LimitsFromOptionsTurnCoresIntoPercent) {
  SamplerOptions options = Options();
  options.cpu_limit_cores = 0.5;                    // --cpu-limit-millicores=500
  options.memory_limit_bytes = 1024 * 1024 * 1024;  // --memory-limit-bytes
  auto sampler = MustCreate(options, &clock_);
  ASSERT_NE(sampler, nullptr);
  clock_.Advance(absl::Seconds(2));
  WriteProcess(tree_, {7, "python3", 1000, 100 + 150, 50 + 50, 204800, 10240, 1000, 2000});
  ResourceSample s = MustSample(*sampler);
  EXPECT_EQ(s.cpu_limit_cores, 0.5);
  EXPECT_THAT(s.cpu_usage_percent, DoubleNear(200 * tick_ / 2 / 0.5 * 100, 1e-7));
  EXPECT_EQ(s.memory_limit_bytes, 1073741824.0);
  EXPECT_DOUBLE_EQ(s.memory_usage_percent, 318464.0 * 1024 / 1073741824.0 * 100);

  // A limit above the host's memory (the Downward API's node allocatable never is, but a
  // flag can be) counts as the host's memory, as a cgroup limit would.
  options.memory_limit_bytes = uint64_t{1} << 40;
  sampler = MustCreate(options, &clock_);
  ASSERT_NE(sampler, nullptr);
  EXPECT_EQ(MustSample(*sampler).memory_limit_bytes, kHostMemory);
}

TEST_F(ProcessesTest, Pid1IsMeasuredUnlessItIsPause) {
  WriteProcess(tree_, {1, "tini", 10, 3, 4, 200, 0, 0, 0});
  auto sampler = MustCreate(Options(), &clock_);
  ASSERT_NE(sampler, nullptr);
  EXPECT_EQ(MustSample(*sampler).memory_bytes, (318464.0 + 200) * 1024);
}

TEST_F(ProcessesTest, NoReadableIoFileMeansZeroRates) {
  fs::remove(tree_.path("proc/7/io"));
  fs::remove(tree_.path("proc/12/io"));
  auto sampler = MustCreate(Options(), &clock_);
  ASSERT_NE(sampler, nullptr);
  clock_.Advance(absl::Seconds(1));
  ResourceSample s = MustSample(*sampler);
  EXPECT_EQ(s.disk_read_bytes_per_second, 0);
  EXPECT_EQ(s.disk_write_bytes_per_second, 0);
}

TEST_F(ProcessesTest, SteadyStateSamplingDoesNotAllocate) {
  auto sampler = MustCreate(Options(), &clock_);
  ASSERT_NE(sampler, nullptr);
  ASSERT_TRUE(sampler->Sample().ok());  // settles the source trackers
  const long before = g_allocations.load();
  bool ok = true;
  for (int i = 0; i < 100; ++i) ok = ok && sampler->Sample().ok();
  EXPECT_TRUE(ok);
  EXPECT_EQ(g_allocations.load() - before, 0);
}

TEST_F(ProcessesTest, ConfigurationThatCannotWorkIsRefused) {
  SamplerOptions options = Options();
  options.fallback_pid = 7;
  absl::StatusOr<std::unique_ptr<ResourceSampler>> sampler =
      ResourceSampler::Create(options, &clock_);
  EXPECT_EQ(sampler.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(sampler.status().message(), HasSubstr("--app-pid=7"));

  options = Options();
  options.proc_root = tree_.path("no/such/proc");
  sampler = ResourceSampler::Create(options, &clock_);
  EXPECT_EQ(sampler.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(sampler.status().message(), HasSubstr("no/such/proc"));
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

TEST(ResourceSamplerLiveTest, ProcessesOfThisMachine) {
  SamplerOptions options;
  options.measure = Measure::kProcesses;
  auto sampler = MustCreate(options, RealClock::Get());
  ASSERT_NE(sampler, nullptr);
  volatile double x = 0;
  const double start = ProcessCpuSeconds();
  while (ProcessCpuSeconds() - start < 0.05) x = x + std::sqrt(x + 1);
  ResourceSample s = MustSample(*sampler);
  EXPECT_EQ(s.source, "processes");
  for (double v : {s.cpu_usage_percent, s.cpu_cores, s.memory_usage_percent, s.memory_bytes,
                   s.disk_read_bytes_per_second, s.disk_write_bytes_per_second}) {
    EXPECT_TRUE(std::isfinite(v)) << v;
    EXPECT_GE(v, 0) << v;
  }
  EXPECT_GT(s.memory_bytes, 0);  // the test runner's parent, at least

  constexpr int kSamples = 200;
  const double begin = ProcessCpuSeconds();
  for (int i = 0; i < kSamples; ++i) ASSERT_TRUE(sampler->Sample().ok());
  const double per_sample = (ProcessCpuSeconds() - begin) / kSamples;
  std::printf("processes: cpu=%.2f%% mem=%.0f B; one Sample(): %.1f us of CPU\n",
              s.cpu_usage_percent, s.memory_bytes, per_sample * 1e6);
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
