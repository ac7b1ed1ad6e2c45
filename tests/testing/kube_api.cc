#include "tests/testing/kube_api.h"

#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/kube/client.h"
#include "common/status/status_macros.h"
#include "common/time/clock.h"
#include "tests/testing/json_fields.h"
#include "tests/testing/yaml_json.h"

namespace zeroscale::testing {
namespace {

constexpr char kFieldManager[] = "zeroscale-tests";

std::string PercentEncode(absl::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string Query(const std::vector<std::pair<std::string, std::string>>& params) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : params) {
    if (!v.empty()) parts.push_back(absl::StrCat(k, "=", PercentEncode(v)));
  }
  return parts.empty() ? "" : absl::StrCat("?", absl::StrJoin(parts, "&"));
}

// "/api/v1" or "/apis/apps/v1".
std::string GroupVersionPath(absl::string_view api_version) {
  return absl::StrContains(api_version, '/') ? absl::StrCat("/apis/", api_version)
                                             : absl::StrCat("/api/", api_version);
}

std::string Shown(const json& object) {
  std::string s = object.dump();
  if (s.size() > 4000) s = absl::StrCat(s.substr(0, 4000), "...");
  return s;
}

}  // namespace

ObjectRef ObjectRef::Of(const json& object) {
  ObjectRef ref{JsonStr(object, "apiVersion"), JsonStr(object, "kind"), "", ""};
  if (object.is_object() && object.contains("metadata")) {
    ref.ns = JsonStr(object["metadata"], "namespace");
    ref.name = JsonStr(object["metadata"], "name");
  }
  return ref;
}

std::string ObjectRef::ToString() const {
  return absl::StrCat(api_version, " ", kind, " ", ns.empty() ? "" : absl::StrCat(ns, "/"), name);
}

std::string NameOf(const json& object) {
  return object.is_object() && object.contains("metadata") ? JsonStr(object["metadata"], "name")
                                                           : "";
}

std::string UidOf(const json& object) {
  return object.is_object() && object.contains("metadata") ? JsonStr(object["metadata"], "uid")
                                                           : "";
}

json ConditionOf(const json& object, absl::string_view type) {
  if (!object.is_object() || !object.contains("status")) return nullptr;
  const json& status = object["status"];
  if (!status.is_object() || !status.contains("conditions") || !status["conditions"].is_array()) {
    return nullptr;
  }
  for (const json& c : status["conditions"]) {
    if (JsonStr(c, "type") == type) return c;
  }
  return nullptr;
}

bool HasCondition(const json& object, absl::string_view type, absl::string_view status) {
  const json c = ConditionOf(object, type);
  return !c.is_null() && JsonStr(c, "status") == status;
}

absl::StatusOr<std::unique_ptr<KubeApi>> KubeApi::Create(const kube::ClusterConfig& config) {
  ZS_ASSIGN_OR_RETURN(std::unique_ptr<kube::Transport> transport,
                      kube::Transport::Create(config, RealClock::Get()));
  return std::unique_ptr<KubeApi>(new KubeApi(config, std::move(transport)));
}

absl::StatusOr<std::unique_ptr<KubeApi>> KubeApi::FromKubeconfig(const std::string& path) {
  ZS_ASSIGN_OR_RETURN(kube::ClusterConfig config, kube::LoadKubeconfig(path));
  return Create(config);
}

KubeApi::KubeApi(kube::ClusterConfig config, std::unique_ptr<kube::Transport> transport)
    : config_(std::move(config)), transport_(std::move(transport)) {}

KubeApi::~KubeApi() = default;

absl::StatusOr<kube::HttpResponse> KubeApi::Send(kube::HttpRequest request) {
  return transport_->Do(request);
}

absl::StatusOr<kube::HttpResponse> KubeApi::Raw(absl::string_view method, absl::string_view path,
                                                absl::string_view body,
                                                absl::string_view content_type) {
  kube::HttpRequest req;
  req.method = std::string(method);
  req.target = std::string(path);
  req.body = std::string(body);
  if (!body.empty()) req.content_type = std::string(content_type);
  return Send(std::move(req));
}

