#include "common/kube/types.h"

#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/bounded_json.h"
#include "common/kube/json_internal.h"
#include "common/status/status_macros.h"
#include "common/time/clock.h"
#include "nlohmann/json.hpp"

namespace zeroscale::kube {
namespace {
using json = nlohmann::json;

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::StatusOr<json> Parse(absl::string_view text) {
  json j;
  ZS_RETURN_IF_ERROR(
      zeroscale::json::ParseJson(text, zeroscale::json::kKubernetesDocument, &j, "response"));
  if (!j.is_object()) return absl::InvalidArgumentError("response is not a JSON object");
  return j;
}

// The member `key` of `obj` when both exist and it is an object; else an empty object,
// since the server leaves out empty structs as readily as zero numbers.
const json& Obj(const json& obj, const char* key) {
  static const json* const kEmpty = new json(json::object());
  if (!obj.is_object()) return *kEmpty;
  auto it = obj.find(key);
  return it != obj.end() && it->is_object() ? *it : *kEmpty;
}

absl::Status GetString(const json& obj, const char* key, absl::string_view path, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return FieldError(absl::StrCat(path, key), "must be a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status GetInt(const json& obj, const char* key, absl::string_view path, int64_t min,
                    int64_t max, int64_t* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  const std::string field = absl::StrCat(path, key);
  int64_t v = 0;
  if (it->is_number_integer()) {
    v = it->get<int64_t>();
  } else if (it->is_number_float() &&
             it->get<double>() == static_cast<int64_t>(it->get<double>())) {
    v = static_cast<int64_t>(it->get<double>());
  } else {
    return FieldError(field, "must be an integer");
  }
  if (v < min || v > max) {
    return FieldError(field, absl::StrCat("must be between ", min, " and ", max));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status GetInt32(const json& obj, const char* key, absl::string_view path, int32_t min,
                      int32_t* out) {
  int64_t v = *out;
  absl::Status s = GetInt(obj, key, path, min, std::numeric_limits<int32_t>::max(), &v);
  *out = static_cast<int32_t>(v);
  return s;
}

absl::Status GetBool(const json& obj, const char* key, absl::string_view path, bool* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) return FieldError(absl::StrCat(path, key), "must be a boolean");
  *out = it->get<bool>();
  return absl::OkStatus();
}

// Calls `each(item, "PATH KEY[i]")` for every item of the list `key`, which may be absent
// or null (the server writes empty lists either way).
template <typename Each>
absl::Status ForEachItem(const json& obj, const char* key, absl::string_view path, Each each) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) return FieldError(absl::StrCat(path, key), "must be a list");
  for (size_t i = 0; i < it->size(); ++i) {
    absl::Status s = each((*it)[i], absl::StrCat(path, key, "[", i, "]"));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status GetTime(const json& obj, const char* key, absl::string_view path, absl::Time* out) {
  std::string text;
  absl::Status s = GetString(obj, key, path, &text);
  if (!s.ok() || text.empty()) return s;
  auto t = ParseRfc3339(text);
  if (!t.ok()) return FieldError(absl::StrCat(path, key), t.status().message());
  *out = *t;
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> ObjectFromText(absl::string_view text, internal::ObjectDecoder<T> decode) {
  auto j = Parse(text);
  if (!j.ok()) return j.status();
  return decode(*j);
}

template <typename T>
absl::StatusOr<ObjectList<T>> ListFromText(absl::string_view text,
                                           internal::ObjectDecoder<T> decode) {
  auto j = Parse(text);
  if (!j.ok()) return j.status();
  return internal::ObjectListFromObject(*j, decode);
}

#define ZS_KUBE_RETURN_IF_ERROR(expr) \
  do {                                \
    absl::Status s_ = (expr);         \
    if (!s_.ok()) return s_;          \
  } while (0)

struct Meta {
  std::string namespace_, name, uid, resource_version;
  int64_t generation = 0;
};

absl::Status ParseReference(const json& ref, absl::string_view path, ObjectReference* out) {
  ZS_KUBE_RETURN_IF_ERROR(GetString(ref, "apiVersion", path, &out->api_version));
  ZS_KUBE_RETURN_IF_ERROR(GetString(ref, "kind", path, &out->kind));
  ZS_KUBE_RETURN_IF_ERROR(GetString(ref, "namespace", path, &out->namespace_));
  ZS_KUBE_RETURN_IF_ERROR(GetString(ref, "name", path, &out->name));
  ZS_KUBE_RETURN_IF_ERROR(GetString(ref, "uid", path, &out->uid));
  return GetString(ref, "resourceVersion", path, &out->resource_version);
}

absl::StatusOr<Meta> ParseMeta(const json& obj) {
  const json& m = Obj(obj, "metadata");
  Meta meta;
  ZS_KUBE_RETURN_IF_ERROR(GetString(m, "namespace", "metadata.", &meta.namespace_));
  ZS_KUBE_RETURN_IF_ERROR(GetString(m, "name", "metadata.", &meta.name));
  ZS_KUBE_RETURN_IF_ERROR(GetString(m, "uid", "metadata.", &meta.uid));
  ZS_KUBE_RETURN_IF_ERROR(GetString(m, "resourceVersion", "metadata.", &meta.resource_version));
  ZS_KUBE_RETURN_IF_ERROR(GetInt(m, "generation", "metadata.", 0,
                                 std::numeric_limits<int64_t>::max(), &meta.generation));
  return meta;
}

// A T with metadata's namespace, name, uid and resourceVersion.
template <typename T>
absl::StatusOr<T> WithIdentity(const json& obj) {
  auto meta = ParseMeta(obj);
  if (!meta.ok()) return meta.status();
  T out;
  out.namespace_ = meta->namespace_;
  out.name = meta->name;
  out.uid = meta->uid;
  out.resource_version = meta->resource_version;
  return out;
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  return a > kMaxQuantityMilli - b ? kMaxQuantityMilli : a + b;
}

// Reads the map of quantities `key` (resources.requests, status.allocatable) into `out`.
absl::Status GetAmounts(const json& obj, const char* key, absl::string_view path,
                        ResourceAmounts* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  const std::string field = absl::StrCat(path, key);
  if (!it->is_object()) return FieldError(field, "must be an object");
  if (it->size() > kMaxResourceNames) {
    return FieldError(field, absl::StrCat("has more than ", kMaxResourceNames, " resources"));
  }
  for (const auto& [name, value] : it->items()) {
    const std::string at = absl::StrCat(field, ".", absl::string_view(name).substr(0, 100));
    if (name.empty() || name.size() > 253) return FieldError(at, "is not a resource name");
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_number()) {
      text = value.dump();  // int-or-string, as the API's Quantity
    } else {
      return FieldError(at, "must be a quantity (a string such as \"500m\" or a number)");
    }
    absl::StatusOr<int64_t> milli = ParseQuantityMilli(text);
    if (!milli.ok()) return FieldError(at, milli.status().message());
    (*out)[name] = *milli;
  }
  return absl::OkStatus();
}

// What the scheduler accounts for a pod of this spec (the API's PodRequests): the sum of
// its containers' requests, at least the largest init container's, plus the overhead. A
// container's limit without a request is its request too, as the API server defaults it.
absl::Status PodSpecRequests(const json& spec, absl::string_view path, ResourceAmounts* out) {
  ResourceAmounts sum, init;
  auto container = [&](const json& c, const std::string& at, bool is_init) {
    const json& resources = Obj(c, "resources");
    ResourceAmounts requests, limits;
    const std::string r_at = absl::StrCat(at, ".resources.");
    ZS_KUBE_RETURN_IF_ERROR(GetAmounts(resources, "requests", r_at, &requests));
    ZS_KUBE_RETURN_IF_ERROR(GetAmounts(resources, "limits", r_at, &limits));
    for (const auto& [name, amount] : limits) requests.emplace(name, amount);
    for (const auto& [name, amount] : requests) {
      int64_t& into = is_init ? init[name] : sum[name];
      into = is_init ? std::max(into, amount) : SaturatingAdd(into, amount);
    }
    return absl::OkStatus();
  };
  ZS_KUBE_RETURN_IF_ERROR(ForEachItem(spec, "containers", path, [&](const json& c, std::string at) {
    return container(c, at, false);
  }));
  ZS_KUBE_RETURN_IF_ERROR(
      ForEachItem(spec, "initContainers", path,
                  [&](const json& c, std::string at) { return container(c, at, true); }));
  for (const auto& [name, amount] : init) sum[name] = std::max(sum[name], amount);
  ResourceAmounts overhead;
  ZS_KUBE_RETURN_IF_ERROR(GetAmounts(spec, "overhead", path, &overhead));
  for (const auto& [name, amount] : overhead) sum[name] = SaturatingAdd(sum[name], amount);
  if (sum.size() > 2 * kMaxResourceNames) {
    return FieldError(path,
                      absl::StrCat("requests more than ", 2 * kMaxResourceNames, " resources"));
  }
  *out = std::move(sum);
  return absl::OkStatus();
}

// The name of an object (a DNS-1123 subdomain): lower-case letters, digits, '-' and '.',
// starting and ending with a letter or digit.
bool IsObjectName(absl::string_view s) {
  return !s.empty() && s.size() <= 253 && absl::ascii_isalnum(s.front()) &&
         absl::ascii_isalnum(s.back()) && std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '.';
         });
}

absl::Status ParseSpec(const json& spec, const std::string& ns, CustomAutoscalerSpec* out) {
  const json& ref = Obj(spec, "scaleTargetRef");
  ZS_KUBE_RETURN_IF_ERROR(
      GetString(ref, "apiVersion", "spec.scaleTargetRef.", &out->scale_target_ref.api_version));
  ZS_KUBE_RETURN_IF_ERROR(
      GetString(ref, "kind", "spec.scaleTargetRef.", &out->scale_target_ref.kind));
  ZS_KUBE_RETURN_IF_ERROR(
      GetString(ref, "name", "spec.scaleTargetRef.", &out->scale_target_ref.name));
  ZS_KUBE_RETURN_IF_ERROR(GetInt32(spec, "minReplicas", "spec.", 0, &out->min_replicas));
  ZS_KUBE_RETURN_IF_ERROR(GetInt32(spec, "maxReplicas", "spec.", 0, &out->max_replicas));
  ZS_KUBE_RETURN_IF_ERROR(GetInt(spec, "idleTimeoutSeconds", "spec.", 0,
                                 std::numeric_limits<int64_t>::max(), &out->idle_timeout_seconds));
  if (auto ka = spec.find("keepAlive"); ka != spec.end() && !ka->is_null()) {
    if (!ka->is_object()) return FieldError("spec.keepAlive", "must be an object");
    for (const auto& [key, value] : ka->items()) {
      std::string text;
      if (value.is_string()) {
        text = value.get<std::string>();
      } else if (value.is_number() || value.is_boolean()) {
        text = value.dump();
      } else {
        return FieldError(absl::StrCat("spec.keepAlive.", key.substr(0, 60)),
                          "must be a string, a number or a boolean");
      }
      if (absl::Status s = SetKeepAliveField(&out->keep_alive, key, text); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("spec.", s.message()));
      }
    }
    if (absl::Status s = ValidateKeepAlive(out->keep_alive); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("spec.", s.message()));
    }
  }
  if (auto a = spec.find("allocation"); a != spec.end() && !a->is_null()) {
    if (!a->is_object()) return FieldError("spec.allocation", "must be an object");
    ZS_KUBE_RETURN_IF_ERROR(GetString(*a, "group", "spec.allocation.", &out->allocation_group));
    if (out->allocation_group.empty()) return FieldError("spec.allocation.group", "is required");
    if (!IsObjectName(out->allocation_group)) {
      return FieldError("spec.allocation.group",
                        absl::StrCat("must name an AllocationPolicy (lower-case letters, digits, "
                                     "'-' and '.'), not '",
                                     out->allocation_group.substr(0, 100), "'"));
    }
  }
  // Validate after reading everything so that a bad rule still leaves the rest usable
  // for the status the reconciler writes.
  const ScaleTargetRef& t = out->scale_target_ref;
  if (t.kind != "Deployment" && t.kind != "StatefulSet") {
    return FieldError("spec.scaleTargetRef.kind",
                      absl::StrCat("must be Deployment or StatefulSet, not '", t.kind, "'"));
  }
  if (t.name.empty()) return FieldError("spec.scaleTargetRef.name", "is required");
  if (!t.api_version.empty() && t.api_version != "apps/v1") {
    return FieldError("spec.scaleTargetRef.apiVersion", "must be apps/v1");
  }
  if (out->max_replicas < 1) return FieldError("spec.maxReplicas", "must be at least 1");
  if (out->min_replicas > out->max_replicas) {
    return FieldError("spec.minReplicas", "must not exceed spec.maxReplicas");
  }
  auto rules = spec.find("rules");
  if (rules != spec.end() && !rules->is_null()) {
    if (!rules->is_array()) return FieldError("spec.rules", "must be a list");
    const std::string target = absl::StrCat(ns, "/", t.kind, "/", t.name);
    for (size_t i = 0; i < rules->size(); ++i) {
      auto rule = ScalingRuleFromJson((*rules)[i].dump());
      if (!rule.ok()) {
        return FieldError(absl::StrCat("spec.rules[", i, "]"), rule.status().message());
      }
      rule->target = target;
      out->rules.push_back(*std::move(rule));
    }
  }
  return absl::OkStatus();
}

