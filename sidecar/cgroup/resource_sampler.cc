#include "sidecar/cgroup/resource_sampler.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "sidecar/cgroup/parse.h"
#include "sidecar/cgroup/read_file.h"

namespace zeroscale::sidecar {
namespace {

// Large enough for memory.stat and for io.stat / blkio with hundreds of devices; a file
// that does not fit is treated as unreadable rather than silently truncated.
constexpr size_t kBufferSize = 64 * 1024;

std::string ProcDir(absl::string_view proc_root, int pid) {
  return pid > 0 ? absl::StrCat(proc_root, "/", pid) : absl::StrCat(proc_root, "/self");
}

struct DiskUsage {
  double percent = 0;
  double used_bytes = 0;
};

std::optional<DiskUsage> StatDisk(const std::string& path) {
  struct statvfs vfs;
  if (::statvfs(path.c_str(), &vfs) != 0) return std::nullopt;
  const double frsize = static_cast<double>(vfs.f_frsize);
  const double used = static_cast<double>(vfs.f_blocks - vfs.f_bfree) * frsize;
  const double avail = static_cast<double>(vfs.f_bavail) * frsize;
  DiskUsage usage;
  usage.used_bytes = used;
  // As df: blocks reserved for root count neither as used nor as capacity, so a full
  // disk reads 100% when unprivileged writers start failing.
  if (used + avail > 0) usage.percent = used / (used + avail) * 100.0;
  return usage;
}

// Appends the pids of <dir>/cgroup.procs and, depth first, of the cgroups below it, until
// a bound is reached. `dirs` counts the directories read so far.
// `buffer` holds kBufferSize bytes: ~9000 pids; a larger file reads as unreadable (a
// partial list would split a pod's processes arbitrarily).
void AppendCgroupPids(const std::string& dir, int depth, char* buffer, int* dirs,
                      std::vector<int>* out) {
  if (depth > 8 || *dirs >= ResourceSampler::kMaxListedCgroups) return;
  ++*dirs;
  const std::string procs = absl::StrCat(dir, "/cgroup.procs");
  if (std::optional<absl::string_view> text =
          internal::ReadFileAt(AT_FDCWD, procs.c_str(), buffer, kBufferSize)) {
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      int pid = 0;
      if (out->size() >= ResourceSampler::kMaxListedPids) return;
      if (absl::SimpleAtoi(line, &pid) && pid > 0) out->push_back(pid);
    }
  }
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (const struct dirent* e = ::readdir(d)) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    AppendCgroupPids(absl::StrCat(dir, "/", e->d_name), depth + 1, buffer, dirs, out);
  }
  ::closedir(d);
}

double Rate(uint64_t delta, double seconds) {
  return seconds > 0 ? static_cast<double>(delta) / seconds : 0.0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ResourceSampler>> ResourceSampler::Create(SamplerOptions options,
                                                                         const Clock* clock) {
  if (clock == nullptr) return absl::InvalidArgumentError("ResourceSampler needs a clock");
  while (options.proc_root.size() > 1 && options.proc_root.back() == '/') {
    options.proc_root.pop_back();
  }
  CgroupLayout layout;
  std::unique_ptr<ProcessScanner> processes;
  if (options.measure == Measure::kProcesses) {
    if (options.fallback_pid != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("--app-pid=", options.fallback_pid,
                       " measures one process; it cannot be combined with --measure=processes"));
    }
    // The sidecar's own cgroup is not what is measured, so it is not even looked for.
    ZS_ASSIGN_OR_RETURN(processes, ProcessScanner::Create(options.proc_root, options.self_pid));
  } else {
    ZS_ASSIGN_OR_RETURN(layout, DetectCgroupLayout(options.cgroup_root, options.proc_root));
  }
  for (const std::string& path : options.disk_paths) {
    if (!StatDisk(path)) {
      return absl::FailedPreconditionError(
          absl::StrCat("disk path ", path, " cannot be stat'ed: ", std::strerror(errno),
                       " (check --disk-paths)"));
    }
  }
  auto sampler = std::unique_ptr<ResourceSampler>(
      new ResourceSampler(std::move(options), clock, std::move(layout), std::move(processes)));
  const std::string meminfo = sampler->options_.proc_root + "/meminfo";
  std::optional<absl::string_view> text = sampler->Read(meminfo);
  std::optional<uint64_t> mem_total_kb =
      text ? internal::FindKeyedValue(*text, "MemTotal:") : std::nullopt;
  if (!mem_total_kb || *mem_total_kb == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read MemTotal from ", meminfo, " (check the proc root)"));
  }
  sampler->host_memory_bytes_ = *mem_total_kb * 1024;

  // The baseline makes the first Sample() cover a real interval.
  sampler->Scan();
  CpuReading cpu;
  if (!sampler->ReadCpu(&cpu)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read CPU usage from ", sampler->CpuSources()));
  }
  if (sampler->process_totals_ && sampler->process_totals_->processes == 0) {
    // Not fatal: the app may not have started yet.
    ZS_LOG(kWarning, "measuring processes, but no other process is visible yet",
           {"proc", sampler->options_.proc_root},
           {"hint", "in Kubernetes the pod needs spec.shareProcessNamespace: true"});
  }
  sampler->last_cpu_ = cpu.usage_ns;
  sampler->ReadIo(&sampler->last_io_);
  sampler->last_time_ = clock->Now();
  ZS_LOG(kInfo, "resource sampler started",
         {"measure", sampler->processes_ != nullptr ? "processes" : "cgroup"},
         {"cgroup", std::string(CgroupVersionName(sampler->layout_.version))},
         {"cpu_dir", sampler->layout_.cpuacct_dir}, {"memory_dir", sampler->layout_.memory_dir},
         {"io_dir", sampler->layout_.io_dir});
  return sampler;
}

