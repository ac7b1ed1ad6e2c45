// Parsers for the text formats of the cgroup v1/v2 and /proc files the resource sampler
// reads. The per-sample parsers take a string_view and neither allocate nor do I/O, so
// they can run every second at no measurable cost; the start-up parsers (mountinfo,
// /proc/self/cgroup) return owning values. All functions are pure and thread-safe.
#ifndef ZEROSCALE_SIDECAR_CGROUP_PARSE_H_
#define ZEROSCALE_SIDECAR_CGROUP_PARSE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace zeroscale::sidecar::internal {

// Limits at or above this are "no limit": cgroup v1 reports an unlimited memory cgroup as
// the page-counter maximum (9223372036854771712 with 4 KiB pages), never as a keyword.
inline constexpr uint64_t kUnlimitedBytes = uint64_t{1} << 62;

// An unsigned decimal, surrounding whitespace allowed.
std::optional<uint64_t> ParseUint(absl::string_view text);

// The first whitespace-separated token after `key` on the line that starts with `key`
// followed by whitespace ("usage_usec 123", "MemTotal:   16 kB", "read_bytes: 9").
std::optional<uint64_t> FindKeyedValue(absl::string_view text, absl::string_view key);

// Cores allowed by cgroup v2 `cpu.max` ("150000 100000" -> 1.5). 0 means no limit ("max").
std::optional<double> ParseCpuMaxCores(absl::string_view text);

// Cores allowed by cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`. 0 means no limit
// (quota -1).
std::optional<double> ParseCfsQuotaCores(absl::string_view quota, absl::string_view period);

// Bytes allowed by `memory.max` (v2) or `memory.limit_in_bytes` (v1). 0 means no limit.
std::optional<uint64_t> ParseMemoryLimit(absl::string_view text);

struct IoBytes {
  uint64_t read = 0;
  uint64_t write = 0;
};

// Sums rbytes/wbytes over all devices of cgroup v2 `io.stat`. An empty file (no I/O yet)
// is valid and sums to zero.
std::optional<IoBytes> SumIoStat(absl::string_view text);

// Sums the Read/Write lines over all devices of cgroup v1
// `blkio.throttle.io_service_bytes[_recursive]` ("8:0 Read 4096").
std::optional<IoBytes> SumBlkioServiceBytes(absl::string_view text);

// CPU times and identity of one process from /proc/<pid>/stat, in clock ticks. The
// command name may contain spaces and parentheses, so fields are counted from the last ')'.
struct ProcStatTimes {
  uint64_t own_ticks = 0;       // utime + stime: the process's threads
  uint64_t children_ticks = 0;  // cutime + cstime: its reaped children
  // Since boot (0 if the line ends before it); with the pid it identifies a process, so a
  // reused pid reads as a new process.
  uint64_t start_time = 0;
};
std::optional<ProcStatTimes> ParseProcStat(absl::string_view text);

// utime + stime + cutime + cstime, in clock ticks, from /proc/<pid>/stat.
std::optional<uint64_t> ParseProcStatCpuTicks(absl::string_view text);

// Resident pages (second field) of /proc/<pid>/statm.
std::optional<uint64_t> ParseStatmResidentPages(absl::string_view text);

// One cgroup mount from /proc/self/mountinfo.
struct CgroupMount {
  bool v2 = false;
  std::string root;                      // the path inside the hierarchy that is mounted
  std::string mount_point;               // where it is mounted
  std::vector<std::string> controllers;  // v1 only, from the super options
};
std::vector<CgroupMount> ParseCgroupMounts(absl::string_view mountinfo);

// One line of /proc/self/cgroup: "hierarchy-id:controllers:path".
struct CgroupMembership {
  bool v2 = false;                       // the "0::path" line
  std::vector<std::string> controllers;  // v1 only; "name=systemd" entries included as-is
  std::string path;
};
std::vector<CgroupMembership> ParseProcSelfCgroup(absl::string_view text);

}  // namespace zeroscale::sidecar::internal

#endif  // ZEROSCALE_SIDECAR_CGROUP_PARSE_H_
