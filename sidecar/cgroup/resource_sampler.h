// Samples the CPU, memory and disk use of the pod's container(s) for the Podmetric
// (SPEC section 2): from cgroup v2 or v1, whichever the node has, falling back to /proc
// per resource when cgroup files cannot be read; or, with Measure::kProcesses, from the
// processes the pod shares with the sidecar (see process_scan.h). It runs every sample
// interval, so the steady state does a handful of open/read/close calls (three per
// process when measuring processes) into buffers allocated once and parses without
// allocating.
//
// Not thread-safe: one sampler is driven by one thread (the sidecar's sample loop).
//
//   ZS_ASSIGN_OR_RETURN(auto sampler, ResourceSampler::Create(options, RealClock::Get()));
//   ZS_ASSIGN_OR_RETURN(ResourceSample s, sampler->Sample());
#ifndef ZEROSCALE_SIDECAR_CGROUP_RESOURCE_SAMPLER_H_
#define ZEROSCALE_SIDECAR_CGROUP_RESOURCE_SAMPLER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/time/clock.h"
#include "sidecar/cgroup/detect.h"
#include "sidecar/cgroup/process_scan.h"

namespace zeroscale::sidecar {

struct ResourceSample {
  absl::Time sampled_at;
  // Since the previous sample (or since Create for the first one); rates are over it.
  absl::Duration interval;

  // Percent of the CPU limit (quota / period cores) used over the interval; with no
  // limit, percent of one core, so it can exceed 100.
  double cpu_usage_percent = 0;
  double cpu_cores = 0;        // cores used over the interval
  double cpu_limit_cores = 0;  // 0: no limit

  // Working set (usage minus inactive file cache) as percent of the memory limit; with no
  // limit (or a limit above the host's memory), percent of the host's MemTotal.
  double memory_usage_percent = 0;
  double memory_bytes = 0;        // working set
  double memory_limit_bytes = 0;  // the denominator actually used

  // The most-full watched path: percent of capacity used as df shows it
  // (used / (used + available to unprivileged users)), and its used bytes.
  double disk_usage_percent = 0;
  double disk_bytes = 0;
  double disk_read_bytes_per_second = 0;
  double disk_write_bytes_per_second = 0;

  // Where CPU and memory came from: "cgroup2", "cgroup1", "proc", "processes", or
  // "cgroup2+proc" / "cgroup1+proc" when one of them had to fall back to /proc.
  std::string source;
};

enum class Measure {
  // The sidecar's own cgroup (a pod-level one when cgroup_root points at it), or one
  // process through /proc (fallback_pid).
  kCgroup,
  // Every process visible in proc_root but the sampler's own process and a pause PID 1:
  // the app's, when the pod shares its process namespace.
  kProcesses,
};

struct SamplerOptions {
  Measure measure = Measure::kCgroup;
  // A v2 unified mount, a v1 root with controller subdirectories, or a pod-level cgroup
  // directory; empty reads /proc only.
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string proc_root = "/proc";
  // Filesystems whose fullness is reported; each must exist at Create.
  std::vector<std::string> disk_paths = {"/"};
  // The process /proc fallback measures (its CPU, RSS and I/O); 0 means the sidecar
  // itself, which is what a pod without a shared PID namespace can see. Cannot be
  // combined with Measure::kProcesses.
  int fallback_pid = 0;
  // Measure::kProcesses: the process left out; 0: this one.
  int self_pid = 0;
  // The limits used when the measured source has none of its own (processes, /proc, a
  // cgroup without a limit); 0: none, i.e. one core and the host's MemTotal. In
  // Kubernetes they are the app container's limits, from the Downward API.
  double cpu_limit_cores = 0;
  uint64_t memory_limit_bytes = 0;
};

class ResourceSampler {
 public:
  // Detects the cgroup layout (not with Measure::kProcesses) and takes the baseline for
  // the first interval. kFailedPrecondition for configuration that cannot work (missing
  // cgroup root, disk path or <proc_root>/meminfo, an unlistable proc_root when measuring
  // processes, processes with a fallback_pid); the caller should refuse to start.
  static absl::StatusOr<std::unique_ptr<ResourceSampler>> Create(SamplerOptions options,
                                                                 const Clock* clock);

