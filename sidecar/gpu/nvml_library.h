// Loads NVML (libnvidia-ml.so.1, the NVIDIA driver's management library) at run time with
// dlopen and resolves, with dlsym, only the entry points the GPU sampler calls. The
// sidecar is built and shipped without any NVIDIA software: where the driver's library is
// absent, Load says so and the sidecar samples everything else.
//
// The process queries use nvmlDeviceGetComputeRunningProcesses_v3 (nvmlProcessInfo_t with
// MIG instance ids, exported by drivers since R510); a driver without it is reported by
// Load as kUnimplemented naming the symbol, like any other missing entry point.
//
// Thread-safety: the function pointers are immutable after Load; NVML itself is
// thread-safe. Destroying the object dlcloses the library (after nvmlShutdown, which is the
// caller's).
#ifndef ZEROSCALE_SIDECAR_GPU_NVML_LIBRARY_H_
#define ZEROSCALE_SIDECAR_GPU_NVML_LIBRARY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "sidecar/gpu/nvml_abi.h"

namespace zeroscale::sidecar {

class NvmlLibrary {
 public:
  // `path` as dlopen takes it: a bare soname is looked up the dynamic linker's way
  // (LD_LIBRARY_PATH, ld.so.cache). kNotFound when it cannot be loaded (with dlerror's
  // reason); kUnimplemented when an entry point is missing (names it).
  static absl::StatusOr<std::unique_ptr<NvmlLibrary>> Load(const std::string& path);

  ~NvmlLibrary();
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;

  // "GPU is lost (15)": NVML's own words and the code, for logs.
  std::string Describe(nvmlReturn_t code) const;
  const std::string& path() const { return path_; }

  nvmlInit_v2_fn init = nullptr;
  nvmlShutdown_fn shutdown = nullptr;
  nvmlErrorString_fn error_string = nullptr;
  nvmlDeviceGetCount_v2_fn device_count = nullptr;
  nvmlDeviceGetHandleByIndex_v2_fn device_handle = nullptr;
  nvmlDeviceGetMemoryInfo_fn memory_info = nullptr;
  nvmlDeviceGetComputeRunningProcesses_v3_fn compute_processes = nullptr;
  nvmlDeviceGetProcessUtilization_fn process_utilization = nullptr;
  nvmlDeviceGetUtilizationRates_fn utilization_rates = nullptr;

 private:
  NvmlLibrary(std::string path, void* handle) : path_(std::move(path)), handle_(handle) {}

  const std::string path_;
  void* const handle_;
};

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_GPU_NVML_LIBRARY_H_
