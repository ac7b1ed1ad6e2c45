#include "sidecar/gpu/gpu_accounting.h"

#include <algorithm>
#include <cstdint>

namespace zeroscale::sidecar {
namespace {

unsigned int PidOf(unsigned int pid) { return pid; }
unsigned int PidOf(const nvmlProcessInfo_t& p) { return p.pid; }

bool Contains(absl::Span<const int> sorted, unsigned int pid) {
  return pid <= static_cast<unsigned int>(INT32_MAX) &&
         std::binary_search(sorted.begin(), sorted.end(), static_cast<int>(pid));
}

bool IsComputeProcess(const GpuReading& gpu, unsigned int pid) {
  return std::binary_search(gpu.processes.begin(), gpu.processes.end(), pid,
                            [](const auto& a, const auto& b) { return PidOf(a) < PidOf(b); });
}

// The pod's SM utilisation on `gpu` from per-process samples, or nullopt when the
// samples' PIDs match none of the GPU's processes (another PID namespace).
std::optional<double> PodUtilFromSamples(absl::Span<const int> pod_pids, const GpuReading& gpu) {
  if (gpu.util_samples.empty()) return 0.0;  // nobody ran a kernel since the last read
  bool any_matches_gpu = false;
  double sum = 0;
  // Samples are sorted by pid; a process with several samples in the window counts with
  // their mean.
  const auto& samples = gpu.util_samples;
  for (size_t i = 0; i < samples.size();) {
    const unsigned int pid = samples[i].pid;
    double total = 0;
    int n = 0;
    for (; i < samples.size() && samples[i].pid == pid; ++i, ++n) {
      total += std::min(samples[i].smUtil, 100u);
    }
    if (!any_matches_gpu && IsComputeProcess(gpu, pid)) any_matches_gpu = true;
    if (Contains(pod_pids, pid)) sum += total / n;
  }
  if (!any_matches_gpu) return std::nullopt;
  return std::min(sum, 100.0);
}

}  // namespace

bool PodUsesGpu(absl::Span<const int> pod_pids, const GpuReading& gpu) {
  for (const nvmlProcessInfo_t& p : gpu.processes) {
    if (Contains(pod_pids, p.pid)) return true;
  }
  return false;
}

GpuUsage AccountPod(absl::Span<const int> pod_pids, absl::Span<const GpuReading> gpus) {
  GpuUsage out;
  double bytes = 0, total = 0, util_sum = 0;
  bool bytes_known = false;
  int util_known = 0;
  for (const GpuReading& gpu : gpus) {
    if (!PodUsesGpu(pod_pids, gpu)) continue;
    ++out.gpus;
    total += static_cast<double>(gpu.memory_total);
    for (const nvmlProcessInfo_t& p : gpu.processes) {
      if (!Contains(pod_pids, p.pid) || p.usedGpuMemory == NVML_VALUE_NOT_AVAILABLE) continue;
      bytes += static_cast<double>(p.usedGpuMemory);
      bytes_known = true;
    }
    std::optional<double> util;
    if (gpu.per_process_util) {
      util = PodUtilFromSamples(pod_pids, gpu);
      if (!util) ++out.unattributable_gpus;
    } else if (gpu.device_util) {
      util = std::min(*gpu.device_util, 100u);
    }
    if (util) {
      util_sum += *util;
      ++util_known;
    }
  }
  if (out.gpus == 0) return out;
  if (bytes_known) {
    out.memory_bytes = bytes;
    if (total > 0) out.memory_usage_percent = std::min(bytes / total * 100.0, 100.0);
  }
  if (util_known > 0) out.usage_percent = util_sum / util_known;
  return out;
}

}  // namespace zeroscale::sidecar
