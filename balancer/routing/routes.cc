#include "balancer/routing/routes.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "yaml-cpp/yaml.h"

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
  for (size_t i = 0; i < routes.size(); ++i) {
    Route& r = routes[i];
    const std::string where = absl::StrCat("route ", i, " (", r.workload, ")");
    if (r.workload.empty()) return absl::InvalidArgumentError(where + ": workload is empty");
    r.host = NormalizeHost(r.host);
    if (r.host.empty() && r.path_prefix.empty()) {
      return absl::InvalidArgumentError(where + ": route needs a host or a pathPrefix");
    }
    if (!r.path_prefix.empty() && r.path_prefix.front() != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": pathPrefix must start with '/', got \"", r.path_prefix, "\""));
    }
    if (r.activation_timeout && *r.activation_timeout <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(where + ": activationTimeoutSeconds must be positive");
    }
    for (size_t j = 0; j < i; ++j) {
      if (!r.host.empty() && routes[j].host == r.host) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": host \"", r.host, "\" is already routed to ", routes[j].workload));
      }
      if (!r.path_prefix.empty() && routes[j].path_prefix == r.path_prefix) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": pathPrefix \"", r.path_prefix,
                                                       "\" is already routed to ",
                                                       routes[j].workload));
      }
    }
    if (!r.host.empty()) t.by_host_[r.host] = i;
    if (!r.path_prefix.empty()) t.by_prefix_.push_back(i);
  }
  t.routes_ = std::move(routes);
  std::stable_sort(t.by_prefix_.begin(), t.by_prefix_.end(), [&t](size_t a, size_t b) {
    return t.routes_[a].path_prefix.size() > t.routes_[b].path_prefix.size();
  });
  return t;
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

absl::StatusOr<std::vector<Route>> ParseRoutesYaml(absl::string_view yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("routes file is not valid YAML: ", e.what()));
  }
  const YAML::Node list = root["workloads"];
  if (!list || !list.IsSequence()) {
    return absl::InvalidArgumentError("routes file: `workloads` must be a list");
  }
  std::vector<Route> routes;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node w = list[i];
    std::string where = absl::StrCat("workloads[", i, "]");
    try {
      if (!w.IsMap()) return absl::InvalidArgumentError(where + ": must be a map");
      const std::string name = w["name"] ? w["name"].as<std::string>() : "";
      if (!name.empty()) where = absl::StrCat(where, " (", name, ")");
      const YAML::Node route = w["route"];
      if (!route || route.IsNull()) continue;
      if (!route.IsMap()) return absl::InvalidArgumentError(where + ": route must be a map");
      Route r;
      if (w["workload"]) {
        r.workload = w["workload"].as<std::string>();
        if (std::count(r.workload.begin(), r.workload.end(), '/') != 2) {
          return absl::InvalidArgumentError(absl::StrCat(
              where, ": workload must be <namespace>/<kind>/<name>, got \"", r.workload, "\""));
        }
      } else {
        if (name.empty()) return absl::InvalidArgumentError(where + ": name is required");
        const std::string ns = w["namespace"] ? w["namespace"].as<std::string>() : "local";
        const std::string kind = w["kind"] ? w["kind"].as<std::string>() : "Deployment";
        r.workload = absl::StrCat(ns, "/", kind, "/", name);
      }
      if (route["host"]) r.host = route["host"].as<std::string>();
      if (route["pathPrefix"]) r.path_prefix = route["pathPrefix"].as<std::string>();
      if (w["activationTimeoutSeconds"]) {
        const double s = w["activationTimeoutSeconds"].as<double>();
        if (!(s > 0)) {
          return absl::InvalidArgumentError(where + ": activationTimeoutSeconds must be positive");
        }
        r.activation_timeout = absl::Seconds(s);
      }
      routes.push_back(std::move(r));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", e.what()));
    }
  }
  return routes;
}

absl::StatusOr<std::vector<Route>> LoadRoutesFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read routes file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<std::vector<Route>> routes = ParseRoutesYaml(ss.str());
  if (!routes.ok()) {
    return absl::Status(routes.status().code(),
                        absl::StrCat(path, ": ", routes.status().message()));
  }
  return routes;
}

}  // namespace zeroscale::balancer
