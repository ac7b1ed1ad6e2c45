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
// Shahrad et al.: a histogram whose bin counts vary less than this is not representative.
constexpr double kMinCv = 2.0;
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
      return absl::StrCat("keep-alive ", Short(p.unload_after), " (adaptive, still learning: ",
                          p.gaps, " of ", p.needed, " idle gaps seen; the fixed keep-alive)");
    case KeepAlivePlan::Basis::kFlat:
      return absl::StrCat("keep-alive ", Short(p.unload_after), " (adaptive: ", p.gaps,
                          " idle gaps spread too evenly to predict; the fixed keep-alive)");
    case KeepAlivePlan::Basis::kHistogram:
      if (p.prewarm_after != absl::InfiniteDuration()) {
        return absl::StrCat("keep-alive 0s until the pre-warm (adaptive: ", Pct(100 - p.head_percentile),
                            "% of ", p.gaps, " idle gaps last at least ", Short(p.head), ")");
      }
      return absl::StrCat("keep-alive ", Short(p.unload_after), " (adaptive: ",
                          Pct(p.tail_percentile), "% of ", p.gaps, " idle gaps end within ",
                          Short(p.tail), ", +10%)");
    case KeepAlivePlan::Basis::kForecast:
      if (p.prewarm_after != absl::InfiniteDuration()) {
        return absl::StrCat("keep-alive 0s until the pre-warm (adaptive: most idle gaps exceed "
                            "the histogram; next request forecast in ",
                            Short(p.head), "..", Short(p.tail), ")");
      }
      return absl::StrCat("keep-alive ", Short(p.unload_after),
                          " (adaptive: most idle gaps exceed the histogram; next request "
                          "forecast within ",
                          Short(p.tail), ")");
  }
  return "";
}

std::string ExplainPrewarm(const KeepAlivePlan& p) {
  if (p.basis == KeepAlivePlan::Basis::kForecast) {
    return absl::StrCat("pre-warming: the next request is forecast in ", Short(p.head), "..",
                        Short(p.tail), " (mean of recent idle gaps ±15%); the model loads in ",
                        Short(p.cold_start));
  }
  return absl::StrCat("pre-warming: ", Pct(100 - p.head_percentile), "% of ", p.gaps,
                      " idle gaps last at least ", Short(p.head), ", ", Pct(p.tail_percentile),
                      "% end within ", Short(p.tail), "; the model loads in ",
                      Short(p.cold_start));
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
  stale_ = true;
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
  KeepAlivePlan p;
  p.head_percentile = config_.head_percentile;
  p.tail_percentile = config_.tail_percentile;
  p.gaps = in_range_ + out_of_range_;
  p.needed = config_.min_samples;
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
      break;
  }
  p.cold_start = ColdStart();
  p.unload_after = fallback;
  if (p.gaps < config_.min_samples) {
    p.basis = KeepAlivePlan::Basis::kLearning;
    plan_ = p;
    return;
  }
  // Pre-warm `low` after the last request when that saves more than it costs, then keep
  // alive until `high`; otherwise just keep alive until `high`.
  auto shape = [&](absl::Duration low, absl::Duration high) {
    p.keep_until = high;
    p.unload_after = high;
    if (config_.prewarm && low - p.cold_start >= kMinPrewarmSaving) {
      p.prewarm_after = low - p.cold_start;
      p.unload_after = absl::ZeroDuration();
    }
  };
  if (out_of_range_ > in_range_ && recent_.size() >= 2) {
    double mean = 0;
    for (int64_t s : recent_) mean += static_cast<double>(s);
    mean /= static_cast<double>(recent_.size());
    p.basis = KeepAlivePlan::Basis::kForecast;
    p.head = absl::Seconds(std::floor(mean * (1 - kForecastMargin)));
    p.tail = absl::Seconds(std::ceil(mean * (1 + kForecastMargin)));
    shape(p.head, p.tail);
    plan_ = p;
    return;
  }
  if (in_range_ == 0) {
    p.basis = KeepAlivePlan::Basis::kFlat;
    plan_ = p;
    return;
  }
  const double nbins = static_cast<double>(bins_.size());
  const double mean = static_cast<double>(in_range_) / nbins;
  double sq = 0;
  for (uint32_t c : bins_) sq += static_cast<double>(c) * static_cast<double>(c);
  const double var = std::max(0.0, sq / nbins - mean * mean);
  const double cv = std::sqrt(var) / mean;
  if (cv < kMinCv) {
    p.basis = KeepAlivePlan::Basis::kFlat;
    plan_ = p;
    return;
  }
  auto percentile_bin = [&](double pct) {
    const int64_t want = std::max<int64_t>(
        1, static_cast<int64_t>(std::ceil(pct / 100.0 * static_cast<double>(in_range_))));
    int64_t seen = 0;
    for (size_t i = 0; i < bins_.size(); ++i) {
      seen += bins_[i];
      if (seen >= want) return static_cast<int64_t>(i);
    }
    return static_cast<int64_t>(bins_.size()) - 1;
  };
  p.basis = KeepAlivePlan::Basis::kHistogram;
  p.head = percentile_bin(config_.head_percentile) * kBin;
  p.tail = (percentile_bin(config_.tail_percentile) + 1) * kBin;
  shape(p.head * (1 - kHistogramMargin), p.tail * (1 + kHistogramMargin));
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
      bins[static_cast<size_t>(i)] = static_cast<uint32_t>(
          std::min<int64_t>(kHalveAt, bins[static_cast<size_t>(i)] + c));
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
