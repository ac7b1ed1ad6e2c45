// Prometheus text exposition (a model server's /metrics, scraped by the sidecar): parsing
// never crashes, errors name a line, and every sample it reports has a valid metric name.
#include <cstdint>
#include <cstdlib>

#include "absl/strings/match.h"
#include "common/prom/text_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  zeroscale::prom::ParseLimits limits;
  limits.max_samples = 1000;
  limits.max_labels = 8;
  const absl::Status st = zeroscale::prom::ParseText(
      text, limits,
      [](zeroscale::prom::Sample&& s) {
        if (!zeroscale::prom::IsMetricName(s.name)) abort();
        if (s.labels.size() > 8) abort();
      },
      [](zeroscale::prom::Metadata&& m) {
        if (!zeroscale::prom::IsMetricName(m.name)) abort();
      });
  if (!st.ok() && !absl::StartsWith(st.message(), "line ") &&
      !absl::StartsWith(st.message(), "exposition of ")) {
    abort();  // every error says where
  }
  return 0;
}
