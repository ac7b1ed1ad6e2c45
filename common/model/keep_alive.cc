#include "common/model/keep_alive.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace zeroscale {
namespace {

// One day: longer windows are configuration mistakes, and bounds keep arithmetic finite.
constexpr int64_t kMaxSeconds = 86400;
constexpr int64_t kMaxRangeMinutes = 7 * 24 * 60;

absl::Status Bad(absl::string_view key, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("keepAlive.", key, " ", what));
}

absl::Status GetInt(absl::string_view key, absl::string_view value, int64_t lo, int64_t hi,
                    int64_t* out) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < lo || v > hi) {
    return Bad(key, absl::StrCat("must be a whole number from ", lo, " to ", hi, ", not '",
                                 value.substr(0, 40), "'"));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status GetPercentile(absl::string_view key, absl::string_view value, double* out) {
  double v = 0;
  if (!absl::SimpleAtod(value, &v) || !std::isfinite(v) || v < 0 || v > 100) {
    return Bad(key,
               absl::StrCat("must be a percentile from 0 to 100, not '", value.substr(0, 40), "'"));
  }
  *out = v;
  return absl::OkStatus();
}

}  // namespace

absl::string_view KeepAlivePolicyName(KeepAlivePolicy p) {
  switch (p) {
    case KeepAlivePolicy::kFixed:
      return "fixed";
    case KeepAlivePolicy::kKnative:
      return "knative";
    case KeepAlivePolicy::kAdaptive:
      return "adaptive";
  }
  return "fixed";
}

std::optional<KeepAlivePolicy> ParseKeepAlivePolicy(absl::string_view name) {
  if (name == "fixed") return KeepAlivePolicy::kFixed;
  if (name == "knative") return KeepAlivePolicy::kKnative;
  if (name == "adaptive") return KeepAlivePolicy::kAdaptive;
  return std::nullopt;
}

bool KeepAliveConfig::operator==(const KeepAliveConfig& o) const {
  return policy == o.policy && policy_set == o.policy_set && stable_window == o.stable_window &&
         grace_period == o.grace_period && cold_start == o.cold_start && prewarm == o.prewarm &&
         histogram_range == o.histogram_range && head_percentile == o.head_percentile &&
         tail_percentile == o.tail_percentile && min_samples == o.min_samples;
}

const std::vector<absl::string_view>& KeepAliveFieldNames() {
  static const auto* names = new std::vector<absl::string_view>{"policy",
                                                                "stableWindowSeconds",
                                                                "scaleToZeroGracePeriodSeconds",
                                                                "coldStartSeconds",
                                                                "prewarm",
                                                                "histogramRangeMinutes",
                                                                "headPercentile",
                                                                "tailPercentile",
                                                                "minSamples"};
  return *names;
}

absl::Status SetKeepAliveField(KeepAliveConfig* c, absl::string_view key, absl::string_view value) {
  int64_t v = 0;
  if (key == "policy") {
    std::optional<KeepAlivePolicy> p = ParseKeepAlivePolicy(value);
    if (!p) {
      return Bad(
          key, absl::StrCat("must be fixed, knative or adaptive, not '", value.substr(0, 40), "'"));
    }
    c->policy = *p;
    c->policy_set = true;
  } else if (key == "stableWindowSeconds") {
    if (absl::Status s = GetInt(key, value, 1, kMaxSeconds, &v); !s.ok()) return s;
    c->stable_window = absl::Seconds(v);
  } else if (key == "scaleToZeroGracePeriodSeconds") {
    if (absl::Status s = GetInt(key, value, 0, kMaxSeconds, &v); !s.ok()) return s;
    c->grace_period = absl::Seconds(v);
  } else if (key == "coldStartSeconds") {
    if (absl::Status s = GetInt(key, value, 0, kMaxSeconds, &v); !s.ok()) return s;
    c->cold_start = absl::Seconds(v);
  } else if (key == "prewarm") {
    if (value == "true") {
      c->prewarm = true;
    } else if (value == "false") {
      c->prewarm = false;
    } else {
      return Bad(key, absl::StrCat("must be true or false, not '", value.substr(0, 40), "'"));
    }
  } else if (key == "histogramRangeMinutes") {
    if (absl::Status s = GetInt(key, value, 1, kMaxRangeMinutes, &v); !s.ok()) return s;
    c->histogram_range = absl::Minutes(v);
  } else if (key == "headPercentile") {
    return GetPercentile(key, value, &c->head_percentile);
  } else if (key == "tailPercentile") {
    return GetPercentile(key, value, &c->tail_percentile);
  } else if (key == "minSamples") {
    if (absl::Status s = GetInt(key, value, 1, 100000, &v); !s.ok()) return s;
    c->min_samples = static_cast<int>(v);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("keepAlive has no field '", key.substr(0, 60),
                     "' (policy, stableWindowSeconds, scaleToZeroGracePeriodSeconds, "
                     "coldStartSeconds, prewarm, histogramRangeMinutes, headPercentile, "
                     "tailPercentile, minSamples)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateKeepAlive(const KeepAliveConfig& c) {
  if (c.head_percentile >= c.tail_percentile) {
    return Bad("headPercentile", absl::StrCat("must be below tailPercentile (", c.head_percentile,
                                              " >= ", c.tail_percentile, ")"));
  }
  if (c.histogram_range < absl::Minutes(1) || c.histogram_range > absl::Minutes(kMaxRangeMinutes)) {
    return Bad("histogramRangeMinutes", absl::StrCat("must be from 1 to ", kMaxRangeMinutes));
  }
  if (c.stable_window <= absl::ZeroDuration()) return Bad("stableWindowSeconds", "must be > 0");
  if (c.grace_period < absl::ZeroDuration() || c.cold_start < absl::ZeroDuration()) {
    return Bad("coldStartSeconds", "must not be negative");
  }
  if (c.min_samples < 1) return Bad("minSamples", "must be at least 1");
  return absl::OkStatus();
}

}  // namespace zeroscale