ResourceSampler::ResourceSampler(SamplerOptions options, const Clock* clock, CgroupLayout layout,
                                 std::unique_ptr<ProcessScanner> processes)
    : options_(std::move(options)),
      clock_(clock),
      layout_(std::move(layout)),
      ticks_per_second_(static_cast<double>(std::max(1L, ::sysconf(_SC_CLK_TCK)))),
      page_size_(static_cast<uint64_t>(std::max(1L, ::sysconf(_SC_PAGESIZE)))),
      buffer_(new char[kBufferSize]),
      processes_(std::move(processes)) {
  const bool v2 = layout_.version == CgroupVersion::kV2;
  auto in = [](const std::string& dir, absl::string_view file) {
    return dir.empty() ? std::string() : absl::StrCat(dir, "/", file);
  };
  if (layout_.version != CgroupVersion::kNone) {
    cpu_usage_path_ = in(layout_.cpuacct_dir, v2 ? "cpu.stat" : "cpuacct.usage");
    cpu_limit_path_ = in(layout_.cpu_dir, v2 ? "cpu.max" : "cpu.cfs_quota_us");
    if (!v2) cpu_period_path_ = in(layout_.cpu_dir, "cpu.cfs_period_us");
    memory_usage_path_ = in(layout_.memory_dir, v2 ? "memory.current" : "memory.usage_in_bytes");
    memory_stat_path_ = in(layout_.memory_dir, "memory.stat");
    memory_limit_path_ = in(layout_.memory_dir, v2 ? "memory.max" : "memory.limit_in_bytes");
    if (v2) {
      io_path_ = in(layout_.io_dir, "io.stat");
    } else if (!layout_.io_dir.empty()) {
      // The recursive file also counts I/O of child cgroups, which matters when the root
      // was pointed at a pod-level directory.
      for (absl::string_view file :
           {"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"}) {
        io_path_ = in(layout_.io_dir, file);
        if (::access(io_path_.c_str(), R_OK) == 0) break;
      }
    }
  }
  const std::string proc_dir = ProcDir(options_.proc_root, options_.fallback_pid);
  proc_stat_path_ = proc_dir + "/stat";
  proc_statm_path_ = proc_dir + "/statm";
  proc_io_path_ = proc_dir + "/io";
}

ResourceSampler::~ResourceSampler() = default;

void ResourceSampler::ListPids(std::vector<int>* out) {
  out->clear();
  if (processes_ != nullptr) return processes_->Pids(out);
  const std::string& dir = !layout_.memory_dir.empty() ? layout_.memory_dir : layout_.cpuacct_dir;
  if (layout_.version == CgroupVersion::kNone || dir.empty()) {
    out->push_back(options_.fallback_pid != 0 ? options_.fallback_pid
                                              : static_cast<int>(::getpid()));
    return;
  }
  int dirs = 0;
  AppendCgroupPids(dir, 0, buffer_.get(), &dirs, out);
  std::sort(out->begin(), out->end());
  out->erase(std::unique(out->begin(), out->end()), out->end());
}

std::optional<absl::string_view> ResourceSampler::Read(const std::string& path) {
  if (path.empty()) return std::nullopt;
  return internal::ReadFileAt(AT_FDCWD, path.c_str(), buffer_.get(), kBufferSize);
}

void ResourceSampler::Scan() {
  if (processes_ != nullptr) process_totals_ = processes_->Scan();
}

std::string ResourceSampler::CpuSources() const {
  if (processes_ != nullptr) return absl::StrCat("the processes in ", options_.proc_root);
  return absl::StrCat(cpu_usage_path_.empty() ? "cgroups" : cpu_usage_path_, " nor from ",
                      proc_stat_path_);
}

