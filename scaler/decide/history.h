// A short per-workload history of Decisions in Redis, under zeroscale:decisions:<workload>:
// a list of Decision JSON, newest first, capped (LPUSH + LTRIM in one MULTI/EXEC), so
// "why does my model have 0 replicas?" has an answer that survives a scaler restart and
// is visible to every scaler replica.
//
// Not thread-safe (a Redis client is not): use it from one thread, e.g. as a sink on the
// decider's loop. Record() blocks on Redis for one round trip.
#ifndef ZEROSCALE_SCALER_DECIDE_HISTORY_H_
#define ZEROSCALE_SCALER_DECIDE_HISTORY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/redis/redis.h"
#include "scaler/decide/decision.h"

namespace zeroscale::decide {

std::string DecisionsKey(absl::string_view workload);  // zeroscale:decisions:<workload>
std::string KeepAliveKey(absl::string_view workload);  // zeroscale:keepalive:<workload>

class DecisionHistory : public DecisionSink {
 public:
  // Keeps the newest `capacity` decisions of each workload.
  explicit DecisionHistory(Redis* redis, size_t capacity = 100)
      : redis_(redis), capacity_(capacity == 0 ? 1 : capacity) {}

  // kUnavailable when Redis cannot be reached: the decision is not stored.
  absl::Status Append(const Decision& decision);
  // DecisionSink: Append, with failures logged and counted, never fatal (a decision
  // is made and applied whether or not its history can be written).
  void Record(const Decision& decision) override;
  // DecisionSink: stores what the keep-alive policy learned under zeroscale:keepalive:<w>
  // (one bounded JSON string, overwritten), failures logged and counted.
  void OnKeepAlive(const std::string& workload, const std::string& state) override;

  // Up to `limit` decisions of `workload`, newest first. Entries that do not parse are
  // skipped (counted in `skipped`, may be null).
  absl::StatusOr<std::vector<Decision>> Read(absl::string_view workload, size_t limit,
                                             size_t* skipped = nullptr);

  // The stored keep-alive state of `workload`; "" when none is stored.
  absl::StatusOr<std::string> ReadKeepAlive(absl::string_view workload);

  uint64_t failures() const { return failures_; }

 private:
  Redis* const redis_;
  const size_t capacity_;
  uint64_t failures_ = 0;
};

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_HISTORY_H_
