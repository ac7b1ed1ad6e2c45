// Samples the pod's GPU use through NVML for the Podmetric's gpuUsage, gpuMemoryUsage and
// gpuMemoryBytes (per-process accounting: see gpu_accounting.h for the rules).
//
// Lifecycle, so the sidecar works unchanged without a GPU and says so once:
//   - The library is loaded once, at Create. Absent (or missing an entry point): GPU
//     metrics are off for the process's life, logged once at info.
//   - nvmlInit, the device count and the device handles make up "init". When init fails
//     (no driver loaded, a GPU lost), or a GPU disappears mid-run (NVML_ERROR_GPU_IS_LOST,
//     or any other error from a device call that is not "not supported"), samples carry
//     no GPU data, the failure is logged once, NVML is shut down, and init is retried
//     from Sample() after the common Backoff's delay, timed by the Clock; the first
//     success after a failure is logged once too.
//   - Everything is bounded: at most max_devices GPUs are looked at, and a process list or
//     utilisation buffer grows on NVML_ERROR_INSUFFICIENT_SIZE up to max_processes
//     entries; a GPU with more is left out of that sample (logged once) rather than read
//     in part.
// NVML calls run on the caller's thread; with the driver's persistence mode off the
// first nvmlInit can take a second, so the sidecar calls Create before its sample loop.
//
// Not thread-safe: one sampler is driven by one thread (the sidecar's sample loop).
#ifndef ZEROSCALE_SIDECAR_GPU_GPU_SAMPLER_H_
#define ZEROSCALE_SIDECAR_GPU_GPU_SAMPLER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/time/backoff.h"
#include "common/time/clock.h"
#include "sidecar/gpu/gpu_accounting.h"
#include "sidecar/gpu/nvml_library.h"

namespace zeroscale::sidecar {

struct GpuSamplerOptions {
  // dlopen's argument: the soname by default, a path in tests (--nvml-library).
  std::string library = "libnvidia-ml.so.1";
  // Between init attempts after a failure or a lost GPU. Equal jitter: the sidecars of a
  // node whose GPU came back do not all re-initialise in the same instant.
  BackoffPolicy retry = {absl::Seconds(5), absl::Minutes(5), 2.0, Jitter::kEqual};
  UniformRandom uniform;  // empty: DefaultUniform()
  size_t max_devices = 64;
  size_t max_processes = 4096;  // per GPU: compute processes, and utilisation samples
};

class GpuSampler {
 public:
  enum class State {
    kNoLibrary,  // not loadable: off for good
    kRetrying,   // init failed or a GPU was lost: retried after the backoff
    kReady,
  };

  // Never fails: a missing library or a failing init is a state, logged once.
  static std::unique_ptr<GpuSampler> Create(GpuSamplerOptions options, const Clock* clock);
  ~GpuSampler();
  GpuSampler(const GpuSampler&) = delete;
  GpuSampler& operator=(const GpuSampler&) = delete;

  // The pod's GPU use, `pod_pids` being its processes as NVML numbers them (any order).
  // All fields nullopt when there is no GPU data (no library, NVML failing, the pod on no
  // GPU); a retry of init happens here when its time has come.
  GpuUsage Sample(absl::Span<const int> pod_pids);

  State state() const { return state_; }
  // Why the last sample had no GPU data ("" when it had, or the pod is on no GPU).
  const std::string& why() const { return why_; }
  int devices() const { return static_cast<int>(devices_.size()); }

 private:
  struct Device {
    nvmlDevice_t handle = nullptr;
    unsigned long long last_seen = 0;  // NOLINT: NVML's timestamp type, microseconds
    bool per_process_util = true;      // false once the GPU said "not supported"
  };
  // What one device read came to.
  enum class ReadResult { kOk, kSkip, kLost };

  GpuSampler(GpuSamplerOptions options, const Clock* clock);
  void Init();
  // Logs the failure once per episode, shuts NVML down and schedules the next init.
  void Fail(const std::string& why);
  ReadResult ReadProcesses(Device& device, GpuReading& reading);
  ReadResult ReadUsage(Device& device, GpuReading& reading);
  void LogOnce(bool* flag, const std::string& message, unsigned int gpu);

  const GpuSamplerOptions options_;
  const Clock* const clock_;
  std::unique_ptr<NvmlLibrary> nvml_;
  Backoff backoff_;
  State state_ = State::kNoLibrary;
  bool initialized_ = false;  // nvmlInit succeeded and Shutdown is owed
  bool failure_logged_ = false;
  absl::Time next_init_ = absl::InfinitePast();
  std::string why_;
  std::vector<Device> devices_;
  // Reused across samples so the steady state does not allocate.
  std::vector<GpuReading> readings_;
  std::vector<int> pids_;
  bool oversize_logged_ = false;
  bool capped_devices_logged_ = false;
  bool no_process_list_logged_ = false;
  bool unattributable_logged_ = false;
};

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_GPU_GPU_SAMPLER_H_
