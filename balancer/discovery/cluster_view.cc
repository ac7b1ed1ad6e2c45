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

void SortUnique(std::vector<std::string>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
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
  if (type == kube::WatchEventType::kDeleted) {
    slices_.erase(key);
  } else {
    slices_[key] = slice;
    services.insert(ServiceKey(slice));
  }
  std::set<std::string> workloads;
  for (const auto& [ca, r] : routed_) {
    if (services.count(r.service)) workloads.insert(r.workload);
  }
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

void ClusterView::RecomputeLocked(const std::string& workload) {
  const Routed* routed = nullptr;
  for (const auto& [key, r] : routed_) {
    if (r.workload == workload) {
      routed = &r;
      break;
    }
  }
  if (routed == nullptr) return ForgetWorkloadLocked(workload);

  Emitted now;
  std::set<std::string>& seen = seen_ready_[workload];
  std::set<std::string> present;
  for (const auto& [key, slice] : slices_) {
    if (ServiceKey(slice) != routed->service) continue;
    int32_t port = 0;
    if (!ResolvePort(slice, routed->port, &port)) {
      ZS_LOG(kDebug, "EndpointSlice has no usable port for the route", {"slice", key},
             {"workload", workload}, {"port", routed->port});
      continue;
    }
    for (const kube::SliceEndpoint& ep : slice.endpoints) {
      // Addresses of one endpoint are fungible (the API lets consumers use the first).
      if (ep.addresses.empty()) continue;
      const std::string a = Address(ep.addresses.front(), port);
      present.insert(a);
      if (ep.ready && !ep.terminating) {
        now.ready.push_back(a);
        seen.insert(a);
      } else if (ep.terminating || seen.count(a)) {
        now.withdrawn.push_back(a);
      }
    }
  }
  for (auto it = seen.begin(); it != seen.end();) {
    it = present.count(*it) ? std::next(it) : seen.erase(it);
  }
  SortUnique(&now.ready);
  SortUnique(&now.withdrawn);
  Emitted& last = emitted_[workload];
  if (now.ready == last.ready && now.withdrawn == last.withdrawn) return;
  last = now;
  if (sinks_.endpoints) sinks_.endpoints(workload, std::move(now.ready), std::move(now.withdrawn));
}

void ClusterView::ForgetWorkloadLocked(const std::string& workload) {
  seen_ready_.erase(workload);
  auto it = emitted_.find(workload);
  if (it == emitted_.end()) return;
  const bool had_any = !it->second.ready.empty() || !it->second.withdrawn.empty();
  emitted_.erase(it);
  if (had_any && sinks_.endpoints) sinks_.endpoints(workload, {}, {});
}

}  // namespace zeroscale::balancer
