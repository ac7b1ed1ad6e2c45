// RulesService: gRPC CRUD over ScalingRules kept in Redis (scaling_rule:<id>).
// Invalid rules are refused with INVALID_ARGUMENT naming the field. A rule whose id the
// target workload already has from another source (its CustomAutoscaler or the
// workloads file) is refused with ALREADY_EXISTS naming that source: the spec would win
// and the stored rule be dead. A rule without a target is stored (seed 004's shape) with
// a warning in the log: it applies to no workload. Each call is checked by `access`
// (scalingrules get/list/create/update/delete; UNAUTHENTICATED, PERMISSION_DENIED or
// UNAVAILABLE when refused). Thread-safe.
#ifndef ZEROSCALE_SCALER_RULES_RULES_SERVICE_H_
#define ZEROSCALE_SCALER_RULES_RULES_SERVICE_H_

#include <functional>
#include <string>

#include "common/auth/access_control.h"
#include "scaler/store/rule_store.h"
#include "zeroscale/v1/rules.grpc.pb.h"

namespace zeroscale::rules {

class RulesServiceImpl : public v1::RulesService::Service {
 public:
  // The source ("customautoscaler", "workloads-file") that already gives workload
  // `target` a rule `id`, or "" when none does. Must be thread-safe.
  using OtherSource = std::function<std::string(const std::string& target, const std::string& id)>;

  // `access` null: no checks (tests of the store's behaviour).
  explicit RulesServiceImpl(store::RuleStore* store, auth::AccessControl* access = nullptr,
                            OtherSource other_source = nullptr)
      : store_(store), access_(access), other_source_(std::move(other_source)) {}

  grpc::Status CreateRule(grpc::ServerContext*, const v1::ScalingRule* req,
                          v1::ScalingRule* resp) override;
  grpc::Status GetRule(grpc::ServerContext*, const v1::GetRuleRequest* req,
                       v1::ScalingRule* resp) override;
  grpc::Status ListRules(grpc::ServerContext*, const v1::ListRulesRequest* req,
                         v1::ListRulesResponse* resp) override;
  grpc::Status UpdateRule(grpc::ServerContext*, const v1::ScalingRule* req,
                          v1::ScalingRule* resp) override;
  grpc::Status DeleteRule(grpc::ServerContext*, const v1::DeleteRuleRequest* req,
                          v1::DeleteRuleResponse* resp) override;

 private:
  grpc::Status Allowed(const grpc::ServerContext* context, const auth::Action& action);
  // OK, or ALREADY_EXISTS when the rule's workload has its id from another source.
  absl::Status CheckConflict(const ScalingRule& rule) const;

  store::RuleStore* const store_;
  auth::AccessControl* const access_;
  const OtherSource other_source_;
};

}  // namespace zeroscale::rules

#endif  // ZEROSCALE_SCALER_RULES_RULES_SERVICE_H_
