// Request logs (seed 004's proxy_logs table) in a capped Redis stream,
// `zeroscale:balancer:logs`: one entry per answered request whose stream fields are the
// table's columns: timestamp, client_ip, target_url, http_method, response_status,
// latency_ms, plus workload and upstream (native stream fields rather than a JSON blob:
// nothing to encode on the write path, and readable with plain XRANGE). `timestamp` is when the
// response ended (RFC 3339, ms); `target_url` is the URL the client asked for (http://<Host><path
// and query>), which stays meaningful while pods come and go; `upstream` is the pod's address (""
// when none was picked).
//
// LogWriter keeps logging off the data path: Append only queues (bounded; full means
// dropped and counted) and one background thread with its own Redis connection writes
// batches with XADD MAXLEN ~ cap. When Redis is down a batch is dropped and counted;
// requests never wait for logs.
//
// Thread-safety: LogWriter::Append from any thread; LogQuery is not thread-safe (give it
// its own connection and serialise calls).
#ifndef ZEROSCALE_BALANCER_LOGS_REQUEST_LOG_H_
#define ZEROSCALE_BALANCER_LOGS_REQUEST_LOG_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redis/redis.h"

namespace zeroscale::balancer {

inline constexpr char kLogsKey[] = "zeroscale:balancer:logs";

struct LogEntry {
  absl::Time timestamp;
  std::string client_ip;
  std::string target_url;
  std::string http_method;
  int response_status = 0;
  int64_t latency_ms = 0;
  std::string workload;
  std::string upstream;
};

// The JSON the admin API serves for one entry (the same field names).
std::string LogEntryToJson(const LogEntry& e);
// XADD arguments after the id: field, value, field, value...
void AppendLogEntryFields(const LogEntry& e, RedisCommand* command);
// An entry from a stream entry's field/value array; kInvalidArgument names what is
// missing or malformed (foreign entries in the stream are skipped by readers).
absl::StatusOr<LogEntry> LogEntryFromFields(const RedisReply& fields);

struct LogWriterOptions {
  size_t max_entries = 100000;  // stream cap (approximate: MAXLEN ~)
  size_t max_pending = 50000;   // queued entries before Append drops
  size_t max_batch = 1000;      // entries per pipelined round trip
  absl::Duration flush_interval = absl::Milliseconds(100);
};

class LogWriter {
 public:
  // `on_written(n)` / `on_dropped(n)` feed counters; both may be empty.
  LogWriter(std::unique_ptr<Redis> redis, LogWriterOptions options,
            std::function<void(uint64_t)> on_written = nullptr,
            std::function<void(uint64_t)> on_dropped = nullptr);
  ~LogWriter();  // flushes what is queued (one attempt), then stops
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  void Start();
  void Stop();
  void Append(LogEntry entry);
  // Waits until everything appended so far was written or dropped (tests, shutdown).
  void Flush();

  uint64_t written() const { return written_.load(); }
  uint64_t dropped() const { return dropped_.load(); }

 private:
  void Loop();
  void WriteBatch(std::vector<LogEntry>* batch);

  const std::unique_ptr<Redis> redis_;
  const LogWriterOptions options_;
  std::function<void(uint64_t)> on_written_, on_dropped_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable flushed_cv_;
  std::vector<LogEntry> pending_;
  uint64_t appended_ = 0;  // entries accepted into pending_ so far
  uint64_t settled_ = 0;   // of those, written or dropped
  bool stopping_ = false;
  bool flush_requested_ = false;
  bool redis_down_logged_ = false;
  std::thread thread_;
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
};

struct LogFilter {
  std::optional<absl::Time> from;  // inclusive
  std::optional<absl::Time> to;    // inclusive
  std::string target;              // substring of target_url ("" = all)
  size_t limit = 100;              // 1..1000
  size_t offset = 0;               // matching entries to skip
  std::string cursor;              // next_cursor of a previous page ("" = newest)
};

struct LogPage {
  std::vector<LogEntry> entries;  // newest first
  std::string next_cursor;        // "" when there is nothing older
};

// Serialises queries over one Redis connection. Thread-safe.
class LogReader {
 public:
  explicit LogReader(std::unique_ptr<Redis> redis) : redis_(std::move(redis)) {}
  absl::StatusOr<LogPage> Query(const LogFilter& filter);

 private:
  std::mutex mu_;
  const std::unique_ptr<Redis> redis_;
};

// Pages through the stream newest first. The cursor is the stream id of the last entry
// returned, so pages stay stable while new entries arrive. kInvalidArgument for a
// malformed cursor; kUnavailable when Redis cannot be reached.
absl::StatusOr<LogPage> QueryLogs(Redis* redis, const LogFilter& filter);

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_LOGS_REQUEST_LOG_H_
