// Reads a workload's recent samples back from Redis (the ingest path's layout: the
// zeroscale:workload:<w>:pods index and podmetric:<pod> sorted sets scored by receivedAt),
// so a scaler that becomes leader has full windows at once instead of warming up.
// Blocking; not thread-safe (uses the caller's Redis client).
#ifndef ZEROSCALE_SCALER_DECIDE_REBUILD_H_
#define ZEROSCALE_SCALER_DECIDE_REBUILD_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/model/podmetric.h"
#include "common/redis/redis.h"

namespace zeroscale::decide {

// Samples of `workload` received in [start, end], each pod's oldest first. Two round
// trips whatever the number of pods. Members that do not parse, or that belong to another
// workload (a pod name reused), are skipped and counted in `skipped` (may be null).
// kUnavailable when Redis cannot be reached (retry later).
absl::StatusOr<std::vector<Podmetric>> LoadWorkloadSamples(Redis* redis, absl::string_view workload,
                                                           absl::Time start, absl::Time end,
                                                           size_t* skipped = nullptr);

}  // namespace zeroscale::decide

#endif  // ZEROSCALE_SCALER_DECIDE_REBUILD_H_
