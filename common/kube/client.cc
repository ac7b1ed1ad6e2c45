#include "common/kube/client.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json/bounded_json.h"
#include "common/kube/json_internal.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace zeroscale::kube {
namespace {
using json = nlohmann::json;

constexpr char kMergePatch[] = "application/merge-patch+json";
constexpr char kJsonPatch[] = "application/json-patch+json";

// Names come from custom resources; anything that could escape its path segment is
// refused rather than sent.
absl::Status CheckName(absl::string_view what, absl::string_view name) {
  if (name.empty() || name.size() > 253 || std::any_of(name.begin(), name.end(), [](char c) {
        return !(absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_');
      })) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", name, "' is not a valid name"));
  }
  return absl::OkStatus();
}

std::string CustomAutoscalerPath(absl::string_view ns, absl::string_view name) {
  return absl::StrCat("/apis/", kCustomAutoscalerGroup, "/", kCustomAutoscalerVersion,
                      "/namespaces/", ns, "/", kCustomAutoscalerPlural, "/", name);
}

std::string LeasePath(absl::string_view ns, absl::string_view name) {
  return absl::StrCat("/apis/coordination.k8s.io/v1/namespaces/", ns, "/leases",
                      name.empty() ? "" : "/", name);
}

std::string EventsPath(absl::string_view ns, absl::string_view name) {
  return absl::StrCat("/api/v1/namespaces/", ns, "/events", name.empty() ? "" : "/", name);
}

// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
std::string QueryEscape(absl::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      const auto u = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

absl::Status CheckNamespace(absl::string_view ns) {
  return ns.empty() ? absl::OkStatus() : CheckName("namespace", ns);
}

// A resource's collection path in a namespace ("" for all).
using CollectionPath = std::string (*)(absl::string_view ns);

// The one list code path: GET the collection, parse each item with `decode`.
template <typename T>
absl::StatusOr<ObjectList<T>> ListObjects(KubeClient& client, CollectionPath path,
                                          absl::string_view ns, absl::string_view label_selector,
                                          absl::string_view field_selector,
                                          internal::ObjectDecoder<T> decode) {
  ZS_RETURN_IF_ERROR(CheckNamespace(ns));
  ZS_ASSIGN_OR_RETURN(
      const std::string body,
      client.Call("GET", KubeClient::CollectionTarget(path(ns), label_selector, /*watch=*/false, "",
                                                      absl::ZeroDuration(), field_selector)));
  json list;
  ZS_RETURN_IF_ERROR(
      zeroscale::json::ParseJson(body, zeroscale::json::kKubernetesDocument, &list, "response"));
  return internal::ObjectListFromObject(list, decode);
}

// The one watch code path, up to the objects: streams the watch of `collection`, splits
// the newline-delimited events and hands each one's type and object to `on_event`, which
// returns false to end the watch or an error to fail it.
absl::Status WatchCollection(
    Transport& transport, absl::string_view collection, absl::string_view label_selector,
    absl::string_view field_selector, absl::string_view resource_version, absl::Duration timeout,
    const std::function<absl::StatusOr<bool>(const std::string& type, const json& object)>&
        on_event,
    CancelToken* cancel) {
  const int64_t timeout_s = std::max<int64_t>(1, absl::ToInt64Seconds(timeout));
  HttpRequest req;
  req.target =
      KubeClient::CollectionTarget(collection, label_selector, /*watch=*/true, resource_version,
                                   absl::Seconds(timeout_s), field_selector);
  // The server may stay silent for the whole watch; give it a margin past its timeout.
  req.timeout = absl::Seconds(timeout_s + 30);
  const std::string what = absl::StrCat("watch ", collection);

  std::string pending;
  absl::Status event_error;
  // Events are newline-delimited JSON, each possibly split across reads.
  auto on_data = [&](absl::string_view data) -> bool {
    pending.append(data.data(), data.size());
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      absl::string_view line =
          absl::StripAsciiWhitespace(absl::string_view(pending).substr(start, nl - start));
      if (line.empty()) continue;
      json ev;
      if (!zeroscale::json::ParseJson(line, zeroscale::json::kKubernetesDocument, &ev).ok() ||
          !ev.is_object() || !ev.contains("type") || !ev["type"].is_string()) {
        event_error = absl::InvalidArgumentError(
            absl::StrCat("watch event is not valid JSON: ", line.substr(0, 200)));
        return false;
      }
      const std::string type = ev["type"].get<std::string>();
      const json& obj = ev.contains("object") ? ev["object"] : json::object();
      if (type == "ERROR") {
        // The object is a metav1.Status; 410 means the resourceVersion was compacted.
        int code = 500;
        if (obj.is_object() && obj.contains("code") && obj["code"].is_number_integer()) {
          code = obj["code"].get<int>();
        }
        event_error = StatusFromHttp(code, obj.dump(), "", what);
        return false;
      }
      absl::StatusOr<bool> more = on_event(type, obj);
      if (!more.ok()) {
        event_error = more.status();
        return false;
      }
      if (!*more) return false;
    }
    pending.erase(0, start);
    return true;
  };
  ZS_ASSIGN_OR_RETURN(HttpResponse res, transport.Stream(req, on_data, cancel));
  if (res.status < 200 || res.status >= 300) {
    return StatusFromHttp(res.status, res.body, res.Header("Retry-After"), what);
  }
  return event_error;
}

// The one watch code path, typed: each event's object parsed with `decode`.
template <typename T>
absl::Status WatchObjects(Transport& transport, CollectionPath path, absl::string_view ns,
                          absl::string_view label_selector, absl::string_view field_selector,
                          absl::string_view resource_version, absl::Duration timeout,
                          const std::function<bool(const WatchEvent<T>&)>& on_event,
                          CancelToken* cancel, internal::ObjectDecoder<T> decode) {
  using Type = typename WatchEvent<T>::Type;
  ZS_RETURN_IF_ERROR(CheckNamespace(ns));
  return WatchCollection(
      transport, path(ns), label_selector, field_selector, resource_version, timeout,
      [&](const std::string& type, const json& obj) -> absl::StatusOr<bool> {
        WatchEvent<T> out;
        if (type == "ADDED") {
          out.type = Type::kAdded;
        } else if (type == "MODIFIED") {
          out.type = Type::kModified;
        } else if (type == "DELETED") {
          out.type = Type::kDeleted;
        } else if (type == "BOOKMARK") {
          out.type = Type::kBookmark;
        } else {
          return true;  // Future event types are not ours to interpret.
        }
        if (out.type == Type::kBookmark) {
          if (obj.is_object() && obj.contains("metadata") && obj["metadata"].is_object() &&
              obj["metadata"].contains("resourceVersion") &&
              obj["metadata"]["resourceVersion"].is_string()) {
            out.resource_version = obj["metadata"]["resourceVersion"].get<std::string>();
          }
        } else {
          absl::StatusOr<T> object = decode(obj);
          if (!object.ok()) return object.status();
          out.object = *std::move(object);
          out.resource_version = out.object.resource_version;
        }
        return on_event(out);
      },
      cancel);
}

}  // namespace