// One DNS label: letters, digits and '-', not at either end.
bool IsDnsLabel(absl::string_view s) {
  return !s.empty() && s.size() <= 63 && s.front() != '-' && s.back() != '-' &&
         std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isalnum(c) || c == '-'; });
}

// A host name: dot-separated DNS labels (any case; the balancer compares case-insensitively).
bool IsHostName(absl::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(s, '.')) {
    if (!IsDnsLabel(label)) return false;
  }
  return true;
}

// A DNS-1035 label, as Service names are: lower case, starts with a letter.
bool IsServiceName(absl::string_view s) {
  return IsDnsLabel(s) && absl::ascii_islower(s.front()) &&
         std::none_of(s.begin(), s.end(), [](char c) { return absl::ascii_isupper(c); });
}

// A port name (IANA_SVC_NAME: up to 15 lower-case letters, digits and '-', at least one
// letter) or a port number.
bool IsPort(absl::string_view s) {
  int number = 0;
  if (absl::SimpleAtoi(s, &number)) return number >= 1 && number <= 65535;
  return IsServiceName(s) && s.size() <= 15 && !absl::StrContains(s, "--");
}

// Reads spec.route; fills `out` with what it could read even when the route is refused.
absl::Status ParseRoute(const json& spec, std::optional<RouteSpec>* out) {
  auto it = spec.find("route");
  if (it == spec.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_object()) return FieldError("spec.route", "must be an object");
  const json& r = *it;
  RouteSpec& route = out->emplace();
  ZS_KUBE_RETURN_IF_ERROR(GetString(r, "host", "spec.route.", &route.host));
  ZS_KUBE_RETURN_IF_ERROR(GetString(r, "pathPrefix", "spec.route.", &route.path_prefix));
  ZS_KUBE_RETURN_IF_ERROR(GetString(r, "service", "spec.route.", &route.service));
  // An int-or-string, as a Service's targetPort.
  auto port = r.find("port");
  if (port != r.end() && port->is_number_integer()) {
    route.port = absl::StrCat(port->get<int64_t>());
  } else {
    ZS_KUBE_RETURN_IF_ERROR(GetString(r, "port", "spec.route.", &route.port));
  }
  if (r.contains("activationTimeoutSeconds") && !r["activationTimeoutSeconds"].is_null()) {
    int32_t seconds = 0;
    ZS_KUBE_RETURN_IF_ERROR(GetInt32(r, "activationTimeoutSeconds", "spec.route.", 1, &seconds));
    route.activation_timeout_seconds = seconds;
  }
  if (route.host.empty() && route.path_prefix.empty()) {
    return FieldError("spec.route", "needs a host or a pathPrefix");
  }
  if (!route.host.empty() && !IsHostName(route.host)) {
    return FieldError(
        "spec.route.host",
        absl::StrCat("must be a DNS name without scheme, port or path, not '", route.host, "'"));
  }
  if (!route.path_prefix.empty() && route.path_prefix.front() != '/') {
    return FieldError("spec.route.pathPrefix",
                      absl::StrCat("must start with '/', not '", route.path_prefix, "'"));
  }
  if (!route.service.empty() && !IsServiceName(route.service)) {
    return FieldError(
        "spec.route.service",
        absl::StrCat("must be a Service name (a DNS-1035 label), not '", route.service, "'"));
  }
  if (!route.port.empty() && !IsPort(route.port)) {
    return FieldError(
        "spec.route.port",
        absl::StrCat("must be a port name or a number from 1 to 65535, not '", route.port, "'"));
  }
  return absl::OkStatus();
}

