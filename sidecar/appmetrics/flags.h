// The sidecar's --app-metrics-* flags and the scraper they configure, kept here so the
// sidecar's main() only registers, checks and starts them.
//
// Thread-safety: start-up code, one thread.
#ifndef ZEROSCALE_SIDECAR_APPMETRICS_FLAGS_H_
#define ZEROSCALE_SIDECAR_APPMETRICS_FLAGS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/flags.h"
#include "sidecar/appmetrics/scraper.h"

namespace zeroscale::sidecar {

struct AppMetricsFlags {
  std::string path, preset, series;
  int64_t port = 0;  // 0: the app's port
};

void RegisterAppMetricsFlags(config::FlagSet* flags, AppMetricsFlags* out);

// The scraper the flags ask for, or nullptr when they ask for none. kInvalidArgument naming
// the flag: an unknown preset, a bad or surplus series name. A preset or series without a
// path scrapes /metrics; a path alone forwards the endpoint's gauges.
absl::StatusOr<std::unique_ptr<AppMetricsScraper>> NewAppMetricsScraper(
    const AppMetricsFlags& flags, uint16_t app_port, absl::Duration sample_interval,
    size_t max_series, prometheus::Registry* registry, Clock* clock);

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_APPMETRICS_FLAGS_H_
