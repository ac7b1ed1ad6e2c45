// A stand-in for libnvidia-ml.so.1, built by the tests (no GPU on the test machines): it
// exports the NVML entry points the sidecar resolves, with the ABI of
// sidecar/gpu/nvml_abi.h, and answers from a text file named by the environment variable
// FAKE_NVML_CONFIG, re-read on every call so a test changes the "GPUs" between samples:
//
//   init_error CODE             nvmlInit_v2 returns CODE
//   lost 1                      every device call returns NVML_ERROR_GPU_IS_LOST
//   device TOTAL_BYTES [util PCT] [no_process_util]
//                               one GPU per line, indexed in order
//   process DEV PID BYTES|na    a compute process on GPU DEV
//   processes DEV COUNT FIRST_PID BYTES
//                               COUNT processes with consecutive PIDs (oversize lists)
//   sample DEV PID SM_PCT TIMESTAMP_US|now
//                               a utilisation sample ("now": the current time, so every
//                               read sees a new one)
//
// Also exports fake_nvml_init_calls() and fake_nvml_live() (inits not shut down) for the
// tests to check how the sampler drives the library. Thread-safe (one lock).
#include <sys/time.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "sidecar/gpu/nvml_abi.h"

namespace {

struct Device {
  unsigned long long total = 0;  // NOLINT
  unsigned int util = 0;
  bool process_util = true;
  std::vector<nvmlProcessInfo_t> processes;
  std::vector<nvmlProcessUtilizationSample_t> samples;
};

struct Config {
  int init_error = 0;
  bool lost = false;
  std::vector<Device> devices;
};

std::mutex mu;
int init_calls = 0;
int live = 0;

unsigned long long NowMicros() {  // NOLINT
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  return static_cast<unsigned long long>(tv.tv_sec) * 1000000ULL + tv.tv_usec;  // NOLINT
}

Config Load() {
  Config c;
  const char* path = std::getenv("FAKE_NVML_CONFIG");
  if (path == nullptr) return c;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string kind;
    words >> kind;
    if (kind == "init_error") {
      words >> c.init_error;
    } else if (kind == "lost") {
      int v = 0;
      words >> v;
      c.lost = v != 0;
    } else if (kind == "device") {
      Device d;
      words >> d.total;
      std::string opt;
      while (words >> opt) {
        if (opt == "util") words >> d.util;
        if (opt == "no_process_util") d.process_util = false;
      }
      c.devices.push_back(d);
    } else if (kind == "process" || kind == "processes" || kind == "sample") {
      size_t dev = 0;
      words >> dev;
      if (dev >= c.devices.size()) continue;
      Device& d = c.devices[dev];
      if (kind == "process") {
        nvmlProcessInfo_t p{};
        std::string bytes;
        words >> p.pid >> bytes;
        p.usedGpuMemory = bytes == "na" ? NVML_VALUE_NOT_AVAILABLE : std::stoull(bytes);
        d.processes.push_back(p);
      } else if (kind == "processes") {
        unsigned int count = 0, first = 0;
        unsigned long long bytes = 0;  // NOLINT
        words >> count >> first >> bytes;
        for (unsigned int i = 0; i < count; ++i) d.processes.push_back({first + i, bytes, 0, 0});
      } else {
        nvmlProcessUtilizationSample_t s{};
        std::string ts;
        words >> s.pid >> s.smUtil >> ts;
        s.timeStamp = ts == "now" ? NowMicros() : std::stoull(ts);
        d.samples.push_back(s);
      }
    }
  }
  return c;
}

