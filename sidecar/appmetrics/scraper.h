// Scrapes the app's Prometheus endpoint (vLLM's /metrics...) on a thread of its own, once
// per sample interval, and keeps the series the workload forwards, so the sample loop
// takes the latest values without ever waiting for the app: a slow endpoint makes the
// sample go out on time without those series (the scaler then has no data for them, which
// never counts as idle). A series exposed with several label sets (one per model, per
// engine, per GPU) is forwarded as their sum: the pod's total queue is what a rule means by
// "requests waiting". For a ratio exposed per engine (vLLM's KV-cache use with data
// parallelism) the sum is not a ratio any more: rules on it should allow for that.
//
// Failed scrapes are counted by reason in zeroscale_sidecar_app_metrics_scrape_errors_total
// and logged at most once a minute (and once when scraping works again).
//
// Thread-safety: Latest() and ScrapeOnce() may be called from any thread; Start/Stop from
// one.
#ifndef ZEROSCALE_SIDECAR_APPMETRICS_SCRAPER_H_
#define ZEROSCALE_SIDECAR_APPMETRICS_SCRAPER_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/prom/text_parser.h"
#include "common/time/clock.h"

namespace prometheus {
class Counter;
template <typename T>
class Family;
class Registry;
}  // namespace prometheus

namespace zeroscale::sidecar {

struct AppMetricsOptions {
  uint16_t port = 0;  // the app's, on loopback
  std::string path;   // e.g. "/metrics"
  // The series to forward; empty: every gauge the endpoint declares (# TYPE ... gauge), up
  // to max_series of them in the order exposed.
  std::vector<std::string> series;
  size_t max_series = 64;
  absl::Duration interval = absl::Seconds(1);
  // Per scrape; zero: half the interval. Must be under the interval.
  absl::Duration timeout = absl::ZeroDuration();
  size_t max_body_bytes = 4 << 20;
  prom::ParseLimits limits;
  prometheus::Registry* registry = nullptr;  // optional
};

// The wanted series in an exposition, each summed over its label sets; with none wanted,
// the gauges it declares (the first `max_series` names): counters only grow and histograms
// are not one value, so neither makes a threshold. A series absent from the text, or whose
// sum is NaN or infinite, is left out. Errors are the parser's.
absl::StatusOr<std::map<std::string, double>> SumSeries(absl::string_view text,
                                                        const std::vector<std::string>& wanted,
                                                        const prom::ParseLimits& limits,
                                                        size_t max_series = 64);

class AppMetricsScraper {
 public:
  // kInvalidArgument naming the option when the options cannot work.
  static absl::StatusOr<std::unique_ptr<AppMetricsScraper>> Create(AppMetricsOptions options,
                                                                   Clock* clock);
  ~AppMetricsScraper();  // Stop()
  AppMetricsScraper(const AppMetricsScraper&) = delete;
  AppMetricsScraper& operator=(const AppMetricsScraper&) = delete;

  // Scrapes once every interval from now on, on its own thread.
  void Start();
  // Waits for a scrape in progress (at most the timeout) and joins the thread. Idempotent.
  void Stop();

  // One scrape, now, on the caller's thread (bounded by the timeout): the forwarded series
  // present, or why there are none (a status from LocalGet, kFailedPrecondition for a
  // non-2xx answer, or the parser's error). Counts and logs failures; keeps the result for
  // Latest().
  absl::StatusOr<std::map<std::string, double>> ScrapeOnce();

  // The series of the last scrape when it succeeded and ended within the last interval
  // plus timeout; empty otherwise. Never waits for a scrape.
  std::map<std::string, double> Latest() const;

  absl::Duration timeout() const { return options_.timeout; }

 private:
  AppMetricsScraper(AppMetricsOptions options, Clock* clock);
  void Run();
  void Record(const absl::Status& status, absl::string_view reason);

  const AppMetricsOptions options_;
  Clock* const clock_;
  prometheus::Family<prometheus::Counter>* errors_ = nullptr;
  prometheus::Counter* scrapes_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, double> latest_;
  absl::Time latest_at_ = absl::InfinitePast();
  // Rate limit of the failure log, and what was missing last time (logged on change).
  bool failing_ = false;
  absl::Time last_failure_log_ = absl::InfinitePast();
  uint64_t failures_since_log_ = 0;
  std::vector<std::string> missing_;
  std::thread thread_;
};

}  // namespace zeroscale::sidecar

#endif  // ZEROSCALE_SIDECAR_APPMETRICS_SCRAPER_H_