absl::Status StatusFromHttp(int http_status, absl::string_view body,
                            absl::string_view retry_after_header, absl::string_view what) {
  // The API server answers errors with a metav1.Status whose message says it best.
  std::string message;
  json j;
  if (zeroscale::json::ParseJson(body, zeroscale::json::kKubernetesDocument, &j).ok() &&
      j.is_object() && j.contains("message") && j["message"].is_string()) {
    message = j["message"].get<std::string>();
  } else {
    message = std::string(body.substr(0, 200));
  }
  const std::string text = absl::StrCat(what, ": HTTP ", http_status, ": ", message);
  std::optional<absl::Duration> retry_after;
  absl::Status status;
  switch (http_status) {
    case 400:
    case 422:
      status = absl::InvalidArgumentError(text);
      break;
    case 401:
    case 403:
      status = absl::PermissionDeniedError(text);
      break;
    case 404:
      status = absl::NotFoundError(text);
      break;
    case 409:
      status = absl::AbortedError(text);
      break;
    case 410:
      status = absl::OutOfRangeError(text);
      break;
    case 429: {
      status = absl::UnavailableError(text);
      int64_t seconds = 0;
      // Retry-After may also be an HTTP date; the API server sends seconds, and anything
      // else falls back to a conservative second.
      retry_after =
          absl::SimpleAtoi(absl::StripAsciiWhitespace(retry_after_header), &seconds) && seconds >= 0
              ? absl::Seconds(seconds)
              : absl::Seconds(1);
      break;
    }
    default:
      if (http_status >= 500) {
        status = absl::UnavailableError(text);
        int64_t seconds = 0;
        if (absl::SimpleAtoi(absl::StripAsciiWhitespace(retry_after_header), &seconds) &&
            seconds >= 0) {
          retry_after = absl::Seconds(seconds);
        }
      } else {
        status = absl::UnknownError(text);
      }
  }
  return WithHttpDetails(status, http_status, retry_after);
}

