// Prometheus instruments of the ingest path. Created once against a registry; the
// instruments themselves are thread-safe.
#ifndef ZEROSCALE_SCALER_INGEST_INGEST_METRICS_H_
#define ZEROSCALE_SCALER_INGEST_INGEST_METRICS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace zeroscale::ingest {

class IngestMetrics {
 public:
  explicit IngestMetrics(prometheus::Registry* registry);

  prometheus::Counter& received_grpc;
  prometheus::Counter& received_http;
  prometheus::Counter& stored;
  prometheus::Counter& duplicates;
  prometheus::Gauge& active_streams;
  prometheus::Gauge& queued;
  prometheus::Gauge& redis_up;
  prometheus::Counter& redis_errors;
  prometheus::Histogram& redis_write_seconds;
  prometheus::Histogram& batch_size;

  // reason: the JSON field at fault, or "redis"; unknown reasons become "other"
  // so the label's cardinality stays bounded.
  void Rejected(absl::string_view reason, double n = 1);

 private:
  prometheus::Family<prometheus::Counter>& rejected_;
};

}  // namespace zeroscale::ingest

#endif  // ZEROSCALE_SCALER_INGEST_INGEST_METRICS_H_
