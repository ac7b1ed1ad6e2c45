#include "sidecar/gpu/gpu_sampler.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::sidecar {
namespace {

// First size of a process or sample buffer: a GPU rarely runs more compute processes.
constexpr size_t kInitialEntries = 32;
// Growth steps before giving up on a list that keeps growing under us.
constexpr int kMaxGrowths = 12;

// Calls `query(count*, data*)` into `buffer`, growing it on NVML_ERROR_INSUFFICIENT_SIZE up
// to `cap` entries. On success `buffer` holds exactly the entries written. Returns NVML's
// code; NVML_ERROR_INSUFFICIENT_SIZE still when `cap` does not suffice.
template <typename T, typename Query>
nvmlReturn_t ReadList(std::vector<T>& buffer, size_t cap, Query query) {
  size_t size = std::clamp(buffer.capacity(), std::min(kInitialEntries, cap), cap);
  for (int attempt = 0; attempt < kMaxGrowths; ++attempt) {
    buffer.resize(size);
    unsigned int count = static_cast<unsigned int>(size);
    const nvmlReturn_t r = query(&count, buffer.data());
    if (r == NVML_SUCCESS) {
      buffer.resize(std::min<size_t>(count, size));
      return r;
    }
    buffer.clear();
    if (r != NVML_ERROR_INSUFFICIENT_SIZE || size >= cap) return r;
    // NVML says how many it has; more may appear before the next call.
    size = std::min(cap, std::max<size_t>(static_cast<size_t>(count) + 8, size * 2));
  }
  return NVML_ERROR_INSUFFICIENT_SIZE;
}

// Errors that say "this GPU cannot do that", as opposed to "this GPU is gone".
bool NotSupported(nvmlReturn_t r) {
  return r == NVML_ERROR_NOT_SUPPORTED || r == NVML_ERROR_NO_PERMISSION;
}

}  // namespace

std::unique_ptr<GpuSampler> GpuSampler::Create(GpuSamplerOptions options, const Clock* clock) {
  auto sampler = std::unique_ptr<GpuSampler>(new GpuSampler(std::move(options), clock));
  absl::StatusOr<std::unique_ptr<NvmlLibrary>> lib = NvmlLibrary::Load(sampler->options_.library);
  if (!lib.ok()) {
    sampler->why_ = std::string(lib.status().message());
    ZS_LOG(kInfo, absl::StrCat("no GPU metrics: ", sampler->why_),
           {"library", sampler->options_.library});
    return sampler;
  }
  sampler->nvml_ = *std::move(lib);
  sampler->state_ = State::kRetrying;
  sampler->Init();
  return sampler;
}

GpuSampler::GpuSampler(GpuSamplerOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock), backoff_(options_.retry, options_.uniform) {}

GpuSampler::~GpuSampler() {
  if (initialized_) nvml_->shutdown();
}

void GpuSampler::Init() {
  const nvmlReturn_t r = nvml_->init();
  if (r != NVML_SUCCESS) return Fail(absl::StrCat("nvmlInit failed: ", nvml_->Describe(r)));
  initialized_ = true;
  unsigned int count = 0;
  if (nvmlReturn_t c = nvml_->device_count(&count); c != NVML_SUCCESS) {
    return Fail(absl::StrCat("cannot count GPUs: ", nvml_->Describe(c)));
  }
  if (count > options_.max_devices) {
    if (!capped_devices_logged_) {
      capped_devices_logged_ = true;
      ZS_LOG(kWarning, "more GPUs than are looked at; the others are left out",
             {"gpus", absl::StrCat(count)}, {"looked_at", absl::StrCat(options_.max_devices)});
    }
    count = static_cast<unsigned int>(options_.max_devices);
  }
  devices_.assign(count, Device{});
  for (unsigned int i = 0; i < count; ++i) {
    if (nvmlReturn_t h = nvml_->device_handle(i, &devices_[i].handle); h != NVML_SUCCESS) {
      return Fail(absl::StrCat("GPU ", i, ": ", nvml_->Describe(h)));
    }
  }
  state_ = State::kReady;
  why_.clear();
  backoff_.Reset();
  ZS_LOG(kInfo, failure_logged_ ? "GPU metrics available again" : "GPU metrics on",
         {"library", nvml_->path()}, {"gpus", absl::StrCat(count)});
  failure_logged_ = false;
}

void GpuSampler::Fail(const std::string& why) {
  const bool was_ready = state_ == State::kReady;
  why_ = why;
  if (initialized_) {
    nvml_->shutdown();
    initialized_ = false;
  }
  devices_.clear();
  state_ = State::kRetrying;
  const absl::Duration wait = backoff_.Next();
  next_init_ = clock_->Now() + wait;
  if (failure_logged_) return;
  failure_logged_ = true;
  if (was_ready) {
    ZS_LOG(kWarning, "GPU lost: samples carry no GPU data until NVML answers again", {"why", why},
           {"retry_in", absl::FormatDuration(wait)});
  } else {
    ZS_LOG(kInfo, absl::StrCat("no GPU metrics: ", why), {"library", nvml_->path()},
           {"retry_in", absl::FormatDuration(wait)});
  }
}

void GpuSampler::LogOnce(bool* flag, const std::string& message, unsigned int gpu) {
  if (*flag) return;
  *flag = true;
  ZS_LOG(kWarning, message, {"gpu", absl::StrCat(gpu)});
}

