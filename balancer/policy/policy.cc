#include "balancer/policy/policy.h"

#include <algorithm>

namespace zeroscale::balancer {

absl::string_view PolicyName(Policy policy) {
  switch (policy) {
    case Policy::kRoundRobin:
      return "round_robin";
    case Policy::kLeastConnections:
      return "least_connections";
    case Policy::kRandom:
      return "random";
  }
  return "round_robin";
}

std::optional<Policy> ParsePolicy(absl::string_view name) {
  if (name == "round_robin") return Policy::kRoundRobin;
  if (name == "least_connections") return Policy::kLeastConnections;
  if (name == "random") return Policy::kRandom;
  return std::nullopt;
}

size_t SelectEndpoint(Policy policy, const std::vector<int>& active, SelectorState* state) {
  const size_t n = active.size();
  if (n <= 1) return 0;
  switch (policy) {
    case Policy::kRoundRobin:
      return state->next++ % n;
    case Policy::kLeastConnections: {
      const int least = *std::min_element(active.begin(), active.end());
      size_t ties = 0;
      for (int a : active) ties += a == least ? 1 : 0;
      size_t nth = state->next++ % ties;
      for (size_t i = 0; i < n; ++i) {
        if (active[i] == least && nth-- == 0) return i;
      }
      return 0;
    }
    case Policy::kRandom:
      return std::uniform_int_distribution<size_t>(0, n - 1)(state->rng);
  }
  return 0;
}

}  // namespace zeroscale::balancer
