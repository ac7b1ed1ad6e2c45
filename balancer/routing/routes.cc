#include "balancer/routing/routes.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/workloads/workloads.h"

namespace zeroscale::balancer {
namespace {

std::string NormalizeHost(absl::string_view host) {
  // Drop the port; keep IPv6 literals intact ("[::1]:80" -> "[::1]").
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close != absl::string_view::npos) host = host.substr(0, close + 1);
  } else {
    const size_t colon = host.rfind(':');
    if (colon != absl::string_view::npos) host = host.substr(0, colon);
  }
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(host));
}

bool PrefixMatches(absl::string_view prefix, absl::string_view path) {
  if (prefix == "/") return true;
  if (!absl::StartsWith(path, prefix)) return false;
  if (path.size() == prefix.size() || prefix.back() == '/') return true;
  const char next = path[prefix.size()];
  return next == '/' || next == '?' || next == '#';
}

}  // namespace

absl::StatusOr<RouteTable> RouteTable::Create(std::vector<Route> routes) {
  RouteTable t;
  t.routes_.reserve(routes.size());
  for (size_t i = 0; i < routes.size(); ++i) {
    const std::string where = absl::StrCat("route ", i, " (", routes[i].workload, "): ");
    if (absl::Status s = t.Add(std::move(routes[i])); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, s.message()));
    }
  }
  return t;
}

absl::Status RouteTable::Add(Route r) {
  if (r.workload.empty()) return absl::InvalidArgumentError("workload is empty");
  r.host = NormalizeHost(r.host);
  if (r.host.empty() && r.path_prefix.empty()) {
    return absl::InvalidArgumentError("route needs a host or a pathPrefix");
  }
  if (!r.path_prefix.empty() && r.path_prefix.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("pathPrefix must start with '/', got \"", r.path_prefix, "\""));
  }
  if (r.activation_timeout && *r.activation_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("activationTimeoutSeconds must be positive");
  }
  if (!r.host.empty()) {
    if (auto it = by_host_.find(r.host); it != by_host_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("host \"", r.host, "\" is already routed to ",
                                                     routes_[it->second].workload));
    }
  }
  if (!r.path_prefix.empty()) {
    for (size_t j : by_prefix_) {
      if (routes_[j].path_prefix == r.path_prefix) {
        return absl::InvalidArgumentError(absl::StrCat(
            "pathPrefix \"", r.path_prefix, "\" is already routed to ", routes_[j].workload));
      }
    }
  }
  const size_t i = routes_.size();
  if (!r.host.empty()) by_host_[r.host] = i;
  if (!r.path_prefix.empty()) {
    // Longest prefix first; equal lengths keep the order they were added in.
    const size_t len = r.path_prefix.size();
    auto at = std::find_if(by_prefix_.begin(), by_prefix_.end(),
                           [&](size_t j) { return routes_[j].path_prefix.size() < len; });
    by_prefix_.insert(at, i);
  }
  routes_.push_back(std::move(r));
  return absl::OkStatus();
}

const Route* RouteTable::Match(absl::string_view host_header, absl::string_view target) const {
  if (!by_host_.empty() && !host_header.empty()) {
    auto it = by_host_.find(NormalizeHost(host_header));
    if (it != by_host_.end()) return &routes_[it->second];
  }
  for (size_t i : by_prefix_) {
    if (PrefixMatches(routes_[i].path_prefix, target)) return &routes_[i];
  }
  return nullptr;
}

namespace {

std::vector<Route> RoutesOf(const std::vector<workloads::Workload>& list) {
  std::vector<Route> routes;
  for (const workloads::Workload& w : list) {
    if (!w.route) continue;
    Route r;
    r.workload = w.id;
    r.host = w.route->host;
    r.path_prefix = w.route->path_prefix;
    r.activation_timeout = w.activation_timeout;
    routes.push_back(std::move(r));
  }
  return routes;
}

}  // namespace

absl::StatusOr<std::vector<Route>> ParseRoutes(absl::string_view text, absl::string_view source) {
  absl::StatusOr<std::vector<workloads::Workload>> list = workloads::ParseWorkloads(text, source);
  if (!list.ok()) return list.status();
  return RoutesOf(*list);
}

absl::StatusOr<std::vector<Route>> LoadRoutesFile(const std::string& path) {
  absl::StatusOr<std::vector<workloads::Workload>> list = workloads::LoadWorkloadsFile(path);
  if (!list.ok()) return list.status();
  return RoutesOf(*list);
}

}  // namespace zeroscale::balancer