GpuSampler::ReadResult GpuSampler::ReadProcesses(Device& device, GpuReading& reading) {
  const nvmlReturn_t r = ReadList(reading.processes, options_.max_processes,
                                  [&](unsigned int* count, nvmlProcessInfo_t* data) {
                                    return nvml_->compute_processes(device.handle, count, data);
                                  });
  if (r == NVML_SUCCESS) {
    std::sort(reading.processes.begin(), reading.processes.end(),
              [](const nvmlProcessInfo_t& a, const nvmlProcessInfo_t& b) { return a.pid < b.pid; });
    return ReadResult::kOk;
  }
  if (r == NVML_ERROR_INSUFFICIENT_SIZE) {
    why_ = absl::StrCat("GPU ", reading.index, " runs more than ", options_.max_processes,
                        " compute processes");
    LogOnce(&oversize_logged_,
            "a GPU runs more compute processes than are read; samples "
            "carry no GPU data meanwhile",
            reading.index);
    return ReadResult::kSkip;
  }
  if (NotSupported(r)) {
    why_ = absl::StrCat("GPU ", reading.index, " lists no processes: ", nvml_->Describe(r));
    LogOnce(&no_process_list_logged_, absl::StrCat("no per-process GPU accounting: ", why_),
            reading.index);
    return ReadResult::kSkip;
  }
  why_ = absl::StrCat("GPU ", reading.index, ": ", nvml_->Describe(r));
  return ReadResult::kLost;
}

GpuSampler::ReadResult GpuSampler::ReadUsage(Device& device, GpuReading& reading) {
  nvmlMemory_t memory{};
  if (nvmlReturn_t r = nvml_->memory_info(device.handle, &memory); r == NVML_SUCCESS) {
    reading.memory_total = memory.total;
  } else if (!NotSupported(r)) {
    why_ = absl::StrCat("GPU ", reading.index, ": ", nvml_->Describe(r));
    return ReadResult::kLost;
  }
  if (device.per_process_util) {
    const nvmlReturn_t r =
        ReadList(reading.util_samples, options_.max_processes,
                 [&](unsigned int* count, nvmlProcessUtilizationSample_t* data) {
                   return nvml_->process_utilization(device.handle, data, count, device.last_seen);
                 });
    if (r == NVML_SUCCESS || r == NVML_ERROR_NOT_FOUND) {  // NOT_FOUND: no sample since
      for (const nvmlProcessUtilizationSample_t& s : reading.util_samples) {
        device.last_seen = std::max(device.last_seen, s.timeStamp);
      }
      std::sort(reading.util_samples.begin(), reading.util_samples.end(),
                [](const nvmlProcessUtilizationSample_t& a,
                   const nvmlProcessUtilizationSample_t& b) { return a.pid < b.pid; });
      reading.per_process_util = true;
      return ReadResult::kOk;
    }
    if (r == NVML_ERROR_INSUFFICIENT_SIZE) {
      // Utilisation unknown this time; memory still counts.
      LogOnce(&oversize_logged_,
              "a GPU has more utilisation samples than are read; its "
              "utilisation is left out meanwhile",
              reading.index);
      reading.per_process_util = false;
      return ReadResult::kOk;
    }
    if (!NotSupported(r)) {
      why_ = absl::StrCat("GPU ", reading.index, ": ", nvml_->Describe(r));
      return ReadResult::kLost;
    }
    // Older GPUs (before Maxwell) and some configurations: the whole GPU's figure.
    device.per_process_util = false;
    ZS_LOG(kInfo, "a GPU reports no per-process utilisation; its own utilisation stands in",
           {"gpu", absl::StrCat(reading.index)}, {"why", nvml_->Describe(r)});
  }
  reading.per_process_util = false;
  nvmlUtilization_t util{};
  if (nvmlReturn_t r = nvml_->utilization_rates(device.handle, &util); r == NVML_SUCCESS) {
    reading.device_util = util.gpu;
  } else if (!NotSupported(r)) {
    why_ = absl::StrCat("GPU ", reading.index, ": ", nvml_->Describe(r));
    return ReadResult::kLost;
  }
  return ReadResult::kOk;
}

GpuUsage GpuSampler::Sample(absl::Span<const int> pod_pids) {
  if (state_ == State::kNoLibrary) return {};
  if (state_ == State::kRetrying) {
    if (clock_->Now() < next_init_) return {};
    Init();
    if (state_ != State::kReady) return {};
  }
  why_.clear();
  pids_.assign(pod_pids.begin(), pod_pids.end());
  std::sort(pids_.begin(), pids_.end());
  readings_.resize(devices_.size());
  for (size_t i = 0; i < devices_.size(); ++i) {
    GpuReading& reading = readings_[i];
    reading.index = static_cast<unsigned int>(i);
    reading.memory_total = 0;
    reading.per_process_util = true;
    reading.util_samples.clear();
    reading.device_util.reset();
    ReadResult r = ReadProcesses(devices_[i], reading);
    if (r == ReadResult::kOk && PodUsesGpu(pids_, reading)) r = ReadUsage(devices_[i], reading);
    if (r == ReadResult::kLost) {
      Fail(why_);
      return {};
    }
    if (r == ReadResult::kSkip) return {};
  }
  GpuUsage usage = AccountPod(pids_, readings_);
  if (usage.unattributable_gpus > 0 && !unattributable_logged_) {
    unattributable_logged_ = true;
    ZS_LOG(kWarning,
           "GPU utilisation samples name none of the GPU's processes (the driver reports them "
           "in another PID namespace): gpuUsage is left out for that GPU");
  }
  return usage;
}

}  // namespace zeroscale::sidecar
