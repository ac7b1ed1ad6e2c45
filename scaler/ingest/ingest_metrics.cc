#include "scaler/ingest/ingest_metrics.h"

#include "common/metrics/exposition.h"

namespace zeroscale::ingest {
namespace {

constexpr absl::string_view kReasons[] = {
    "id", "workload", "cpuUsage", "memoryUsage", "diskUsage", "averageResponseTime", "requestRate",
    "inFlight", "p99ResponseTime", "cpuCores", "memoryBytes", "diskBytes", "diskReadBytesPerSecond",
    "diskWriteBytesPerSecond", "sampledAt", "seq", "json", "redis",
    // Limits: a body or message too large, one that
    // is not a StreamRequest.
    "size", "samples", "message"};

prometheus::Family<prometheus::Counter>& Received(prometheus::Registry* r) {
  return prometheus::BuildCounter()
      .Name("zeroscale_ingest_samples_received_total")
      .Help("Podmetric samples received, by transport")
      .Register(*r);
}

}  // namespace

IngestMetrics::IngestMetrics(prometheus::Registry* r)
    : received_grpc(Received(r).Add({{"transport", "grpc"}})),
      received_http(Received(r).Add({{"transport", "http"}})),
      stored(prometheus::BuildCounter()
                 .Name("zeroscale_ingest_samples_stored_total")
                 .Help("Samples written to Redis and acknowledged")
                 .Register(*r)
                 .Add({})),
      duplicates(
          prometheus::BuildCounter()
              .Name("zeroscale_ingest_samples_duplicate_total")
              .Help("Replayed samples that were already stored (acknowledged, not rewritten)")
              .Register(*r)
              .Add({})),
      active_streams(prometheus::BuildGauge()
                         .Name("zeroscale_ingest_active_streams")
                         .Help("Open sidecar metric streams")
                         .Register(*r)
                         .Add({})),
      queued(prometheus::BuildGauge()
                 .Name("zeroscale_ingest_queued_samples")
                 .Help("Samples accepted but not yet stored")
                 .Register(*r)
                 .Add({})),
      redis_up(prometheus::BuildGauge()
                   .Name("zeroscale_redis_up")
                   .Help("1 when the last Redis operation succeeded")
                   .Register(*r)
                   .Add({})),
      redis_errors(prometheus::BuildCounter()
                       .Name("zeroscale_redis_errors_total")
                       .Help("Failed Redis round trips (each is retried)")
                       .Register(*r)
                       .Add({})),
      redis_write_seconds(prometheus::BuildHistogram()
                              .Name("zeroscale_redis_write_seconds")
                              .Help("Latency of one pipelined batch write to Redis")
                              .Register(*r)
                              .Add({}, metrics::LatencyBuckets())),
      batch_size(
          prometheus::BuildHistogram()
              .Name("zeroscale_ingest_batch_samples")
              .Help("Samples per Redis write batch")
              .Register(*r)
              .Add({}, prometheus::Histogram::BucketBoundaries{1, 4, 16, 64, 256, 1024, 4096})),
      rejected_(prometheus::BuildCounter()
                    .Name("zeroscale_ingest_samples_rejected_total")
                    .Help("Samples refused, by reason (the field at fault, or redis)")
                    .Register(*r)) {
  for (absl::string_view reason : kReasons) rejected_.Add({{"reason", std::string(reason)}});
}

void IngestMetrics::Rejected(absl::string_view reason, double n) {
  std::string label = "other";
  for (absl::string_view known : kReasons) {
    if (reason == known) label = std::string(known);
  }
  rejected_.Add({{"reason", label}}).Increment(n);
}

}  // namespace zeroscale::ingest
