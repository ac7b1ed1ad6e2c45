// Exponential backoff, computed and never slept: the one helper behind every retry in
// zeroscale (Redis reconnects, Kubernetes API retries and watches, the decider's re-reads,
// ingest writes, local replica restarts, the balancer's and the sidecar's reconnects).
// The caller waits, through its Clock. The random source is injected, so a test gets
// exact sequences.
//
// Thread-safety: BackoffPolicy is a value (pure functions); DefaultUniform() sources are
// thread-safe; a Backoff is for one retry loop at a time.
#ifndef ZEROSCALE_COMMON_TIME_BACKOFF_H_
#define ZEROSCALE_COMMON_TIME_BACKOFF_H_

#include <functional>

#include "absl/time/time.h"

namespace zeroscale {

// How a delay is spread around its ceiling, the un-jittered exponential value.
enum class Jitter {
  kNone,          // exactly the ceiling (one writer, nothing to spread)
  kProportional,  // ceiling * U[1 - f, 1 + f]: replicas keep their pace, out of step
  kEqual,         // U[ceiling / 2, ceiling]: spread, never much sooner than planned
  kFull,          // U[0, ceiling]: the widest spread, for fleets reconnecting at once
};

struct BackoffPolicy {
  absl::Duration initial = absl::Milliseconds(100);
  absl::Duration max = absl::Seconds(30);
  double multiplier = 2.0;
  Jitter jitter = Jitter::kNone;
  double jitter_fraction = 0.2;  // f of kProportional

  // min(max, initial * multiplier^retry); retry 0 is the first retry.
  absl::Duration Ceiling(int retry) const;
  // The wait before retry number `retry`, spread by `uniform`, a number in [0, 1).
  absl::Duration Delay(int retry, double uniform) const;
};

// A source of numbers uniform in [0, 1).
using UniformRandom = std::function<double()>;
// A thread-safe source (absl::BitGen under a lock), for production.
UniformRandom DefaultUniform();

// The retry count of one loop. Next() is the wait before the next retry; Reset() after a
// success starts over.
class Backoff {
 public:
  // `uniform` may be empty: DefaultUniform() when the policy jitters.
  explicit Backoff(BackoffPolicy policy = {}, UniformRandom uniform = nullptr);

  absl::Duration Next();
  void Reset() { retries_ = 0; }
  int retries() const { return retries_; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;
  UniformRandom uniform_;
  int retries_ = 0;
};

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_TIME_BACKOFF_H_
