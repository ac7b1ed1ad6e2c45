#include "balancer/discovery/cluster_view.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::balancer {
namespace {

std::string Address(const std::string& ip, int32_t port) {
  return ip.find(':') != std::string::npos ? absl::StrCat("[", ip, "]:", port)
                                           : absl::StrCat(ip, ":", port);
}

// The port traffic goes to on this slice's pods: `want` names a slice port, or is a
// number (e.g. the sidecar's proxy port when the Service targets the app), or is empty
// for the slice's first port.
bool ResolvePort(const kube::EndpointSlice& slice, const std::string& want, int32_t* port) {
  if (want.empty()) {
    if (slice.ports.empty() || slice.ports.front().port <= 0) return false;
    *port = slice.ports.front().port;
    return true;
  }
  if (absl::SimpleAtoi(want, port)) return *port > 0 && *port < 65536;
  for (const kube::EndpointSlicePort& p : slice.ports) {
    if (p.name == want && p.port > 0) {
      *port = p.port;
      return true;
    }
  }
  return false;
}

// "namespace/name" of the pod behind an endpoint, as the scaler names pods; "" when the
// endpoint is not a pod.
std::string PodOf(const kube::SliceEndpoint& ep, const std::string& slice_namespace) {
  const kube::ObjectReference& ref = ep.target_ref;
  if (ref.name.empty() || (!ref.kind.empty() && ref.kind != "Pod")) return "";
  return absl::StrCat(ref.namespace_.empty() ? slice_namespace : ref.namespace_, "/", ref.name);
}

// Ranks a pod listed twice (an endpoint moving between slices of one Service): being
// taken out of service wins, then ready.
int Rank(ListedState s) {
  switch (s) {
    case ListedState::kWithdrawn:
      return 2;
    case ListedState::kReady:
      return 1;
    case ListedState::kStarting:
      return 0;
  }
  return 0;
}

bool IsIpSlice(const kube::EndpointSlice& s) {
  return s.address_type == "IPv4" || s.address_type == "IPv6";
}

std::string SliceKey(const kube::EndpointSlice& s) { return s.namespace_ + "/" + s.name; }
std::string ServiceKey(const kube::EndpointSlice& s) { return s.namespace_ + "/" + s.service_name; }

}  // namespace

ClusterView::ClusterView(std::vector<Route> file_routes, ClusterSinks sinks)
    : file_routes_(std::move(file_routes)), sinks_(std::move(sinks)) {}

void ClusterView::OnCustomAutoscaler(kube::WatchEventType type, const kube::CustomAutoscaler& ca) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string key = ca.Key();
  std::string old_workload;
  if (auto it = routed_.find(key); it != routed_.end()) old_workload = it->second.workload;
  if (type == kube::WatchEventType::kDeleted || !ca.spec.route) {
    routed_.erase(key);
  } else {
    const kube::RouteSpec& spec = *ca.spec.route;
    Routed r;
    r.workload = ca.Target().Id();
    r.service = absl::StrCat(ca.namespace_, "/",
                             spec.service.empty() ? ca.spec.scale_target_ref.name : spec.service);
    r.port = spec.port;
    if (!ca.route_error.ok()) r.error = std::string(ca.route_error.message());
    r.route.workload = r.workload;
    r.route.host = spec.host;
    r.route.path_prefix = spec.path_prefix;
    if (spec.activation_timeout_seconds) {
      r.route.activation_timeout = absl::Seconds(*spec.activation_timeout_seconds);
    }
    routed_[key] = std::move(r);
  }
  RebuildRoutesLocked();
  if (!old_workload.empty()) RecomputeLocked(old_workload);
  if (auto it = routed_.find(key); it != routed_.end() && it->second.workload != old_workload) {
    RecomputeLocked(it->second.workload);
  }
}

void ClusterView::OnEndpointSlice(kube::WatchEventType type, const kube::EndpointSlice& slice) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string key = SliceKey(slice);
  std::set<std::string> services;  // before and after: a slice may change its service label
  if (auto it = slices_.find(key); it != slices_.end()) services.insert(ServiceKey(it->second));
  const size_t ignored_before = ignored_.size();
  slices_.erase(key);
  if (type == kube::WatchEventType::kDeleted) {
    ignored_.erase(key);
  } else if (IsIpSlice(slice)) {
    ignored_.erase(key);
    slices_[key] = slice;
    services.insert(ServiceKey(slice));
  } else if (ignored_.insert(key).second) {
    // The proxy connects to IP literals only; names would need resolving on the data path.
    ZS_LOG(kWarning, "ignoring an EndpointSlice whose addressType is not IPv4 or IPv6",
           {"slice", key}, {"service", slice.service_name}, {"address_type", slice.address_type});
  }
  if (ignored_.size() != ignored_before && sinks_.ignored) sinks_.ignored(ignored_.size());
  std::set<std::string> workloads;
  for (const auto& [ca, r] : routed_) {
    if (services.count(r.service)) workloads.insert(r.workload);
  }
  for (const std::string& w : workloads) RecomputeLocked(w);
}

