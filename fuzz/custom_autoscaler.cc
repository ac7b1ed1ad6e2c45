// The Kubernetes objects the scaler reads as the API server (or anyone who may write
// one) sends them: CustomAutoscalers alone and in a list, EndpointSlices, and what the
// allocation limits read (AllocationPolicies, Pods, Nodes, a workload's pod template, a
// bare quantity): parsing never crashes.
#include <cstdint>

#include "common/kube/types.h"
#include "common/model/quantity.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  (void)zeroscale::kube::CustomAutoscalerFromJson(text);
  (void)zeroscale::kube::CustomAutoscalerListFromJson(text);
  (void)zeroscale::kube::EndpointSliceFromJson(text);
  (void)zeroscale::kube::AllocationPolicyFromJson(text);
  (void)zeroscale::kube::PodFromJson(text);
  (void)zeroscale::kube::NodeFromJson(text);
  (void)zeroscale::kube::PodTemplateRequestsFromJson(text);
  (void)zeroscale::ParseQuantityMilli(text);
  return 0;
}
