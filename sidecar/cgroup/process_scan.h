// Measures a group of processes through /proc rather than through a cgroup: every process
// visible in a /proc tree except the measuring process itself and a pod's pause process.
// This is how the sidecar measures the model server in Kubernetes, where its own cgroup
// is the sidecar container's and the pod's cgroup is out of reach, but a pod with
// `shareProcessNamespace: true` shows every container's processes in /proc.
//
// Counters are cumulative over the scanner's life and never go backwards: each process
// contributes only its own positive deltas since it was first seen, so a process that
// exits, or a pid the kernel hands to a new process, neither subtracts nor adds a jump.
// A scan is one getdents pass over <proc_root> and one read of stat, status and io per
// process, into buffers allocated once: no allocation once the process count is steady.
//
// Not thread-safe: one scanner is driven by one thread (the sidecar's sample loop).
#ifndef ZEROSCALE_SIDECAR_CGROUP_PROCESS_SCAN_H_
#define ZEROSCALE_SIDECAR_CGROUP_PROCESS_SCAN_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zeroscale::sidecar {

struct ProcessTotals {
  // utime + stime, in clock ticks, summed over each process's deltas since first seen.
  uint64_t cpu_ticks = 0;
  // Now: the sum of RssAnon + RssShmem (resident memory minus file pages the kernel can
  // drop), the /proc counterpart of a cgroup's working set. Shared memory mapped by
  // several processes is counted once per process.
  uint64_t memory_bytes = 0;
  // read_bytes / write_bytes of /proc/<pid>/io, cumulative like cpu_ticks, over the
  // processes whose io file is readable (another user's needs ptrace access).
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
  bool io_known = false;  // false: no measured process's io could be read
  int processes = 0;      // measured by the last scan
};

class ProcessScanner {
 public:
  // `self_pid` is left out; 0 means this process as <proc_root>/self names it (its pid in
  // the namespace of that /proc). PID 1 is left out when its comm is "pause": with a
  // shared process namespace it is the pod's infrastructure container. kFailedPrecondition
  // when <proc_root> cannot be listed.
  static absl::StatusOr<std::unique_ptr<ProcessScanner>> Create(const std::string& proc_root,
                                                                int self_pid);

  // Updates and returns the totals; nullopt when <proc_root> could not be listed.
  std::optional<ProcessTotals> Scan();

  // The PIDs the last Scan measured, ascending, into `out` (replacing its content).
  void Pids(std::vector<int>* out) const;

  ProcessScanner(const ProcessScanner&) = delete;
  ProcessScanner& operator=(const ProcessScanner&) = delete;
  ~ProcessScanner();

 private:
  struct Process {
    int pid = 0;
    uint64_t start_time = 0;  // with the pid, tells a reused pid from the same process
    uint64_t cpu_ticks = 0;
    uint64_t read_bytes = 0;
    uint64_t write_bytes = 0;
    bool io_readable = false;
  };

  ProcessScanner(std::string proc_root, int dir_fd, int self_pid, bool skip_pid1);
  void MeasureProcess(int pid);
  const Process* Previous(int pid) const;

  const std::string proc_root_;
  const int dir_fd_;
  const int self_pid_;
  const bool skip_pid1_;
  std::unique_ptr<char[]> dirents_;
  std::unique_ptr<char[]> buffer_;
  // The last scan's processes sorted by pid, and the one being built; swapped per scan
  // so both keep their capacity.
  std::vector<Process> last_;
  std::vector<Process> next_;
  ProcessTotals totals_;
  bool io_denied_logged_ = false;
};

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_CGROUP_PROCESS_SCAN_H_
