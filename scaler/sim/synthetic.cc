#include "scaler/sim/synthetic.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"

namespace zeroscale::sim {
namespace {

constexpr double kPi = 3.14159265358979323846;

double LogUniform(std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> u(std::log(lo), std::log(hi));
  return std::exp(u(rng));
}

void Poisson(std::mt19937_64& rng, double mean_gap_s, double end_s, AppTrace* app) {
  std::exponential_distribution<double> gap(1.0 / mean_gap_s);
  for (double t = gap(rng); t < end_s; t += gap(rng)) {
    app->requests.push_back(Request{absl::Seconds(t), absl::ZeroDuration()});
  }
}

template <size_t N>
void Periodic(std::mt19937_64& rng, const double (&periods_min)[N], double end_s, AppTrace* app) {
  std::uniform_int_distribution<size_t> pick(0, N - 1);
  const double period = periods_min[pick(rng)] * 60;
  std::uniform_real_distribution<double> phase(0, period), jitter(-0.02, 0.02), skip(0, 1);
  for (double t = phase(rng); t < end_s; t += period) {
    if (skip(rng) < 0.05) continue;
    const double at = t + jitter(rng) * period;
    if (at >= 0 && at < end_s)
      app->requests.push_back(Request{absl::Seconds(at), absl::ZeroDuration()});
  }
}

void Bursty(std::mt19937_64& rng, double end_s, AppTrace* app) {
  const double median_gap = LogUniform(rng, 15 * 60, 3 * 3600);
  std::lognormal_distribution<double> between(std::log(median_gap), 0.6);
  std::uniform_real_distribution<double> session(60, 600);
  const double mean_in = LogUniform(rng, 5, 30);
  std::exponential_distribution<double> in(1.0 / mean_in);
  for (double t = between(rng) * std::uniform_real_distribution<double>(0, 1)(rng); t < end_s;) {
    const double stop = t + session(rng);
    for (double s = t; s < stop && s < end_s; s += in(rng)) {
      app->requests.push_back(Request{absl::Seconds(s), absl::ZeroDuration()});
    }
    t = stop + between(rng);
  }
}

void Diurnal(std::mt19937_64& rng, double end_s, AppTrace* app) {
  const double peak_gap = LogUniform(rng, 30, 600);
  // Thinning of a Poisson process at the peak rate: rate(t) = peak * max(0, sin)^2 over a
  // 24-hour day whose zero crossings leave the night empty.
  std::exponential_distribution<double> gap(1.0 / peak_gap);
  std::uniform_real_distribution<double> u(0, 1);
  for (double t = gap(rng); t < end_s; t += gap(rng)) {
    const double day = std::fmod(t, 86400.0) / 86400.0;            // 0 = midnight
    const double s = std::sin(2 * kPi * (day - 0.3) * 0.5 / 0.6);  // > 0 from 07:12 to 21:36
    const double rate = day >= 0.3 && day <= 0.9 ? s * s : 0;
    if (u(rng) < rate) app->requests.push_back(Request{absl::Seconds(t), absl::ZeroDuration()});
  }
}

}  // namespace

Trace Synthesize(const SyntheticOptions& options) {
  Trace t;
  t.length = options.length;
  const double end_s = absl::ToDoubleSeconds(options.length);
  for (int i = 0; i < options.apps; ++i) {
    // Each application has its own stream, so adding applications leaves the others alone.
    std::mt19937_64 rng(options.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(i));
    const double cls = std::uniform_real_distribution<double>(0, 1)(rng);
    AppTrace app;
    static constexpr double kPeriodsMin[] = {1, 2, 5, 5, 10, 10, 15, 15, 30, 30, 60, 60, 120, 240};
    static constexpr double kRarePeriodsMin[] = {60, 120, 180, 240, 360, 480, 720, 1440};
    if (cls < 0.175) {
      app.kind = "rare";
      Poisson(rng, LogUniform(rng, 3600, 12 * 3600), end_s, &app);
    } else if (cls < 0.35) {
      app.kind = "rare-timer";
      Periodic(rng, kRarePeriodsMin, end_s, &app);
    } else if (cls < 0.65) {
      app.kind = "periodic";
      Periodic(rng, kPeriodsMin, end_s, &app);
    } else if (cls < 0.85) {
      app.kind = "bursty";
      Bursty(rng, end_s, &app);
    } else {
      app.kind = "diurnal";
      Diurnal(rng, end_s, &app);
    }
    app.name = absl::StrCat(app.kind, "-", i);
    t.apps.push_back(std::move(app));
  }
  return t;
}

}  // namespace zeroscale::sim
