#include "common/prom/presets.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/model/scaling_rule.h"

namespace zeroscale::prom {
namespace {

struct Preset {
  const char* name;
  std::vector<std::string> series;
};

const std::vector<Preset>& Presets() {
  static const auto* presets = new std::vector<Preset>{
      // vLLM: scheduler queue and KV-cache use. vLLM 0.10+ (V1 engine) renamed
      // gpu_cache_usage_perc to kv_cache_usage_perc; whichever the server exposes is sent.
      {"vllm",
       {"vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:gpu_cache_usage_perc",
        "vllm:kv_cache_usage_perc"}},
      // Hugging Face Text Generation Inference: requests queued, and the running batch.
      {"tgi", {"tgi_queue_size", "tgi_batch_current_size"}},
      // NVIDIA Triton: requests awaiting execution (per model), and GPU utilisation (0-1).
      {"triton", {"nv_inference_pending_request_count", "nv_gpu_utilization"}},
  };
  return *presets;
}

}  // namespace

const std::vector<std::string>& AppMetricsPresetNames() {
  static const auto* names = [] {
    auto* n = new std::vector<std::string>;
    for (const Preset& p : Presets()) n->push_back(p.name);
    return n;
  }();
  return *names;
}

absl::StatusOr<std::vector<std::string>> AppMetricsPresetSeries(absl::string_view preset) {
  if (preset.empty()) return std::vector<std::string>{};
  for (const Preset& p : Presets()) {
    if (preset == p.name) return p.series;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown app metrics preset \"", preset, "\" (one of ",
                   absl::StrJoin(AppMetricsPresetNames(), ", "), ")"));
}

absl::StatusOr<std::vector<std::string>> SeriesToForward(absl::string_view preset,
                                                         absl::string_view extra,
                                                         size_t max_series) {
  absl::StatusOr<std::vector<std::string>> series = AppMetricsPresetSeries(preset);
  if (!series.ok()) return series.status();
  for (absl::string_view name : absl::StrSplit(extra, ',', absl::SkipWhitespace())) {
    name = absl::StripAsciiWhitespace(name);
    if (!IsAppMetricName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("app metrics series \"", name.substr(0, 64),
                       "\": not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, at most ",
                       kMaxAppMetricNameLength, " bytes)"));
    }
    if (std::find(series->begin(), series->end(), name) == series->end()) {
      series->emplace_back(name);
    }
  }
  if (series->size() > max_series) {
    return absl::InvalidArgumentError(
        absl::StrCat(series->size(), " app metrics series: at most ", max_series));
  }
  return series;
}

}  // namespace zeroscale::prom
