// A synthetic population of applications from published statistics, for replays that are
// reproducible from a seed. Shahrad et al. ("Serverless in the Wild", USENIX ATC 2020)
// report on the Azure Functions 2019 trace that most applications are invoked rarely
// (about 45% at most once an hour, about 81% at most once a minute), that idle times are
// heavy-tailed, and that timers (periodic invocations) are the most common trigger. The
// population mixes four classes in those proportions:
// - rare (17.5%): Poisson arrivals, mean gap log-uniform in 1..12 hours;
// - rare-timer (17.5%): timers every 1..24 hours (±2% jitter, 5% of runs skipped). The
//   paper does not split the rarely invoked applications by trigger; we assume half of
//   them are timers, as it finds idle times "often periodic (timer-triggered)". Results
//   are reported per class, so the effect of this assumption can be read off;
// - periodic (30%): timers every 1..240 minutes (weighted towards 5..60), ±2% jitter,
//   5% of runs skipped;
// - bursty (20%): sessions of 1..10 minutes with a request every 5..30 seconds on average,
//   sessions separated by log-normal gaps with a median of 15 minutes..3 hours;
// - diurnal (15%): Poisson arrivals following the day (peak in the afternoon, nothing at
//   night), mean gap 30 seconds..10 minutes at the peak.
// Thread-safety: a pure function of its arguments.
#ifndef ZEROSCALE_SCALER_SIM_SYNTHETIC_H_
#define ZEROSCALE_SCALER_SIM_SYNTHETIC_H_

#include <cstdint>

#include "absl/time/time.h"
#include "scaler/sim/trace.h"

namespace zeroscale::sim {

struct SyntheticOptions {
  uint64_t seed = 1;
  int apps = 200;
  absl::Duration length = absl::Hours(24 * 7);
};

// The same options always give the same trace (on the same standard library).
Trace Synthesize(const SyntheticOptions& options);

}  // namespace zeroscale::sim

#endif  // ZEROSCALE_SCALER_SIM_SYNTHETIC_H_
