#include "scaler/store/rule_store.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace zeroscale::store {

std::string RuleKey(absl::string_view id) { return absl::StrCat("scaling_rule:", id); }

absl::StatusOr<ScalingRule> ParseStoredRule(absl::string_view key, absl::string_view json) {
  absl::StatusOr<ScalingRule> rule = ScalingRuleFromJson(json);
  if (!rule.ok()) return absl::InvalidArgumentError(rule.status().message());
  if (absl::Status s = ValidateScalingRule(*rule); !s.ok()) {
    return absl::InvalidArgumentError(s.message());
  }
  if (RuleKey(rule->id) != key) {
    return absl::InvalidArgumentError(
        absl::StrCat("id: '", rule->id, "' is not the key's id (", key, ")"));
  }
  return rule;
}

absl::Status RuleStore::Set(const ScalingRule& rule, const char* condition) {
  ZS_RETURN_IF_ERROR(ValidateScalingRule(rule));
  RedisCommand cmd = {"SET", RuleKey(rule.id), ScalingRuleToJson(rule)};
  if (condition != nullptr) cmd.push_back(condition);
  std::lock_guard<std::mutex> lock(mu_);
  ZS_ASSIGN_OR_RETURN(RedisReply r, redis_->Command(cmd));
  if (r.is_nil()) {
    if (condition != nullptr && absl::string_view(condition) == "NX") {
      return absl::AlreadyExistsError(
          absl::StrCat("a rule with id '", rule.id, "' exists in redis (", RuleKey(rule.id), ")"));
    }
    return absl::NotFoundError(absl::StrCat("no rule with id '", rule.id, "'"));
  }
  Announce(rule.id);
  return absl::OkStatus();
}

// Called with mu_ held.
void RuleStore::Announce(absl::string_view id) {
  (void)redis_->Command({"PUBLISH", kRulesChangedChannel, std::string(id)});
}

absl::Status RuleStore::Create(const ScalingRule& rule) { return Set(rule, "NX"); }
absl::Status RuleStore::Update(const ScalingRule& rule) { return Set(rule, "XX"); }
absl::Status RuleStore::Put(const ScalingRule& rule) { return Set(rule, nullptr); }

absl::StatusOr<ScalingRule> RuleStore::Get(absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("id: must not be empty");
  RedisReply r;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ZS_ASSIGN_OR_RETURN(r, redis_->Command({"GET", RuleKey(id)}));
  }
  if (r.is_nil()) return absl::NotFoundError(absl::StrCat("no rule with id '", id, "'"));
  absl::StatusOr<ScalingRule> rule = ParseStoredRule(RuleKey(id), r.str);
  if (!rule.ok()) {
    return absl::DataLossError(
        absl::StrCat(RuleKey(id), " holds an unreadable rule: ", rule.status().message()));
  }
  return rule;
}

absl::StatusOr<std::vector<ScalingRule>> RuleStore::List(absl::string_view target,
                                                         std::vector<SkippedRule>* skipped,
                                                         size_t limit) {
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string cursor = "0";
    do {
      ZS_ASSIGN_OR_RETURN(RedisReply r, redis_->Command({"SCAN", cursor, "MATCH", "scaling_rule:*",
                                                         "COUNT", "1000"}));
      if (r.elements.size() != 2) return absl::InternalError("redis SCAN: unexpected reply");
      cursor = r.elements[0].str;
      for (const RedisReply& k : r.elements[1].elements) keys.push_back(k.str);
      if (keys.size() > 2 * limit) break;  // SCAN may repeat keys; checked below
    } while (cursor != "0");
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  if (keys.size() > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "more than ", limit, " scaling_rule:* keys in Redis; refusing to load them all"));
  }
  std::vector<ScalingRule> rules;
  if (keys.empty()) return rules;
  std::vector<RedisCommand> gets;
  for (const std::string& k : keys) gets.push_back({"GET", k});
  std::vector<RedisReply> values;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ZS_ASSIGN_OR_RETURN(values, redis_->Pipeline(gets));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (values[i].type == RedisReply::Type::kNil) continue;  // deleted meanwhile
    if (values[i].type != RedisReply::Type::kString) {
      if (skipped != nullptr) skipped->push_back({keys[i], "the key is not a string"});
      continue;
    }
    absl::StatusOr<ScalingRule> rule = ParseStoredRule(keys[i], values[i].str);
    if (!rule.ok()) {
      if (skipped != nullptr) skipped->push_back({keys[i], std::string(rule.status().message())});
      continue;
    }
    if (!target.empty() && rule->target != target) continue;
    rules.push_back(*std::move(rule));
  }
  return rules;
}

absl::Status RuleStore::Delete(absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("id: must not be empty");
  std::lock_guard<std::mutex> lock(mu_);
  ZS_ASSIGN_OR_RETURN(RedisReply r, redis_->Command({"DEL", RuleKey(id)}));
  if (r.integer == 0) return absl::NotFoundError(absl::StrCat("no rule with id '", id, "'"));
  Announce(id);
  return absl::OkStatus();
}

}  // namespace zeroscale::store