KubeClient::KubeClient(ClusterConfig config, std::unique_ptr<Transport> transport)
    : config_(std::move(config)), transport_(std::move(transport)) {}

absl::StatusOr<std::unique_ptr<KubeClient>> KubeClient::Create(const ClusterConfig& config,
                                                               Clock* clock) {
  ZS_ASSIGN_OR_RETURN(auto transport, Transport::Create(config, clock));
  return std::unique_ptr<KubeClient>(new KubeClient(config, std::move(transport)));
}

absl::StatusOr<std::string> KubeClient::Call(absl::string_view method, absl::string_view path,
                                             absl::string_view body,
                                             absl::string_view content_type) {
  HttpRequest req;
  req.method = std::string(method);
  req.target = std::string(path);
  req.body = std::string(body);
  req.content_type = std::string(content_type);
  ZS_ASSIGN_OR_RETURN(HttpResponse res, transport_->Do(req));
  if (res.status < 200 || res.status >= 300) {
    return StatusFromHttp(res.status, res.body, res.Header("Retry-After"),
                          absl::StrCat(method, " ", path));
  }
  return std::move(res.body);
}

absl::StatusOr<std::string> KubeClient::ScalePath(const WorkloadRef& t) {
  ZS_RETURN_IF_ERROR(CheckName("namespace", t.namespace_));
  ZS_RETURN_IF_ERROR(CheckName(t.kind, t.name));
  absl::string_view plural;
  if (t.kind == "Deployment") {
    plural = "deployments";
  } else if (t.kind == "StatefulSet") {
    plural = "statefulsets";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot scale kind '", t.kind, "': only Deployment and StatefulSet"));
  }
  return absl::StrCat("/apis/apps/v1/namespaces/", t.namespace_, "/", plural, "/", t.name,
                      "/scale");
}

std::string KubeClient::CustomAutoscalersPath(absl::string_view ns) {
  return absl::StrCat("/apis/", kCustomAutoscalerGroup, "/", kCustomAutoscalerVersion,
                      ns.empty() ? "" : "/namespaces/", ns, "/", kCustomAutoscalerPlural);
}

absl::StatusOr<Scale> KubeClient::GetScale(const WorkloadRef& target) {
  ZS_ASSIGN_OR_RETURN(const std::string path, ScalePath(target));
  ZS_ASSIGN_OR_RETURN(const std::string body, Call("GET", path));
  return ScaleFromJson(body);
}

absl::StatusOr<Scale> KubeClient::PatchScale(const WorkloadRef& target, int32_t replicas,
                                             absl::string_view resource_version) {
  if (replicas < 0) return absl::InvalidArgumentError("replicas must not be negative");
  ZS_ASSIGN_OR_RETURN(const std::string path, ScalePath(target));
  json patch = {{"spec", {{"replicas", replicas}}}};
  if (!resource_version.empty()) {
    patch["metadata"] = {{"resourceVersion", std::string(resource_version)}};
  }
  ZS_ASSIGN_OR_RETURN(const std::string body, Call("PATCH", path, patch.dump(), kMergePatch));
  return ScaleFromJson(body);
}