absl::Status ParseStatus(const json& st, CustomAutoscalerStatus* out) {
  if (st.contains("replicas")) {
    int32_t v = 0;
    ZS_KUBE_RETURN_IF_ERROR(GetInt32(st, "replicas", "status.", 0, &v));
    out->replicas = v;
  }
  if (st.contains("desiredReplicas")) {
    int32_t v = 0;
    ZS_KUBE_RETURN_IF_ERROR(GetInt32(st, "desiredReplicas", "status.", 0, &v));
    out->desired_replicas = v;
  }
  if (st.contains("effectiveRules")) {
    int32_t v = 0;
    ZS_KUBE_RETURN_IF_ERROR(GetInt32(st, "effectiveRules", "status.", 0, &v));
    out->effective_rules = v;
  }
  ZS_KUBE_RETURN_IF_ERROR(GetString(st, "state", "status.", &out->state));
  ZS_KUBE_RETURN_IF_ERROR(GetString(st, "lastDecision", "status.", &out->last_decision));
  ZS_KUBE_RETURN_IF_ERROR(
      GetString(st, "lastDecisionReason", "status.", &out->last_decision_reason));
  ZS_KUBE_RETURN_IF_ERROR(GetTime(st, "lastDecisionTime", "status.", &out->last_decision_time));
  ZS_KUBE_RETURN_IF_ERROR(GetInt(st, "observedGeneration", "status.", 0,
                                 std::numeric_limits<int64_t>::max(), &out->observed_generation));
  auto conds = st.find("conditions");
  if (conds != st.end() && conds->is_array()) {
    for (const json& c : *conds) {
      Condition cond;
      ZS_KUBE_RETURN_IF_ERROR(GetString(c, "type", "status.conditions[].", &cond.type));
      ZS_KUBE_RETURN_IF_ERROR(GetString(c, "status", "status.conditions[].", &cond.status));
      ZS_KUBE_RETURN_IF_ERROR(GetString(c, "reason", "status.conditions[].", &cond.reason));
      ZS_KUBE_RETURN_IF_ERROR(GetString(c, "message", "status.conditions[].", &cond.message));
      ZS_KUBE_RETURN_IF_ERROR(
          GetTime(c, "lastTransitionTime", "status.conditions[].", &cond.last_transition_time));
      ZS_KUBE_RETURN_IF_ERROR(GetInt(c, "observedGeneration", "status.conditions[].", 0,
                                     std::numeric_limits<int64_t>::max(),
                                     &cond.observed_generation));
      out->conditions.push_back(std::move(cond));
    }
  }
  return absl::OkStatus();
}

