// A parser of the Prometheus text exposition format (version 0.0.4), for reading what a
// model server (vLLM, TGI, Triton...) publishes on its /metrics endpoint. prometheus-cpp
// only writes the format, so this small line parser is written once here, with a fuzz
// target (fuzz/prom_text.cc).
//
// Lines are `name{label="value",...} value [timestamp]`, `# HELP name text`,
// `# TYPE name type`, other `#` comments (ignored) and blank lines. Values may be NaN,
// +Inf and -Inf; label values may escape `\\`, `\"` and `\n`. The input is hostile: total
// size, line length, sample count and labels per sample are bounded, and an error names the
// line number. Never throws (short of allocation failure) and never reads out of bounds.
// Label values are not checked for valid UTF-8.
//
// Pure functions; thread-safe.
#ifndef ZEROSCALE_COMMON_PROM_TEXT_PARSER_H_
#define ZEROSCALE_COMMON_PROM_TEXT_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zeroscale::prom {

struct ParseLimits {
  size_t max_bytes = 4 << 20;        // the whole text (vLLM's /metrics is ~50 KiB)
  size_t max_line_bytes = 16 << 10;  // one line, without its newline
  size_t max_samples = 20000;        // sample lines
  size_t max_labels = 32;            // label pairs on one sample
  size_t max_metadata = 20000;       // # HELP and # TYPE lines
};

struct Sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // in the order written
  double value = 0;                                         // may be NaN or +-Inf
  std::optional<int64_t> timestamp_ms;
};

// One `# TYPE` or `# HELP` line.
struct Metadata {
  enum class Kind { kHelp, kType };
  Kind kind = Kind::kHelp;
  std::string name;
  std::string text;  // the type ("gauge", ...) or the unescaped help text
};

// Reports each sample, in order, to `on_sample` (and each # HELP / # TYPE line to
// `on_metadata` when given). Stops at the first error: kInvalidArgument for a syntax error,
// kResourceExhausted for a bound exceeded; the message starts with "line N: ". Samples
// reported before an error are not taken back: callers that want all-or-nothing collect
// and discard on error.
absl::Status ParseText(absl::string_view text, const ParseLimits& limits,
                       const std::function<void(Sample&&)>& on_sample,
                       const std::function<void(Metadata&&)>& on_metadata = nullptr);

// All samples, or the first error.
absl::StatusOr<std::vector<Sample>> ParseSamples(absl::string_view text,
                                                 const ParseLimits& limits = {});

// Whether `name` is a valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool IsMetricName(absl::string_view name);

}  // namespace zeroscale::prom

#endif  // ZEROSCALE_COMMON_PROM_TEXT_PARSER_H_
