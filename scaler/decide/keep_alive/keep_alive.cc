#include "scaler/decide/keep_alive/keep_alive.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/json/bounded_json.h"
#include "nlohmann/json.hpp"

namespace zeroscale::decide {
namespace {

constexpr absl::Duration kBin = absl::Minutes(1);
// Without idleTimeoutSeconds the adaptive policy's fallback is the big clouds' 10 minutes.
constexpr absl::Duration kDefaultFallback = absl::Minutes(10);
// Margins around the head and tail (the paper's 10%) and around a forecast (15%).
constexpr double kHistogramMargin = 0.10;
constexpr double kForecastMargin = 0.15;
// Pre-warming must save at least a bin of idle time over keeping the replica.
constexpr absl::Duration kMinPrewarmSaving = absl::Minutes(1);

// Compact durations for explanations: "14m", "1h30m", "45s".
std::string Short(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return "never";
  d = absl::Trunc(d, absl::Seconds(1));
  const int64_t s = absl::ToInt64Seconds(d);
  if (s < 60) return absl::StrCat(s, "s");
  const int64_t h = s / 3600, m = (s % 3600) / 60, r = s % 60;
  std::string out;
  if (h > 0) absl::StrAppend(&out, h, "h");
  if (m > 0 || (h > 0 && r > 0)) absl::StrAppend(&out, m, "m");
  if (r > 0 && h == 0) absl::StrAppend(&out, r, "s");
  return out;
}

std::string Pct(double p) { return absl::StrCat(p); }

}  // namespace

namespace {

// "(expected cold starts after 3% of idle gaps, idle 5m per gap; fixed 10m: 100%, 10m)"
std::string Expected(const KeepAlivePlan& p) {
  return absl::StrCat("expected cold starts after ", Pct(std::round(p.expected_cold * 1000) / 10),
                      "% of idle gaps and ", Short(p.expected_idle), " idle per gap; fixed ",
                      Short(p.fixed), ": ", Pct(std::round(p.fixed_cold * 1000) / 10), "%, ",
                      Short(p.fixed_idle));
}

std::string Source(const KeepAlivePlan& p) {
  return p.basis == KeepAlivePlan::Basis::kForecast
             ? absl::StrCat("the last ", p.gaps < 16 ? p.gaps : 16,
                            " idle gaps (most exceed the histogram's range)")
             : absl::StrCat(p.gaps, " idle gaps");
}

}  // namespace

std::string ExplainKeepAlive(const KeepAlivePlan& p) {
  switch (p.basis) {
    case KeepAlivePlan::Basis::kDisabled:
      return "no idle scale to zero";
    case KeepAlivePlan::Basis::kFixed:
      return absl::StrCat("idleTimeoutSeconds ", absl::ToInt64Seconds(p.unload_after));
    case KeepAlivePlan::Basis::kKnative:
      return absl::StrCat("keep-alive ", Short(p.unload_after),
                          " (knative: stable window + scale-to-zero grace period)");
    case KeepAlivePlan::Basis::kLearning:
      if (!p.explicit_policy && p.fixed > absl::ZeroDuration()) {
        return absl::StrCat("idleTimeoutSeconds ", absl::ToInt64Seconds(p.fixed));
      }
      return absl::StrCat("keep-alive ", Short(p.unload_after),
                          " (adaptive, still learning: ", p.gaps, " of ", p.needed,
                          " idle gaps seen; the fixed keep-alive)");
    case KeepAlivePlan::Basis::kNoBetter:
      if (!p.explicit_policy && p.fixed > absl::ZeroDuration()) {
        return absl::StrCat("idleTimeoutSeconds ", absl::ToInt64Seconds(p.fixed));
      }
      return absl::StrCat("keep-alive ", Short(p.unload_after), " (adaptive: on ", p.gaps,
                          " idle gaps nothing beats the fixed keep-alive)");
    case KeepAlivePlan::Basis::kHistogram:
    case KeepAlivePlan::Basis::kForecast:
      if (p.prewarm_after != absl::InfiniteDuration()) {
        return absl::StrCat("keep-alive ", Short(p.unload_after),
                            " until the pre-warm (adaptive: ", Pct(100 - p.head_percentile),
                            "% of ", Source(p), " last at least ", Short(p.head), "; ", Expected(p),
                            ")");
      }
      return absl::StrCat(
          "keep-alive ", Short(p.unload_after), " (adaptive: ", Pct(p.tail_percentile), "% of ",
          Source(p), " end within ", Short(p.tail), ", +",
          p.basis == KeepAlivePlan::Basis::kForecast ? 15 : 10, "%; ", Expected(p), ")");
  }
  return "";
}

std::string ExplainPrewarm(const KeepAlivePlan& p) {
  return absl::StrCat("pre-warming: ", Pct(100 - p.head_percentile), "% of ", Source(p),
                      " last at least ", Short(p.head), ", ", Pct(p.tail_percentile),
                      "% end within ", Short(p.tail), "; the model loads in ", Short(p.cold_start),
                      " (", Expected(p), ")");
}

KeepAliveModel::KeepAliveModel(const KeepAliveConfig& config, absl::Duration fixed)
    : config_(config), fixed_(fixed) {
  bins_.assign(static_cast<size_t>(config_.histogram_range / kBin), 0);
}

void KeepAliveModel::Reconfigure(const KeepAliveConfig& config, absl::Duration fixed) {
  const size_t n = static_cast<size_t>(config.histogram_range / kBin);
  if (n < bins_.size()) {
    for (size_t i = n; i < bins_.size(); ++i) {
      in_range_ -= bins_[i];
      out_of_range_ += bins_[i];
    }
  }
  bins_.resize(n, 0);
  config_ = config;
  fixed_ = fixed;
  stale_ = true;
}

void KeepAliveModel::OnActivity(absl::Time last, absl::Time at) {
  if (at == absl::InfiniteFuture() || at == absl::InfinitePast()) return;
  const int64_t minute = absl::ToUnixSeconds(at) / 60;
  if (minute <= last_minute_) return;
  last_minute_ = minute;
  if (last == absl::InfinitePast() || last > at) return;
  Record(at - last);
}

void KeepAliveModel::Record(absl::Duration gap) {
  const int64_t bin = gap / kBin;
  if (bin < static_cast<int64_t>(bins_.size())) {
    ++bins_[static_cast<size_t>(bin)];
    ++in_range_;
  } else {
    ++out_of_range_;
  }
  recent_.push_back(absl::ToInt64Seconds(gap));
  if (recent_.size() > kRecentGaps) recent_.pop_front();
  if (in_range_ + out_of_range_ >= kHalveAt) {
    in_range_ = 0;
    for (uint32_t& c : bins_) {
      c /= 2;
      in_range_ += c;
    }
    out_of_range_ /= 2;
  }
  dirty_ = true;
  // Once learned, a plan moves little with one more gap: re-plan after every gap while
  // few are known, then after every 1/32 more (the search costs a few thousand steps).
  const int64_t n = in_range_ + out_of_range_;
  if (n < planned_at_ || n - planned_at_ >= std::max<int64_t>(1, n / 32) ||
      n <= config_.min_samples) {
    stale_ = true;
  }
}

void KeepAliveModel::OnColdStart(absl::Duration d) {
  if (d < absl::ZeroDuration() || d > absl::Hours(24)) return;
  cold_starts_.push_back(absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1))));
  if (cold_starts_.size() > kRecentColdStarts) cold_starts_.pop_front();
  dirty_ = true;
  stale_ = true;
}