std::string ResourceSampler::MemorySources() const {
  if (processes_ != nullptr) return absl::StrCat("the processes in ", options_.proc_root);
  return absl::StrCat(memory_usage_path_, " nor from ", proc_statm_path_);
}

bool ResourceSampler::ReadCpu(CpuReading* out) {
  if (processes_ != nullptr) {
    if (!process_totals_) return false;
    out->usage_ns.origin = Origin::kProcesses;
    out->usage_ns.value = static_cast<uint64_t>(static_cast<double>(process_totals_->cpu_ticks) *
                                                1e9 / ticks_per_second_);
    out->limit_cores = 0;
    return true;
  }
  const bool v2 = layout_.version == CgroupVersion::kV2;
  if (std::optional<absl::string_view> text = Read(cpu_usage_path_)) {
    std::optional<uint64_t> usage =
        v2 ? internal::FindKeyedValue(*text, "usage_usec") : internal::ParseUint(*text);
    if (usage) {
      out->usage_ns.origin = Origin::kCgroup;
      out->usage_ns.value = v2 ? *usage * 1000 : *usage;
      out->limit_cores = 0;
      // An unreadable limit reads as no limit: percent of one core is still meaningful.
      if (std::optional<absl::string_view> limit = Read(cpu_limit_path_)) {
        if (v2) {
          out->limit_cores = internal::ParseCpuMaxCores(*limit).value_or(0);
        } else {
          char quota[32];
          size_t n = std::min(limit->size(), sizeof(quota));
          std::memcpy(quota, limit->data(), n);
          if (std::optional<absl::string_view> period = Read(cpu_period_path_)) {
            out->limit_cores =
                internal::ParseCfsQuotaCores(absl::string_view(quota, n), *period).value_or(0);
          }
        }
      }
      return true;
    }
  }
  if (std::optional<absl::string_view> text = Read(proc_stat_path_)) {
    if (std::optional<uint64_t> ticks = internal::ParseProcStatCpuTicks(*text)) {
      out->usage_ns.origin = Origin::kProc;
      out->usage_ns.value =
          static_cast<uint64_t>(static_cast<double>(*ticks) * 1e9 / ticks_per_second_);
      out->limit_cores = 0;
      return true;
    }
  }
  return false;
}

bool ResourceSampler::ReadMemory(MemoryReading* out) {
  if (processes_ != nullptr) {
    if (!process_totals_) return false;
    out->origin = Origin::kProcesses;
    out->working_set = process_totals_->memory_bytes;
    out->limit = 0;
    return true;
  }
  const bool v2 = layout_.version == CgroupVersion::kV2;
  std::optional<uint64_t> usage;
  if (std::optional<absl::string_view> text = Read(memory_usage_path_)) {
    usage = internal::ParseUint(*text);
  }
  if (usage) {
    // A missing memory.stat counts the whole usage: overstating is safer than reporting
    // a pod as idle.
    uint64_t inactive = 0;
    if (std::optional<absl::string_view> text = Read(memory_stat_path_)) {
      inactive =
          internal::FindKeyedValue(*text, v2 ? "inactive_file" : "total_inactive_file").value_or(0);
    }
    uint64_t limit = 0;
    if (std::optional<absl::string_view> text = Read(memory_limit_path_)) {
      limit = internal::ParseMemoryLimit(*text).value_or(0);
    }
    out->origin = Origin::kCgroup;
    out->working_set = *usage > inactive ? *usage - inactive : 0;
    out->limit = limit;
    return true;
  }
  if (std::optional<absl::string_view> text = Read(proc_statm_path_)) {
    if (std::optional<uint64_t> pages = internal::ParseStatmResidentPages(*text)) {
      out->origin = Origin::kProc;
      out->working_set = *pages * page_size_;
      out->limit = 0;
      return true;
    }
  }
  return false;
}

void ResourceSampler::ReadIo(IoReading* out) {
  if (processes_ != nullptr) {
    // No readable io file means unknown; Podmetric has no such value, so the rates are 0.
    *out = IoReading{};
    if (process_totals_ && process_totals_->io_known) {
      out->read = Counter{Origin::kProcesses, process_totals_->read_bytes};
      out->write = Counter{Origin::kProcesses, process_totals_->write_bytes};
    }
    return;
  }
  std::optional<internal::IoBytes> bytes;
  if (std::optional<absl::string_view> text = Read(io_path_)) {
    bytes = layout_.version == CgroupVersion::kV2 ? internal::SumIoStat(*text)
                                                  : internal::SumBlkioServiceBytes(*text);
  }
  Origin origin = Origin::kCgroup;
  if (!bytes) {
    // /proc/<pid>/io needs ptrace access to the process; without it I/O rates are 0.
    origin = Origin::kProc;
    if (std::optional<absl::string_view> text = Read(proc_io_path_)) {
      std::optional<uint64_t> r = internal::FindKeyedValue(*text, "read_bytes:");
      std::optional<uint64_t> w = internal::FindKeyedValue(*text, "write_bytes:");
      if (r && w) bytes = internal::IoBytes{*r, *w};
    }
  }
  if (!bytes) {
    *out = IoReading{};
    return;
  }
  out->read = Counter{origin, bytes->read};
  out->write = Counter{origin, bytes->write};
}

