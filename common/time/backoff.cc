#include "common/time/backoff.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/random/random.h"

namespace zeroscale {

absl::Duration BackoffPolicy::Ceiling(int retry) const {
  absl::Duration d = initial;
  // Stops multiplying at the cap: no overflow however long a loop keeps failing.
  for (int i = 0; i < retry && d < max; ++i) d = d * multiplier;
  return std::min(d, max);
}

absl::Duration BackoffPolicy::Delay(int retry, double uniform) const {
  const absl::Duration ceiling = Ceiling(retry);
  uniform = std::clamp(uniform, 0.0, 1.0);
  switch (jitter) {
    case Jitter::kNone:
      return ceiling;
    case Jitter::kProportional:
      return ceiling * (1.0 - jitter_fraction + 2.0 * jitter_fraction * uniform);
    case Jitter::kEqual:
      return ceiling / 2 + ceiling / 2 * uniform;
    case Jitter::kFull:
      return ceiling * uniform;
  }
  return ceiling;
}

UniformRandom DefaultUniform() {
  struct Source {
    std::mutex mu;
    absl::BitGen gen;
  };
  auto source = std::make_shared<Source>();
  return [source] {
    std::lock_guard<std::mutex> lock(source->mu);
    return absl::Uniform(source->gen, 0.0, 1.0);
  };
}

Backoff::Backoff(BackoffPolicy policy, UniformRandom uniform)
    : policy_(policy), uniform_(std::move(uniform)) {
  if (!uniform_ && policy_.jitter != Jitter::kNone) uniform_ = DefaultUniform();
}

absl::Duration Backoff::Next() {
  const double u = uniform_ ? uniform_() : 0.0;
  return policy_.Delay(retries_++, u);
}

}  // namespace zeroscale
