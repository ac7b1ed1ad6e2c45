#include "common/metrics/exposition.h"

#include <utility>

#include "prometheus/text_serializer.h"

namespace zeroscale::metrics {

std::string Serialize(const prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

http::SyncHandler ExpositionHandler(const prometheus::Registry* registry,
                                    std::function<void()> refresh) {
  return [registry, refresh = std::move(refresh)](const http::Request&) {
    if (refresh) refresh();
    http::Response r = http::Response::Text(200, Serialize(*registry));
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  };
}

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}

}  // namespace zeroscale::metrics
