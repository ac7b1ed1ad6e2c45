#include "scaler/decide/rebuild.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "scaler/store/podmetric_store.h"

namespace zeroscale::decide {

absl::StatusOr<std::vector<Podmetric>> LoadWorkloadSamples(Redis* redis, absl::string_view workload,
                                                           absl::Time start, absl::Time end,
                                                           size_t* skipped) {
  size_t skipped_here = 0;
  ZS_ASSIGN_OR_RETURN(RedisReply pods,
                      redis->Command({"SMEMBERS", store::WorkloadPodsKey(workload)}));
  std::vector<Podmetric> out;
  if (pods.elements.empty()) return out;
  // Scores are whole seconds (floor of receivedAt): widen the range to whole seconds
  // and filter exactly below.
  const std::string min = absl::StrCat(
      static_cast<int64_t>(std::floor(absl::ToDoubleSeconds(start - absl::UnixEpoch()))));
  const std::string max = absl::StrCat(
      static_cast<int64_t>(std::floor(absl::ToDoubleSeconds(end - absl::UnixEpoch()))));
  std::vector<RedisCommand> ranges;
  ranges.reserve(pods.elements.size());
  for (const RedisReply& pod : pods.elements) {
    ranges.push_back({"ZRANGEBYSCORE", store::PodmetricKey(pod.str), min, max});
  }
  ZS_ASSIGN_OR_RETURN(std::vector<RedisReply> replies, redis->Pipeline(ranges));
  for (const RedisReply& reply : replies) {
    if (reply.is_error()) {  // e.g. the key holds another type: nothing usable there
      ++skipped_here;
      continue;
    }
    for (const RedisReply& member : reply.elements) {
      absl::StatusOr<Podmetric> m = PodmetricFromJson(member.str);
      // The index vouches for the pod; a seed-style member without the field is ours.
      if (m.ok() && m->workload.empty()) m->workload = std::string(workload);
      if (!m.ok() || m->workload != workload) {
        ++skipped_here;
        continue;
      }
      if (m->received_at < start || m->received_at > end) continue;
      out.push_back(*std::move(m));
    }
  }
  if (skipped != nullptr) *skipped = skipped_here;
  return out;
}

}  // namespace zeroscale::decide