void ResourceSampler::NoteOrigin(absl::string_view what, Origin* last, Origin now) {
  if (*last == now) return;
  const bool first = *last == Origin::kUnset;
  *last = now;
  // Reading /proc from the start is expected when no cgroup was found or processes are
  // measured (Create said so); anything else means files that should be there are not.
  if (first && (now == Origin::kCgroup || layout_.version == CgroupVersion::kNone)) return;
  ZS_LOG(kWarning, "resource sampler source changed", {"resource", std::string(what)},
         {"source", now == Origin::kCgroup      ? std::string(CgroupVersionName(layout_.version))
                    : now == Origin::kProc      ? std::string("proc")
                    : now == Origin::kProcesses ? std::string("processes")
                                                : std::string("none")});
}

absl::StatusOr<ResourceSample> ResourceSampler::Sample() {
  const absl::Time now = clock_->Now();
  Scan();
  CpuReading cpu;
  if (!ReadCpu(&cpu)) {
    return absl::UnavailableError(absl::StrCat("cannot read CPU usage from ", CpuSources()));
  }
  MemoryReading memory;
  if (!ReadMemory(&memory)) {
    return absl::UnavailableError(absl::StrCat("cannot read memory usage from ", MemorySources()));
  }
  IoReading io;
  ReadIo(&io);

  ResourceSample sample;
  bool any_disk = options_.disk_paths.empty();
  for (const std::string& path : options_.disk_paths) {
    std::optional<DiskUsage> disk = StatDisk(path);
    if (!disk) continue;
    if (!any_disk || disk->percent > sample.disk_usage_percent) {
      sample.disk_usage_percent = disk->percent;
      sample.disk_bytes = disk->used_bytes;
    }
    any_disk = true;
  }
  if (!any_disk) {
    return absl::UnavailableError("none of the watched disk paths can be stat'ed");
  }

  sample.sampled_at = now;
  sample.interval = now - last_time_;
  const double seconds = absl::ToDoubleSeconds(sample.interval);
  // A delta needs both ends from the same counter; otherwise this interval reads as 0.
  auto delta = [](const Counter& before, const Counter& after) -> uint64_t {
    if (before.origin != after.origin || after.origin == Origin::kNone ||
        after.value < before.value) {
      return 0;
    }
    return after.value - before.value;
  };
  sample.cpu_cores = Rate(delta(last_cpu_, cpu.usage_ns), seconds) / 1e9;
  sample.cpu_limit_cores = cpu.limit_cores > 0 ? cpu.limit_cores : options_.cpu_limit_cores;
  sample.cpu_usage_percent =
      sample.cpu_cores / (sample.cpu_limit_cores > 0 ? sample.cpu_limit_cores : 1.0) * 100.0;

  uint64_t memory_limit = memory.limit > 0 ? memory.limit : options_.memory_limit_bytes;
  if (memory_limit == 0 || memory_limit > host_memory_bytes_) memory_limit = host_memory_bytes_;
  sample.memory_bytes = static_cast<double>(memory.working_set);
  sample.memory_limit_bytes = static_cast<double>(memory_limit);
  sample.memory_usage_percent = sample.memory_bytes / sample.memory_limit_bytes * 100.0;

  sample.disk_read_bytes_per_second = Rate(delta(last_io_.read, io.read), seconds);
  sample.disk_write_bytes_per_second = Rate(delta(last_io_.write, io.write), seconds);

  const bool cpu_cgroup = cpu.usage_ns.origin == Origin::kCgroup;
  const bool memory_cgroup = memory.origin == Origin::kCgroup;
  if (processes_ != nullptr) {
    sample.source = "processes";
  } else if (cpu_cgroup && memory_cgroup) {
    sample.source = std::string(CgroupVersionName(layout_.version));
  } else if (cpu_cgroup || memory_cgroup) {
    sample.source = layout_.version == CgroupVersion::kV2 ? "cgroup2+proc" : "cgroup1+proc";
  } else {
    sample.source = "proc";
  }

  NoteOrigin("cpu", &cpu_origin_, cpu.usage_ns.origin);
  NoteOrigin("memory", &memory_origin_, memory.origin);
  NoteOrigin("io", &io_origin_, io.read.origin);
  last_time_ = now;
  last_cpu_ = cpu.usage_ns;
  last_io_ = io;
  return sample;
}

}  // namespace zeroscale::sidecar
