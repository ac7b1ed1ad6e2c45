#include "balancer/admin/admin_api.h"

#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/metrics/exposition.h"
#include "common/status/quote.h"
#include "common/time/clock.h"
#include "nlohmann/json.hpp"

namespace zeroscale::balancer {
namespace {

using nlohmann::json;

int HttpStatusFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 413;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

http::Response ErrorResponse(const absl::Status& s) {
  return http::Response::Error(HttpStatusFor(s), s.message());
}

absl::StatusOr<std::string> EnvironmentOf(const http::Request& req, const SettingsStore& store) {
  if (!req.HasQueryParam("environment")) return store.serving_environment();
  const std::string env = req.QueryParam("environment");
  if (absl::Status s = ValidateEnvironment(env); !s.ok()) return s;
  return env;
}

absl::StatusOr<size_t> ParseCount(const http::Request& req, absl::string_view name, size_t min,
                                  size_t max, size_t def) {
  if (!req.HasQueryParam(name)) return def;
  const std::string v = req.QueryParam(name);
  uint64_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < min || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": must be an integer from ", min, " to ", max, ", got ", Quote(v)));
  }
  return static_cast<size_t>(n);
}

}  // namespace

absl::StatusOr<LogFilter> ParseLogFilter(const http::Request& req) {
  LogFilter f;
  for (absl::string_view name : {"from", "to"}) {
    if (!req.HasQueryParam(name)) continue;
    absl::StatusOr<absl::Time> t = ParseRfc3339(req.QueryParam(name));
    if (!t.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": must be an RFC 3339 time such as 2026-01-02T15:04:05Z, got ",
                       Quote(req.QueryParam(name))));
    }
    (name == "from" ? f.from : f.to) = *t;
  }
  if (f.from && f.to && *f.from > *f.to) {
    return absl::InvalidArgumentError("from: must not be after `to`");
  }
  f.target = req.QueryParam("target");
  absl::StatusOr<size_t> limit = ParseCount(req, "limit", 1, 1000, 100);
  if (!limit.ok()) return limit.status();
  f.limit = *limit;
  absl::StatusOr<size_t> offset = ParseCount(req, "offset", 0, 1000000, 0);
  if (!offset.ok()) return offset.status();
  f.offset = *offset;
  f.cursor = req.QueryParam("cursor");
  return f;
}

void RegisterAdminRoutes(const AdminApiDeps& deps, http::Router* router) {
  SettingsStore* settings = deps.settings;
  LogReader* logs = deps.logs;
  auth::AccessControl* access = deps.access;
  // The refusal of `req` for `action`, if refused.
  auto refused = [access](const http::Request& req,
                          const auth::Action& action) -> std::optional<http::Response> {
    absl::StatusOr<auth::Identity> who = access->Check(req.Header("Authorization"), action);
    if (who.ok()) return std::nullopt;
    return http::Response::Error(auth::HttpStatusOf(who.status()), who.status().message());
  };

  router->HandleSync("GET", "/loadbalancer/settings",
                     [settings, refused](const http::Request& req) {
                       if (auto r = refused(req, auth::actions::kSettingsGet)) return *r;
                       absl::StatusOr<std::string> env = EnvironmentOf(req, *settings);
                       if (!env.ok()) return ErrorResponse(env.status());
                       absl::StatusOr<Settings> s = settings->Get(*env);
                       if (!s.ok()) return ErrorResponse(s.status());
                       return http::Response::Json(200, SettingsToJson(*s));
                     });

  router->HandleSync(
      "PUT", "/loadbalancer/settings", [settings, refused](const http::Request& req) {
        if (auto r = refused(req, auth::actions::kSettingsUpdate)) return *r;
        absl::StatusOr<SettingsPatch> patch = ParseSettingsPatch(req.body);
        if (!patch.ok()) return ErrorResponse(patch.status());
        // The environment comes from the body when given, else the query, else the served one.
        absl::StatusOr<std::string> env =
            patch->environment ? *patch->environment : EnvironmentOf(req, *settings);
        if (!env.ok()) return ErrorResponse(env.status());
        absl::StatusOr<Settings> current = settings->Get(*env);
        if (!current.ok()) return ErrorResponse(current.status());
        const absl::StatusOr<Settings> next = ApplySettingsPatch(*patch, *current);
        absl::StatusOr<Settings> stored = settings->Put(*next);
        if (!stored.ok()) return ErrorResponse(stored.status());
        ZS_LOG(kInfo, "balancer settings changed", {"environment", stored->environment},
               {"policy", std::string(PolicyName(stored->policy))},
               {"max_connections", absl::StrCat(stored->max_connections)},
               {"timeout_seconds", absl::StrCat(stored->timeout_seconds)});
        return http::Response::Json(200, SettingsToJson(*stored));
      });

  router->HandleSync("GET", "/proxy/logs", [logs, refused](const http::Request& req) {
    if (auto r = refused(req, auth::actions::kLogsList)) return *r;
    absl::StatusOr<LogFilter> filter = ParseLogFilter(req);
    if (!filter.ok()) return ErrorResponse(filter.status());
    absl::StatusOr<LogPage> page = logs->Query(*filter);
    if (!page.ok()) return ErrorResponse(page.status());
    json entries = json::array();
    for (const LogEntry& e : page->entries) entries.push_back(json::parse(LogEntryToJson(e)));
    json out = {
        {"entries", std::move(entries)},
        {"next_cursor", page->next_cursor.empty() ? json(nullptr) : json(page->next_cursor)}};
    return http::Response::Json(200, out.dump());
  });

  router->HandleSync("GET", "/metrics",
                     metrics::ExpositionHandler(deps.registry, deps.refresh_metrics));
  router->HandleSync("GET", "/healthz",
                     [](const http::Request&) { return http::Response::Text(200, "ok\n"); });
}

}  // namespace zeroscale::balancer