json ReferenceToJson(const ObjectReference& r) {
  json j = json::object();
  if (!r.api_version.empty()) j["apiVersion"] = r.api_version;
  if (!r.kind.empty()) j["kind"] = r.kind;
  if (!r.namespace_.empty()) j["namespace"] = r.namespace_;
  if (!r.name.empty()) j["name"] = r.name;
  if (!r.uid.empty()) j["uid"] = r.uid;
  if (!r.resource_version.empty()) j["resourceVersion"] = r.resource_version;
  return j;
}

}  // namespace

absl::StatusOr<CustomAutoscaler> internal::CustomAutoscalerFromObject(const json& obj) {
  auto meta = ParseMeta(obj);
  if (!meta.ok()) return meta.status();
  if (meta->name.empty()) return FieldError("metadata.name", "is required");
  ZS_ASSIGN_OR_RETURN(CustomAutoscaler ca, WithIdentity<CustomAutoscaler>(obj));
  ca.generation = meta->generation;
  ca.spec_error = ParseSpec(Obj(obj, "spec"), ca.namespace_, &ca.spec);
  ca.route_error = ParseRoute(Obj(obj, "spec"), &ca.spec.route);
  // A malformed status is ours to overwrite; it must not hide the object.
  (void)ParseStatus(Obj(obj, "status"), &ca.status);
  return ca;
}

