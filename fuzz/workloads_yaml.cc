// The local backend's workloads file (YAML, also the balancer's routes file): parsing
// and validation never crash.
#include <cstdint>

#include "common/workloads/workloads.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  (void)zeroscale::workloads::ParseWorkloads(text, "fuzz.yaml");
  return 0;
}
