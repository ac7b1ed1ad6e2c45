// ScalingRule JSON (RulesService, workloads files, CustomAutoscalers): parsing never
// crashes, and a valid rule renders to JSON that parses back to the same rule.
#include <cstdint>
#include <cstdlib>

#include "common/model/scaling_rule.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<zeroscale::ScalingRule> rule = zeroscale::ScalingRuleFromJson(text);
  if (!rule.ok() || !zeroscale::ValidateScalingRule(*rule).ok()) return 0;
  absl::StatusOr<zeroscale::ScalingRule> again =
      zeroscale::ScalingRuleFromJson(zeroscale::ScalingRuleToJson(*rule));
  if (!again.ok() || !zeroscale::ValidateScalingRule(*again).ok()) abort();
  if (zeroscale::ScalingRuleToJson(*again) != zeroscale::ScalingRuleToJson(*rule)) abort();
  return 0;
}
