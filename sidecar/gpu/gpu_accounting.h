// Per-process GPU accounting: from what NVML says about each GPU (its memory, the compute
// processes on it, their utilisation samples) and the pod's PIDs, the pod's share. Pods
// sharing a node (or a GPU) each count only their own processes. Pure functions of their
// arguments; thread-safe.
//
// The rules, all in one place:
//   - A GPU is "the pod's" when one of the pod's PIDs is among its compute processes. A
//     pod on no GPU gets no GPU figures at all (nullopt), never 0: "no GPU" must not read
//     as "an idle GPU" to a rule. A pod on a GPU at 0% reports 0.
//   - memory_bytes: the sum of usedGpuMemory of the pod's processes (values the driver
//     cannot tell are left out; none known: nullopt).
//   - memory_usage_percent: memory_bytes / total memory of the pod's GPUs * 100.
//   - usage_percent: per GPU, the sum over the pod's processes of their SM utilisation in
//     the samples since the last read (a process with no sample was idle: 0), capped at
//     100; then the mean over the pod's GPUs whose utilisation is known. Where the GPU
//     cannot report per-process utilisation, the GPU's own utilisation stands in (the
//     whole GPU's, shared or not).
//   - When a GPU's utilisation samples name PIDs none of which is among its compute
//     processes, the driver reports the two in different PID namespaces (seen with some
//     drivers inside containers): that GPU's utilisation cannot be attributed and is left
//     out rather than reported as 0.
#ifndef ZEROSCALE_SIDECAR_GPU_GPU_ACCOUNTING_H_
#define ZEROSCALE_SIDECAR_GPU_GPU_ACCOUNTING_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "sidecar/gpu/nvml_abi.h"

namespace zeroscale::sidecar {

// What was read from one GPU in one sample; `processes` and `util_samples` sorted by pid
// (the sampler sorts them), so accounting is O(n log n) in the process count.
struct GpuReading {
  unsigned int index = 0;
  uint64_t memory_total = 0;  // bytes; read only for the pod's GPUs (0: not read)
  std::vector<nvmlProcessInfo_t> processes;
  // Per-process utilisation samples since the last read (valid when per_process_util).
  bool per_process_util = true;
  std::vector<nvmlProcessUtilizationSample_t> util_samples;
  // The GPU's own utilisation, when per-process utilisation is not supported.
  std::optional<unsigned int> device_util;
};

struct GpuUsage {
  std::optional<double> usage_percent;
  std::optional<double> memory_usage_percent;
  std::optional<double> memory_bytes;
  int gpus = 0;                 // GPUs the pod's processes are on
  int unattributable_gpus = 0;  // of those, GPUs whose utilisation PIDs did not match
};

// True when one of `pod_pids` (sorted ascending) is a compute process of `gpu`.
bool PodUsesGpu(absl::Span<const int> pod_pids, const GpuReading& gpu);

// The pod's share of `gpus` by the rules above. `pod_pids` sorted ascending.
GpuUsage AccountPod(absl::Span<const int> pod_pids, absl::Span<const GpuReading> gpus);

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_GPU_GPU_ACCOUNTING_H_