absl::StatusOr<EndpointSlice> internal::EndpointSliceFromObject(const json& obj) {
  ZS_ASSIGN_OR_RETURN(EndpointSlice slice, WithIdentity<EndpointSlice>(obj));
  ZS_KUBE_RETURN_IF_ERROR(GetString(Obj(Obj(obj, "metadata"), "labels"), kServiceNameLabel,
                                    "metadata.labels.", &slice.service_name));
  ZS_KUBE_RETURN_IF_ERROR(GetString(obj, "addressType", "", &slice.address_type));
  ZS_KUBE_RETURN_IF_ERROR(ForEachItem(obj, "ports", "", [&](const json& p, std::string at) {
    at += ".";
    EndpointSlicePort port;
    int64_t number = 0;
    ZS_KUBE_RETURN_IF_ERROR(GetString(p, "name", at, &port.name));
    ZS_KUBE_RETURN_IF_ERROR(GetInt(p, "port", at, 0, 65535, &number));
    ZS_KUBE_RETURN_IF_ERROR(GetString(p, "protocol", at, &port.protocol));
    port.port = static_cast<int32_t>(number);
    slice.ports.push_back(std::move(port));
    return absl::OkStatus();
  }));
  ZS_KUBE_RETURN_IF_ERROR(ForEachItem(obj, "endpoints", "", [&](const json& e, std::string at) {
    at += ".";
    SliceEndpoint ep;
    ZS_KUBE_RETURN_IF_ERROR(
        ForEachItem(e, "addresses", at, [&](const json& a, const std::string& a_at) {
          if (!a.is_string()) return FieldError(a_at, "must be a string");
          ep.addresses.push_back(a.get<std::string>());
          return absl::OkStatus();
        }));
    const json& conditions = Obj(e, "conditions");
    const std::string c_at = absl::StrCat(at, "conditions.");
    ZS_KUBE_RETURN_IF_ERROR(GetBool(conditions, "ready", c_at, &ep.ready));
    ep.serving = ep.ready;  // "If nil, consumers should defer to the ready condition."
    ZS_KUBE_RETURN_IF_ERROR(GetBool(conditions, "serving", c_at, &ep.serving));
    ZS_KUBE_RETURN_IF_ERROR(GetBool(conditions, "terminating", c_at, &ep.terminating));
    ZS_KUBE_RETURN_IF_ERROR(
        ParseReference(Obj(e, "targetRef"), absl::StrCat(at, "targetRef."), &ep.target_ref));
    ZS_KUBE_RETURN_IF_ERROR(GetString(e, "nodeName", at, &ep.node_name));
    slice.endpoints.push_back(std::move(ep));
    return absl::OkStatus();
  }));
  return slice;
}

