#include "sidecar/report/sample_gauges.h"

#include <iterator>
#include <utility>

namespace zeroscale::sidecar {

namespace {

// One gauge: its name, help, and how it reads a sample.
struct Field {
  const char* name;
  const char* help;
  double (*value)(const Podmetric&);
};

// The sample's fields, in the order of SPEC.md's Podmetric.
const Field kFields[] = {
    {"zeroscale_sidecar_cpu_usage_percent",
     "CPU used over the last sample interval, percent of the app's limit (cpuUsage)",
     [](const Podmetric& m) { return m.cpu_usage; }},
    {"zeroscale_sidecar_cpu_cores", "CPU used over the last sample interval, in cores",
     [](const Podmetric& m) { return m.cpu_cores; }},
    {"zeroscale_sidecar_memory_usage_percent",
     "Memory in use at the last sample, percent of the app's limit (memoryUsage)",
     [](const Podmetric& m) { return m.memory_usage; }},
    {"zeroscale_sidecar_memory_bytes", "Memory in use at the last sample",
     [](const Podmetric& m) { return m.memory_bytes; }},
    {"zeroscale_sidecar_disk_usage_percent",
     "Disk space in use at the last sample, percent of the watched filesystems (diskUsage)",
     [](const Podmetric& m) { return m.disk_usage; }},
    {"zeroscale_sidecar_disk_bytes", "Disk space in use at the last sample",
     [](const Podmetric& m) { return m.disk_bytes; }},
    {"zeroscale_sidecar_requests_per_second",
     "Requests through the sidecar's proxy over the last sample interval, per second",
     [](const Podmetric& m) { return m.request_rate; }},
    {"zeroscale_sidecar_in_flight_requests",
     "Requests in flight through the proxy, averaged over the last sample interval",
     [](const Podmetric& m) { return m.in_flight; }},
    {"zeroscale_sidecar_average_response_time_seconds",
     "Mean response time of the requests of the last sample interval (averageResponseTime)",
     [](const Podmetric& m) { return m.average_response_time / 1000; }},
    {"zeroscale_sidecar_p99_response_time_seconds",
     "99th percentile response time of the requests of the last sample interval",
     [](const Podmetric& m) { return m.p99_response_time / 1000; }},
};

// Sets the child of `family` to `value`, adding it when it appears and removing it when the
// value goes away.
void SetOptional(prometheus::Family<prometheus::Gauge>& family, prometheus::Gauge** child,
                 const std::map<std::string, std::string>& labels,
                 const std::optional<double>& value) {
  if (!value) {
    if (*child != nullptr) family.Remove(*child);
    *child = nullptr;
    return;
  }
  if (*child == nullptr) *child = &family.Add(labels);
  (*child)->Set(*value);
}

}  // namespace

SampleGauges::SampleGauges(prometheus::Registry* registry, std::string workload)
    : labels_({{"workload", std::move(workload)}}),
      gpu_usage_(prometheus::BuildGauge()
                     .Name("zeroscale_sidecar_gpu_usage_percent")
                     .Help("GPU compute in use over the last sample interval, percent "
                           "(absent without GPU readings)")
                     .Register(*registry)),
      gpu_memory_usage_(prometheus::BuildGauge()
                            .Name("zeroscale_sidecar_gpu_memory_usage_percent")
                            .Help("GPU memory in use at the last sample, percent of the "
                                  "GPUs' memory (absent without GPU readings)")
                            .Register(*registry)),
      gpu_memory_bytes_(prometheus::BuildGauge()
                            .Name("zeroscale_sidecar_gpu_memory_bytes")
                            .Help("GPU memory in use at the last sample (absent without GPU "
                                  "readings)")
                            .Register(*registry)) {
  for (const Field& f : kFields) {
    families_.push_back(&prometheus::BuildGauge().Name(f.name).Help(f.help).Register(*registry));
  }
}

void SampleGauges::Record(const Podmetric& m) {
  std::lock_guard<std::mutex> lock(mu_);
  if (children_.empty()) {
    for (Family* family : families_) children_.push_back(&family->Add(labels_));
  }
  for (size_t i = 0; i < std::size(kFields); ++i) children_[i]->Set(kFields[i].value(m));
  SetOptional(gpu_usage_, &gpu_usage_child_, labels_, m.gpu_usage);
  SetOptional(gpu_memory_usage_, &gpu_memory_usage_child_, labels_, m.gpu_memory_usage);
  SetOptional(gpu_memory_bytes_, &gpu_memory_bytes_child_, labels_, m.gpu_memory_bytes);
}

}  // namespace zeroscale::sidecar
