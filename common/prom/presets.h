// Which model-server series the sidecar forwards to the scaler: the built-in presets for
// well-known servers plus the series a workload names itself. Only gauges are in presets: a
// rule compares a value with a threshold, and a cumulative counter would only ever grow.
//
// Pure functions; thread-safe.
#ifndef ZEROSCALE_COMMON_PROM_PRESETS_H_
#define ZEROSCALE_COMMON_PROM_PRESETS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zeroscale::prom {

// "vllm", "tgi", "triton" (for flag help and the webhook's check of its annotation).
const std::vector<std::string>& AppMetricsPresetNames();

// The series of a preset; kInvalidArgument naming the preset when unknown. "" is no preset.
absl::StatusOr<std::vector<std::string>> AppMetricsPresetSeries(absl::string_view preset);

// The preset's series then the comma-separated `extra` ones, without repeats. Each must be
// a valid series name and there may be at most `max_series`; kInvalidArgument naming the
// bad name or the count.
absl::StatusOr<std::vector<std::string>> SeriesToForward(absl::string_view preset,
                                                         absl::string_view extra,
                                                         size_t max_series);

}  // namespace zeroscale::prom

#endif  // ZEROSCALE_COMMON_PROM_PRESETS_H_
