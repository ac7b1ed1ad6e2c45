// The one way zeroscale parses JSON it did not write itself: nlohmann's parser with a
// size limit and a nesting limit, so that no body can make a later recursive walk of the
// document (dump(), a copy, a comparison) overflow the stack, and no body is parsed whose
// size the caller did not expect. Errors name the limit and never echo more than a few
// bytes of the input.
//
// Thread-safety: pure functions.
#ifndef ZEROSCALE_COMMON_JSON_BOUNDED_JSON_H_
#define ZEROSCALE_COMMON_JSON_BOUNDED_JSON_H_

#include <cstddef>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace zeroscale::json {

struct JsonLimits {
  // Larger text is refused (kResourceExhausted) before it is parsed.
  size_t max_bytes = 4 << 20;
  // Arrays and objects nested deeper than this are refused (kInvalidArgument); the
  // document itself is level 1. Kubernetes objects (managedFields included) stay well
  // under 32 levels; the programs' own documents under 4.
  int max_depth = 32;
};

// Limits for the small documents of the programs' own APIs (Podmetric, ScalingRule,
// balancer settings): a few levels at most.
inline constexpr JsonLimits kSmallDocument{4 << 20, 8};
// Kubernetes API answers: lists of a large cluster run to tens of megabytes.
inline constexpr JsonLimits kKubernetesDocument{std::numeric_limits<size_t>::max(), 64};

// Parses `text` into `out` (any JSON value). `what` names the text in errors ("body",
// "response"): "body: not valid JSON: ...", "body: nested deeper than 8 levels (the
// limit)", "body: 5000000 bytes, more than the limit of 4194304".
absl::Status ParseJson(absl::string_view text, const JsonLimits& limits, nlohmann::json* out,
                       absl::string_view what = "body");

}  // namespace zeroscale::json

#endif  // ZEROSCALE_COMMON_JSON_BOUNDED_JSON_H_
