#include "sidecar/gpu/nvml_library.h"

#include <dlfcn.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace zeroscale::sidecar {
namespace {

// Resolves `name` into `*fn`; false when the library does not export it.
template <typename Fn>
bool Resolve(void* handle, const char* name, Fn* fn) {
  *fn = reinterpret_cast<Fn>(::dlsym(handle, name));
  return *fn != nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NvmlLibrary>> NvmlLibrary::Load(const std::string& path) {
  ::dlerror();
  // RTLD_LOCAL: NVML's symbols stay out of the sidecar's namespace; RTLD_NOW: a library
  // that cannot resolve its own dependencies fails here, not in the middle of a sample.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return absl::NotFoundError(
        absl::StrCat(path, " not found: ", why != nullptr ? why : "dlopen failed"));
  }
  auto lib = std::unique_ptr<NvmlLibrary>(new NvmlLibrary(path, handle));
  struct Entry {
    const char* name;
    bool ok;
  };
  const Entry entries[] = {
      {"nvmlInit_v2", Resolve(handle, "nvmlInit_v2", &lib->init)},
      {"nvmlShutdown", Resolve(handle, "nvmlShutdown", &lib->shutdown)},
      {"nvmlErrorString", Resolve(handle, "nvmlErrorString", &lib->error_string)},
      {"nvmlDeviceGetCount_v2", Resolve(handle, "nvmlDeviceGetCount_v2", &lib->device_count)},
      {"nvmlDeviceGetHandleByIndex_v2",
       Resolve(handle, "nvmlDeviceGetHandleByIndex_v2", &lib->device_handle)},
      {"nvmlDeviceGetMemoryInfo", Resolve(handle, "nvmlDeviceGetMemoryInfo", &lib->memory_info)},
      {"nvmlDeviceGetComputeRunningProcesses_v3",
       Resolve(handle, "nvmlDeviceGetComputeRunningProcesses_v3", &lib->compute_processes)},
      {"nvmlDeviceGetProcessUtilization",
       Resolve(handle, "nvmlDeviceGetProcessUtilization", &lib->process_utilization)},
      {"nvmlDeviceGetUtilizationRates",
       Resolve(handle, "nvmlDeviceGetUtilizationRates", &lib->utilization_rates)},
  };
  for (const Entry& e : entries) {
    if (!e.ok) {
      return absl::UnimplementedError(
          absl::StrCat(path, " has no ", e.name, " (an NVIDIA driver older than R510?)"));
    }
  }
  return lib;
}

NvmlLibrary::~NvmlLibrary() { ::dlclose(handle_); }

std::string NvmlLibrary::Describe(nvmlReturn_t code) const {
  const char* text = error_string != nullptr ? error_string(code) : nullptr;
  return absl::StrCat(text != nullptr ? text : "NVML error", " (", code, ")");
}

}  // namespace zeroscale::sidecar
