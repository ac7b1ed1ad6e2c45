#include "sidecar/cgroup/parse.h"

#include <optional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::sidecar::internal {
namespace {

using ::testing::ElementsAre;

TEST(ParseTest, KeyedValueMatchesWholeKeyAtLineStart) {
  const char* text = "cancelled_write_bytes: 7\nwrite_bytes: 8192\nread_bytes:\t4096\n";
  EXPECT_EQ(FindKeyedValue(text, "write_bytes:"), 8192u);
  EXPECT_EQ(FindKeyedValue(text, "read_bytes:"), 4096u);
  EXPECT_EQ(FindKeyedValue("inactive_file_x 1\ninactive_file 5", "inactive_file"), 5u);
  EXPECT_EQ(FindKeyedValue("MemTotal:  16 kB\n", "MemTotal:"), 16u);
  EXPECT_EQ(FindKeyedValue("other 1\n", "usage_usec"), std::nullopt);
  EXPECT_EQ(FindKeyedValue("usage_usec abc\n", "usage_usec"), std::nullopt);
}

TEST(ParseTest, CpuMax) {
  EXPECT_EQ(ParseCpuMaxCores("150000 100000\n"), 1.5);
  EXPECT_EQ(ParseCpuMaxCores("max 100000\n"), 0.0);
  EXPECT_EQ(ParseCpuMaxCores("50000"), 0.5);
  EXPECT_EQ(ParseCpuMaxCores(""), std::nullopt);
  EXPECT_EQ(ParseCpuMaxCores("1 0"), std::nullopt);
  EXPECT_EQ(ParseCpuMaxCores("-1 100000"), std::nullopt);
}

TEST(ParseTest, CfsQuota) {
  EXPECT_EQ(ParseCfsQuotaCores("250000\n", "100000\n"), 2.5);
  EXPECT_EQ(ParseCfsQuotaCores("-1\n", "100000\n"), 0.0);
  EXPECT_EQ(ParseCfsQuotaCores("x", "100000"), std::nullopt);
  EXPECT_EQ(ParseCfsQuotaCores("1000", "0"), std::nullopt);
}

TEST(ParseTest, MemoryLimitTreatsMaxAndPageCounterMaximumAsNoLimit) {
  EXPECT_EQ(ParseMemoryLimit("max\n"), 0u);
  EXPECT_EQ(ParseMemoryLimit("9223372036854771712\n"), 0u);
  EXPECT_EQ(ParseMemoryLimit("1073741824\n"), 1073741824u);
  EXPECT_EQ(ParseMemoryLimit("-1"), std::nullopt);
}

TEST(ParseTest, IoStatSumsDevices) {
  std::optional<IoBytes> io = SumIoStat(
      "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"
      "8:16 rbytes=5 wbytes=7 rios=1 wios=1 dbytes=3 dios=1\n");
  ASSERT_TRUE(io.has_value());
  EXPECT_EQ(io->read, 15u);
  EXPECT_EQ(io->write, 27u);
  io = SumIoStat("");
  ASSERT_TRUE(io.has_value());
  EXPECT_EQ(io->read, 0u);
  EXPECT_EQ(SumIoStat("8:0 rbytes=x\n"), std::nullopt);
}

TEST(ParseTest, BlkioIgnoresTotalsAndOtherOps) {
  std::optional<IoBytes> io = SumBlkioServiceBytes(
      "8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\n8:0 Async 0\n8:0 Total 300\n"
      "8:16 Read 1\n8:16 Write 2\nTotal 303\n");
  ASSERT_TRUE(io.has_value());
  EXPECT_EQ(io->read, 101u);
  EXPECT_EQ(io->write, 202u);
  io = SumBlkioServiceBytes("Total 0\n");
  ASSERT_TRUE(io.has_value());
  EXPECT_EQ(io->write, 0u);
}

TEST(ParseTest, ProcStatCountsFromLastParen) {
  EXPECT_EQ(ParseProcStatCpuTicks("7 (a) b) c) R 1 7 7 0 -1 0 0 0 0 0 11 22 33 44 20 0 1 0 5"),
            110u);
  EXPECT_EQ(ParseProcStatCpuTicks("7 (a) R 1 7 7 0 -1 0 0 0 0 0 11 22 -1 0 20"), 33u);
  EXPECT_EQ(ParseProcStatCpuTicks("7 (a) R 1 2"), std::nullopt);
  EXPECT_EQ(ParseProcStatCpuTicks("garbage"), std::nullopt);
  EXPECT_EQ(ParseStatmResidentPages("100 42 3 1 0 5 0\n"), 42u);
}

TEST(ParseTest, ProcStatSeparatesOwnChildrenAndStartTime) {
  std::optional<ProcStatTimes> t = ParseProcStat(
      "9 (x) y) S 1 9 9 0 -1 0 0 0 0 0 100 20 7 3 20 0 1 0 4321 100000 50 18446744073709551615\n");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->own_ticks, 120u);
  EXPECT_EQ(t->children_ticks, 10u);
  EXPECT_EQ(t->start_time, 4321u);
  EXPECT_FALSE(ParseProcStat("9 (x) S 1 9 9 0 -1 0 0 0 0 0 100 20").has_value());
}

TEST(ParseTest, MountinfoKeepsCgroupMountsAndUnescapesPaths) {
  std::vector<CgroupMount> mounts = ParseCgroupMounts(
      "22 1 0:21 / / rw - overlay overlay rw\n"
      "31 22 0:27 /kube\\040pods /sys/fs/cgroup rw shared:1 master:2 - cgroup2 cgroup2 rw\n"
      "34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n");
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_TRUE(mounts[0].v2);
  EXPECT_EQ(mounts[0].root, "/kube pods");
  EXPECT_EQ(mounts[0].mount_point, "/sys/fs/cgroup");
  EXPECT_FALSE(mounts[1].v2);
  EXPECT_EQ(mounts[1].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_THAT(mounts[1].controllers, ElementsAre("cpu", "cpuacct"));
}

TEST(ParseTest, ProcSelfCgroup) {
  std::vector<CgroupMembership> entries =
      ParseProcSelfCgroup("3:cpu,cpuacct:/a/b\n1:name=systemd:/s\n0::/a/b:c\n");
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_FALSE(entries[0].v2);
  EXPECT_THAT(entries[0].controllers, ElementsAre("cpu", "cpuacct"));
  EXPECT_EQ(entries[0].path, "/a/b");
  EXPECT_TRUE(entries[2].v2);
  EXPECT_EQ(entries[2].path, "/a/b:c");
}

}  // namespace
}  // namespace zeroscale::sidecar::internal
