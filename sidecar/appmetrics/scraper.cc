#include "sidecar/appmetrics/scraper.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/http/local_client.h"
#include "common/log/log.h"
#include "common/model/scaling_rule.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace zeroscale::sidecar {
namespace {

// How often a scrape failure that goes on is logged again.
constexpr absl::Duration kFailureLogEvery = absl::Minutes(1);

// The reason label of a failure, from the status LocalGet or the parser gave.
absl::string_view ReasonOf(const absl::Status& status, bool parsing) {
  if (parsing) {
    return status.code() == absl::StatusCode::kResourceExhausted ? "too_large" : "parse";
  }
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      return "timeout";
    case absl::StatusCode::kResourceExhausted:
      return "too_large";
    case absl::StatusCode::kFailedPrecondition:
      return "status";
    default:
      return "connect";
  }
}

}  // namespace

absl::StatusOr<std::map<std::string, double>> SumSeries(absl::string_view text,
                                                        const std::vector<std::string>& wanted,
                                                        const prom::ParseLimits& limits,
                                                        size_t max_series) {
  std::map<std::string, double> sums;
  std::vector<std::string> gauges;  // declared so, when nothing is named: at most max_series
  auto on_metadata = [&](prom::Metadata&& m) {
    if (wanted.empty() && m.kind == prom::Metadata::Kind::kType && m.text == "gauge" &&
        gauges.size() < max_series && IsAppMetricName(m.name) &&
        std::find(gauges.begin(), gauges.end(), m.name) == gauges.end()) {
      gauges.push_back(std::move(m.name));
    }
  };
  absl::Status st = prom::ParseText(
      text, limits,
      [&](prom::Sample&& s) {
        const std::vector<std::string>& forward = wanted.empty() ? gauges : wanted;
        if (std::find(forward.begin(), forward.end(), s.name) != forward.end()) {
          sums[s.name] += s.value;
        }
      },
      on_metadata);
  if (!st.ok()) return st;
  for (auto it = sums.begin(); it != sums.end();) {
    it = std::isfinite(it->second) ? std::next(it) : sums.erase(it);
  }
  return sums;
}

absl::StatusOr<std::unique_ptr<AppMetricsScraper>> AppMetricsScraper::Create(
    AppMetricsOptions options, Clock* clock) {
  if (options.port == 0) return absl::InvalidArgumentError("app metrics: port must be set");
  if (absl::Status s = http::ValidateLocalPath(options.path); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--app-metrics-path: ", s.message()));
  }
  if (options.interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("app metrics: interval must be positive");
  }
  if (options.timeout == absl::ZeroDuration()) options.timeout = options.interval / 2;
  if (options.timeout <= absl::ZeroDuration() || options.timeout >= options.interval) {
    return absl::InvalidArgumentError(absl::StrCat(
        "app metrics: timeout ", absl::FormatDuration(options.timeout),
        " must be positive and under the interval ", absl::FormatDuration(options.interval)));
  }
  return std::unique_ptr<AppMetricsScraper>(new AppMetricsScraper(std::move(options), clock));
}

AppMetricsScraper::AppMetricsScraper(AppMetricsOptions options, Clock* clock)
    : options_(std::move(options)), clock_(clock) {
  if (options_.registry != nullptr) {
    errors_ = &prometheus::BuildCounter()
                   .Name("zeroscale_sidecar_app_metrics_scrape_errors_total")
                   .Help(
                       "Scrapes of the app's metrics endpoint that gave nothing, by reason "
                       "(connect, timeout, status, too_large, parse); the samples meanwhile "
                       "go out without the app's series")
                   .Register(*options_.registry);
    scrapes_ = &prometheus::BuildCounter()
                    .Name("zeroscale_sidecar_app_metrics_scrapes_total")
                    .Help("Scrapes of the app's metrics endpoint, failed or not")
                    .Register(*options_.registry)
                    .Add({});
  }
}

AppMetricsScraper::~AppMetricsScraper() { Stop(); }

void AppMetricsScraper::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void AppMetricsScraper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AppMetricsScraper::Run() {
  absl::Time next = clock_->Now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stopping_ && clock_->Now() < next) clock_->WaitUntil(cv_, lock, next);
      if (stopping_) return;
    }
    (void)ScrapeOnce();
    next += options_.interval;
    // A scrape never outlasts the interval (timeout < interval), but the clock may jump.
    if (const absl::Time now = clock_->Now(); next < now) next = now;
  }
}

absl::StatusOr<std::map<std::string, double>> AppMetricsScraper::ScrapeOnce() {
  if (scrapes_ != nullptr) scrapes_->Increment();
  http::LocalGetOptions get;
  get.port = options_.port;
  get.path = options_.path;
  get.timeout = options_.timeout;
  get.max_body_bytes = options_.max_body_bytes;
  absl::StatusOr<http::LocalGetResponse> response = http::LocalGet(get);
  absl::StatusOr<std::map<std::string, double>> series;
  bool parsing = false;
  if (!response.ok()) {
    series = response.status();
  } else if (response->status < 200 || response->status > 299) {
    series = absl::FailedPreconditionError(
        absl::StrCat("GET ", options_.path, " answered ", response->status));
  } else {
    parsing = true;
    series = SumSeries(response->body, options_.series, options_.limits, options_.max_series);
    if (!series.ok()) {
      series = absl::Status(series.status().code(),
                            absl::StrCat("GET ", options_.path, ": ", series.status().message()));
    }
  }
  Record(series.status(), series.ok() ? "" : ReasonOf(series.status(), parsing));

  std::lock_guard<std::mutex> lock(mu_);
  latest_at_ = clock_->Now();
  if (!series.ok()) {
    latest_.clear();  // a failed scrape is no data, not the previous values
    return series;
  }
  latest_ = *series;
  std::vector<std::string> missing;
  for (const std::string& name : options_.series) {
    if (series->count(name) == 0) missing.push_back(name);
  }
  if (missing != missing_) {
    if (!missing.empty()) {
      // Expected for presets listing alternatives (vLLM's old and new KV-cache names).
      ZS_LOG(kInfo, "the app does not expose some forwarded series (no data for them)",
             {"path", options_.path}, {"missing", absl::StrJoin(missing, ",")});
    }
    missing_ = std::move(missing);
  }
  return series;
}

void AppMetricsScraper::Record(const absl::Status& status, absl::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = clock_->Now();
  if (status.ok()) {
    if (failing_) {
      ZS_LOG(kInfo, "app metrics scraped again", {"path", options_.path});
      failing_ = false;
    }
    return;
  }
  if (errors_ != nullptr) errors_->Add({{"reason", std::string(reason)}}).Increment();
  ++failures_since_log_;
  if (!failing_ || now - last_failure_log_ >= kFailureLogEvery) {
    ZS_LOG(kWarning, "cannot scrape the app's metrics; samples go out without its series",
           {"reason", std::string(reason)}, {"error", std::string(status.message())},
           {"failures", absl::StrCat(failures_since_log_)});
    last_failure_log_ = now;
    failures_since_log_ = 0;
  }
  failing_ = true;
}

std::map<std::string, double> AppMetricsScraper::Latest() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (clock_->Now() - latest_at_ > options_.interval + options_.timeout) return {};
  return latest_;
}

}  // namespace zeroscale::sidecar
