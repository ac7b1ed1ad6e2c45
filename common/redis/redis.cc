#include "common/redis/redis.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace zeroscale {
namespace {

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

}  // namespace

absl::StatusOr<RedisReply> Redis::Command(const RedisCommand& argv) {
  absl::StatusOr<std::vector<RedisReply>> replies = Pipeline({argv});
  if (!replies.ok()) return replies.status();
  RedisReply& r = replies->front();
  if (r.is_error()) {
    return absl::InternalError(absl::StrCat("redis ", argv.empty() ? "" : argv[0], ": ", r.str));
  }
  return std::move(r);
}

HiredisClient::HiredisClient(RedisOptions options, const Clock* clock)
    : options_(std::move(options)),
      clock_(clock),
      backoff_({options_.backoff_initial, options_.backoff_max, 2.0, Jitter::kNone}),
      next_attempt_(absl::InfinitePast()) {}

HiredisClient::~HiredisClient() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

void HiredisClient::Disconnect(absl::string_view why) {
  last_error_ = std::string(why);
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
    // A connection that worked and then broke: retry at once, then back off.
    backoff_.Reset();
    next_attempt_ = clock_->Now();
  }
}

absl::Status HiredisClient::EnsureConnected() {
  if (ctx_ != nullptr) return absl::OkStatus();
  const absl::Time now = clock_->Now();
  const std::string where = absl::StrCat(options_.host, ":", options_.port);
  if (now < next_attempt_) {
    return absl::UnavailableError(absl::StrCat("redis at ", where, " is unreachable (", last_error_,
                                               "); next attempt in ",
                                               absl::FormatDuration(next_attempt_ - now)));
  }
  redisContext* c = redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                            absl::ToTimeval(options_.connect_timeout));
  if (c == nullptr || c->err != 0) {
    last_error_ = c != nullptr ? c->errstr : "cannot allocate a redis context";
    if (c != nullptr) redisFree(c);
    next_attempt_ = now + backoff_.Next();
    return absl::UnavailableError(
        absl::StrCat("cannot connect to redis at ", where, ": ", last_error_));
  }
  const timeval tv = absl::ToTimeval(options_.command_timeout);
  redisSetTimeout(c, tv);
  redisEnableKeepAlive(c);
  ctx_ = c;
  backoff_.Reset();
  next_attempt_ = now;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RedisReply>> HiredisClient::Pipeline(
    const std::vector<RedisCommand>& commands) {
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  std::vector<const char*> argv;
  std::vector<size_t> argvlen;
  for (const RedisCommand& cmd : commands) {
    argv.clear();
    argvlen.clear();
    for (const std::string& a : cmd) {
      argv.push_back(a.data());
      argvlen.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), argvlen.data()) !=
        REDIS_OK) {
      const std::string err = ctx_->errstr;
      Disconnect(err);
      return absl::UnavailableError(absl::StrCat("redis: ", err));
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
      const std::string err = ctx_->err != 0 ? ctx_->errstr : "connection closed";
      Disconnect(err);
      return absl::UnavailableError(absl::StrCat("redis: ", err));
    }
    replies.push_back(Convert(static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
  }
  return replies;
}

}  // namespace zeroscale
