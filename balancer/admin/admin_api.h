// The balancer's admin API (seed 004), on its own port:
//   GET  /loadbalancer/settings[?environment=E]   settings of E (default: the served one)
//   PUT  /loadbalancer/settings[?environment=E]   JSON {environment, policy,
//        max_connections, timeout_seconds}; absent fields keep their values; 400 names
//        the bad field; 503 when Redis cannot store it
//   GET  /proxy/logs?from=&to=&target=&limit=&offset=&cursor=   newest first; `target`
//        matches any substring of target_url (so a host, a path prefix or a full URL);
//        limit 1..1000 (default 100); answer {entries, next_cursor}
//   GET  /metrics (Prometheus), GET /healthz: always open
// Settings and logs are checked by `access` ("Authorization: Bearer"): balancersettings
// get / update, requestlogs list; 401 without an accepted credential, 403 when it does
// not grant the action, 503 when it cannot be checked now.
//
// Thread-safety: handlers run on the HTTP server's threads; the stores they use are
// thread-safe.
#ifndef ZEROSCALE_BALANCER_ADMIN_ADMIN_API_H_
#define ZEROSCALE_BALANCER_ADMIN_ADMIN_API_H_

#include <functional>
#include <string>

#include "balancer/logs/request_log.h"
#include "balancer/policy/settings_store.h"
#include "common/auth/access_control.h"
#include "common/http/http_server.h"
#include "prometheus/registry.h"

namespace zeroscale::balancer {

struct AdminApiDeps {
  SettingsStore* settings = nullptr;         // required
  LogReader* logs = nullptr;                 // required
  prometheus::Registry* registry = nullptr;  // required
  auth::AccessControl* access = nullptr;     // required
  // Run before each /metrics exposition (gauges that depend on the time); may be empty.
  std::function<void()> refresh_metrics;
};

void RegisterAdminRoutes(const AdminApiDeps& deps, http::Router* router);

// Parses /proxy/logs query parameters; kInvalidArgument names the parameter.
absl::StatusOr<LogFilter> ParseLogFilter(const http::Request& req);

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_ADMIN_ADMIN_API_H_
