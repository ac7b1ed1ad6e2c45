// POST /metrics: seed 004's sidecar API. Takes one Podmetric JSON object or an array;
// a batch is all-or-nothing: any invalid item gets a 400 naming its index and field,
// and nothing of that body is stored. 200 means stored in Redis. While Redis is down, or
// the ingest queue is above its high-water mark, it answers 503 with Retry-After at once
// rather than holding the client or buffering; a body of more samples than the limit is
// a 413 naming it. With `auth`, the "Authorization: Bearer" header must be a pod's
// credential (401/403/503 otherwise) and every sample that pod's (403 naming the index
// and field; nothing of the body is stored).
// Thread-safe.
#ifndef ZEROSCALE_SCALER_INGEST_HTTP_INGEST_H_
#define ZEROSCALE_SCALER_INGEST_HTTP_INGEST_H_

#include "common/http/http_server.h"
#include "common/time/clock.h"
#include "scaler/ingest/ingest_metrics.h"
#include "scaler/ingest/ingest_queue.h"
#include "scaler/ingest/sample_auth.h"
#include "scaler/ingest/sample_listener.h"

namespace zeroscale::ingest {

struct HttpIngestLimits {
  // Samples in one body; more is a 413 (the body's size is the HTTP server's limit).
  size_t max_items = 1000;
};

// `listener` (may be null) hears every accepted sample.
http::Handler HttpIngestHandler(IngestQueue* queue, IngestMetrics* metrics, const Clock* clock,
                                SampleListener* listener = nullptr, HttpIngestLimits limits = {},
                                SampleAuth* auth = nullptr);

}  // namespace zeroscale::ingest

#endif  // ZEROSCALE_SCALER_INGEST_HTTP_INGEST_H_