absl::StatusOr<Scale> KubeClient::PatchScaleIfReplicas(const WorkloadRef& target, int32_t expected,
                                                       int32_t replicas) {
  if (replicas < 0 || expected < 0) {
    return absl::InvalidArgumentError("replicas must not be negative");
  }
  ZS_ASSIGN_OR_RETURN(const std::string path, ScalePath(target));
  json test = expected == 0 ? json{{"op", "test"}, {"path", "/spec"}, {"value", json::object()}}
                            : json{{"op", "test"}, {"path", "/spec/replicas"}, {"value", expected}};
  // "add" sets a member whether or not it is there (it is not, at 0).
  json patch = json::array(
      {std::move(test), {{"op", "add"}, {"path", "/spec/replicas"}, {"value", replicas}}});
  ZS_ASSIGN_OR_RETURN(const std::string body, Call("PATCH", path, patch.dump(), kJsonPatch));
  return ScaleFromJson(body);
}

std::string KubeClient::CollectionTarget(absl::string_view collection,
                                         absl::string_view label_selector, bool watch,
                                         absl::string_view resource_version, absl::Duration timeout,
                                         absl::string_view field_selector) {
  std::string target(collection);
  char sep = '?';
  auto add = [&](absl::string_view name, absl::string_view value) {
    absl::StrAppend(&target, absl::string_view(&sep, 1), name, "=", value);
    sep = '&';
  };
  if (watch) {
    add("watch", "1");
    add("allowWatchBookmarks", "true");
    add("timeoutSeconds", absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(timeout))));
    if (!resource_version.empty()) add("resourceVersion", QueryEscape(resource_version));
  }
  if (!label_selector.empty()) add("labelSelector", QueryEscape(label_selector));
  if (!field_selector.empty()) add("fieldSelector", QueryEscape(field_selector));
  return target;
}

absl::StatusOr<CustomAutoscalerList> KubeClient::ListCustomAutoscalers(
    absl::string_view ns, absl::string_view label_selector, absl::string_view field_selector) {
  return ListObjects(*this, &CustomAutoscalersPath, ns, label_selector, field_selector,
                     &internal::CustomAutoscalerFromObject);
}

absl::Status KubeClient::WatchCustomAutoscalers(
    absl::string_view ns, absl::string_view resource_version, absl::Duration timeout,
    const std::function<bool(const CustomAutoscalerWatchEvent&)>& on_event, CancelToken* cancel,
    absl::string_view label_selector, absl::string_view field_selector) {
  return WatchObjects(*transport_, &CustomAutoscalersPath, ns, label_selector, field_selector,
                      resource_version, timeout, on_event, cancel,
                      &internal::CustomAutoscalerFromObject);
}

std::string KubeClient::EndpointSlicesPath(absl::string_view ns) {
  return absl::StrCat("/apis/discovery.k8s.io/v1", ns.empty() ? "" : "/namespaces/", ns,
                      "/endpointslices");
}

absl::StatusOr<EndpointSliceList> KubeClient::ListEndpointSlices(absl::string_view ns,
                                                                 absl::string_view label_selector,
                                                                 absl::string_view field_selector) {
  return ListObjects(*this, &EndpointSlicesPath, ns, label_selector, field_selector,
                     &internal::EndpointSliceFromObject);
}

absl::Status KubeClient::WatchEndpointSlices(
    absl::string_view ns, absl::string_view resource_version, absl::Duration timeout,
    const std::function<bool(const EndpointSliceWatchEvent&)>& on_event, CancelToken* cancel,
    absl::string_view label_selector, absl::string_view field_selector) {
  return WatchObjects(*transport_, &EndpointSlicesPath, ns, label_selector, field_selector,
                      resource_version, timeout, on_event, cancel,
                      &internal::EndpointSliceFromObject);
}