absl::Duration KeepAliveModel::ColdStart() const {
  int64_t s = absl::ToInt64Seconds(config_.cold_start);
  for (int64_t c : cold_starts_) s = std::max(s, c);
  return absl::Seconds(s);
}

const KeepAlivePlan& KeepAliveModel::Plan() const {
  if (stale_) Recompute();
  return plan_;
}

void KeepAliveModel::Recompute() const {
  stale_ = false;
  planned_at_ = in_range_ + out_of_range_;
  KeepAlivePlan p;
  p.head_percentile = config_.head_percentile;
  p.tail_percentile = config_.tail_percentile;
  p.gaps = in_range_ + out_of_range_;
  p.needed = config_.min_samples;
  p.explicit_policy = config_.policy_set;
  const absl::Duration fallback = fixed_ > absl::ZeroDuration() ? fixed_ : kDefaultFallback;
  switch (config_.policy) {
    case KeepAlivePolicy::kFixed:
      if (fixed_ > absl::ZeroDuration()) {
        p.basis = KeepAlivePlan::Basis::kFixed;
        p.unload_after = fixed_;
      }
      plan_ = p;
      return;
    case KeepAlivePolicy::kKnative:
      p.basis = KeepAlivePlan::Basis::kKnative;
      p.unload_after = config_.stable_window + config_.grace_period;
      plan_ = p;
      return;
    case KeepAlivePolicy::kAdaptive:
      // The default policy keeps "idleTimeoutSeconds 0: no idle scale to zero".
      if (!config_.policy_set && fixed_ <= absl::ZeroDuration()) {
        plan_ = p;
        return;
      }
      break;
  }
  p.cold_start = ColdStart();
  p.unload_after = fallback;
  p.fixed = fallback;
  if (p.gaps < config_.min_samples) {
    p.basis = KeepAlivePlan::Basis::kLearning;
    plan_ = p;
    return;
  }
  // The distribution of idle gaps the plans are judged on: the histogram (each bin at its
  // midpoint, gaps beyond the range at the range), or, when most gaps exceed the range,
  // the recent gaps themselves.
  struct Gap {
    double lo, hi, value, weight;
  };
  std::vector<Gap> dist;
  const bool forecast = out_of_range_ > in_range_ && recent_.size() >= 2;
  const double range_s = absl::ToDoubleSeconds(config_.histogram_range);
  if (forecast) {
    for (int64_t r : recent_) {
      const double v = static_cast<double>(r);
      dist.push_back(Gap{v, v, v, 1});
    }
    std::sort(dist.begin(), dist.end(),
              [](const Gap& a, const Gap& b) { return a.value < b.value; });
  } else {
    for (size_t i = 0; i < bins_.size(); ++i) {
      if (bins_[i] == 0) continue;
      const double lo = static_cast<double>(i) * 60;
      dist.push_back(Gap{lo, lo + 60, lo + 30, static_cast<double>(bins_[i])});
    }
    if (out_of_range_ > 0) {
      dist.push_back(Gap{range_s, range_s, range_s, static_cast<double>(out_of_range_)});
    }
  }
  double total = 0;
  for (const Gap& g : dist) total += g.weight;
  // The gap below which a fraction q of the gaps fall (lower edge) or within which they
  // end (upper edge).
  auto quantile = [&](double q, bool upper) {
    const double want = std::max(1e-9, q / 100.0 * total);
    double seen = 0;
    for (const Gap& g : dist) {
      seen += g.weight;
      if (seen + 1e-9 >= want) return upper ? g.hi : g.lo;
    }
    return upper ? dist.back().hi : dist.back().lo;
  };
  struct Cost {
    double cold = 0;  // expected cold starts per idle gap
    double idle = 0;  // expected idle replica-seconds per idle gap
  };
  const double c = absl::ToDoubleSeconds(p.cold_start);
  // Keep alive `u` after the last request; if `prewarm` >= 0, wake then (ready c later)
  // and keep until `until`. A request during the load still waits: a cold start.
  auto evaluate = [&](double u, double prewarm, double until) {
    Cost cost;
    for (const Gap& g : dist) {
      const double v = g.value;
      double idle = 0;
      bool cold = false;
      if (v <= u) {
        idle = v;
      } else if (prewarm < 0) {
        idle = u;
        cold = true;
      } else if (v < prewarm + c) {
        idle = u + std::max(0.0, v - prewarm);
        cold = true;
      } else if (v <= until) {
        idle = u + v - prewarm;
      } else {
        idle = u + until - prewarm;
        cold = true;
      }
      cost.idle += g.weight * idle;
      cost.cold += cold ? g.weight : 0;
    }
    cost.idle /= total;
    cost.cold /= total;
    return cost;
  };
  const double head_margin = forecast ? kForecastMargin : kHistogramMargin;
  const double tail_margin = forecast ? kForecastMargin : kHistogramMargin;
  const double fixed_s = absl::ToDoubleSeconds(fallback);
  const Cost fixed_cost = evaluate(fixed_s, -1, 0);
  p.fixed_cold = fixed_cost.cold;
  p.fixed_idle = absl::Seconds(fixed_cost.idle);
  p.fixed = fallback;
  // The fixed keep-alive is the plan to beat: fewer cold starts for no more idle time.
  // Ties go to less idle time, then to the shorter keep-alive (less paid after the
  // last request of a run, which the gaps do not show).
  Cost best = fixed_cost;
  double best_unload = fixed_s;
  bool chosen = false;
  auto consider = [&](const Cost& cost, double unload) {
    if (cost.idle > fixed_cost.idle * (1 + 1e-9)) return false;
    const bool same_cold = cost.cold <= best.cold + 1e-9;
    const bool same_idle = std::abs(cost.idle - best.idle) <= 1e-6;
    if (cost.cold < best.cold - 1e-9 || (same_cold && cost.idle < best.idle - 1e-6) ||
        (same_cold && same_idle && unload < best_unload)) {
      best = cost;
      best_unload = unload;
      return true;
    }
    return false;
  };
  const double tails[] = {50, 75, 90, 95, 99, config_.tail_percentile};
  const double heads[] = {1, 5, 10, 25, config_.head_percentile};
  for (double tq : tails) {
    const double k = quantile(tq, true) * (1 + tail_margin);
    if (consider(evaluate(k, -1, 0), k)) {
      chosen = true;
      p.basis = forecast ? KeepAlivePlan::Basis::kForecast : KeepAlivePlan::Basis::kHistogram;
      p.unload_after = absl::Seconds(std::ceil(k));
      p.prewarm_after = p.keep_until = absl::InfiniteDuration();
      p.tail = absl::Seconds(quantile(tq, true));
      p.tail_percentile = tq;
    }
  }
  if (config_.prewarm) {
    // The paper's margin first; narrower ones when the gaps are regular enough (timers)
    // that the margin alone would cost more idle time than the fixed keep-alive.
    for (double hq : heads) {
      for (double margin : {head_margin, head_margin / 2, 0.0}) {
        const double ready = quantile(hq, false) * (1 - margin);
        for (double u : {0.0, 60.0}) {
          const double prewarm = ready - c;
          if (prewarm - u < absl::ToDoubleSeconds(kMinPrewarmSaving)) continue;
          for (double tq : tails) {
            const double until = quantile(tq, true) * (1 + tail_margin);
            if (until < ready) continue;
            if (consider(evaluate(u, prewarm, until), u)) {
              chosen = true;
              p.basis =
                  forecast ? KeepAlivePlan::Basis::kForecast : KeepAlivePlan::Basis::kHistogram;
              p.unload_after = absl::Seconds(u);
              p.prewarm_after = absl::Seconds(std::floor(prewarm));
              p.keep_until = absl::Seconds(std::ceil(until));
              p.head = absl::Seconds(quantile(hq, false));
              p.tail = absl::Seconds(quantile(tq, true));
              p.head_percentile = hq;
              p.tail_percentile = tq;
            }
          }
        }
      }
    }
  }
  if (!chosen) p.basis = KeepAlivePlan::Basis::kNoBetter;
  p.expected_cold = best.cold;
  p.expected_idle = absl::Seconds(best.idle);
  plan_ = p;
}