void ClusterView::OnEndpointSlicesSynced() {
  std::lock_guard<std::mutex> lock(mu_);
  if (slices_synced_) return;
  slices_synced_ = true;
  std::set<std::string> workloads;
  for (const auto& [ca, r] : routed_) workloads.insert(r.workload);
  for (const std::string& w : workloads) RecomputeLocked(w);
}

std::map<std::string, std::string> ClusterView::Refused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

void ClusterView::RebuildRoutesLocked() {
  RouteTable table;
  std::string signature;
  auto sign = [&signature](const Route& r) {
    absl::StrAppend(&signature, r.workload, "|", r.host, "|", r.path_prefix, "|",
                    r.activation_timeout ? absl::FormatDuration(*r.activation_timeout) : "", "\n");
  };
  for (const Route& r : file_routes_) {
    if (table.Add(r).ok()) sign(r);  // validated at start
  }
  for (auto it = refused_.begin(); it != refused_.end();) {
    if (routed_.count(it->first)) {
      ++it;
      continue;
    }
    const std::string key = it->first;
    it = refused_.erase(it);
    if (sinks_.refused) sinks_.refused(key, "", refused_.size());
  }
  for (const auto& [key, r] : routed_) {
    absl::Status s = r.error.empty() ? table.Add(r.route) : absl::InvalidArgumentError(r.error);
    if (s.ok()) {
      sign(r.route);
      if (refused_.erase(key) && sinks_.refused) sinks_.refused(key, "", refused_.size());
      continue;
    }
    const std::string reason =
        r.error.empty() ? absl::StrCat("spec.route: ", s.message()) : r.error;
    auto [it, inserted] = refused_.try_emplace(key, reason);
    if (!inserted && it->second == reason) continue;
    it->second = reason;
    ZS_LOG(kWarning, "ignoring a CustomAutoscaler's route", {"custom_autoscaler", key},
           {"reason", reason});
    if (sinks_.refused) sinks_.refused(key, reason, refused_.size());
  }
  if (signature == last_routes_) return;
  last_routes_ = std::move(signature);
  ZS_LOG(kInfo, "routes updated from Kubernetes", {"routes", absl::StrCat(table.routes().size())});
  if (sinks_.routes) sinks_.routes(std::move(table));
}

std::vector<ListedPod> ClusterView::ListLocked(const Routed& routed,
                                               std::set<std::string>* seen) const {
  std::map<std::string, ListedPod> now;  // by address
  for (const auto& [key, slice] : slices_) {
    if (ServiceKey(slice) != routed.service) continue;
    int32_t port = 0;
    if (!ResolvePort(slice, routed.port, &port)) {
      ZS_LOG(kDebug, "EndpointSlice has no usable port for the route", {"slice", key},
             {"workload", routed.workload}, {"port", routed.port});
      continue;
    }
    for (const kube::SliceEndpoint& ep : slice.endpoints) {
      // Addresses of one endpoint are fungible (the API lets consumers use the first).
      if (ep.addresses.empty()) continue;
      ListedPod p;
      p.ip = CanonicalIp(ep.addresses.front());
      if (p.ip.empty()) continue;  // the API server validates; a stranger is skipped
      p.pod = PodOf(ep, slice.namespace_);
      p.address = Address(p.ip, port);
      if (ep.ready && !ep.terminating) {
        p.state = ListedState::kReady;
        seen->insert(p.address);
      } else if (ep.terminating || seen->count(p.address)) {
        p.state = ListedState::kWithdrawn;
      } else {
        p.state = ListedState::kStarting;
      }
      auto [it, inserted] = now.try_emplace(p.address, p);
      if (!inserted && Rank(p.state) > Rank(it->second.state)) it->second = p;
    }
  }
  for (auto it = seen->begin(); it != seen->end();) {
    it = now.count(*it) ? std::next(it) : seen->erase(it);
  }
  std::vector<ListedPod> pods;
  pods.reserve(now.size());
  for (auto& [address, p] : now) pods.push_back(std::move(p));
  return pods;
}

void ClusterView::RecomputeLocked(const std::string& workload) {
  const Routed* routed = nullptr;
  for (const auto& [key, r] : routed_) {
    if (r.workload == workload) {
      routed = &r;
      break;
    }
  }
  if (routed == nullptr) return ForgetWorkloadLocked(workload);
  if (!slices_synced_) return;  // not knowing the slices is not knowing that none exist

  std::vector<ListedPod> pods = ListLocked(*routed, &seen_ready_[workload]);
  auto [last, first] = emitted_.try_emplace(workload);
  if (!first && last->second == pods) return;
  last->second = pods;
  if (sinks_.pods) sinks_.pods(workload, std::move(pods));
}

void ClusterView::ForgetWorkloadLocked(const std::string& workload) {
  seen_ready_.erase(workload);
  if (emitted_.erase(workload) > 0 && sinks_.pods) sinks_.pods(workload, std::nullopt);
}

}  // namespace zeroscale::balancer
