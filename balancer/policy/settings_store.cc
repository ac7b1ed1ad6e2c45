#include "balancer/policy/settings_store.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::balancer {

std::string SettingsKey(absl::string_view environment) {
  return absl::StrCat("zeroscale:balancer:settings:", environment);
}

SettingsStore::SettingsStore(std::unique_ptr<Redis> redis, const Clock* clock,
                             std::string serving_environment)
    : redis_(std::move(redis)),
      clock_(clock),
      serving_environment_(std::move(serving_environment)),
      defaults_time_(clock->Now()) {
  Settings s;
  s.environment = serving_environment_;
  s.updated_at = defaults_time_;
  cache_[serving_environment_] = s;
}

SettingsStore::~SettingsStore() { Stop(); }

absl::StatusOr<std::optional<Settings>> SettingsStore::ReadLocked(const std::string& env) {
  absl::StatusOr<RedisReply> r = redis_->Command({"HGETALL", SettingsKey(env)});
  if (!r.ok()) return r.status();
  if (r->type != RedisReply::Type::kArray || r->elements.empty()) {
    return std::optional<Settings>();
  }
  Settings s;
  s.environment = env;
  for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
    const std::string& k = r->elements[i].str;
    const std::string& v = r->elements[i + 1].str;
    bool ok = true;
    if (k == "policy") {
      std::optional<Policy> p = ParsePolicy(v);
      ok = p.has_value();
      if (ok) s.policy = *p;
    } else if (k == "max_connections") {
      ok = absl::SimpleAtoi(v, &s.max_connections) && s.max_connections > 0;
    } else if (k == "timeout_seconds") {
      ok = absl::SimpleAtoi(v, &s.timeout_seconds) && s.timeout_seconds > 0;
    } else if (k == "updated_at") {
      absl::StatusOr<absl::Time> t = ParseRfc3339(v);
      ok = t.ok();
      if (ok) s.updated_at = *t;
    }
    if (!ok) {
      return absl::InternalError(
          absl::StrCat(SettingsKey(env), ": field ", k, " holds an invalid value \"", v, "\""));
    }
  }
  return std::optional<Settings>(s);
}

void SettingsStore::SetCachedLocked(const Settings& s) {
  auto it = cache_.find(s.environment);
  const bool changed = it == cache_.end() || !(it->second == s);
  cache_[s.environment] = s;
  if (changed && s.environment == serving_environment_ && listener_) listener_(s);
}

absl::Status SettingsStore::Load() { return Refresh(); }

absl::Status SettingsStore::Refresh() {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::optional<Settings>> s = ReadLocked(serving_environment_);
  if (!s.ok()) return s.status();
  if (s->has_value()) SetCachedLocked(**s);
  return absl::OkStatus();
}

absl::StatusOr<Settings> SettingsStore::Get(const std::string& environment) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(environment);
  if (it != cache_.end()) return it->second;
  absl::StatusOr<std::optional<Settings>> s = ReadLocked(environment);
  if (!s.ok()) return s.status();
  Settings out;
  if (s->has_value()) {
    out = **s;
  } else {
    out.environment = environment;
    out.updated_at = defaults_time_;
  }
  cache_[environment] = out;
  return out;
}

absl::StatusOr<Settings> SettingsStore::Put(Settings s) {
  std::lock_guard<std::mutex> lock(mu_);
  s.updated_at = absl::FromUnixMillis(absl::ToUnixMillis(clock_->Now()));
  absl::StatusOr<RedisReply> r =
      redis_->Command({"HSET", SettingsKey(s.environment), "environment", s.environment, "policy",
                       std::string(PolicyName(s.policy)), "max_connections",
                       absl::StrCat(s.max_connections), "timeout_seconds",
                       absl::StrCat(s.timeout_seconds), "updated_at", FormatRfc3339(s.updated_at)});
  if (!r.ok()) {
    return absl::UnavailableError(
        absl::StrCat("settings not saved, Redis is unavailable: ", r.status().message()));
  }
  SetCachedLocked(s);
  return s;
}

Settings SettingsStore::Serving() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.at(serving_environment_);
}

void SettingsStore::SetListener(Listener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  listener_ = std::move(listener);
  if (listener_) listener_(cache_.at(serving_environment_));
}

void SettingsStore::StartRefreshLoop(absl::Duration interval) {
  loop_ = std::thread([this, interval] {
    std::unique_lock<std::mutex> lock(loop_mu_);
    bool was_ok = true;
    while (!loop_cv_.wait_for(lock, absl::ToChronoNanoseconds(interval),
                              [this] { return stopping_; })) {
      lock.unlock();
      const absl::Status s = Refresh();
      if (!s.ok() && was_ok) {
        ZS_LOG(kWarning, "cannot refresh balancer settings from Redis; keeping the cached ones",
               {"error", std::string(s.message())});
      }
      was_ok = s.ok();
      lock.lock();
    }
  });
}

void SettingsStore::Stop() {
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    stopping_ = true;
  }
  loop_cv_.notify_all();
  if (loop_.joinable()) loop_.join();
}

}  // namespace zeroscale::balancer
