// RulesService: gRPC CRUD over ScalingRules kept in Redis (scaling_rule:<id>).
// Invalid rules are refused with INVALID_ARGUMENT naming the field. Each call is
// checked by `access` (scalingrules get/list/create/update/delete; UNAUTHENTICATED,
// PERMISSION_DENIED or UNAVAILABLE when refused). Thread-safe.
#ifndef ZEROSCALE_SCALER_RULES_RULES_SERVICE_H_
#define ZEROSCALE_SCALER_RULES_RULES_SERVICE_H_

#include "common/auth/access_control.h"
#include "scaler/store/rule_store.h"
#include "zeroscale/v1/rules.grpc.pb.h"

namespace zeroscale::rules {

class RulesServiceImpl : public v1::RulesService::Service {
 public:
  // `access` null: no checks (tests of the store's behaviour).
  explicit RulesServiceImpl(store::RuleStore* store, auth::AccessControl* access = nullptr)
      : store_(store), access_(access) {}

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

  store::RuleStore* const store_;
  auth::AccessControl* const access_;
};

}  // namespace zeroscale::rules

#endif  // ZEROSCALE_SCALER_RULES_RULES_SERVICE_H_