absl::StatusOr<json> KubeApi::Call(absl::string_view method, absl::string_view path,
                                   absl::string_view body, absl::string_view content_type) {
  ZS_ASSIGN_OR_RETURN(kube::HttpResponse res, Raw(method, path, body, content_type));
  if (res.status < 200 || res.status >= 300) {
    return kube::StatusFromHttp(res.status, res.body, res.Header("Retry-After"),
                                absl::StrCat(method, " ", path));
  }
  if (res.body.empty()) return json(nullptr);
  json out = json::parse(res.body, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(method, " ", path, ": body is not JSON"));
  }
  return out;
}

absl::StatusOr<KubeApi::ResourceInfo> KubeApi::Discover(absl::string_view api_version,
                                                        absl::string_view kind) {
  const std::string gv(api_version);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = discovery_.find(gv);
    if (it != discovery_.end()) {
      auto k = it->second.find(std::string(kind));
      if (k != it->second.end()) return k->second;
    }
  }
  // Not cached, or a kind the group did not serve when last asked (a CRD just made).
  absl::StatusOr<json> list = Call("GET", GroupVersionPath(api_version));
  if (!list.ok()) {
    return absl::NotFoundError(
        absl::StrCat("API discovery of ", api_version, " failed: ", list.status().message()));
  }
  std::map<std::string, ResourceInfo> kinds;
  if (list->contains("resources") && (*list)["resources"].is_array()) {
    for (const json& r : (*list)["resources"]) {
      const std::string name = JsonStr(r, "name");
      if (name.empty() || absl::StrContains(name, '/')) continue;  // subresources
      kinds[JsonStr(r, "kind")] = {name, r.value("namespaced", false)};
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  discovery_[gv] = kinds;
  auto k = kinds.find(std::string(kind));
  if (k == kinds.end()) {
    return absl::NotFoundError(
        absl::StrCat("the API server serves no kind ", kind, " in ", api_version));
  }
  return k->second;
}

absl::StatusOr<std::string> KubeApi::PathOf(const ObjectRef& ref, absl::string_view subresource) {
  if (ref.api_version.empty() || ref.kind.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("object reference '", ref.ToString(), "' lacks apiVersion or kind"));
  }
  ZS_ASSIGN_OR_RETURN(ResourceInfo info, Discover(ref.api_version, ref.kind));
  std::string path = GroupVersionPath(ref.api_version);
  if (info.namespaced && !ref.ns.empty()) absl::StrAppend(&path, "/namespaces/", ref.ns);
  absl::StrAppend(&path, "/", info.plural);
  if (!ref.name.empty()) absl::StrAppend(&path, "/", ref.name);
  if (!subresource.empty()) absl::StrAppend(&path, "/", subresource);
  return path;
}

absl::StatusOr<json> KubeApi::Get(const ObjectRef& ref, absl::string_view subresource) {
  ZS_ASSIGN_OR_RETURN(std::string path, PathOf(ref, subresource));
  return Call("GET", path);
}

absl::StatusOr<json> KubeApi::Create(json object, absl::string_view ns) {
  if (!object.is_object()) return absl::InvalidArgumentError("Create: not an object");
  ObjectRef ref = ObjectRef::Of(object);
  ZS_ASSIGN_OR_RETURN(ResourceInfo info, Discover(ref.api_version, ref.kind));
  if (info.namespaced && ref.ns.empty()) {
    if (ns.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Create: ", ref.ToString(), " is namespaced and names no namespace"));
    }
    ref.ns = std::string(ns);
    object["metadata"]["namespace"] = ref.ns;
  }
  ref.name.clear();
  ZS_ASSIGN_OR_RETURN(std::string path, PathOf(ref));
  return Call("POST", path, object.dump());
}

absl::StatusOr<json> KubeApi::CreateYaml(absl::string_view yaml, absl::string_view ns) {
  ZS_ASSIGN_OR_RETURN(json object, YamlToJson(yaml));
  return Create(std::move(object), ns);
}