absl::StatusOr<Pod> internal::PodFromObject(const json& obj) {
  ZS_ASSIGN_OR_RETURN(Pod pod, WithIdentity<Pod>(obj));
  std::string deletion;
  ZS_KUBE_RETURN_IF_ERROR(
      GetString(Obj(obj, "metadata"), "deletionTimestamp", "metadata.", &deletion));
  pod.terminating = !deletion.empty();
  const json& status = Obj(obj, "status");
  ZS_KUBE_RETURN_IF_ERROR(GetString(status, "phase", "status.", &pod.phase));
  ZS_KUBE_RETURN_IF_ERROR(GetString(status, "podIP", "status.", &pod.pod_ip));
  ZS_KUBE_RETURN_IF_ERROR(
      ForEachItem(status, "conditions", "status.", [&](const json& c, std::string at) {
        at += ".";
        std::string type, value, reason;
        ZS_KUBE_RETURN_IF_ERROR(GetString(c, "type", at, &type));
        ZS_KUBE_RETURN_IF_ERROR(GetString(c, "status", at, &value));
        if (type == "Ready") pod.ready = value == "True";
        if (type == "PodScheduled") {
          ZS_KUBE_RETURN_IF_ERROR(GetString(c, "reason", at, &reason));
          pod.unschedulable = value == "False" && reason == "Unschedulable";
          if (pod.unschedulable) {
            ZS_KUBE_RETURN_IF_ERROR(GetString(c, "message", at, &pod.unschedulable_message));
            if (pod.unschedulable_message.size() > 1024) pod.unschedulable_message.resize(1024);
          }
        }
        return absl::OkStatus();
      }));
  const json& spec = Obj(obj, "spec");
  ZS_KUBE_RETURN_IF_ERROR(GetString(spec, "nodeName", "spec.", &pod.node_name));
  // Bound to a node, it is scheduled whatever a stale condition says.
  if (!pod.node_name.empty()) pod.unschedulable = false;
  ZS_KUBE_RETURN_IF_ERROR(PodSpecRequests(spec, "spec.", &pod.requests));
  return pod;
}

absl::StatusOr<Node> internal::NodeFromObject(const json& obj) {
  auto meta = ParseMeta(obj);
  if (!meta.ok()) return meta.status();
  Node node;
  node.name = meta->name;
  node.resource_version = meta->resource_version;
  ZS_KUBE_RETURN_IF_ERROR(GetBool(Obj(obj, "spec"), "unschedulable", "spec.", &node.unschedulable));
  const json& status = Obj(obj, "status");
  ZS_KUBE_RETURN_IF_ERROR(GetAmounts(status, "allocatable", "status.", &node.allocatable));
  ZS_KUBE_RETURN_IF_ERROR(
      ForEachItem(status, "conditions", "status.", [&](const json& c, std::string at) {
        at += ".";
        std::string type, value;
        ZS_KUBE_RETURN_IF_ERROR(GetString(c, "type", at, &type));
        ZS_KUBE_RETURN_IF_ERROR(GetString(c, "status", at, &value));
        if (type == "Ready") node.ready = value == "True";
        return absl::OkStatus();
      }));
  return node;
}

absl::StatusOr<AllocationPolicy> internal::AllocationPolicyFromObject(const json& obj) {
  auto meta = ParseMeta(obj);
  if (!meta.ok()) return meta.status();
  if (meta->name.empty()) return FieldError("metadata.name", "is required");
  ZS_ASSIGN_OR_RETURN(AllocationPolicy policy, WithIdentity<AllocationPolicy>(obj));
  policy.generation = meta->generation;
  // A bad spec is reported on the object rather than hiding it: the scaler says so.
  policy.spec_error = GetAmounts(Obj(obj, "spec"), "limits", "spec.", &policy.limits);
  if (!policy.spec_error.ok()) policy.limits.clear();
  return policy;
}

absl::StatusOr<Node> NodeFromJson(absl::string_view text) {
  return ObjectFromText(text, &internal::NodeFromObject);
}

absl::StatusOr<AllocationPolicy> AllocationPolicyFromJson(absl::string_view text) {
  return ObjectFromText(text, &internal::AllocationPolicyFromObject);
}

