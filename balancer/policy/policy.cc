#include "balancer/policy/policy.h"

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
      const size_t start = state->next++ % n;
      size_t best = start;
      for (size_t k = 1; k < n; ++k) {
        const size_t i = (start + k) % n;
        if (active[i] < active[best]) best = i;
      }
      return best;
    }
    case Policy::kRandom:
      return std::uniform_int_distribution<size_t>(0, n - 1)(state->rng);
  }
  return 0;
}

}  // namespace zeroscale::balancer