absl::StatusOr<json> KubeApi::Replace(const json& object, absl::string_view subresource) {
  ZS_ASSIGN_OR_RETURN(std::string path, PathOf(ObjectRef::Of(object), subresource));
  return Call("PUT", path, object.dump());
}

absl::StatusOr<json> KubeApi::Apply(json object, absl::string_view ns) {
  return ApplyWith(std::move(object), ns, /*dry_run=*/false);
}

absl::StatusOr<json> KubeApi::DryRunApply(json object, absl::string_view ns) {
  return ApplyWith(std::move(object), ns, /*dry_run=*/true);
}

absl::StatusOr<json> KubeApi::ApplyWith(json object, absl::string_view ns, bool dry_run) {
  if (!object.is_object()) return absl::InvalidArgumentError("Apply: not an object");
  ObjectRef ref = ObjectRef::Of(object);
  ZS_ASSIGN_OR_RETURN(ResourceInfo info, Discover(ref.api_version, ref.kind));
  if (info.namespaced && ref.ns.empty() && !ns.empty()) {
    ref.ns = std::string(ns);
    object["metadata"]["namespace"] = ref.ns;
  }
  if (ref.name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("Apply: ", ref.ToString(), " has no name"));
  }
  ZS_ASSIGN_OR_RETURN(std::string path, PathOf(ref));
  std::vector<std::pair<std::string, std::string>> params = {{"fieldManager", kFieldManager},
                                                             {"force", "true"}};
  if (dry_run) params.emplace_back("dryRun", "All");
  return Call("PATCH", absl::StrCat(path, Query(params)), object.dump(),
              "application/apply-patch+yaml");
}

absl::StatusOr<std::vector<json>> KubeApi::ApplyManifest(absl::string_view yaml,
                                                         absl::string_view ns) {
  ZS_ASSIGN_OR_RETURN(std::vector<json> docs, YamlDocumentsToJson(yaml));
  std::vector<json> objects;
  for (json& doc : docs) {
    if (JsonStr(doc, "kind") == "List" && doc.contains("items") && doc["items"].is_array()) {
      for (json& item : doc["items"]) objects.push_back(std::move(item));
    } else {
      objects.push_back(std::move(doc));
    }
  }
  std::vector<json> applied;
  for (json& object : objects) {
    const ObjectRef ref = ObjectRef::Of(object);
    absl::StatusOr<json> out = Apply(std::move(object), ns);
    if (!out.ok()) {
      return absl::Status(out.status().code(),
                          absl::StrCat("applying ", ref.ToString(), ": ", out.status().message()));
    }
    if (ref.kind == "CustomResourceDefinition") {
      ZS_RETURN_IF_ERROR(WaitFor(
                             ObjectRef::Of(*out),
                             [](const json& crd) { return HasCondition(crd, "Established"); },
                             absl::Seconds(30), "the CRD to be Established")
                             .status());
    }
    applied.push_back(*std::move(out));
  }
  return applied;
}

absl::StatusOr<json> KubeApi::Patch(const ObjectRef& ref, const json& patch, PatchType type,
                                    absl::string_view subresource) {
  ZS_ASSIGN_OR_RETURN(std::string path, PathOf(ref, subresource));
  const char* content_type = type == PatchType::kMerge ? "application/merge-patch+json"
                             : type == PatchType::kStrategicMerge
                                 ? "application/strategic-merge-patch+json"
                                 : "application/json-patch+json";
  return Call("PATCH", path, patch.dump(), content_type);
}

absl::Status KubeApi::Delete(const ObjectRef& ref, const DeleteOptions& options) {
  ZS_ASSIGN_OR_RETURN(std::string path, PathOf(ref));
  json body = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (!options.propagation_policy.empty()) body["propagationPolicy"] = options.propagation_policy;
  if (!options.uid_precondition.empty()) {
    body["preconditions"] = {{"uid", options.uid_precondition}};
  }
  absl::StatusOr<json> out = Call("DELETE", path, body.dump());
  if (!out.ok() && !absl::IsNotFound(out.status())) return out.status();
  return absl::OkStatus();
}