std::string KeepAliveModel::ToJson() const {
  nlohmann::json bins = nlohmann::json::array();
  for (size_t i = 0; i < bins_.size(); ++i) {
    if (bins_[i] > 0) bins.push_back({i, bins_[i]});
  }
  nlohmann::json j = {{"v", 1},
                      {"bins", std::move(bins)},
                      {"oob", out_of_range_},
                      {"recent", recent_},
                      {"coldStarts", cold_starts_},
                      {"lastMinute", last_minute_}};
  return j.dump();
}

absl::Status KeepAliveModel::LoadJson(absl::string_view text) {
  nlohmann::json j;
  // A 7-day range at most: 10080 bins of two numbers, well under 1 MiB.
  if (absl::Status s = json::ParseJson(text, json::JsonLimits{1 << 20, 4}, &j, "keep-alive state");
      !s.ok()) {
    return s;
  }
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("keep-alive state: ", what));
  };
  if (!j.is_object()) return bad("not a JSON object");
  if (!j.contains("v") || !j["v"].is_number_integer() || j["v"].get<int64_t>() != 1) {
    return bad("v must be 1");
  }
  auto count = [](const nlohmann::json& v, int64_t max, int64_t* out) {
    if (!v.is_number_integer()) return false;
    const int64_t n = v.get<int64_t>();
    if (n < 0 || n > max) return false;
    *out = n;
    return true;
  };
  std::vector<uint32_t> bins(bins_.size(), 0);
  int64_t in_range = 0, oob = 0, last_minute = INT64_MIN;
  const nlohmann::json& jb = j.contains("bins") ? j["bins"] : nlohmann::json();
  if (!jb.is_array()) return bad("bins must be a list");
  for (size_t k = 0; k < jb.size(); ++k) {
    const nlohmann::json& e = jb[k];
    int64_t i = 0, c = 0;
    if (!e.is_array() || e.size() != 2 || !count(e[0], 7 * 24 * 60, &i) ||
        !count(e[1], kHalveAt, &c)) {
      return bad(absl::StrCat("bins[", k, "] must be [minute, count]"));
    }
    if (i < static_cast<int64_t>(bins.size())) {
      bins[static_cast<size_t>(i)] =
          static_cast<uint32_t>(std::min<int64_t>(kHalveAt, bins[static_cast<size_t>(i)] + c));
      in_range += c;
    } else {
      oob += c;
    }
  }
  int64_t v = 0;
  if (!j.contains("oob") || !count(j["oob"], kHalveAt, &v)) return bad("oob must be a count");
  oob += v;
  std::deque<int64_t> recent, cold;
  for (const auto& [key, out, max_size] :
       {std::tuple<const char*, std::deque<int64_t>*, size_t>{"recent", &recent, kRecentGaps},
        {"coldStarts", &cold, kRecentColdStarts}}) {
    if (!j.contains(key) || !j[key].is_array() || j[key].size() > max_size) {
      return bad(absl::StrCat(key, " must be a list of at most ", max_size, " durations"));
    }
    for (const nlohmann::json& e : j[key]) {
      if (!count(e, std::numeric_limits<int32_t>::max(), &v)) {
        return bad(absl::StrCat(key, " must hold non-negative whole seconds"));
      }
      out->push_back(v);
    }
  }
  if (j.contains("lastMinute")) {
    if (!j["lastMinute"].is_number_integer()) return bad("lastMinute must be a whole number");
    last_minute = j["lastMinute"].get<int64_t>();
  }
  bins_ = std::move(bins);
  in_range_ = in_range;
  out_of_range_ = oob;
  recent_ = std::move(recent);
  cold_starts_ = std::move(cold);
  last_minute_ = last_minute;
  stale_ = true;
  dirty_ = false;
  return absl::OkStatus();
}

}  // namespace zeroscale::decide