  // kUnavailable when neither cgroup nor /proc could be read for CPU or memory, or no
  // watched path could be stat'ed; the caller should skip this sample and try again.
  // Counters that move backwards or change source yield rate 0 for that interval.
  absl::StatusOr<ResourceSample> Sample();

  // The PIDs of what is measured, as <proc_root> numbers them, into `out` (for the GPU
  // sampler's per-process accounting): with Measure::kProcesses those of the last
  // Sample(); with a cgroup, the cgroup.procs of its directory and of the cgroups below
  // it (a pod-level directory holds its containers' cgroups), at most kMaxListedPids
  // from at most kMaxListedCgroups directories; without one, the fallback process
  // (fallback_pid, or this process). Unreadable files contribute nothing. Uses the
  // sampler's read buffer, hence not const.
  void ListPids(std::vector<int>* out);
  static constexpr size_t kMaxListedPids = 16384;
  static constexpr int kMaxListedCgroups = 256;

  const CgroupLayout& layout() const { return layout_; }

  ResourceSampler(const ResourceSampler&) = delete;
  ResourceSampler& operator=(const ResourceSampler&) = delete;
  ~ResourceSampler();

 private:
  // kUnset only marks "not sampled yet" in the *_origin_ trackers below.
  enum class Origin { kNone, kCgroup, kProc, kProcesses, kUnset };
  struct Counter {
    Origin origin = Origin::kNone;
    uint64_t value = 0;
  };
  struct CpuReading {
    Counter usage_ns;
    double limit_cores = 0;
  };
  struct MemoryReading {
    Origin origin = Origin::kNone;
    uint64_t working_set = 0;
    uint64_t limit = 0;  // 0: none
  };
  struct IoReading {
    Counter read;
    Counter write;
  };

  ResourceSampler(SamplerOptions options, const Clock* clock, CgroupLayout layout,
                  std::unique_ptr<ProcessScanner> processes);

  // Reads `path` into buffer_; returns a view of its content or nullopt if unreadable.
  std::optional<absl::string_view> Read(const std::string& path);
  // Where CPU and memory are read from, for error messages.
  std::string CpuSources() const;
  std::string MemorySources() const;
  // With a process scanner, Scan() first: the Read* calls report what it found.
  void Scan();
  bool ReadCpu(CpuReading* out);
  bool ReadMemory(MemoryReading* out);
  void ReadIo(IoReading* out);
  void NoteOrigin(absl::string_view what, Origin* last, Origin now);

  const SamplerOptions options_;
  const Clock* const clock_;
  const CgroupLayout layout_;
  const double ticks_per_second_;
  const uint64_t page_size_;

  // Paths built once so sampling does not allocate.
  std::string cpu_usage_path_;   // cpu.stat (v2) or cpuacct.usage (v1)
  std::string cpu_limit_path_;   // cpu.max (v2) or cpu.cfs_quota_us (v1)
  std::string cpu_period_path_;  // v1 cpu.cfs_period_us
  std::string memory_usage_path_;
  std::string memory_stat_path_;
  std::string memory_limit_path_;
  std::string io_path_;  // io.stat (v2) or the blkio service-bytes file (v1)
  std::string proc_stat_path_;
  std::string proc_statm_path_;
  std::string proc_io_path_;

  std::unique_ptr<char[]> buffer_;
  const std::unique_ptr<ProcessScanner> processes_;  // Measure::kProcesses only
  std::optional<ProcessTotals> process_totals_;      // the last scan; nullopt: failed
  uint64_t host_memory_bytes_ = 0;                   // MemTotal, read once at Create

  absl::Time last_time_;
  Counter last_cpu_;
  IoReading last_io_;
  // Where each resource came from last time, so a switch is logged once, not per sample.
  Origin cpu_origin_ = Origin::kUnset;
  Origin memory_origin_ = Origin::kUnset;
  Origin io_origin_ = Origin::kUnset;
};

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_CGROUP_RESOURCE_SAMPLER_H_
