// The admission webhook's AdmissionReview (and the pod's annotations within it): never
// crashes, always allows, and an injecting answer carries a JSON Patch that parses.
#include <cstdint>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "nlohmann/json.hpp"
#include "scaler/webhook/admission.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  zeroscale::webhook::InjectorOptions options;
  options.sidecar_image = "sidecar:fuzz";
  options.scaler_address = "scaler:9090";
  absl::StatusOr<zeroscale::webhook::AdmissionAnswer> answer =
      zeroscale::webhook::Admit(text, options);
  if (!answer.ok()) return 0;
  const nlohmann::json review = nlohmann::json::parse(answer->body, nullptr, false);
  if (review.is_discarded() || review["response"]["allowed"] != true) abort();
  if (answer->injection.inject) {
    std::string patch;
    if (!absl::Base64Unescape(review["response"]["patch"].get<std::string>(), &patch)) abort();
    if (nlohmann::json::parse(patch, nullptr, false).is_discarded()) abort();
  }
  return 0;
}
