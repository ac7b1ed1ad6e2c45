// Prometheus text exposition of a prometheus-cpp registry, served by each program on
// GET /metrics through its own HTTP server. Thread-safe (the registry is).
#ifndef ZEROSCALE_COMMON_METRICS_EXPOSITION_H_
#define ZEROSCALE_COMMON_METRICS_EXPOSITION_H_

#include <functional>
#include <string>

#include "common/http/http_server.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace zeroscale::metrics {

std::string Serialize(const prometheus::Registry& registry);

// A handler answering with the registry's text exposition. `refresh`, when set, runs first
// on each scrape: it brings gauges that depend on the time (the age of the oldest held
// request) or on state kept elsewhere (whether this scaler leads) up to date, so a scrape
// sees their value at that moment rather than at the last change. It must be thread-safe
// and quick (it runs on the HTTP server's thread).
http::SyncHandler ExpositionHandler(const prometheus::Registry* registry,
                                    std::function<void()> refresh = nullptr);

// Buckets for latencies in seconds, from 100 µs to 60 s.
prometheus::Histogram::BucketBoundaries LatencyBuckets();

}  // namespace zeroscale::metrics

#endif  // ZEROSCALE_COMMON_METRICS_EXPOSITION_H_