absl::StatusOr<json> KubeApi::ListObject(const ObjectRef& collection,
                                         absl::string_view label_selector,
                                         absl::string_view field_selector) {
  ObjectRef ref = collection;
  ref.name.clear();
  ZS_ASSIGN_OR_RETURN(std::string path, PathOf(ref));
  return Call("GET", absl::StrCat(path, Query({{"labelSelector", std::string(label_selector)},
                                               {"fieldSelector", std::string(field_selector)}})));
}

absl::StatusOr<std::vector<json>> KubeApi::List(const ObjectRef& collection,
                                                absl::string_view label_selector,
                                                absl::string_view field_selector) {
  ZS_ASSIGN_OR_RETURN(json list, ListObject(collection, label_selector, field_selector));
  std::vector<json> items;
  if (list.contains("items") && list["items"].is_array()) {
    for (json& item : list["items"]) items.push_back(std::move(item));
  }
  return items;
}

absl::Status KubeApi::Watch(const ObjectRef& collection, absl::string_view resource_version,
                            absl::Duration timeout, const WatchHandler& handler,
                            kube::CancelToken* cancel, absl::string_view label_selector,
                            absl::string_view field_selector) {
  ObjectRef ref = collection;
  ref.name.clear();
  ZS_ASSIGN_OR_RETURN(std::string path, PathOf(ref));
  kube::HttpRequest req;
  req.target =
      absl::StrCat(path, Query({{"watch", "1"},
                                {"allowWatchBookmarks", "true"},
                                {"resourceVersion", std::string(resource_version)},
                                {"timeoutSeconds", absl::StrCat(absl::ToInt64Seconds(timeout))},
                                {"labelSelector", std::string(label_selector)},
                                {"fieldSelector", std::string(field_selector)}}));
  // Silence longer than the watch itself means the connection is gone.
  req.timeout = timeout + absl::Seconds(30);
  std::string pending;
  absl::Status event_error;
  auto on_data = [&](absl::string_view data) {
    pending.append(data.data(), data.size());
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      absl::string_view line(pending.data() + start, nl - start);
      if (line.empty()) continue;
      json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (event.is_discarded() || !event.is_object()) {
        event_error = absl::InvalidArgumentError("watch event is not JSON");
        return false;
      }
      const std::string type = JsonStr(event, "type");
      const json& object = event.contains("object") ? event["object"] : json(nullptr);
      if (type == "ERROR") {
        event_error = kube::StatusFromHttp(object.value("code", 500), object.dump(), "",
                                           absl::StrCat("watch ", path));
        return false;
      }
      if (!handler(type, object)) {
        pending.clear();
        return false;
      }
    }
    pending.erase(0, start);
    return true;
  };
  kube::CancelToken never;
  ZS_ASSIGN_OR_RETURN(kube::HttpResponse res,
                      transport_->Stream(req, on_data, cancel != nullptr ? cancel : &never));
  if (res.status < 200 || res.status >= 300) {
    return kube::StatusFromHttp(res.status, res.body, res.Header("Retry-After"),
                                absl::StrCat("watch ", path));
  }
  return event_error;
}

absl::StatusOr<json> KubeApi::WaitFor(const ObjectRef& ref,
                                      const std::function<bool(const json&)>& condition,
                                      absl::Duration timeout, absl::string_view what) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<json> last = absl::NotFoundError("not read yet");
  while (true) {
    last = Get(ref);
    if (last.ok() && condition(*last)) return last;
    if (!last.ok() && !absl::IsNotFound(last.status())) {
      // Transient failures are retried; they only show in the timeout message.
    }
    if (absl::Now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("waited ", absl::FormatDuration(timeout), " for ", ref.ToString(),
                   what.empty() ? "" : absl::StrCat(" (", what, ")"),
                   "; last seen: ", last.ok() ? Shown(*last) : last.status().ToString()));
}