// The device a handle stands for: handles are index + 1.
nvmlReturn_t Find(const Config& c, nvmlDevice_t handle, const Device** out) {
  if (c.lost) return NVML_ERROR_GPU_IS_LOST;
  if (live <= 0) return NVML_ERROR_UNINITIALIZED;
  const auto index = reinterpret_cast<uintptr_t>(handle);
  if (index == 0 || index > c.devices.size()) return NVML_ERROR_INVALID_ARGUMENT;
  *out = &c.devices[index - 1];
  return NVML_SUCCESS;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int fake_nvml_init_calls() {
  std::lock_guard<std::mutex> lock(mu);
  return init_calls;
}

__attribute__((visibility("default"))) int fake_nvml_live() {
  std::lock_guard<std::mutex> lock(mu);
  return live;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlInit_v2() {
  std::lock_guard<std::mutex> lock(mu);
  ++init_calls;
  const Config c = Load();
  if (c.init_error != 0) return c.init_error;
  ++live;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlShutdown() {
  std::lock_guard<std::mutex> lock(mu);
  if (live <= 0) return NVML_ERROR_UNINITIALIZED;
  --live;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) const char* nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case NVML_SUCCESS:
      return "Success";
    case NVML_ERROR_UNINITIALIZED:
      return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
      return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED:
      return "Not Supported";
    case NVML_ERROR_NOT_FOUND:
      return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE:
      return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED:
      return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST:
      return "GPU is lost";
    default:
      return "Unknown Error";
  }
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  std::lock_guard<std::mutex> lock(mu);
  if (live <= 0) return NVML_ERROR_UNINITIALIZED;
  *count = static_cast<unsigned int>(Load().devices.size());
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(
    unsigned int index, nvmlDevice_t* device) {
  std::lock_guard<std::mutex> lock(mu);
  const Config c = Load();
  if (c.lost) return NVML_ERROR_GPU_IS_LOST;
  if (live <= 0) return NVML_ERROR_UNINITIALIZED;
  if (index >= c.devices.size()) return NVML_ERROR_INVALID_ARGUMENT;
  *device = reinterpret_cast<nvmlDevice_t>(static_cast<uintptr_t>(index) + 1);
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device,
                                                                            nvmlMemory_t* memory) {
  std::lock_guard<std::mutex> lock(mu);
  const Config c = Load();
  const Device* d = nullptr;
  if (nvmlReturn_t r = Find(c, device, &d); r != NVML_SUCCESS) return r;
  unsigned long long used = 0;  // NOLINT
  for (const nvmlProcessInfo_t& p : d->processes) {
    if (p.usedGpuMemory != NVML_VALUE_NOT_AVAILABLE) used += p.usedGpuMemory;
  }
  *memory = {d->total, d->total > used ? d->total - used : 0, used};
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(
    nvmlDevice_t device, unsigned int* count, nvmlProcessInfo_t* infos) {
  std::lock_guard<std::mutex> lock(mu);
  const Config c = Load();
  const Device* d = nullptr;
  if (nvmlReturn_t r = Find(c, device, &d); r != NVML_SUCCESS) return r;
  const auto n = static_cast<unsigned int>(d->processes.size());
  if (infos == nullptr || *count < n) {
    *count = n;
    return n == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (unsigned int i = 0; i < n; ++i) infos[i] = d->processes[i];
  *count = n;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetProcessUtilization(
    nvmlDevice_t device, nvmlProcessUtilizationSample_t* utilization, unsigned int* count,
    unsigned long long last_seen) {  // NOLINT
  std::lock_guard<std::mutex> lock(mu);
  const Config c = Load();
  const Device* d = nullptr;
  if (nvmlReturn_t r = Find(c, device, &d); r != NVML_SUCCESS) return r;
  if (!d->process_util) return NVML_ERROR_NOT_SUPPORTED;
  std::vector<nvmlProcessUtilizationSample_t> fresh;
  for (const nvmlProcessUtilizationSample_t& s : d->samples) {
    if (s.timeStamp > last_seen) fresh.push_back(s);
  }
  if (fresh.empty()) return NVML_ERROR_NOT_FOUND;
  const auto n = static_cast<unsigned int>(fresh.size());
  if (utilization == nullptr || *count < n) {
    *count = n;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (unsigned int i = 0; i < n; ++i) utilization[i] = fresh[i];
  *count = n;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetUtilizationRates(
    nvmlDevice_t device, nvmlUtilization_t* util) {
  std::lock_guard<std::mutex> lock(mu);
  const Config c = Load();
  const Device* d = nullptr;
  if (nvmlReturn_t r = Find(c, device, &d); r != NVML_SUCCESS) return r;
  *util = {d->util, 0};
  return NVML_SUCCESS;
}

}  // extern "C"
