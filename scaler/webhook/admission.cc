#include "scaler/webhook/admission.h"

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/json/bounded_json.h"
#include "common/status/quote.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace zeroscale::webhook {
namespace {

using json = nlohmann::json;
using zeroscale::json::ParseJson;

constexpr char kApiVersion[] = "admission.k8s.io/v1";
// One pod: the API server's own request limit is 3 MiB (the server refuses more anyway).
constexpr zeroscale::json::JsonLimits kReviewLimits{4 << 20, 64};

const json* Find(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("not an ", kApiVersion, " AdmissionReview: ", what));
}

// A string member of `j`, or an error naming `field`.
absl::StatusOr<std::string> RequiredString(const json& j, const char* key,
                                           absl::string_view field) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return Invalid(absl::StrCat(field, " is missing or not a string"));
  }
  return it->get<std::string>();
}

// An optional string member of `j` ("" when absent or null), or an error naming `field`
// when it is something else: the value of any member may be any JSON type.
absl::StatusOr<std::string> OptionalString(const json& j, const char* key,
                                           absl::string_view field) {
  if (!j.is_object()) return std::string();
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Invalid(absl::StrCat(field, " is not a string"));
  return it->get<std::string>();
}

// A pod shape this code did not expect: never worth blocking pod creation over.
void AllowUnchanged(absl::string_view why, AdmissionAnswer* answer) {
  answer->error = std::string(why);
  answer->injection = Injection();
  answer->injection.skip_reason = "error";
  answer->injection.warnings.push_back(
      absl::StrCat("zeroscale sidecar not injected: unexpected pod: ", why));
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
  json doc;
  if (absl::Status s = ParseJson(review, kReviewLimits, &doc, "the body"); !s.ok()) {
    return Invalid(s.message());
  }
  if (!doc.is_object()) return Invalid("the body is not a JSON object");
  ZS_ASSIGN_OR_RETURN(const std::string api_version,
                      RequiredString(doc, "apiVersion", "apiVersion"));
  if (api_version != kApiVersion)
    return Invalid(absl::StrCat("apiVersion is ", Quote(api_version)));
  ZS_ASSIGN_OR_RETURN(const std::string review_kind, OptionalString(doc, "kind", "kind"));
  if (review_kind != "AdmissionReview") return Invalid("kind is not AdmissionReview");
  auto request = doc.find("request");
  if (request == doc.end() || !request->is_object()) return Invalid("request is missing");
  ZS_ASSIGN_OR_RETURN(const std::string uid, RequiredString(*request, "uid", "request.uid"));
  const json* kind = Find(*request, "kind");
  static const json kNoKind = json::object();
  ZS_ASSIGN_OR_RETURN(const std::string kind_name,
                      OptionalString(kind ? *kind : kNoKind, "kind", "request.kind.kind"));
  ZS_ASSIGN_OR_RETURN(const std::string group,
                      OptionalString(kind ? *kind : kNoKind, "group", "request.kind.group"));
  if (kind_name != "Pod" || !group.empty()) {
    return Invalid(absl::StrCat("request.kind is ",
                                Quote(absl::StrCat(group, group.empty() ? "" : "/", kind_name)),
                                ", not a core Pod"));
  }
  ZS_ASSIGN_OR_RETURN(const std::string ns,
                      OptionalString(*request, "namespace", "request.namespace"));
  ZS_ASSIGN_OR_RETURN(const std::string operation,
                      OptionalString(*request, "operation", "request.operation"));
  AdmissionAnswer answer;
  if (operation != "CREATE") {
    answer.injection.skip_reason = "not_create";
    answer.body = Render(uid, answer.injection);
    return answer;
  }
  const json* pod = Find(*request, "object");
  if (pod == nullptr || !pod->is_object()) return Invalid("request.object is not a Pod");
  ZS_ASSIGN_OR_RETURN(const std::string pod_kind,
                      OptionalString(*pod, "kind", "request.object.kind"));
  if (Find(*pod, "kind") != nullptr && pod_kind != "Pod") {
    return Invalid("request.object.kind is not Pod");
  }
  const json* metadata = Find(*pod, "metadata");
  static const json kNoMetadata = json::object();
  const json& meta = metadata != nullptr ? *metadata : kNoMetadata;
  absl::StatusOr<std::string> name = OptionalString(meta, "name", "request.object.metadata.name");
  if (name.ok() && name->empty()) {
    name = OptionalString(meta, "generateName", "request.object.metadata.generateName");
  }
  // For logs only: names are at most 63 and 253 bytes, but these are not checked yet.
  answer.pod = absl::StrCat(Shorten(ns, 63), "/", Shorten(name.ok() ? *name : "", 253));
  if (!name.ok()) {
    AllowUnchanged(name.status().message(), &answer);
  } else {
    try {
      answer.injection = PlanInjection(*pod, ns, options);
    } catch (const std::exception& e) {
      AllowUnchanged(e.what(), &answer);
    }
  }
  answer.body = Render(uid, answer.injection);
  return answer;
}

}  // namespace zeroscale::webhook
