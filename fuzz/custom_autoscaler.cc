// The CustomAutoscaler resource as the API server (or anyone who may write one) sends
// it, alone and in a list: parsing never crashes.
#include <cstdint>

#include "common/kube/types.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  (void)zeroscale::kube::CustomAutoscalerFromJson(text);
  (void)zeroscale::kube::CustomAutoscalerListFromJson(text);
  (void)zeroscale::kube::EndpointSliceFromJson(text);
  return 0;
}
