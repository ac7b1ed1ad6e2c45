#include "scaler/rules/stored_rules_watcher.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/time/backoff.h"
#include "nlohmann/json.hpp"

namespace zeroscale::rules {
namespace {

constexpr char kKeyspacePattern[] = "__keyspace@*__:scaling_rule:*";

redisContext* Ctx(void* p) { return static_cast<redisContext*>(p); }

// The flags to add so SET/DEL/RENAME/EXPIRE and expiries of strings are notified: K
// (keyspace channel), $ (string commands), g (generic), x (expired). "A" covers $gx.
std::string WithRuleFlags(std::string flags) {
  const bool all = absl::StrContains(flags, 'A');
  for (char c : std::string(all ? "K" : "K$gx")) {
    if (!absl::StrContains(flags, c)) flags.push_back(c);
  }
  return flags;
}

}  // namespace

StoredRulesWatcher::StoredRulesWatcher(StoredRulesWatcherOptions options, Redis* list_redis,
                                       Apply apply, prometheus::Registry* registry,
                                       const Clock* clock)
    : options_(std::move(options)),
      store_(list_redis),
      apply_(std::move(apply)),
      clock_(clock),
      reloads_(prometheus::BuildCounter()
                   .Name("zeroscale_stored_rules_reloads_total")
                   .Help("Full reloads of the scaling_rule:* keys, by what triggered them "
                         "(notification, periodic, start)")
                   .Register(*registry)),
      reload_errors_(prometheus::BuildCounter()
                         .Name("zeroscale_stored_rules_reload_errors_total")
                         .Help("Reloads of the scaling_rule:* keys that failed (Redis away)")
                         .Register(*registry)
                         .Add({})),
      stored_(prometheus::BuildGauge()
                  .Name("zeroscale_stored_rules")
                  .Help("Rules stored under scaling_rule:<id> as of the last reload, by state: "
                        "bound (has a target), unbound (no target: applies to no workload), "
                        "malformed (skipped)")
                  .Register(*registry)),
      malformed_total_(prometheus::BuildCounter()
                           .Name("zeroscale_stored_rules_malformed_total")
                           .Help("Values under scaling_rule:<id> skipped because they are not a "
                                 "valid ScalingRule (each distinct bad value counted once)")
                           .Register(*registry)
                           .Add({})),
      conflicts_(prometheus::BuildGauge()
                     .Name("zeroscale_rule_conflicts")
                     .Help("Rule ids given for the same workload by its spec (CustomAutoscaler "
                           "or workloads file) and by Redis; the spec's rule is used")
                     .Register(*registry)
                     .Add({})) {
  stored_.Add({{"state", "bound"}});
  stored_.Add({{"state", "unbound"}});
  stored_.Add({{"state", "malformed"}});
  snapshot_.notifications = "not started";
}

StoredRulesWatcher::~StoredRulesWatcher() {
  Stop();
  CloseSubscription();
}

void StoredRulesWatcher::Start() {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { Run(); });
}

void StoredRulesWatcher::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof(one));
  thread_.join();
  ::close(stop_fd_);
  stop_fd_ = -1;
}

StoredRulesSnapshot StoredRulesWatcher::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

