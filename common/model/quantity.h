// Kubernetes resource quantities ("500m", "2", "16Gi", "1.5e3", "100M") read exactly, the
// way resource.Quantity reads them, into whole milli-units: cpu "500m" is 500, memory
// "1Ki" is 1024000, nvidia.com/gpu "2" is 2000. Amounts finer than a milli-unit are
// rounded up, as Quantity.MilliValue() does. Bounded: at most 18 significant digits, an
// exponent within +-30, a result of at most kMaxQuantityMilli; negative amounts are
// refused (requests and limits cannot be negative). Pure functions; thread-safe.
#ifndef ZEROSCALE_COMMON_MODEL_QUANTITY_H_
#define ZEROSCALE_COMMON_MODEL_QUANTITY_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zeroscale {

// 2^62 milli-units: 4.6e15 units (4 PiB of memory, 4.6e15 cores); sums of a few of
// them still fit in an int64.
inline constexpr int64_t kMaxQuantityMilli = int64_t{1} << 62;

// Amounts by resource name ("cpu", "memory", "nvidia.com/gpu"), in milli-units.
using ResourceAmounts = std::map<std::string, int64_t>;

// kInvalidArgument saying what is wrong with `text` (not naming a field: callers do).
absl::StatusOr<int64_t> ParseQuantityMilli(absl::string_view text);

// For messages: "500m", "2", "16Gi" (memory in binary units when exact), "1.5".
std::string FormatQuantityMilli(absl::string_view resource, int64_t milli);

// Whether `name` is an extended resource (a domain-prefixed name that is not in the
// kubernetes.io domain, e.g. "nvidia.com/gpu"), which the scheduler accounts per node
// exactly and nothing overcommits.
bool IsExtendedResource(absl::string_view name);

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_MODEL_QUANTITY_H_
