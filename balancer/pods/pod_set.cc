#include "balancer/pods/pod_set.h"

#include <arpa/inet.h>

#include <algorithm>

namespace zeroscale::balancer {
namespace {

// The host part of an announced "host:port", canonical; "" when it is not an IP literal.
std::string AnnouncedIp(const std::string& address) {
  std::string host;
  uint16_t port = 0;
  if (!SplitAddress(address, &host, &port).ok()) return "";
  return CanonicalIp(host);
}

enum class Match { kNone, kIp, kAddress, kName };

Match Matches(const EndpointInfo& a, const ListedPod& p) {
  if (!a.pod.empty() && !p.pod.empty()) return a.pod == p.pod ? Match::kName : Match::kNone;
  if (a.address.empty()) return Match::kNone;
  if (a.address == p.address) return Match::kAddress;
  const std::string ip = AnnouncedIp(a.address);
  return !ip.empty() && ip == p.ip ? Match::kIp : Match::kNone;
}

// The announcement that speaks for `p`, the closest match first; null when none does.
const EndpointInfo* AnnouncementFor(const std::vector<EndpointInfo>& announced,
                                    const ListedPod& p) {
  const EndpointInfo* best = nullptr;
  Match best_match = Match::kNone;
  for (const EndpointInfo& a : announced) {
    const Match m = Matches(a, p);
    if (m > best_match) {
      best = &a;
      best_match = m;
    }
  }
  return best;
}

void AddOnce(const std::string& address, std::vector<std::string>* out) {
  if (address.empty()) return;
  if (std::find(out->begin(), out->end(), address) == out->end()) out->push_back(address);
}

}  // namespace

std::string CanonicalIp(const std::string& text) {
  char buf[INET6_ADDRSTRLEN];
  in_addr v4;
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return inet_ntop(AF_INET, &v4, buf, sizeof(buf)) != nullptr ? buf : "";
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    return inet_ntop(AF_INET6, &v6, buf, sizeof(buf)) != nullptr ? buf : "";
  }
  return "";
}

std::vector<std::string> RoutableAddresses(const std::vector<EndpointInfo>& announced,
                                           const std::vector<ListedPod>* listed) {
  std::vector<std::string> out;
  if (listed == nullptr) {
    for (const EndpointInfo& a : announced) {
      if (a.ready) AddOnce(a.address, &out);
    }
    return out;
  }
  for (const ListedPod& p : *listed) {
    if (p.state == ListedState::kWithdrawn) continue;
    if (const EndpointInfo* a = AnnouncementFor(announced, p); a != nullptr) {
      // The sidecar knows its app best: ready routes (to its proxy), not ready does not.
      if (a->ready) AddOnce(a->address.empty() ? p.address : a->address, &out);
    } else if (p.state == ListedState::kReady) {
      AddOnce(p.address, &out);
    }
  }
  return out;
}

}  // namespace zeroscale::balancer
