// The ingest write path: samples accepted from any transport queue here and one
// writer thread stores them in Redis in pipelined batches. A submission's callback
// runs only after its samples are stored (or refused for good), so acknowledgements
// never run ahead of Redis. While Redis is down the writer retries with backoff and
// keeps everything queued; past the high-water mark producers are asked to pause
// (NotifyWhenSpace), which pushes back through gRPC flow control to the sidecars.
//
// Thread-safe: Submit, HasSpace and NotifyWhenSpace may be called from any thread;
// callbacks run on the writer thread and must not block.
#ifndef ZEROSCALE_SCALER_INGEST_INGEST_QUEUE_H_
#define ZEROSCALE_SCALER_INGEST_INGEST_QUEUE_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/model/podmetric.h"
#include "scaler/ingest/ingest_metrics.h"
#include "scaler/store/podmetric_store.h"

namespace zeroscale::ingest {

struct Outcome {
  // Samples refused for good, by index within the submission; all others are stored.
  std::vector<std::pair<size_t, absl::Status>> failed;
};

class IngestQueue {
 public:
  struct Options {
    size_t max_batch = 4096;      // samples per Redis round trip
    size_t high_water = 200'000;  // pause producers above this many queued samples
    size_t low_water = 100'000;   // resume them below this
    absl::Duration health_interval = absl::Seconds(1);  // PING when idle
    absl::Duration forget_interval = absl::Minutes(15);
  };
  using Done = std::function<void(const Outcome&)>;

  IngestQueue(store::PodmetricStore* store, IngestMetrics* metrics, const Clock* clock,
              Options options);
  ~IngestQueue();

  void Start();
  // Keeps writing what is queued for at most `grace`, then stops; callbacks of samples
  // not stored by then never run (their senders will replay them).
  void Stop(absl::Duration grace);

  // `samples` must be valid and stamped. With `fresh_stream`, the pods' stored
  // high-water marks are re-read first (another replica may have written them).
  void Submit(std::vector<store::EncodedPodmetric> samples, bool fresh_stream, Done done);

  bool HasSpace() const;
  // Runs `resume` once, from the writer thread, when the queue drains below the low
  // water mark; at once (on the caller's thread) if it has space now.
  void NotifyWhenSpace(std::function<void()> resume);

  bool redis_up() const { return redis_up_.load(); }
  size_t queued() const;

 private:
  struct Submission {
    std::vector<store::EncodedPodmetric> samples;
    bool fresh_stream;
    Done done;
  };
  void Run();
  void WriteBatch(std::vector<Submission>& batch);
  void SetRedisUp(bool up);

  store::PodmetricStore* const store_;
  IngestMetrics* const metrics_;
  const Clock* const clock_;
  const Options options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Submission> queue_;
  size_t queued_samples_ = 0;
  std::vector<std::function<void()>> waiters_;
  bool stopping_ = false;
  absl::Time stop_deadline_ = absl::InfiniteFuture();
  std::atomic<bool> redis_up_{false};
  std::thread writer_;
};

}  // namespace zeroscale::ingest

#endif  // ZEROSCALE_SCALER_INGEST_INGEST_QUEUE_H_