absl::StatusOr<ResourceAmounts> PodTemplateRequestsFromJson(absl::string_view text) {
  auto j = Parse(text);
  if (!j.ok()) return j.status();
  ResourceAmounts out;
  ZS_KUBE_RETURN_IF_ERROR(
      PodSpecRequests(Obj(Obj(Obj(*j, "spec"), "template"), "spec"), "spec.template.spec.", &out));
  return out;
}

std::string WorkloadRef::Id() const { return absl::StrCat(namespace_, "/", kind, "/", name); }

WorkloadRef CustomAutoscaler::Target() const {
  return WorkloadRef{namespace_, spec.scale_target_ref.kind, spec.scale_target_ref.name};
}

std::string FormatMicroTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string FormatKubeTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<Scale> ScaleFromJson(absl::string_view text) {
  auto j = Parse(text);
  if (!j.ok()) return j.status();
  ZS_ASSIGN_OR_RETURN(Scale s, WithIdentity<Scale>(*j));
  ZS_KUBE_RETURN_IF_ERROR(GetInt32(Obj(*j, "spec"), "replicas", "spec.", 0, &s.spec_replicas));
  const json& st = Obj(*j, "status");
  ZS_KUBE_RETURN_IF_ERROR(GetInt32(st, "replicas", "status.", 0, &s.status_replicas));
  ZS_KUBE_RETURN_IF_ERROR(GetString(st, "selector", "status.", &s.selector));
  return s;
}

absl::StatusOr<CustomAutoscaler> CustomAutoscalerFromJson(absl::string_view text) {
  return ObjectFromText(text, &internal::CustomAutoscalerFromObject);
}

absl::StatusOr<CustomAutoscalerList> CustomAutoscalerListFromJson(absl::string_view text) {
  return ListFromText(text, &internal::CustomAutoscalerFromObject);
}

std::string CustomAutoscalerStatusPatch(const CustomAutoscalerStatus& s) {
  json st = json::object();
  // Explicit nulls remove fields in a merge patch, so a stale value cannot linger.
  st["replicas"] = s.replicas ? json(*s.replicas) : json(nullptr);
  st["desiredReplicas"] = s.desired_replicas ? json(*s.desired_replicas) : json(nullptr);
  st["effectiveRules"] = s.effective_rules ? json(*s.effective_rules) : json(nullptr);
  st["state"] = s.state;
  st["lastDecision"] = s.last_decision;
  st["lastDecisionReason"] = s.last_decision_reason;
  if (s.last_decision_time != absl::InfinitePast()) {
    st["lastDecisionTime"] = FormatKubeTime(s.last_decision_time);
  }
  if (s.observed_generation > 0) st["observedGeneration"] = s.observed_generation;
  json conds = json::array();
  for (const Condition& c : s.conditions) {
    json jc = {
        {"type", c.type}, {"status", c.status}, {"reason", c.reason}, {"message", c.message}};
    if (c.last_transition_time != absl::InfinitePast()) {
      jc["lastTransitionTime"] = FormatKubeTime(c.last_transition_time);
    }
    if (c.observed_generation > 0) jc["observedGeneration"] = c.observed_generation;
    conds.push_back(std::move(jc));
  }
  st["conditions"] = std::move(conds);
  return json{{"status", std::move(st)}}.dump();
}

absl::StatusOr<EndpointSlice> EndpointSliceFromJson(absl::string_view text) {
  return ObjectFromText(text, &internal::EndpointSliceFromObject);
}

absl::StatusOr<EndpointSliceList> EndpointSliceListFromJson(absl::string_view text) {
  return ListFromText(text, &internal::EndpointSliceFromObject);
}

absl::StatusOr<Pod> PodFromJson(absl::string_view text) {
  return ObjectFromText(text, &internal::PodFromObject);
}

absl::StatusOr<PodList> PodListFromJson(absl::string_view text) {
  return ListFromText(text, &internal::PodFromObject);
}

absl::StatusOr<Lease> internal::LeaseFromObject(const json& obj) {
  auto meta = ParseMeta(obj);
  if (!meta.ok()) return meta.status();
  Lease l;
  l.namespace_ = meta->namespace_;
  l.name = meta->name;
  l.resource_version = meta->resource_version;
  const json& m = Obj(obj, "metadata");
  auto annotations = m.find("annotations");
  if (annotations != m.end() && !annotations->is_null()) {
    if (!annotations->is_object()) return FieldError("metadata.annotations", "must be an object");
    for (const auto& [key, value] : annotations->items()) {
      if (!value.is_string()) {
        return FieldError(absl::StrCat("metadata.annotations.", key), "must be a string");
      }
      l.annotations[key] = value.get<std::string>();
    }
  }
  const json& spec = Obj(obj, "spec");
  ZS_KUBE_RETURN_IF_ERROR(GetString(spec, "holderIdentity", "spec.", &l.holder_identity));
  ZS_KUBE_RETURN_IF_ERROR(
      GetInt32(spec, "leaseDurationSeconds", "spec.", 0, &l.lease_duration_seconds));
  ZS_KUBE_RETURN_IF_ERROR(GetTime(spec, "acquireTime", "spec.", &l.acquire_time));
  ZS_KUBE_RETURN_IF_ERROR(GetTime(spec, "renewTime", "spec.", &l.renew_time));
  ZS_KUBE_RETURN_IF_ERROR(GetInt32(spec, "leaseTransitions", "spec.", 0, &l.lease_transitions));
  return l;
}

