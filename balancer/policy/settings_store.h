// Balancer settings kept in Redis and cached in memory. Each environment's settings are
// a hash at `zeroscale:balancer:settings:<environment>` with the fields environment,
// policy, max_connections, timeout_seconds and updated_at (RFC 3339). A PUT writes Redis
// first and then the cache, so what GET shows has been stored; a balancer serves one
// environment, whose changes it hears through the listener, and re-reads it from Redis
// every refresh interval so several balancer replicas converge on one PUT.
//
// Thread-safe: all methods may be called from any thread. The listener runs with the
// store's lock held (changes are delivered in order); it must not call back into the store.
#ifndef ZEROSCALE_BALANCER_POLICY_SETTINGS_STORE_H_
#define ZEROSCALE_BALANCER_POLICY_SETTINGS_STORE_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "balancer/policy/settings.h"
#include "common/redis/redis.h"
#include "common/time/clock.h"

namespace zeroscale::balancer {

std::string SettingsKey(absl::string_view environment);

class SettingsStore {
 public:
  using Listener = std::function<void(const Settings&)>;

  // `redis` is used only by this store. `serving_environment` is the one whose settings
  // drive this balancer's data path.
  SettingsStore(std::unique_ptr<Redis> redis, const Clock* clock, std::string serving_environment);
  ~SettingsStore();
  SettingsStore(const SettingsStore&) = delete;
  SettingsStore& operator=(const SettingsStore&) = delete;

  // Reads the serving environment's settings; absent ones are the defaults
  // (round_robin, 1000, 60). kUnavailable when Redis cannot be reached: the defaults are
  // used meanwhile and the refresh loop keeps trying.
  absl::Status Load();

  // The cached settings of `environment`, read from Redis on first use. kUnavailable when
  // they are not cached and Redis cannot be reached; kInternal when the stored hash is
  // corrupt.
  absl::StatusOr<Settings> Get(const std::string& environment);

  // Stores `settings` with updated_at = now and returns what was stored. kUnavailable
  // (retry later) when Redis cannot be reached; the cache is then unchanged.
  absl::StatusOr<Settings> Put(Settings settings);

  const std::string& serving_environment() const { return serving_environment_; }
  Settings Serving() const;
  // Called at once with the current serving settings, then on every change of them.
  void SetListener(Listener listener);

  // Re-reads the serving environment from Redis; notifies when it changed.
  absl::Status Refresh();
  void StartRefreshLoop(absl::Duration interval);
  void Stop();

 private:
  absl::StatusOr<std::optional<Settings>> ReadLocked(const std::string& environment);
  void SetCachedLocked(const Settings& s);

  const std::unique_ptr<Redis> redis_;
  const Clock* const clock_;
  const std::string serving_environment_;
  const absl::Time defaults_time_;

  mutable std::mutex mu_;
  std::map<std::string, Settings> cache_;
  Listener listener_;

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;
  std::thread loop_;
};

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_POLICY_SETTINGS_STORE_H_
