// Redis access: a small interface (so logic can be tested against a fake or a real
// server) and its hiredis implementation with connect timeout, reconnect with
// exponential backoff, and pipelining. A client is NOT thread-safe: give each thread
// its own.
#ifndef ZEROSCALE_COMMON_REDIS_REDIS_H_
#define ZEROSCALE_COMMON_REDIS_REDIS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/time/backoff.h"
#include "common/time/clock.h"

struct redisContext;

namespace zeroscale {

struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
};

using RedisCommand = std::vector<std::string>;

class Redis {
 public:
  virtual ~Redis() = default;
  // Sends every command in one write and reads the replies in order. Redis-level
  // errors come back as kError replies; failing to reach Redis is kUnavailable.
  virtual absl::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<RedisCommand>& commands) = 0;

  // One command; a kError reply becomes kInternal naming the command.
  absl::StatusOr<RedisReply> Command(const RedisCommand& argv);
};

struct RedisOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration command_timeout = absl::Seconds(5);
  absl::Duration backoff_initial = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(5);
};

class HiredisClient : public Redis {
 public:
  HiredisClient(RedisOptions options, const Clock* clock);
  ~HiredisClient() override;
  HiredisClient(const HiredisClient&) = delete;
  HiredisClient& operator=(const HiredisClient&) = delete;

  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<RedisCommand>& commands) override;

  // Connects now if not connected and the backoff allows; OK when connected.
  absl::Status EnsureConnected();
  bool connected() const { return ctx_ != nullptr; }
  // When the next reconnect attempt is allowed (now, if connected).
  absl::Time next_attempt() const { return next_attempt_; }
  const RedisOptions& options() const { return options_; }

 private:
  void Disconnect(absl::string_view why);

  const RedisOptions options_;
  const Clock* const clock_;
  redisContext* ctx_ = nullptr;
  Backoff backoff_;
  absl::Time next_attempt_;
  std::string last_error_;
};

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_REDIS_REDIS_H_
