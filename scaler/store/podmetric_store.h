// Writes Podmetric samples to Redis in the seed's layout (podmetric:<id> sorted sets,
// score = receivedAt in Unix seconds) and reads them back. Each Write is one
// MULTI/EXEC round trip, so a batch is stored whole or not at all; a per-pod
// high-water mark of stored sequence numbers (zeroscale:lastseq) makes replays after
// a reconnect idempotent. Keys are trimmed to the retention as they are written.
//
// It also keeps the indexes a new leader reads windows through (zeroscale:workloads and
// zeroscale:workload:<w>:pods), and keeps them true when Redis loses data: every Write
// also sets this writer's marker key (zeroscale:writer:<id>, NX, expiring like a
// podmetric key). Finding the marker missing means Redis came back empty or lost keys
// (restarted without persistence, flushed, volume lost): the writer then indexes the
// pods of that batch again at once, and every other pod it knows at that pod's next
// sample. Each pod's entry is also rewritten whenever its key is trimmed (every
// trim_interval), which repairs any other loss, and ForgetVanishedPods drops the entries
// of pods whose samples are gone, so the indexes do not grow with pod churn.
//
// Not thread-safe: owned by the single ingest writer thread (reads may use their own
// instance on another Redis connection).
#ifndef ZEROSCALE_SCALER_STORE_PODMETRIC_STORE_H_
#define ZEROSCALE_SCALER_STORE_PODMETRIC_STORE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/model/podmetric.h"
#include "common/redis/redis.h"
#include "common/time/clock.h"

namespace zeroscale::store {

inline constexpr char kLastSeqKey[] = "zeroscale:lastseq";

std::string PodmetricKey(absl::string_view pod_id);        // podmetric:<id>
std::string WorkloadPodsKey(absl::string_view workload);   // zeroscale:workload:<w>:pods
std::string WriterMarkerKey(absl::string_view writer_id);  // zeroscale:writer:<id>
inline constexpr char kWorkloadsKey[] = "zeroscale:workloads";

// A sample with its Redis member already rendered. Encoding is the CPU-heavy part of a
// write, so producers do it on their own threads and the single writer only does I/O.
struct EncodedPodmetric {
  Podmetric sample;
  std::string json;   // the sorted-set member
  std::string score;  // receivedAt in whole Unix seconds, as the seed writes it
};
EncodedPodmetric Encode(Podmetric sample);

struct WriteResult {
  size_t stored = 0;
  size_t duplicates = 0;  // already stored earlier (seq at or below the high-water mark)
  // This writer's marker was missing: Redis lost what it had written before, and the
  // indexes of this batch's pods were written again.
  bool reindexed = false;
  // Samples Redis refused for good (e.g. the key holds another type), by index.
  std::vector<std::pair<size_t, absl::Status>> failed;
};

class PodmetricStore {
 public:
  struct Options {
    absl::Duration retention = absl::Minutes(15);
    // How often each key is trimmed (and its pod's index entry rewritten) while it is
    // written.
    absl::Duration trim_interval = absl::Seconds(30);
    // Names this writer's marker key; empty: a random id (one per process).
    std::string writer_id;
  };

  // workload -> its pods, as the indexes hold them.
  using IndexEntries = absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>>;

  PodmetricStore(Redis* redis, const Clock* clock, Options options);

  // Stores the samples (already validated and stamped). kUnavailable: nothing was
  // written; retry the same batch later.
  absl::StatusOr<WriteResult> Write(const std::vector<const EncodedPodmetric*>& samples);

  // Seed query: ZRANGEBYSCORE podmetric:<id> start end, oldest first.
  absl::StatusOr<std::vector<Podmetric>> Range(absl::string_view pod_id, absl::Time start,
                                               absl::Time end);

  // Drops the sequence marks and index entries of pods that have no samples left (pods
  // never seen again would otherwise stay forever), and workloads left without pods.
  // A pod that reports again is indexed again by whichever writer stores it (at once by
  // this one, within trim_interval by another). O(indexed pods); call it rarely.
  absl::Status ForgetVanishedPods();

  absl::Status Ping();

  // Forgets the cached high-water mark of a pod so the next Write re-reads it from
  // Redis: another scaler replica may have stored samples of this pod meanwhile.
  void ForgetMark(absl::string_view pod_id) { last_seq_.erase(pod_id); }

 private:
  absl::Status LoadMarks(const std::vector<const EncodedPodmetric*>& samples);
  // Queues the trim of every `touched` pod's key (pod -> workload) not trimmed for
  // trim_interval, adding its index entry to `index`; returns the keys trimmed.
  std::vector<std::string> QueueTrims(
      const absl::flat_hash_map<absl::string_view, absl::string_view>& touched, absl::Time now,
      const std::string& ttl, std::vector<RedisCommand>* cmds, IndexEntries* index);
  // After the marker was found missing: forgets what this writer believed indexed or
  // trimmed, and writes the entries of `batch` that the transaction did not (`written`)
  // again, their keys expiring after `ttl` seconds.
  void Reindex(const IndexEntries& batch, const IndexEntries& written, const std::string& ttl,
               WriteResult* result);
  absl::Status ForgetVanishedMarks();
  absl::Status ForgetVanishedIndexEntries();

  Redis* const redis_;
  const Clock* const clock_;
  const Options options_;
  const std::string marker_key_;
  bool marker_written_ = false;  // a Write has set the marker before
  // Highest stored seq per pod, mirrored from zeroscale:lastseq.
  absl::flat_hash_map<std::string, uint64_t> last_seq_;
  absl::flat_hash_map<std::string, absl::Time> last_trim_;
  absl::flat_hash_set<std::string> indexed_;  // "<workload>\n<pod>" already in the index
};

}  // namespace zeroscale::store

#endif  // ZEROSCALE_SCALER_STORE_PODMETRIC_STORE_H_
