#include "balancer/logs/request_log.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log/log.h"
#include "common/status/quote.h"
#include "common/time/clock.h"
#include "nlohmann/json.hpp"

namespace zeroscale::balancer {
namespace {

using nlohmann::json;

// How far out of timestamp order entries may be in the stream (batching, several
// balancer replicas writing).
constexpr int64_t kWriteSlackMs = 60000;
constexpr int kScanChunk = 500;

struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
};

bool ParseStreamId(absl::string_view s, StreamId* id) {
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(s, '-');
  return absl::SimpleAtoi(parts.first, &id->ms) && absl::SimpleAtoi(parts.second, &id->seq);
}

// The greatest id below `id`: XREVRANGE's exclusive bound without Redis 6.2's "(".
std::string Predecessor(const StreamId& id) {
  if (id.seq > 0) return absl::StrCat(id.ms, "-", id.seq - 1);
  if (id.ms == 0) return "";
  return absl::StrCat(id.ms - 1, "-", UINT64_MAX);
}

}  // namespace

std::string LogEntryToJson(const LogEntry& e) {
  json j = {{"timestamp", FormatRfc3339(e.timestamp)},
            {"client_ip", e.client_ip},
            {"target_url", e.target_url},
            {"http_method", e.http_method},
            {"response_status", e.response_status},
            {"latency_ms", e.latency_ms},
            {"workload", e.workload},
            {"upstream", e.upstream}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void AppendLogEntryFields(const LogEntry& e, RedisCommand* command) {
  command->insert(command->end(),
                  {"timestamp", FormatRfc3339(e.timestamp), "client_ip", e.client_ip, "target_url",
                   e.target_url, "http_method", e.http_method, "response_status",
                   absl::StrCat(e.response_status), "latency_ms", absl::StrCat(e.latency_ms),
                   "workload", e.workload, "upstream", e.upstream});
}

absl::StatusOr<LogEntry> LogEntryFromFields(const RedisReply& fields) {
  LogEntry e;
  bool has_timestamp = false;
  for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    const std::string& name = fields.elements[i].str;
    const std::string& value = fields.elements[i + 1].str;
    if (name == "timestamp") {
      absl::StatusOr<absl::Time> t = ParseRfc3339(value);
      if (!t.ok())
        return absl::InvalidArgumentError(absl::StrCat("timestamp: ", t.status().message()));
      e.timestamp = *t;
      has_timestamp = true;
    } else if (name == "client_ip") {
      e.client_ip = value;
    } else if (name == "target_url") {
      e.target_url = value;
    } else if (name == "http_method") {
      e.http_method = value;
    } else if (name == "response_status") {
      if (!absl::SimpleAtoi(value, &e.response_status)) {
        return absl::InvalidArgumentError(absl::StrCat("response_status: not a number: ", value));
      }
    } else if (name == "latency_ms") {
      if (!absl::SimpleAtoi(value, &e.latency_ms)) {
        return absl::InvalidArgumentError(absl::StrCat("latency_ms: not a number: ", value));
      }
    } else if (name == "workload") {
      e.workload = value;
    } else if (name == "upstream") {
      e.upstream = value;
    }
  }
  if (!has_timestamp) return absl::InvalidArgumentError("timestamp: missing");
  return e;
}

LogWriter::LogWriter(std::unique_ptr<Redis> redis, LogWriterOptions options,
                     std::function<void(uint64_t)> on_written,
                     std::function<void(uint64_t)> on_dropped)
    : redis_(std::move(redis)),
      options_(options),
      on_written_(std::move(on_written)),
      on_dropped_(std::move(on_dropped)) {}

LogWriter::~LogWriter() { Stop(); }

void LogWriter::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void LogWriter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LogWriter::Append(LogEntry entry) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.size() < options_.max_pending && !stopping_) {
      pending_.push_back(std::move(entry));
      appended_++;
      if (pending_.size() >= options_.max_batch) cv_.notify_one();
      return;
    }
  }
  dropped_++;
  if (on_dropped_) on_dropped_(1);
}

void LogWriter::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = appended_;
  flush_requested_ = true;
  cv_.notify_one();
  flushed_cv_.wait(lock, [&] { return settled_ >= target || !thread_.joinable(); });
}

