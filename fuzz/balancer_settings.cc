// PUT /loadbalancer/settings bodies: never crash; what is accepted renders and parses
// back to the same settings.
#include <cstdint>
#include <cstdlib>

#include "balancer/policy/settings.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const zeroscale::balancer::Settings current;
  absl::StatusOr<zeroscale::balancer::Settings> next =
      zeroscale::balancer::ApplySettingsJson(text, current);
  if (!next.ok()) return 0;
  absl::StatusOr<zeroscale::balancer::Settings> again =
      zeroscale::balancer::ApplySettingsJson(zeroscale::balancer::SettingsToJson(*next), current);
  if (!again.ok() || again->max_connections != next->max_connections ||
      again->policy != next->policy || again->environment != next->environment) {
    abort();
  }
  return 0;
}
