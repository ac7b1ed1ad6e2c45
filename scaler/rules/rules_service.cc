#include "scaler/rules/rules_service.h"

#include "common/grpcutil/metadata.h"
#include "absl/strings/str_cat.h"
#include "common/grpcutil/status.h"
#include "common/log/log.h"
#include "common/model/proto_convert.h"

namespace zeroscale::rules {
namespace {

// Converts and validates; on success fills `rule`.
absl::Status FromWire(const v1::ScalingRule& p, ScalingRule* rule) {
  absl::StatusOr<ScalingRule> r = ScalingRuleFromProto(p);
  if (!r.ok()) return r.status();
  if (absl::Status s = ValidateScalingRule(*r); !s.ok()) return s;
  *rule = *std::move(r);
  return absl::OkStatus();
}

void WarnIfUnbound(const ScalingRule& rule) {
  if (!rule.target.empty()) return;
  ZS_LOG(kWarning, "scaling rule stored without a target: it applies to no workload",
         {"key", store::RuleKey(rule.id)},
         {"hint", "set target to <namespace>/<kind>/<name> to bind it"});
}

}  // namespace

grpc::Status RulesServiceImpl::Allowed(const grpc::ServerContext* context,
                                       const auth::Action& action) {
  if (access_ == nullptr) return grpc::Status::OK;
  return ToGrpcStatus(access_->Check(AuthorizationOf(*context), action).status());
}

absl::Status RulesServiceImpl::CheckConflict(const ScalingRule& rule) const {
  if (rule.target.empty() || !other_source_) return absl::OkStatus();
  const std::string other = other_source_(rule.target, rule.id);
  if (other.empty()) return absl::OkStatus();
  return absl::AlreadyExistsError(
      absl::StrCat("workload '", rule.target, "' already has a rule with id '", rule.id,
                   "' from its ", other, "; that one would win: choose another id"));
}

grpc::Status RulesServiceImpl::CreateRule(grpc::ServerContext* context, const v1::ScalingRule* req,
                                          v1::ScalingRule* resp) {
  if (grpc::Status a = Allowed(context, auth::actions::kRulesCreate); !a.ok()) return a;
  ScalingRule rule;
  if (absl::Status s = FromWire(*req, &rule); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = CheckConflict(rule); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = store_->Create(rule); !s.ok()) return ToGrpcStatus(s);
  WarnIfUnbound(rule);
  ScalingRuleToProto(rule, resp);
  return grpc::Status::OK;
}

grpc::Status RulesServiceImpl::GetRule(grpc::ServerContext* context, const v1::GetRuleRequest* req,
                                       v1::ScalingRule* resp) {
  if (grpc::Status a = Allowed(context, auth::actions::kRulesGet); !a.ok()) return a;
  absl::StatusOr<ScalingRule> rule = store_->Get(req->id());
  if (!rule.ok()) return ToGrpcStatus(rule.status());
  ScalingRuleToProto(*rule, resp);
  return grpc::Status::OK;
}

grpc::Status RulesServiceImpl::ListRules(grpc::ServerContext* context,
                                         const v1::ListRulesRequest* req,
                                         v1::ListRulesResponse* resp) {
  if (grpc::Status a = Allowed(context, auth::actions::kRulesList); !a.ok()) return a;
  absl::StatusOr<std::vector<ScalingRule>> rules = store_->List(req->target());
  if (!rules.ok()) return ToGrpcStatus(rules.status());
  for (const ScalingRule& r : *rules) ScalingRuleToProto(r, resp->add_rules());
  return grpc::Status::OK;
}

grpc::Status RulesServiceImpl::UpdateRule(grpc::ServerContext* context, const v1::ScalingRule* req,
                                          v1::ScalingRule* resp) {
  if (grpc::Status a = Allowed(context, auth::actions::kRulesUpdate); !a.ok()) return a;
  ScalingRule rule;
  if (absl::Status s = FromWire(*req, &rule); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = CheckConflict(rule); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = store_->Update(rule); !s.ok()) return ToGrpcStatus(s);
  WarnIfUnbound(rule);
  ScalingRuleToProto(rule, resp);
  return grpc::Status::OK;
}

grpc::Status RulesServiceImpl::DeleteRule(grpc::ServerContext* context,
                                          const v1::DeleteRuleRequest* req,
                                          v1::DeleteRuleResponse*) {
  if (grpc::Status a = Allowed(context, auth::actions::kRulesDelete); !a.ok()) return a;
  return ToGrpcStatus(store_->Delete(req->id()));
}

}  // namespace zeroscale::rules