void LogWriter::Loop() {
  std::vector<LogEntry> batch;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.flush_interval), [this] {
      return stopping_ || flush_requested_ || pending_.size() >= options_.max_batch;
    });
    flush_requested_ = false;
    const bool stop = stopping_;
    batch.swap(pending_);
    lock.unlock();
    for (size_t i = 0; i < batch.size(); i += options_.max_batch) {
      std::vector<LogEntry> part(
          std::make_move_iterator(batch.begin() + i),
          std::make_move_iterator(batch.begin() + std::min(batch.size(), i + options_.max_batch)));
      WriteBatch(&part);
    }
    const uint64_t n = batch.size();
    batch.clear();
    lock.lock();
    settled_ += n;
    flushed_cv_.notify_all();
    if (stop && pending_.empty()) return;
  }
}

void LogWriter::WriteBatch(std::vector<LogEntry>* batch) {
  if (batch->empty()) return;
  std::vector<RedisCommand> cmds;
  cmds.reserve(batch->size());
  const std::string cap = absl::StrCat(options_.max_entries);
  for (const LogEntry& e : *batch) {
    RedisCommand& cmd = cmds.emplace_back(RedisCommand{"XADD", kLogsKey, "MAXLEN", "~", cap, "*"});
    AppendLogEntryFields(e, &cmd);
  }
  absl::StatusOr<std::vector<RedisReply>> r = redis_->Pipeline(cmds);
  uint64_t ok = 0;
  if (r.ok()) {
    for (const RedisReply& reply : *r) ok += reply.is_error() ? 0 : 1;
    if (redis_down_logged_) ZS_LOG(kInfo, "request logs are written to Redis again");
    redis_down_logged_ = false;
  } else if (!redis_down_logged_) {
    redis_down_logged_ = true;
    ZS_LOG(kWarning, "Redis unavailable: request logs are dropped (and counted) meanwhile",
           {"error", std::string(r.status().message())});
  }
  const uint64_t lost = batch->size() - ok;
  written_ += ok;
  dropped_ += lost;
  if (ok && on_written_) on_written_(ok);
  if (lost && on_dropped_) on_dropped_(lost);
}

absl::StatusOr<LogPage> LogReader::Query(const LogFilter& filter) {
  std::lock_guard<std::mutex> lock(mu_);
  return QueryLogs(redis_.get(), filter);
}

absl::StatusOr<LogPage> QueryLogs(Redis* redis, const LogFilter& f) {
  // Stream ids come from Redis' clock, not ours, so time filters apply to each entry's
  // timestamp; the scan stops once entries are older than `from` by more than the
  // write slack (entries arrive in completion order, give or take a batch).
  std::string end = "+";
  if (!f.cursor.empty()) {
    StreamId id;
    if (!ParseStreamId(f.cursor, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("cursor: malformed ", Quote(f.cursor)));
    }
    std::string pred = Predecessor(id);
    if (pred.empty()) return LogPage{};
    end = std::move(pred);
  }
  const std::string start = "-";
  LogPage page;
  size_t skip = f.offset;
  while (true) {
    absl::StatusOr<RedisReply> r =
        redis->Command({"XREVRANGE", kLogsKey, end, start, "COUNT", absl::StrCat(kScanChunk)});
    if (!r.ok()) {
      if (r.status().code() == absl::StatusCode::kUnavailable) return r.status();
      return absl::UnavailableError(absl::StrCat("reading logs: ", r.status().message()));
    }
    if (r->type != RedisReply::Type::kArray) return page;
    std::string last_id;
    for (const RedisReply& item : r->elements) {
      if (item.elements.size() != 2) continue;
      last_id = item.elements[0].str;
      absl::StatusOr<LogEntry> e = LogEntryFromFields(item.elements[1]);
      if (!e.ok()) continue;  // a foreign or corrupt entry: skip it
      if (f.from && e->timestamp < *f.from - absl::Milliseconds(kWriteSlackMs)) return page;
      if (f.from && e->timestamp < *f.from) continue;
      if (f.to && e->timestamp > *f.to) continue;
      if (!f.target.empty() && !absl::StrContains(e->target_url, f.target)) continue;
      if (skip > 0) {
        skip--;
        continue;
      }
      page.entries.push_back(*std::move(e));
      if (page.entries.size() >= f.limit) {
        page.next_cursor = last_id;
        return page;
      }
    }
    if (r->elements.size() < static_cast<size_t>(kScanChunk) || last_id.empty()) return page;
    StreamId id;
    if (!ParseStreamId(last_id, &id)) return page;
    end = Predecessor(id);
    if (end.empty()) return page;
  }
}

}  // namespace zeroscale::balancer