std::string StoredRulesWatcher::SnapshotJson() const {
  const StoredRulesSnapshot s = Snapshot();
  nlohmann::ordered_json j;
  j["loaded"] = s.loaded;
  if (s.loaded) j["loadedAt"] = FormatRfc3339(s.loaded_at);
  if (!s.error.empty()) j["error"] = s.error;
  j["changesHeardBy"] = s.notifications;
  j["reloadInterval"] = absl::FormatDuration(options_.reload_interval);
  j["conflicts"] = s.conflicts;
  nlohmann::ordered_json bound = nlohmann::ordered_json::array();
  nlohmann::ordered_json unbound = nlohmann::ordered_json::array();
  for (const ScalingRule& r : s.rules) {
    nlohmann::ordered_json e;
    e["id"] = r.id;
    e["key"] = store::RuleKey(r.id);
    e["action"] = std::string(ActionName(r.action));
    if (r.target.empty()) {
      e["note"] = "no target: applies to no workload";
      unbound.push_back(std::move(e));
    } else {
      e["target"] = r.target;
      bound.push_back(std::move(e));
    }
  }
  j["rules"] = std::move(bound);
  j["unboundRules"] = std::move(unbound);
  nlohmann::ordered_json malformed = nlohmann::ordered_json::array();
  for (const store::SkippedRule& m : s.malformed) {
    malformed.push_back({{"key", m.key}, {"error", m.error}});
  }
  j["malformed"] = std::move(malformed);
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void StoredRulesWatcher::SetConflicts(size_t n) {
  conflicts_.Set(static_cast<double>(n));
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_.conflicts = n;
}

absl::Status StoredRulesWatcher::Reload(const char* trigger) {
  reloads_.Add({{"trigger", trigger}}).Increment();
  std::vector<store::SkippedRule> skipped;
  absl::StatusOr<std::vector<ScalingRule>> rules = store_.List("", &skipped);
  if (!rules.ok()) {
    reload_errors_.Increment();
    std::lock_guard<std::mutex> lock(mu_);
    if (snapshot_.error != rules.status().message()) {
      ZS_LOG(kWarning, "cannot load the stored scaling rules; keeping the last set",
             {"error", std::string(rules.status().message())});
    }
    snapshot_.error = std::string(rules.status().message());
    return rules.status();
  }
  size_t bound = 0, unbound = 0;
  std::set<std::string> unbound_ids;
  for (const ScalingRule& r : *rules) {
    if (!r.target.empty()) {
      ++bound;
      continue;
    }
    ++unbound;
    unbound_ids.insert(r.id);
  }
  stored_.Add({{"state", "bound"}}).Set(static_cast<double>(bound));
  stored_.Add({{"state", "unbound"}}).Set(static_cast<double>(unbound));
  stored_.Add({{"state", "malformed"}}).Set(static_cast<double>(skipped.size()));
  bool changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::pair<std::string, std::string>> malformed_now;
    for (const store::SkippedRule& s : skipped) {
      malformed_now.insert({s.key, s.error});
      if (warned_malformed_.count({s.key, s.error}) == 0) {
        malformed_total_.Increment();
        ZS_LOG(kWarning, "stored scaling rule skipped: not a valid ScalingRule", {"key", s.key},
               {"error", s.error});
      }
    }
    warned_malformed_ = std::move(malformed_now);
    for (const std::string& id : unbound_ids) {
      if (warned_unbound_.count(id) == 0) {
        ZS_LOG(kWarning, "stored scaling rule has no target: it applies to no workload",
               {"key", store::RuleKey(id)},
               {"hint", "set \"target\": \"<namespace>/<kind>/<name>\" to bind it"});
      }
    }
    warned_unbound_ = std::move(unbound_ids);
    changed = !applied_once_ || snapshot_.rules != *rules;
    applied_once_ = true;
    snapshot_.loaded = true;
    snapshot_.loaded_at = clock_->Now();
    snapshot_.error.clear();
    snapshot_.rules = *rules;
    snapshot_.malformed = std::move(skipped);
  }
  if (changed && apply_) apply_(*std::move(rules));
  return absl::OkStatus();
}

