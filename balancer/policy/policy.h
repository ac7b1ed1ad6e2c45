// Balancing policies of seed 004 and the choice of one endpoint among a workload's ready
// ones. Pure functions over the caller's state; the caller serialises calls that share
// `state`.
#ifndef ZEROSCALE_BALANCER_POLICY_POLICY_H_
#define ZEROSCALE_BALANCER_POLICY_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "absl/strings/string_view.h"

namespace zeroscale::balancer {

enum class Policy { kRoundRobin, kLeastConnections, kRandom };

absl::string_view PolicyName(Policy policy);  // "round_robin", ...
std::optional<Policy> ParsePolicy(absl::string_view name);

// What a workload keeps between choices.
struct SelectorState {
  uint64_t next = 0;  // round-robin position; also rotates least-connections ties
  std::mt19937_64 rng{std::random_device{}()};
};

// Index into `active` (requests in flight per ready endpoint, in a stable order) of the
// endpoint to use. `active` must not be empty. Least connections breaks ties in
// round-robin order, so equally idle endpoints share the load instead of the first
// taking it all.
size_t SelectEndpoint(Policy policy, const std::vector<int>& active, SelectorState* state);

}  // namespace zeroscale::balancer

#endif  // ZEROSCALE_BALANCER_POLICY_POLICY_H_
