// Finds which cgroup hierarchy (v2 unified, v1 per-controller, or none) holds this process
// and where its CPU, memory and block-I/O files are, once at sampler start. Pure function
// of the file system; thread-safe.
#ifndef ZEROSCALE_SIDECAR_CGROUP_DETECT_H_
#define ZEROSCALE_SIDECAR_CGROUP_DETECT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zeroscale::sidecar {

enum class CgroupVersion { kNone, kV1, kV2 };

// Directories holding the process's cgroup files. With v2 they are all the same
// directory; with v1 each controller has its own, and a directory is empty when that
// controller is not mounted (the sampler then reads /proc for that resource).
struct CgroupLayout {
  CgroupVersion version = CgroupVersion::kNone;
  std::string cpu_dir;      // v2 cpu.stat/cpu.max; v1 cpu.cfs_quota_us/cpu.cfs_period_us
  std::string cpuacct_dir;  // v1 cpuacct.usage (same as cpu_dir with v2)
  std::string memory_dir;
  std::string io_dir;  // v2 io.stat; v1 blkio.*
};

// Decides from the layout under `cgroup_root`: a root with `cgroup.controllers` is a v2
// unified hierarchy (also when it is the v2 mount beside v1 controllers); otherwise
// controller subdirectories (memory, cpuacct, "cpu,cpuacct", blkio) make it a v1 root.
// Within the hierarchy, the process's own cgroup comes from <proc_root>/self/cgroup,
// made relative to the mount's root from <proc_root>/self/mountinfo (so bind-mounted and
// namespaced container views resolve to the mounted directory itself). When that
// directory does not exist under `cgroup_root` (the root was pointed at a pod-level
// directory, say), the root directory itself is used.
//
// An empty `cgroup_root` means "no cgroups" (kNone). A root that does not exist is
// kFailedPrecondition; a root with no cgroup files in it is kNone, so that the sampler
// falls back to /proc in containers that hide the hierarchy.
absl::StatusOr<CgroupLayout> DetectCgroupLayout(absl::string_view cgroup_root,
                                                absl::string_view proc_root);

absl::string_view CgroupVersionName(CgroupVersion version);  // "cgroup2", "cgroup1", "none"

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_CGROUP_DETECT_H_