bool StoredRulesWatcher::Subscribe() {
  timeval tv{};
  tv.tv_sec = absl::ToInt64Seconds(options_.redis.connect_timeout);
  tv.tv_usec = 0;
  redisContext* c = redisConnectWithTimeout(options_.redis.host.c_str(), options_.redis.port, tv);
  if (c == nullptr || c->err) {
    if (c != nullptr) redisFree(c);
    return false;
  }
  timeval cmd{};
  cmd.tv_sec = absl::ToInt64Seconds(options_.redis.command_timeout);
  redisSetTimeout(c, cmd);
  std::string mode = "channel only";
  if (options_.configure_notifications) {
    std::string why;
    auto* get = static_cast<redisReply*>(redisCommand(c, "CONFIG GET notify-keyspace-events"));
    if (get != nullptr && get->type == REDIS_REPLY_ARRAY && get->elements == 2 &&
        get->element[1]->type == REDIS_REPLY_STRING) {
      const std::string want = WithRuleFlags(std::string(get->element[1]->str));
      if (want != get->element[1]->str) {
        auto* set = static_cast<redisReply*>(
            redisCommand(c, "CONFIG SET notify-keyspace-events %s", want.c_str()));
        if (set != nullptr && set->type == REDIS_REPLY_ERROR) why = set->str;
        if (set == nullptr) why = c->errstr;
        if (set != nullptr) freeReplyObject(set);
      }
    } else {
      why = get == nullptr ? c->errstr
                           : (get->type == REDIS_REPLY_ERROR ? get->str : "unexpected reply");
    }
    if (get != nullptr) freeReplyObject(get);
    if (why.empty()) {
      mode = "keyspace";
    } else if (!warned_config_) {
      warned_config_ = true;
      ZS_LOG(kWarning,
             "cannot turn on Redis keyspace notifications: rules written straight into Redis "
             "take effect at the next periodic reload; RulesService writes stay immediate",
             {"error", why}, {"reload_interval", absl::FormatDuration(options_.reload_interval)});
    }
  } else {
    mode = "keyspace if Redis notifies (not configured by the scaler)";
  }
  if (c->err) {
    redisFree(c);
    return false;
  }
  for (const std::string& cmd_text : {absl::StrCat("PSUBSCRIBE ", kKeyspacePattern),
                                      absl::StrCat("SUBSCRIBE ", store::kRulesChangedChannel)}) {
    auto* r = static_cast<redisReply*>(redisCommand(c, cmd_text.c_str()));
    const bool ok = r != nullptr && r->type == REDIS_REPLY_ARRAY;
    if (r != nullptr) freeReplyObject(r);
    if (!ok) {
      redisFree(c);
      return false;
    }
  }
  sub_ = c;
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_.notifications = mode;
  return true;
}

void StoredRulesWatcher::CloseSubscription() {
  if (sub_ != nullptr) redisFree(Ctx(sub_));
  sub_ = nullptr;
}

bool StoredRulesWatcher::Drain() {
  redisContext* c = Ctx(sub_);
  if (redisBufferRead(c) != REDIS_OK) {
    ZS_LOG(kWarning, "rule change subscription lost; reconnecting", {"error", c->errstr});
    CloseSubscription();
    return true;  // notifications may have been missed
  }
  bool changed = false;
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
      CloseSubscription();
      return true;
    }
    if (reply == nullptr) break;
    // Any pmessage/message on our pattern or channel may be a change; (un)subscribe
    // confirmations are not.
    auto* r = static_cast<redisReply*>(reply);
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
        r->element[0]->type == REDIS_REPLY_STRING &&
        (absl::string_view(r->element[0]->str) == "pmessage" ||
         absl::string_view(r->element[0]->str) == "message")) {
      changed = true;
    }
    freeReplyObject(reply);
  }
  return changed;
}

void StoredRulesWatcher::Run() {
  Backoff backoff(BackoffPolicy{options_.redis.backoff_initial, options_.redis.backoff_max});
  absl::Time next_connect = absl::InfinitePast();
  absl::Time next_reload = absl::InfinitePast();  // at once
  bool dirty = false;
  const char* trigger = "periodic";
  while (!stop_) {
    const absl::Time now = clock_->Now();
    if (sub_ == nullptr && now >= next_connect) {
      if (Subscribe()) {
        backoff.Reset();
        dirty = true;  // changes while unsubscribed were not heard
        if (trigger == nullptr) trigger = "notification";
      } else {
        next_connect = now + backoff.Next();
      }
    }
    if (dirty || now >= next_reload) {
      if (trigger == nullptr) trigger = dirty ? "notification" : "periodic";
      dirty = false;
      (void)Reload(trigger);
      trigger = nullptr;
      next_reload = clock_->Now() + options_.reload_interval;
    }
    absl::Time deadline = next_reload;
    if (sub_ == nullptr) deadline = std::min(deadline, next_connect);
    const absl::Duration wait = clock_->BlockFor(deadline);
    int timeout_ms = 0;
    if (wait == absl::InfiniteDuration()) {
      timeout_ms = 1000;
    } else if (wait > absl::ZeroDuration()) {
      timeout_ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(wait) + 1, 60000));
    }
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {sub_ != nullptr ? Ctx(sub_)->fd : -1, POLLIN, 0}};
    if (::poll(fds, 2, timeout_ms) > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
        sub_ != nullptr) {
      if (Drain()) dirty = true;
    }
  }
}

}  // namespace zeroscale::rules