std::string KubeClient::LeasesPath(absl::string_view ns) {
  return absl::StrCat("/apis/coordination.k8s.io/v1", ns.empty() ? "" : "/namespaces/", ns,
                      "/leases");
}

absl::StatusOr<LeaseList> KubeClient::ListLeases(absl::string_view ns,
                                                 absl::string_view label_selector,
                                                 absl::string_view field_selector) {
  return ListObjects(*this, &LeasesPath, ns, label_selector, field_selector,
                     &internal::LeaseFromObject);
}

absl::Status KubeClient::WatchLeases(absl::string_view ns, absl::string_view resource_version,
                                     absl::Duration timeout,
                                     const std::function<bool(const LeaseWatchEvent&)>& on_event,
                                     CancelToken* cancel, absl::string_view label_selector,
                                     absl::string_view field_selector) {
  return WatchObjects(*transport_, &LeasesPath, ns, label_selector, field_selector,
                      resource_version, timeout, on_event, cancel, &internal::LeaseFromObject);
}

std::string KubeClient::PodsPath(absl::string_view ns) {
  return absl::StrCat("/api/v1", ns.empty() ? "" : "/namespaces/", ns, "/pods");
}

absl::StatusOr<PodList> KubeClient::ListPods(absl::string_view ns, absl::string_view label_selector,
                                             absl::string_view field_selector) {
  return ListObjects(*this, &PodsPath, ns, label_selector, field_selector,
                     &internal::PodFromObject);
}

absl::Status KubeClient::WatchPods(absl::string_view ns, absl::string_view resource_version,
                                   absl::Duration timeout,
                                   const std::function<bool(const PodWatchEvent&)>& on_event,
                                   CancelToken* cancel, absl::string_view label_selector,
                                   absl::string_view field_selector) {
  return WatchObjects(*transport_, &PodsPath, ns, label_selector, field_selector, resource_version,
                      timeout, on_event, cancel, &internal::PodFromObject);
}

std::string KubeClient::NodesPath(absl::string_view) { return "/api/v1/nodes"; }

absl::StatusOr<NodeList> KubeClient::ListNodes(absl::string_view, absl::string_view label_selector,
                                               absl::string_view field_selector) {
  return ListObjects(*this, &NodesPath, "", label_selector, field_selector,
                     &internal::NodeFromObject);
}

absl::Status KubeClient::WatchNodes(absl::string_view, absl::string_view resource_version,
                                    absl::Duration timeout,
                                    const std::function<bool(const NodeWatchEvent&)>& on_event,
                                    CancelToken* cancel, absl::string_view label_selector,
                                    absl::string_view field_selector) {
  return WatchObjects(*transport_, &NodesPath, "", label_selector, field_selector, resource_version,
                      timeout, on_event, cancel, &internal::NodeFromObject);
}

std::string KubeClient::AllocationPoliciesPath(absl::string_view ns) {
  return absl::StrCat("/apis/", kAllocationPolicyGroup, "/", kAllocationPolicyVersion,
                      ns.empty() ? "" : "/namespaces/", ns, "/", kAllocationPolicyPlural);
}

absl::StatusOr<AllocationPolicyList> KubeClient::ListAllocationPolicies(
    absl::string_view ns, absl::string_view label_selector, absl::string_view field_selector) {
  return ListObjects(*this, &AllocationPoliciesPath, ns, label_selector, field_selector,
                     &internal::AllocationPolicyFromObject);
}

absl::Status KubeClient::WatchAllocationPolicies(
    absl::string_view ns, absl::string_view resource_version, absl::Duration timeout,
    const std::function<bool(const AllocationPolicyWatchEvent&)>& on_event, CancelToken* cancel,
    absl::string_view label_selector, absl::string_view field_selector) {
  return WatchObjects(*transport_, &AllocationPoliciesPath, ns, label_selector, field_selector,
                      resource_version, timeout, on_event, cancel,
                      &internal::AllocationPolicyFromObject);
}

