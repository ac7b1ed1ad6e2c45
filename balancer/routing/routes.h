// Routes: which workload a request is for, by Host header or path prefix. Read from the
// workloads file of SPEC section 9 through common/workloads (each workload's
// `route: {host, pathPrefix}` and `activationTimeoutSeconds`), so one file describes both
// the local backend and the balancer in front of it.
//
// Matching: a route whose host equals the request's Host (case-insensitive, port
// ignored) wins; otherwise the longest path prefix that matches on a segment boundary
// ("/a" matches "/a", "/a/x" and "/a?q", not "/ab"). The path is forwarded as sent:
// nothing is stripped, so an app behind a path-prefix route must serve under that prefix
// (as behind most ingress controllers with pathType Prefix).
//
// Thread-safety: Match may be called from any thread once the table is built; Add is
// for building (not concurrently with anything else).
#ifndef ZEROSCALE_BALANCER_ROUTING_ROUTES_H_
#define ZEROSCALE_BALANCER_ROUTING_ROUTES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace zeroscale::balancer {

struct Route {
  std::string workload;     // <namespace>/<kind>/<name>, as the scaler names it
  std::string host;         // lower case, no port; "" when routed by path only
  std::string path_prefix;  // starts with '/'; "" when routed by host only
  // How long a request may wait for the workload to wake; nullopt: the balancer's default.
  std::optional<absl::Duration> activation_timeout;
};

class RouteTable {
 public:
  RouteTable() = default;
  // kInvalidArgument names the entry and field that is wrong (two routes claiming one
  // host or prefix, a prefix without '/', a route with neither host nor prefix).
  static absl::StatusOr<RouteTable> Create(std::vector<Route> routes);
  // Adds one route, or refuses it (kInvalidArgument naming the field, or the workload
  // that already has its host or prefix) and leaves the table as it was.
  absl::Status Add(Route route);

  // The route for a request, or null when none matches.
  const Route* Match(absl::string_view host_header, absl::string_view target) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
  absl::flat_hash_map<std::string, size_t> by_host_;
  std::vector<size_t> by_prefix_;  // longest prefix first
};

// Routes of the workloads file's text (`source` names it in errors). Workloads without
// a `route` are not routable and are skipped. kInvalidArgument names the file, workload
// and field.
absl::StatusOr<std::vector<Route>> ParseRoutes(absl::string_view text, absl::string_view source);
// kFailedPrecondition when the file cannot be read.
absl::StatusOr<std::vector<Route>> LoadRoutesFile(const std::string& path);

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_ROUTING_ROUTES_H_
