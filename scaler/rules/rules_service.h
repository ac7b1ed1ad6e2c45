// RulesService: gRPC CRUD over ScalingRules kept in Redis (scaling_rule:<id>).
// Invalid rules are refused with INVALID_ARGUMENT naming the field. Thread-safe.
#ifndef ZEROSCALE_SCALER_RULES_RULES_SERVICE_H_
#define ZEROSCALE_SCALER_RULES_RULES_SERVICE_H_

#include "scaler/store/rule_store.h"
#include "zeroscale/v1/rules.grpc.pb.h"

namespace zeroscale::rules {

class RulesServiceImpl : public v1::RulesService::Service {
 public:
  explicit RulesServiceImpl(store::RuleStore* store) : store_(store) {}

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
  store::RuleStore* const store_;
};

}  // namespace zeroscale::rules

#endif  // ZEROSCALE_SCALER_RULES_RULES_SERVICE_H_
