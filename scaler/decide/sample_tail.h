// Lets the leader hear every sample, not only those streamed to it. Sidecars stream to
// whichever scaler replica their connection landed on and every replica stores what it
// gets in Redis; while this replica leads, a SampleTail reads back, every interval, what
// the pods of the decider's workloads stored since its last read and hands on what this
// replica has not delivered yet. SeenSamples remembers, per pod, the newest sample
// delivered (locally received or tailed), so a sample is not fed twice: samples read
// back from Redis carry receivedAt truncated to milliseconds, and a sidecar replaying
// unacknowledged samples after a reconnect sends them with a new receivedAt, so the
// decider's own (receivedAt, seq) dedup recognizes neither.
//
// Thread-safety: SeenSamples is thread-safe. SampleTail runs rounds on its own thread
// (Start/Stop, from one controlling thread); RunOnce and Reset are for that thread, or
// for a test driving the tail without starting it. Its Redis client is used only there.
#ifndef ZEROSCALE_SCALER_DECIDE_SAMPLE_TAIL_H_
#define ZEROSCALE_SCALER_DECIDE_SAMPLE_TAIL_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/model/podmetric.h"
#include "common/redis/redis.h"
#include "common/time/clock.h"
#include "scaler/decide/decider.h"
#include "scaler/decide/scheduler.h"

namespace zeroscale::decide {

// Per pod: the highest seq delivered and the newest receivedAt delivered (what decides
// for samples without seq, from seed-style sidecars).
class SeenSamples {
 public:
  // Marks of pods silent for `forget_after` are dropped (see MaybeForget).
  explicit SeenSamples(absl::Duration forget_after = absl::Minutes(20))
      : forget_after_(forget_after) {}
  // Removes from `samples` those not newer than what was delivered of their pod (a
  // replay); the rest count as delivered. One lock for the batch.
  void KeepUnseen(std::vector<Podmetric>* samples);
  // True when `m` is newer than everything delivered of its pod; it then counts as
  // delivered. Atomic, so two paths racing on one sample deliver it once.
  bool MarkIfUnseen(const Podmetric& m);
  // Drops pods whose newest sample is older than `before` (pods that went away).
  void Forget(absl::Time before);
  // Forget(now - forget_after), at most once a minute: for every path that marks.
  void MaybeForget(absl::Time now);
  size_t size() const;

 private:
  struct Newest {
    uint64_t seq = 0;
    absl::Time received_at = absl::InfinitePast();
  };
  static void Update(Newest* n, const Podmetric& m);
  bool MarkIfUnseenLocked(const Podmetric& m);

  const absl::Duration forget_after_;
  mutable std::mutex mu_;
  absl::Time last_forget_ = absl::InfinitePast();
  absl::flat_hash_map<std::string, Newest> pods_;
};

struct SampleTailOptions {
  absl::Duration interval = absl::Seconds(1);
  // Where reading starts for a pod met for the first time: this far before the previous
  // listing of its workload (or before now, for a workload new to the tail). Covers the
  // time between a sample's receipt and its write, and overlaps the takeover rebuild;
  // re-read samples cost parsing only.
  absl::Duration first_read_lookback = absl::Seconds(5);
};

struct SampleTailStats {
  uint64_t rounds = 0;         // rounds that read Redis successfully
  uint64_t failed_rounds = 0;  // rounds skipped: Redis down, or workloads not listed
  uint64_t read = 0;           // samples read back
  uint64_t delivered = 0;      // of those, handed on (not seen before)
  uint64_t skipped = 0;        // members that do not parse or belong to another workload
};

class SampleTail {
 public:
  // The decider's workloads now.
  using ListWorkloads = std::function<absl::StatusOr<std::vector<std::string>>()>;
  // Receives each round's unseen samples (one call per round with anything new), on the
  // tail's thread. Must not block.
  using Deliver = std::function<void(std::vector<Podmetric>)>;

  // `redis`, `clock` and `seen` must outlive the tail. `leading` says whether to read at
  // all (asked before every round of the thread; not used by RunOnce).
  SampleTail(Redis* redis, const Clock* clock, SeenSamples* seen, ListWorkloads workloads,
             std::function<bool()> leading, Deliver deliver, SampleTailOptions options = {});
  ~SampleTail();  // stops
  SampleTail(const SampleTail&) = delete;
  SampleTail& operator=(const SampleTail&) = delete;

  // Starts the thread; does nothing when the interval is not positive.
  void Start();
  // Finishes the round in progress and joins the thread. Idempotent.
  void Stop();

  // One round: lists the workloads, reads their pods' new samples (two pipelined round
  // trips, however many pods) and delivers the unseen ones. kUnavailable when Redis
  // cannot be reached: nothing is delivered and the next round reads from where this
  // one would have. The failure is counted and logged once per outage.
  absl::Status RunOnce();
  // Forgets where reading stopped, so the next round starts afresh (a new term: the
  // takeover rebuild covers what came before).
  void Reset();

  SampleTailStats stats() const;

  // Lists the decider's workloads on its scheduler's thread (the engine lives there),
  // waiting at most `timeout`. For a scheduler that runs on its own thread.
  static ListWorkloads WorkloadsOf(Decider* decider, Scheduler* scheduler,
                                   absl::Duration timeout = absl::Seconds(2));

 private:
  struct Followed {
    absl::Time listed = absl::InfinitePast();  // last successful listing of its pods
    // Per pod, the score (whole Unix seconds) the next read starts at, inclusive: samples
    // stored later in the same second must not be missed.
    absl::flat_hash_map<std::string, int64_t> from;
  };

  void Loop();
  absl::Status Fail(absl::Status s);

  Redis* const redis_;
  const Clock* const clock_;
  SeenSamples* const seen_;
  const ListWorkloads list_workloads_;
  const std::function<bool()> leading_;
  const Deliver deliver_;
  const SampleTailOptions options_;

  // The round's thread only.
  absl::flat_hash_map<std::string, Followed> followed_;
  bool down_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  SampleTailStats stats_;
  std::thread thread_;
};

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_SAMPLE_TAIL_H_
