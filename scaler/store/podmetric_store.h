// Writes Podmetric samples to Redis in the seed's layout (podmetric:<id> sorted sets,
// score = receivedAt in Unix seconds) and reads them back. Each Write is one
// MULTI/EXEC round trip, so a batch is stored whole or not at all; a per-pod
// high-water mark of stored sequence numbers (zeroscale:lastseq) makes replays after
// a reconnect idempotent. Keys are trimmed to the retention as they are written.
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

std::string PodmetricKey(absl::string_view pod_id);       // podmetric:<id>
std::string WorkloadPodsKey(absl::string_view workload);  // zeroscale:workload:<w>:pods
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
  // Samples Redis refused for good (e.g. the key holds another type), by index.
  std::vector<std::pair<size_t, absl::Status>> failed;
};

class PodmetricStore {
 public:
  struct Options {
    absl::Duration retention = absl::Minutes(15);
    // How often each key is trimmed while it is written.
    absl::Duration trim_interval = absl::Seconds(30);
  };

  PodmetricStore(Redis* redis, const Clock* clock, Options options);

  // Stores the samples (already validated and stamped). kUnavailable: nothing was
  // written; retry the same batch later.
  absl::StatusOr<WriteResult> Write(const std::vector<const EncodedPodmetric*>& samples);

  // Seed query: ZRANGEBYSCORE podmetric:<id> start end, oldest first.
  absl::StatusOr<std::vector<Podmetric>> Range(absl::string_view pod_id, absl::Time start,
                                               absl::Time end);

  // Drops sequence marks of pods that have no samples left (after a restart, pods
  // never seen again would otherwise leave their mark forever). Cheap to call rarely.
  absl::Status ForgetVanishedPods();

  absl::Status Ping();

  // Forgets the cached high-water mark of a pod so the next Write re-reads it from
  // Redis: another scaler replica may have stored samples of this pod meanwhile.
  void ForgetMark(absl::string_view pod_id) { last_seq_.erase(pod_id); }

 private:
  absl::Status LoadMarks(const std::vector<const EncodedPodmetric*>& samples);

  Redis* const redis_;
  const Clock* const clock_;
  const Options options_;
  // Highest stored seq per pod, mirrored from zeroscale:lastseq.
  absl::flat_hash_map<std::string, uint64_t> last_seq_;
  absl::flat_hash_map<std::string, absl::Time> last_trim_;
  absl::flat_hash_set<std::string> indexed_;  // "<workload>\n<pod>" already in the index
};

}  // namespace zeroscale::store

#endif  // ZEROSCALE_SCALER_STORE_PODMETRIC_STORE_H_
