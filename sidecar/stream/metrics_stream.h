// The sidecar's one gRPC stream to the scaler (MetricsService.Stream, SPEC.md sections 5
// and 6). Samples handed to Submit get a sequence number and wait in a bounded buffer
// until the scaler acknowledges them; after a reconnect the whole unacknowledged buffer
// is replayed in order (the scaler deduplicates by its per-pod high-water mark). While
// the scaler is away the buffer drops its oldest sample when full, and the next sample
// carries the count in `dropped`, so the scaler learns of every gap.
//
// One background thread owns the connection (plus a reader thread per live
// connection); sends happen as soon as a sample is submitted, there is no polling.
//
// Thread-safe: every public method may be called from any thread.
#ifndef ZEROSCALE_SIDECAR_STREAM_METRICS_STREAM_H_
#define ZEROSCALE_SIDECAR_STREAM_METRICS_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/model/podmetric.h"
#include "common/time/clock.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc
namespace prometheus {
class Registry;
}  // namespace prometheus

namespace zeroscale::sidecar {

struct MetricsStreamOptions {
  std::string scaler;  // host:port of the scaler's gRPC endpoint
  // Insecure when null (common/grpcutil/credentials.h makes TLS ones).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // With TLS credentials: the name the scaler's certificate must carry instead of the
  // host of `scaler`.
  std::string server_name;
  // The "authorization" metadata of each stream ("Bearer <token>"), asked for every time
  // a stream opens, so a rotated token is used from the next connection; none when it
  // is empty or returns "". Added with ClientContext::AddMetadata, which (unlike call
  // credentials) also travels without TLS.
  std::function<std::string()> authorization;
  // Unacknowledged samples kept; at 1 sample/s the default bridges 10 minutes.
  size_t buffer_capacity = 600;
  // Samples per StreamRequest while catching up after a reconnect.
  size_t max_batch = 64;
  // Reconnect backoff: full jitter, uniform in [0, min(max, initial * 2^attempt)].
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(10);
  // First sequence number; 0 means the clock's time at construction in microseconds
  // since the Unix epoch, so a restarted sidecar continues above its predecessor.
  uint64_t first_seq = 0;
  // When set, the stream's counters and gauges are registered here
  // (zeroscale_sidecar_stream_*).
  prometheus::Registry* registry = nullptr;
};

// Counters since construction.
struct MetricsStreamStats {
  uint64_t submitted = 0;        // samples accepted by Submit
  uint64_t acked = 0;            // samples the scaler acknowledged (stored or rejected)
  uint64_t rejected = 0;         // of those, samples the scaler rejected
  uint64_t dropped = 0;          // samples dropped from the full buffer before being acknowledged
  uint64_t connects = 0;         // streams that reached the scaler
  uint64_t stream_failures = 0;  // streams that broke or could not be opened
  size_t buffered = 0;           // unacknowledged samples held now
  uint64_t acked_seq = 0;        // highest acknowledged sequence number
  bool connected = false;
};

class MetricsStream {
 public:
  explicit MetricsStream(MetricsStreamOptions options, const Clock* clock = RealClock::Get());
  // Stops without a grace period: unacknowledged samples are lost.
  ~MetricsStream();

  MetricsStream(const MetricsStream&) = delete;
  MetricsStream& operator=(const MetricsStream&) = delete;

  // Starts connecting in the background; a scaler that is down is not an error.
  // kInvalidArgument: the options cannot work (fix the configuration);
  // kFailedPrecondition: already started.
  absl::Status Start();

  // Queues the sample for sending and returns its sequence number (overwriting
  // `seq` and `dropped`). Never blocks on the network. kFailedPrecondition after Stop.
  absl::StatusOr<uint64_t> Submit(Podmetric sample);
  // As Submit, and if the stream is waiting out a reconnect backoff it tries at once:
  // for samples the scaler must see now, such as a readiness flip.
  absl::StatusOr<uint64_t> SubmitUrgent(Podmetric sample);

  // Waits until every sample with seq <= `seq` is acknowledged. kDeadlineExceeded
  // when `timeout` passes first.
  absl::Status WaitForAck(uint64_t seq, absl::Duration timeout);

  // Refuses further samples, keeps sending for at most `grace` until everything is
  // acknowledged, then closes the stream. kDeadlineExceeded (naming the count) when
  // samples were still unacknowledged. Idempotent.
  absl::Status Stop(absl::Duration grace);

  MetricsStreamStats stats() const;
  uint64_t dropped() const { return stats().dropped; }
  uint64_t rejected() const { return stats().rejected; }
  size_t buffered() const { return stats().buffered; }
  bool connected() const { return stats().connected; }

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_STREAM_METRICS_STREAM_H_
