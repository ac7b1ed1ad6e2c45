// Prometheus text exposition of a prometheus-cpp registry, served by each program on
// GET /metrics through its own HTTP server. Thread-safe (the registry is).
#ifndef ZEROSCALE_COMMON_METRICS_EXPOSITION_H_
#define ZEROSCALE_COMMON_METRICS_EXPOSITION_H_

#include <string>

#include "common/http/http_server.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace zeroscale::metrics {

std::string Serialize(const prometheus::Registry& registry);

// A handler answering with the registry's text exposition.
http::SyncHandler ExpositionHandler(const prometheus::Registry* registry);

// Buckets for latencies in seconds, from 100 µs to 60 s.
prometheus::Histogram::BucketBoundaries LatencyBuckets();

}  // namespace zeroscale::metrics

#endif  // ZEROSCALE_COMMON_METRICS_EXPOSITION_H_
