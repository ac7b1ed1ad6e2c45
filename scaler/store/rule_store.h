// ScalingRule persistence: scaling_rule:<id> holds the rule's JSON, as the seed's Go
// code writes it, so rules created by either can be read by both. Listing scans the
// key space (SCAN, not KEYS) so rules written by other tools are found too.
// Thread-safe: every call takes a connection from the pool under a mutex.
#ifndef ZEROSCALE_SCALER_STORE_RULE_STORE_H_
#define ZEROSCALE_SCALER_STORE_RULE_STORE_H_

#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model/scaling_rule.h"
#include "common/redis/redis.h"

namespace zeroscale::store {

std::string RuleKey(absl::string_view id);  // scaling_rule:<id>

// Published (message: the rule id) after every write through RuleStore, so the rule
// watchers of every scaler replica reload at once even where Redis keyspace
// notifications are off.
inline constexpr char kRulesChangedChannel[] = "zeroscale:rules:changed";

// A value under scaling_rule:<id> that is not a rule, and why (the message names the
// JSON field at fault).
struct SkippedRule {
  std::string key;
  std::string error;
};

// Reads one stored value: the rule, or kInvalidArgument naming the field when the JSON
// is not a ScalingRule, is an invalid one, or its id is not the key's.
absl::StatusOr<ScalingRule> ParseStoredRule(absl::string_view key, absl::string_view json);

class RuleStore {
 public:
  explicit RuleStore(Redis* redis) : redis_(redis) {}

  // kInvalidArgument for an invalid rule; kAlreadyExists when the id is taken.
  absl::Status Create(const ScalingRule& rule);
  // kNotFound when absent; kDataLoss when the stored JSON is unreadable.
  absl::StatusOr<ScalingRule> Get(absl::string_view id);
  // Rules for `target` (all when empty), sorted by id. Unreadable entries are skipped
  // and reported in `skipped` (may be null). At most `limit` keys are read; more is
  // kResourceExhausted (hostile input must not grow memory without bound).
  absl::StatusOr<std::vector<ScalingRule>> List(absl::string_view target,
                                                std::vector<SkippedRule>* skipped = nullptr,
                                                size_t limit = kMaxStoredRules);
  static constexpr size_t kMaxStoredRules = 10000;
  // kNotFound when absent.
  absl::Status Update(const ScalingRule& rule);
  // Creates or replaces, for reconcilers that own their rules.
  absl::Status Put(const ScalingRule& rule);
  // kNotFound when absent.
  absl::Status Delete(absl::string_view id);

 private:
  absl::Status Set(const ScalingRule& rule, const char* condition);
  // Best effort: a lost message is caught by the watchers' periodic reload.
  void Announce(absl::string_view id);

  std::mutex mu_;
  Redis* const redis_;
};

}  // namespace zeroscale::store

#endif  // ZEROSCALE_SCALER_STORE_RULE_STORE_H_