absl::StatusOr<ResourceAmounts> KubeClient::GetPodTemplateRequests(const WorkloadRef& target) {
  ZS_ASSIGN_OR_RETURN(std::string path, ScalePath(target));
  path.resize(path.size() - std::string_view("/scale").size());
  ZS_ASSIGN_OR_RETURN(const std::string body, Call("GET", path));
  return PodTemplateRequestsFromJson(body);
}

absl::StatusOr<CustomAutoscaler> KubeClient::PatchCustomAutoscalerStatus(
    absl::string_view ns, absl::string_view name, const CustomAutoscalerStatus& status) {
  ZS_RETURN_IF_ERROR(CheckName("namespace", ns));
  ZS_RETURN_IF_ERROR(CheckName("CustomAutoscaler", name));
  ZS_ASSIGN_OR_RETURN(const std::string body,
                      Call("PATCH", absl::StrCat(CustomAutoscalerPath(ns, name), "/status"),
                           CustomAutoscalerStatusPatch(status), kMergePatch));
  return CustomAutoscalerFromJson(body);
}

absl::StatusOr<Lease> KubeClient::GetLease(absl::string_view ns, absl::string_view name) {
  ZS_RETURN_IF_ERROR(CheckName("namespace", ns));
  ZS_RETURN_IF_ERROR(CheckName("Lease", name));
  ZS_ASSIGN_OR_RETURN(const std::string body, Call("GET", LeasePath(ns, name)));
  return LeaseFromJson(body);
}

absl::StatusOr<Lease> KubeClient::CreateLease(const Lease& lease) {
  ZS_RETURN_IF_ERROR(CheckName("namespace", lease.namespace_));
  ZS_RETURN_IF_ERROR(CheckName("Lease", lease.name));
  Lease fresh = lease;
  fresh.resource_version.clear();
  ZS_ASSIGN_OR_RETURN(const std::string body,
                      Call("POST", LeasePath(lease.namespace_, ""), LeaseToJson(fresh)));
  return LeaseFromJson(body);
}

absl::StatusOr<Lease> KubeClient::UpdateLease(const Lease& lease) {
  ZS_RETURN_IF_ERROR(CheckName("namespace", lease.namespace_));
  ZS_RETURN_IF_ERROR(CheckName("Lease", lease.name));
  if (lease.resource_version.empty()) {
    // Without it the update would overwrite a rival's claim instead of losing the race.
    return absl::InvalidArgumentError("a Lease update needs the resourceVersion it read");
  }
  ZS_ASSIGN_OR_RETURN(const std::string body,
                      Call("PUT", LeasePath(lease.namespace_, lease.name), LeaseToJson(lease)));
  return LeaseFromJson(body);
}

absl::StatusOr<Event> KubeClient::CreateEvent(const Event& event) {
  ZS_RETURN_IF_ERROR(CheckName("namespace", event.namespace_));
  ZS_RETURN_IF_ERROR(CheckName("Event", event.name));
  ZS_ASSIGN_OR_RETURN(const std::string body,
                      Call("POST", EventsPath(event.namespace_, ""), EventToJson(event)));
  return EventFromJson(body);
}

absl::StatusOr<Event> KubeClient::PatchEventSeries(absl::string_view ns, absl::string_view name,
                                                   int32_t count, absl::Time last_timestamp) {
  ZS_RETURN_IF_ERROR(CheckName("namespace", ns));
  ZS_RETURN_IF_ERROR(CheckName("Event", name));
  const json patch = {{"count", count}, {"lastTimestamp", FormatKubeTime(last_timestamp)}};
  ZS_ASSIGN_OR_RETURN(const std::string body,
                      Call("PATCH", EventsPath(ns, name), patch.dump(), kMergePatch));
  return EventFromJson(body);
}

}  // namespace zeroscale::kube
