#include "scaler/webhook/admission.h"

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace zeroscale::webhook {
namespace {

using json = nlohmann::json;

constexpr char kApiVersion[] = "admission.k8s.io/v1";

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("not an ", kApiVersion, " AdmissionReview: ", what));
}

// A string member of `j`, or an error naming `field`.
absl::StatusOr<std::string> RequiredString(const json& j, const char* key,
                                           absl::string_view field) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) {
    return Invalid(absl::StrCat(field, " is missing or not a string"));
  }
  return it->get<std::string>();
}

std::string Render(const std::string& uid, const Injection& injection) {
  json response = {{"uid", uid}, {"allowed", true}};
  if (injection.inject) {
    response["patchType"] = "JSONPatch";
    response["patch"] = absl::Base64Escape(injection.patch);
  }
  if (!injection.warnings.empty()) response["warnings"] = injection.warnings;
  const json review = {
      {"apiVersion", kApiVersion}, {"kind", "AdmissionReview"}, {"response", response}};
  return review.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

absl::StatusOr<AdmissionAnswer> Admit(absl::string_view review, const InjectorOptions& options) {
  const json doc = json::parse(review.begin(), review.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Invalid("the body is not JSON");
  if (!doc.is_object()) return Invalid("the body is not a JSON object");
  absl::StatusOr<std::string> api_version = RequiredString(doc, "apiVersion", "apiVersion");
  if (!api_version.ok()) return api_version.status();
  if (*api_version != kApiVersion) {
    return Invalid(absl::StrCat("apiVersion is \"", *api_version, "\""));
  }
  if (doc.value("kind", json()) != "AdmissionReview") return Invalid("kind is not AdmissionReview");
  auto request = doc.find("request");
  if (request == doc.end() || !request->is_object()) return Invalid("request is missing");
  absl::StatusOr<std::string> uid = RequiredString(*request, "uid", "request.uid");
  if (!uid.ok()) return uid.status();
  auto kind = request->find("kind");
  const std::string kind_name =
      kind != request->end() && kind->is_object() ? kind->value("kind", "") : "";
  const std::string group =
      kind != request->end() && kind->is_object() ? kind->value("group", "") : "";
  if (kind_name != "Pod" || !group.empty()) {
    return Invalid(absl::StrCat("request.kind is \"", group, group.empty() ? "" : "/", kind_name,
                                "\", not a core Pod"));
  }
  AdmissionAnswer answer;
  const std::string ns = request->value("namespace", "");
  if (request->value("operation", "") != "CREATE") {
    answer.injection.skip_reason = "not_create";
    answer.body = Render(*uid, answer.injection);
    return answer;
  }
  auto pod = request->find("object");
  if (pod == request->end() || !pod->is_object()) return Invalid("request.object is not a Pod");
  if (pod->contains("kind") && pod->value("kind", json()) != "Pod") {
    return Invalid("request.object.kind is not Pod");
  }
  try {
    const json metadata = pod->value("metadata", json::object());
    const std::string name = metadata.is_object() ? metadata.value("name", "") : "";
    answer.pod = absl::StrCat(
        ns, "/", name.empty() && metadata.is_object() ? metadata.value("generateName", "") : name);
    answer.injection = PlanInjection(*pod, ns, options);
  } catch (const std::exception& e) {
    // A pod shape this code did not expect: never worth blocking pod creation over.
    answer.error = e.what();
    answer.injection = Injection();
    answer.injection.skip_reason = "error";
    answer.injection.warnings.push_back(
        absl::StrCat("zeroscale sidecar not injected: unexpected pod: ", e.what()));
  }
  answer.body = Render(*uid, answer.injection);
  return answer;
}

}  // namespace zeroscale::webhook
