#include "scaler/report/status_http.h"

#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace zeroscale::report {

void StatusHttp::Register(http::Router* router) {
  auto refused = [this](const http::Request& req,
                        const auth::Action& action) -> std::optional<http::Response> {
    if (access_ == nullptr) return std::nullopt;
    absl::StatusOr<auth::Identity> who = access_->Check(req.Header("Authorization"), action);
    if (who.ok()) return std::nullopt;
    return http::Response::Error(auth::HttpStatusOf(who.status()), who.status().message());
  };
  router->HandleSync("GET", "/workloads", [this, refused](const http::Request& req) {
    if (auto r = refused(req, auth::actions::kWorkloadsList)) return *r;
    return Workloads();
  });
  router->HandleSync("GET", "/decisions", [this, refused](const http::Request& req) {
    if (auto r = refused(req, auth::actions::kDecisionsList)) return *r;
    return Decisions(req);
  });
}

http::Response StatusHttp::Workloads() {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const decide::WorkloadStatus& st : board_->All()) {
    nlohmann::ordered_json j;
    j["workload"] = st.workload;
    j["state"] = std::string(decide::StateName(st.state));
    j["replicas"] = st.replicas;
    j["desired"] = st.desired;
    j["actuationInFlight"] = st.actuation_in_flight;
    if (!st.note.empty()) j["note"] = st.note;
    const activation::WorkloadEndpoints eps = registry_->Get(st.workload);
    j["readyPods"] = eps.ready();
    nlohmann::ordered_json pods = nlohmann::ordered_json::array();
    for (const activation::Endpoint& e : eps.endpoints) {
      pods.push_back({{"pod", e.pod}, {"address", e.address}, {"ready", e.ready}});
    }
    j["pods"] = std::move(pods);
    // The effective rules and where each came from (customautoscaler, workloads-file,
    // redis); a stored rule that lost to the spec is listed under ruleConflicts.
    nlohmann::ordered_json rules = nlohmann::ordered_json::array();
    for (const decide::RuleRef& r : st.rules) {
      rules.push_back({{"id", r.id},
                       {"source", std::string(decide::RuleSourceName(r.source))},
                       {"action", std::string(ActionName(r.action))}});
    }
    j["rules"] = std::move(rules);
    if (!st.rule_conflicts.empty()) {
      nlohmann::ordered_json conflicts = nlohmann::ordered_json::array();
      for (const decide::RuleConflict& c : st.rule_conflicts) {
        conflicts.push_back({{"id", c.id},
                             {"used", std::string(decide::RuleSourceName(c.winner))},
                             {"ignored", std::string(decide::RuleSourceName(c.loser))}});
      }
      j["ruleConflicts"] = std::move(conflicts);
    }
    if (st.last_decision) {
      j["lastDecision"] = nlohmann::ordered_json::parse(decide::DecisionToJson(*st.last_decision));
    }
    out.push_back(std::move(j));
  }
  return http::Response::Json(200, out.dump(2) + "\n");
}

http::Response StatusHttp::Decisions(const http::Request& req) {
  const std::string workload = req.QueryParam("workload");
  if (workload.empty()) {
    return http::Response::Error(400,
                                 "workload: required, e.g. ?workload=local/Deployment/demo-model");
  }
  size_t limit = 20;
  if (req.HasQueryParam("limit")) {
    if (!absl::SimpleAtoi(req.QueryParam("limit"), &limit) || limit == 0 || limit > 1000) {
      return http::Response::Error(400, "limit: must be an integer in 1..1000");
    }
  }
  absl::StatusOr<std::vector<decide::Decision>> got;
  {
    std::lock_guard<std::mutex> lock(history_mu_);
    got = history_->Read(workload, limit);
  }
  if (!got.ok()) return http::Response::Error(503, got.status().message());
  std::string body = "[";
  for (size_t i = 0; i < got->size(); ++i) {
    absl::StrAppend(&body, i ? ",\n " : "", decide::DecisionToJson((*got)[i]));
  }
  body += "]\n";
  return http::Response::Json(200, body);
}

}  // namespace zeroscale::report