absl::StatusOr<Lease> LeaseFromJson(absl::string_view text) {
  return ObjectFromText(text, &internal::LeaseFromObject);
}

absl::StatusOr<LeaseList> LeaseListFromJson(absl::string_view text) {
  return ListFromText(text, &internal::LeaseFromObject);
}

std::string LeaseToJson(const Lease& l) {
  json meta = {{"name", l.name}, {"namespace", l.namespace_}};
  if (!l.resource_version.empty()) meta["resourceVersion"] = l.resource_version;
  // An update replaces the object: annotations read are written back, not dropped.
  if (!l.annotations.empty()) meta["annotations"] = l.annotations;
  json spec = json::object();
  if (!l.holder_identity.empty()) spec["holderIdentity"] = l.holder_identity;
  if (l.lease_duration_seconds > 0) spec["leaseDurationSeconds"] = l.lease_duration_seconds;
  if (l.acquire_time != absl::InfinitePast()) spec["acquireTime"] = FormatMicroTime(l.acquire_time);
  if (l.renew_time != absl::InfinitePast()) spec["renewTime"] = FormatMicroTime(l.renew_time);
  if (l.lease_transitions > 0) spec["leaseTransitions"] = l.lease_transitions;
  return json{{"apiVersion", "coordination.k8s.io/v1"},
              {"kind", "Lease"},
              {"metadata", std::move(meta)},
              {"spec", std::move(spec)}}
      .dump();
}

absl::StatusOr<Event> EventFromJson(absl::string_view text) {
  auto j = Parse(text);
  if (!j.ok()) return j.status();
  auto meta = ParseMeta(*j);
  if (!meta.ok()) return meta.status();
  Event e;
  e.namespace_ = meta->namespace_;
  e.name = meta->name;
  e.resource_version = meta->resource_version;
  ZS_KUBE_RETURN_IF_ERROR(
      ParseReference(Obj(*j, "involvedObject"), "involvedObject.", &e.involved_object));
  ZS_KUBE_RETURN_IF_ERROR(GetString(*j, "type", "", &e.type));
  ZS_KUBE_RETURN_IF_ERROR(GetString(*j, "reason", "", &e.reason));
  ZS_KUBE_RETURN_IF_ERROR(GetString(*j, "message", "", &e.message));
  e.count = 0;
  ZS_KUBE_RETURN_IF_ERROR(GetInt32(*j, "count", "", 0, &e.count));
  ZS_KUBE_RETURN_IF_ERROR(GetTime(*j, "firstTimestamp", "", &e.first_timestamp));
  ZS_KUBE_RETURN_IF_ERROR(GetTime(*j, "lastTimestamp", "", &e.last_timestamp));
  ZS_KUBE_RETURN_IF_ERROR(GetString(*j, "reportingComponent", "", &e.reporting_component));
  ZS_KUBE_RETURN_IF_ERROR(GetString(*j, "reportingInstance", "", &e.reporting_instance));
  return e;
}

std::string EventToJson(const Event& e) {
  json meta = {{"name", e.name}, {"namespace", e.namespace_}};
  if (!e.resource_version.empty()) meta["resourceVersion"] = e.resource_version;
  json j = {{"apiVersion", "v1"},
            {"kind", "Event"},
            {"metadata", std::move(meta)},
            {"involvedObject", ReferenceToJson(e.involved_object)},
            {"type", e.type},
            {"reason", e.reason},
            {"message", e.message},
            {"count", e.count},
            {"source", {{"component", e.reporting_component}}},
            {"reportingComponent", e.reporting_component},
            {"reportingInstance", e.reporting_instance}};
  if (e.first_timestamp != absl::InfinitePast()) {
    j["firstTimestamp"] = FormatKubeTime(e.first_timestamp);
  }
  if (e.last_timestamp != absl::InfinitePast()) {
    j["lastTimestamp"] = FormatKubeTime(e.last_timestamp);
  }
  return j.dump();
}

}  // namespace zeroscale::kube
