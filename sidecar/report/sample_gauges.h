// The sidecar's latest sample on its own /metrics: what it streamed to the scaler last
// (CPU, memory, disk, request rate, requests in flight, mean and p99 response time, and
// the GPU's use where the sample has it), as gauges named zeroscale_sidecar_<field>, so
// Prometheus sees per pod what the scaler decides on. Each gauge carries the pod's
// workload (--workload; Prometheus adds the pod's own labels when it scrapes), so
// dashboards can select pods by workload. Response times are in seconds (Prometheus' base
// unit; the sample has milliseconds).
//
// A gauge appears with the first sample that has its value (before it, not even its HELP
// and TYPE: prometheus-cpp leaves out families without series), so a pod that has not been
// sampled does not show 0 % CPU. The GPU gauges come and go with the GPU readings, so a GPU
// that can no longer be read leaves no stale value behind, and a pod without GPUs has none.
//
// Thread-safety: Record may be called from any thread (the sample loop in practice);
// scrapes read the registry concurrently, which prometheus-cpp allows.
#ifndef ZEROSCALE_SIDECAR_REPORT_SAMPLE_GAUGES_H_
#define ZEROSCALE_SIDECAR_REPORT_SAMPLE_GAUGES_H_

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/model/podmetric.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace zeroscale::sidecar {

class SampleGauges {
 public:
  // `registry` must outlive this. `workload` is the sidecar's (--workload), the label of
  // every gauge.
  SampleGauges(prometheus::Registry* registry, std::string workload);
  SampleGauges(const SampleGauges&) = delete;
  SampleGauges& operator=(const SampleGauges&) = delete;

  // The sample just taken, GPU readings included where it has them. Its workload is not
  // looked at (the constructor's is the label).
  void Record(const Podmetric& m);

 private:
  using Family = prometheus::Family<prometheus::Gauge>;

  const std::map<std::string, std::string> labels_;
  std::mutex mu_;
  std::vector<Family*> families_;             // one per sample field (sample_gauges.cc)
  std::vector<prometheus::Gauge*> children_;  // empty until the first sample
  Family& gpu_usage_;
  Family& gpu_memory_usage_;
  Family& gpu_memory_bytes_;
  prometheus::Gauge* gpu_usage_child_ = nullptr;
  prometheus::Gauge* gpu_memory_usage_child_ = nullptr;
  prometheus::Gauge* gpu_memory_bytes_child_ = nullptr;
};

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_REPORT_SAMPLE_GAUGES_H_
