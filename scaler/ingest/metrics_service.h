// MetricsService.Stream: the gRPC edge of ingest. Each sidecar stream is a callback
// reactor (no thread per stream): samples are converted from proto, validated and
// stamped with receivedAt, handed to the IngestQueue, and acknowledged cumulatively by
// sequence number once stored. Invalid samples are acknowledged with a Rejection that
// names the field; the stream goes on. When the queue is full the reactor stops
// reading, so gRPC flow control slows the senders instead of the scaler buffering
// without bound. Messages arrive as bytes and are parsed here, so a message that is not
// a StreamRequest ends the stream with INVALID_ARGUMENT (gRPC's own parsing would end it
// as if the sender had closed it); one with more samples than a sidecar ever batches ends
// it with RESOURCE_EXHAUSTED, and samples naming more distinct pods than one stream
// carries are rejected by field.
//
// Identity (sample_auth.h): the stream's "authorization" metadata is checked once, when
// it opens; a stream without a pod's credential ends at once with UNAUTHENTICATED or
// PERMISSION_DENIED, and each sample not of that pod (or its workload) is rejected with
// its field and a message ending "(permission denied)".
//
// Thread-safe: gRPC and the writer thread call into reactors concurrently; each
// reactor serialises under its own lock.
#ifndef ZEROSCALE_SCALER_INGEST_METRICS_SERVICE_H_
#define ZEROSCALE_SCALER_INGEST_METRICS_SERVICE_H_

#include "common/time/clock.h"
#include "scaler/ingest/ingest_metrics.h"
#include "scaler/ingest/ingest_queue.h"
#include "scaler/ingest/sample_auth.h"
#include "scaler/ingest/sample_listener.h"
#include "zeroscale/v1/metrics_service.grpc.pb.h"

namespace zeroscale::ingest {

struct StreamLimits {
  // Samples in one StreamRequest; the sidecar sends at most 64.
  size_t max_samples_per_message = 1024;
  // Distinct pod ids in one stream; a sidecar streams its own pod.
  size_t max_pods_per_stream = 16;
};

class MetricsServiceImpl
    : public v1::MetricsService::WithRawCallbackMethod_Stream<v1::MetricsService::Service> {
 public:
  // `listener` (may be null) hears every accepted sample.
  MetricsServiceImpl(IngestQueue* queue, IngestMetrics* metrics, const Clock* clock,
                     SampleListener* listener = nullptr, StreamLimits limits = {},
                     SampleAuth* auth = nullptr)
      : queue_(queue),
        metrics_(metrics),
        clock_(clock),
        listener_(listener),
        limits_(limits),
        auth_(auth) {}

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Stream(
      grpc::CallbackServerContext* context) override;

 private:
  IngestQueue* const queue_;
  IngestMetrics* const metrics_;
  const Clock* const clock_;
  SampleListener* const listener_;
  const StreamLimits limits_;
  SampleAuth* const auth_;  // null: no identity checks (tests of other concerns)
};

}  // namespace zeroscale::ingest

#endif  // ZEROSCALE_SCALER_INGEST_METRICS_SERVICE_H_
