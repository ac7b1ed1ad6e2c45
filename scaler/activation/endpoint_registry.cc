#include "scaler/activation/endpoint_registry.h"

namespace zeroscale::activation {

int32_t WorkloadEndpoints::ready() const {
  int32_t n = 0;
  for (const Endpoint& e : endpoints) n += e.ready ? 1 : 0;
  return n;
}

WorkloadEndpoints EndpointRegistry::Snapshot(const std::string& workload, const Entry& e) {
  WorkloadEndpoints out;
  out.workload = workload;
  out.replicas = e.replicas;
  out.endpoints.reserve(e.pods.size());
  for (const auto& [pod, ep] : e.pods) out.endpoints.push_back(ep);
  return out;
}

void EndpointRegistry::SetPods(const std::string& workload, int32_t replicas,
                               std::vector<Endpoint> pods) {
  WorkloadEndpoints snapshot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = workloads_[workload];
    std::map<std::string, Endpoint> next;
    for (Endpoint& p : pods) {
      auto old = e.pods.find(p.pod);
      if (old != e.pods.end()) p.ready = p.ready || old->second.ready;
      next[p.pod] = std::move(p);
    }
    if (next == e.pods && replicas == e.replicas) return;
    e.pods = std::move(next);
    e.replicas = replicas;
    snapshot = Snapshot(workload, e);
  }
  Notify(snapshot);
}

bool EndpointRegistry::OnSample(absl::string_view workload, absl::string_view pod, bool ready,
                                absl::string_view address) {
  WorkloadEndpoints snapshot;
  bool became_ready = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = workloads_.find(workload);
    if (it == workloads_.end()) {
      if (!ready) return false;
      it = workloads_.try_emplace(std::string(workload)).first;
    }
    Entry& e = it->second;
    auto p = e.pods.find(std::string(pod));
    if (p == e.pods.end()) {
      if (!ready) return false;
      p = e.pods.emplace(std::string(pod), Endpoint{std::string(pod), "", false}).first;
    }
    const bool new_address = !address.empty() && p->second.address != address;
    if (p->second.ready == ready && !new_address) return false;
    became_ready = ready && !p->second.ready;
    p->second.ready = ready;
    if (new_address) p->second.address = std::string(address);
    snapshot = Snapshot(std::string(workload), e);
  }
  Notify(snapshot);
  return became_ready;
}

void EndpointRegistry::Remove(const std::string& workload) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (workloads_.erase(workload) == 0) return;
  }
  WorkloadEndpoints gone;
  gone.workload = workload;
  Notify(gone);
}

WorkloadEndpoints EndpointRegistry::Get(const std::string& workload) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workloads_.find(workload);
  if (it == workloads_.end()) {
    WorkloadEndpoints empty;
    empty.workload = workload;
    return empty;
  }
  return Snapshot(workload, it->second);
}

std::vector<WorkloadEndpoints> EndpointRegistry::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkloadEndpoints> out;
  for (const auto& [w, e] : workloads_) out.push_back(Snapshot(w, e));
  return out;
}

uint64_t EndpointRegistry::AddListener(std::string workload, Listener listener) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  const uint64_t id = next_listener_++;
  listeners_.emplace(id, std::make_pair(std::move(workload), std::move(listener)));
  return id;
}

void EndpointRegistry::RemoveListener(uint64_t id) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  listeners_.erase(id);
}

void EndpointRegistry::Notify(const WorkloadEndpoints& state) {
  // Copy the matching listeners so none is called under the lock (a listener may add or
  // remove listeners).
  std::vector<Listener> targets;
  {
    std::lock_guard<std::mutex> lock(listeners_mu_);
    for (const auto& [id, l] : listeners_) {
      if (l.first.empty() || l.first == state.workload) targets.push_back(l.second);
    }
  }
  for (const Listener& l : targets) l(state);
}

}  // namespace zeroscale::activation