absl::StatusOr<std::vector<json>> KubeApi::WaitForList(
    const ObjectRef& collection, const std::function<bool(const std::vector<json>&)>& condition,
    absl::Duration timeout, absl::string_view what, absl::string_view label_selector) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::vector<json>> last = absl::UnknownError("not listed yet");
  while (true) {
    last = List(collection, label_selector);
    if (last.ok() && condition(*last)) return last;
    if (absl::Now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("waited ", absl::FormatDuration(timeout), " for ", collection.ToString(),
                   what.empty() ? "" : absl::StrCat(" (", what, ")"),
                   "; last seen: ", last.ok() ? Shown(json(*last)) : last.status().ToString()));
}

absl::Status KubeApi::WaitForDeletion(const ObjectRef& ref, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<json> last = absl::UnknownError("not read yet");
  while (true) {
    last = Get(ref);
    if (absl::IsNotFound(last.status())) return absl::OkStatus();
    if (absl::Now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "waited ", absl::FormatDuration(timeout), " for ", ref.ToString(),
      " to be deleted; last seen: ", last.ok() ? Shown(*last) : last.status().ToString()));
}

absl::StatusOr<json> KubeApi::Scale(const ObjectRef& ref, int32_t replicas) {
  return Patch(ref, {{"spec", {{"replicas", replicas}}}}, PatchType::kMerge, "scale");
}

absl::StatusOr<std::string> KubeApi::CreateToken(absl::string_view ns,
                                                 absl::string_view service_account,
                                                 const std::vector<std::string>& audiences,
                                                 absl::Duration expiration, const json& bound_pod) {
  json spec = {{"expirationSeconds", absl::ToInt64Seconds(expiration)}};
  if (!audiences.empty()) spec["audiences"] = audiences;
  if (!bound_pod.is_null()) {
    spec["boundObjectRef"] = {{"apiVersion", "v1"},
                              {"kind", "Pod"},
                              {"name", NameOf(bound_pod)},
                              {"uid", UidOf(bound_pod)}};
  }
  const json request = {
      {"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", spec}};
  ZS_ASSIGN_OR_RETURN(json out, Call("POST",
                                     absl::StrCat("/api/v1/namespaces/", ns, "/serviceaccounts/",
                                                  service_account, "/token"),
                                     request.dump()));
  const std::string token = out.contains("status") ? JsonStr(out["status"], "token") : "";
  if (token.empty()) return absl::InternalError("TokenRequest answered without a token");
  return token;
}

absl::StatusOr<json> KubeApi::ReviewToken(absl::string_view token,
                                          const std::vector<std::string>& audiences) {
  json spec = {{"token", std::string(token)}};
  if (!audiences.empty()) spec["audiences"] = audiences;
  const json review = {
      {"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"}, {"spec", spec}};
  ZS_ASSIGN_OR_RETURN(json out,
                      Call("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review.dump()));
  return out.contains("status") ? out["status"] : json::object();
}

absl::StatusOr<bool> KubeApi::CanI(absl::string_view user, const std::vector<std::string>& groups,
                                   absl::string_view verb, absl::string_view group,
                                   absl::string_view resource, absl::string_view ns,
                                   absl::string_view subresource) {
  json attributes = {{"verb", std::string(verb)},
                     {"group", std::string(group)},
                     {"resource", std::string(resource)}};
  if (!ns.empty()) attributes["namespace"] = std::string(ns);
  if (!subresource.empty()) attributes["subresource"] = std::string(subresource);
  const json review = {
      {"apiVersion", "authorization.k8s.io/v1"},
      {"kind", "SubjectAccessReview"},
      {"spec",
       {{"user", std::string(user)}, {"groups", groups}, {"resourceAttributes", attributes}}}};
  ZS_ASSIGN_OR_RETURN(
      json out, Call("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review.dump()));
  return out.contains("status") && out["status"].value("allowed", false);
}

}  // namespace zeroscale::testing
