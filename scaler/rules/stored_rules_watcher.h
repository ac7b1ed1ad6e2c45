// Keeps the decision engine's stored rules (scaling_rule:<id> in Redis) current, so a
// rule written through RulesService or straight into Redis by a seed-style client
// (`SET scaling_rule:<id> <ScalingRule JSON>`) drives decisions.
//
// How a change arrives, fastest first:
//   1. Redis keyspace notifications on scaling_rule:* (SET, DEL, RENAME, EXPIRE...). The
//      watcher turns them on itself (CONFIG SET notify-keyspace-events, adding "K$gx" to
//      what is set) unless --rules-configure-notifications=false; a Redis that refuses
//      CONFIG (managed services) is said once in the log.
//   2. The channel zeroscale:rules:changed, published by RuleStore after each write
//      through RulesService, so that door is fast even without keyspace notifications.
//   3. A full reload every `reload_interval` (5 s), the safety net: a notification lost
//      while the subscription was down, or a Redis without notifications.
// Every trigger reloads everything (SCAN + GET, bounded by RuleStore::kMaxStoredRules),
// so the engine always receives a whole, consistent set; there is no incremental state
// to drift. Every replica runs one, so a new leader already holds the set.
//
// Values that are not rules are skipped with a warning naming the key and the field,
// counted, and listed by Snapshot(); rules without a `target` are kept and listed as
// unbound (they apply to no workload).
//
// Thread-safety: Start/Stop from one thread; Snapshot() and SetConflicts() from any.
// The watcher's own thread owns both Redis connections.
#ifndef ZEROSCALE_SCALER_RULES_STORED_RULES_WATCHER_H_
#define ZEROSCALE_SCALER_RULES_STORED_RULES_WATCHER_H_

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/model/scaling_rule.h"
#include "common/redis/redis.h"
#include "common/time/clock.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "scaler/store/rule_store.h"

namespace zeroscale::rules {

struct StoredRulesWatcherOptions {
  RedisOptions redis;  // for the subscription connection
  absl::Duration reload_interval = absl::Seconds(5);
  bool configure_notifications = true;
};

// What the last reload found.
struct StoredRulesSnapshot {
  bool loaded = false;
  absl::Time loaded_at = absl::InfinitePast();
  std::string error;                          // the last reload's failure, if it failed
  std::vector<ScalingRule> rules;             // every valid stored rule, sorted by id
  std::vector<store::SkippedRule> malformed;  // sorted by key
  size_t conflicts = 0;
  std::string notifications;  // "keyspace", "channel only", "off: <why>"
};

class StoredRulesWatcher {
 public:
  // Receives the whole set after each reload that changed it (on the watcher's thread).
  using Apply = std::function<void(std::vector<ScalingRule>)>;

  // `list_redis` is used only by the watcher's thread (or by Reload() callers before
  // Start). All must outlive the watcher.
  StoredRulesWatcher(StoredRulesWatcherOptions options, Redis* list_redis, Apply apply,
                     prometheus::Registry* registry, const Clock* clock);
  ~StoredRulesWatcher();
  StoredRulesWatcher(const StoredRulesWatcher&) = delete;
  StoredRulesWatcher& operator=(const StoredRulesWatcher&) = delete;

  void Start();
  void Stop();

  // One full reload now; `trigger` labels the metric. Not concurrently with the thread.
  absl::Status Reload(const char* trigger);

  StoredRulesSnapshot Snapshot() const;
  // GET /rules: every stored rule (bound ones with their target, unbound ones marked as
  // applying to no workload), the malformed keys and why, and how changes are heard.
  std::string SnapshotJson() const;
  // The engine's count of conflicts after the last merge.
  void SetConflicts(size_t n);

 private:
  void Run();
  // Opens the subscription; false (logged) when Redis cannot be reached or refuses.
  bool Subscribe();
  void CloseSubscription();
  // Reads what the subscription has; true when a rule may have changed.
  bool Drain();

  const StoredRulesWatcherOptions options_;
  store::RuleStore store_;
  const Apply apply_;
  const Clock* const clock_;

  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Counter& reload_errors_;
  prometheus::Family<prometheus::Gauge>& stored_;
  prometheus::Counter& malformed_total_;
  prometheus::Gauge& conflicts_;

  mutable std::mutex mu_;
  StoredRulesSnapshot snapshot_;
  // Warned-about entries, so a bad key is logged once per content, not every reload.
  std::set<std::pair<std::string, std::string>> warned_malformed_;
  std::set<std::string> warned_unbound_;
  bool applied_once_ = false;

  void* sub_ = nullptr;  // redisContext* of the subscription (hiredis kept out of here)
  bool warned_config_ = false;
  int stop_fd_ = -1;  // eventfd: Stop() wakes the thread out of poll(2)
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace zeroscale::rules

#endif  // ZEROSCALE_SCALER_RULES_STORED_RULES_WATCHER_H_
