// MetricsService.Stream: the gRPC edge of ingest. Each sidecar stream is a callback
// reactor (no thread per stream): samples are converted from proto, validated and
// stamped with receivedAt, handed to the IngestQueue, and acknowledged cumulatively by
// sequence number once stored. Invalid samples are acknowledged with a Rejection that
// names the field; the stream goes on. When the queue is full the reactor stops
// reading, so gRPC flow control slows the senders instead of the scaler buffering
// without bound.
//
// Thread-safe: gRPC and the writer thread call into reactors concurrently; each
// reactor serialises under its own lock.
#ifndef ZEROSCALE_SCALER_INGEST_METRICS_SERVICE_H_
#define ZEROSCALE_SCALER_INGEST_METRICS_SERVICE_H_

#include "common/time/clock.h"
#include "scaler/ingest/ingest_metrics.h"
#include "scaler/ingest/ingest_queue.h"
#include "scaler/ingest/sample_listener.h"
#include "zeroscale/v1/metrics_service.grpc.pb.h"

namespace zeroscale::ingest {

class MetricsServiceImpl : public v1::MetricsService::CallbackService {
 public:
  // `listener` (may be null) hears every accepted sample.
  MetricsServiceImpl(IngestQueue* queue, IngestMetrics* metrics, const Clock* clock,
                     SampleListener* listener = nullptr)
      : queue_(queue), metrics_(metrics), clock_(clock), listener_(listener) {}

  grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* Stream(
      grpc::CallbackServerContext* context) override;

 private:
  IngestQueue* const queue_;
  IngestMetrics* const metrics_;
  const Clock* const clock_;
  SampleListener* const listener_;
};

}  // namespace zeroscale::ingest

#endif  // ZEROSCALE_SCALER_INGEST_METRICS_SERVICE_H_
