// The few NVML types, constants and function signatures the sidecar uses, declared here
// because Debian main ships no NVML header (it lives in the non-free CUDA toolkit). They
// follow NVML's documented, stable C ABI (NVML API Reference, "nvml.h" of the CUDA
// toolkit 11.x-12.x): the return codes of nvmlReturn_t, nvmlMemory_t,
// nvmlUtilization_t, nvmlProcessInfo_t (the struct of the *_v3 process queries, since
// R510) and nvmlProcessUtilizationSample_t. Only what is used is declared; nothing here
// is NVIDIA's header text. Also the ABI the tests' fake library implements.
//
// Plain declarations; thread-safe.
#ifndef ZEROSCALE_SIDECAR_GPU_NVML_ABI_H_
#define ZEROSCALE_SIDECAR_GPU_NVML_ABI_H_

extern "C" {

// nvmlReturn_t: an enum in NVML, passed as a C int.
typedef int nvmlReturn_t;
inline constexpr nvmlReturn_t NVML_SUCCESS = 0;
inline constexpr nvmlReturn_t NVML_ERROR_UNINITIALIZED = 1;
inline constexpr nvmlReturn_t NVML_ERROR_INVALID_ARGUMENT = 2;
inline constexpr nvmlReturn_t NVML_ERROR_NOT_SUPPORTED = 3;
inline constexpr nvmlReturn_t NVML_ERROR_NO_PERMISSION = 4;
inline constexpr nvmlReturn_t NVML_ERROR_NOT_FOUND = 6;
inline constexpr nvmlReturn_t NVML_ERROR_INSUFFICIENT_SIZE = 7;
inline constexpr nvmlReturn_t NVML_ERROR_DRIVER_NOT_LOADED = 9;
inline constexpr nvmlReturn_t NVML_ERROR_GPU_IS_LOST = 15;
inline constexpr nvmlReturn_t NVML_ERROR_UNKNOWN = 999;

// usedGpuMemory when the driver cannot tell (no permission, Windows WDDM).
inline constexpr unsigned long long NVML_VALUE_NOT_AVAILABLE = ~0ULL;  // NOLINT

// An opaque device handle.
typedef struct nvmlDevice_st* nvmlDevice_t;

typedef struct nvmlMemory_st {
  unsigned long long total;  // bytes  NOLINT
  unsigned long long free;   // NOLINT
  unsigned long long used;   // NOLINT
} nvmlMemory_t;

typedef struct nvmlUtilization_st {
  unsigned int gpu;     // percent of the last sample period a kernel ran
  unsigned int memory;  // percent of it the memory was read or written
} nvmlUtilization_t;

// The element of nvmlDeviceGetComputeRunningProcesses_v3.
typedef struct nvmlProcessInfo_st {
  unsigned int pid;
  unsigned long long usedGpuMemory;  // bytes, or NVML_VALUE_NOT_AVAILABLE  NOLINT
  unsigned int gpuInstanceId;        // MIG only
  unsigned int computeInstanceId;    // MIG only
} nvmlProcessInfo_t;

// The element of nvmlDeviceGetProcessUtilization: one per process that had non-zero
// utilisation since lastSeenTimeStamp.
typedef struct nvmlProcessUtilizationSample_st {
  unsigned int pid;
  unsigned long long timeStamp;  // CPU time, microseconds  NOLINT
  unsigned int smUtil;           // percent
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

// The entry points resolved with dlsym, by these exact names.
typedef nvmlReturn_t (*nvmlInit_v2_fn)(void);
typedef nvmlReturn_t (*nvmlShutdown_fn)(void);
typedef const char* (*nvmlErrorString_fn)(nvmlReturn_t);
typedef nvmlReturn_t (*nvmlDeviceGetCount_v2_fn)(unsigned int*);
typedef nvmlReturn_t (*nvmlDeviceGetHandleByIndex_v2_fn)(unsigned int, nvmlDevice_t*);
typedef nvmlReturn_t (*nvmlDeviceGetMemoryInfo_fn)(nvmlDevice_t, nvmlMemory_t*);
typedef nvmlReturn_t (*nvmlDeviceGetComputeRunningProcesses_v3_fn)(nvmlDevice_t, unsigned int*,
                                                                   nvmlProcessInfo_t*);
typedef nvmlReturn_t (*nvmlDeviceGetProcessUtilization_fn)(nvmlDevice_t,
                                                           nvmlProcessUtilizationSample_t*,
                                                           unsigned int*,
                                                           unsigned long long);  // NOLINT
typedef nvmlReturn_t (*nvmlDeviceGetUtilizationRates_fn)(nvmlDevice_t, nvmlUtilization_t*);

}  // extern "C"

#endif  // ZEROSCALE_SIDECAR_GPU_NVML_ABI_H_
