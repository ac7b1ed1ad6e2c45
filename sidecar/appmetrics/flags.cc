#include "sidecar/appmetrics/flags.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/prom/presets.h"

namespace zeroscale::sidecar {

void RegisterAppMetricsFlags(config::FlagSet* flags, AppMetricsFlags* out) {
  flags->String("app-metrics-path", &out->path, "",
                "Scrape http://127.0.0.1:<app-port>PATH (Prometheus text, e.g. vLLM's /metrics) "
                "every --sample-interval and send the series of --app-metrics-preset and "
                "--app-metrics-series (neither given: every gauge it declares, at most 64) in "
                "each sample's appMetrics, each summed over its label sets; a scrape slower than "
                "half the interval is dropped, not waited for. "
                "Empty: /metrics when a preset or series is named, else no scrape");
  flags->String("app-metrics-preset", &out->preset, "",
                absl::StrCat("Series of a known model server to forward: ",
                             absl::StrJoin(prom::AppMetricsPresetNames(), ", "),
                             " (see the README's rule reference)"));
  flags->String("app-metrics-series", &out->series, "",
                "Comma-separated series to forward besides the preset's");
  flags->Int("app-metrics-port", &out->port, 0,
             "Port of the metrics endpoint on localhost when it is not the app's (Triton "
             "serves /metrics on 8002); 0: --app-port",
             0, 65535);
}

absl::StatusOr<std::unique_ptr<AppMetricsScraper>> NewAppMetricsScraper(
    const AppMetricsFlags& flags, uint16_t app_port, absl::Duration sample_interval,
    size_t max_series, prometheus::Registry* registry, Clock* clock) {
  // A path alone forwards the endpoint's gauges (up to max_series).
  if (flags.preset.empty() && flags.series.empty() && flags.path.empty()) return nullptr;
  absl::StatusOr<std::vector<std::string>> series =
      prom::SeriesToForward(flags.preset, flags.series, max_series);
  if (!series.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--app-metrics-preset/--app-metrics-series: ", series.status().message()));
  }
  AppMetricsOptions options;
  options.port = flags.port != 0 ? static_cast<uint16_t>(flags.port) : app_port;
  options.path = flags.path.empty() ? "/metrics" : flags.path;
  options.series = *std::move(series);
  options.max_series = max_series;
  options.interval = sample_interval;
  options.registry = registry;
  return AppMetricsScraper::Create(std::move(options), clock);
}

}  // namespace zeroscale::sidecar
