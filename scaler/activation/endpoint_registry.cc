#include "scaler/activation/endpoint_registry.h"

#include <algorithm>
#include <utility>

namespace zeroscale::activation {
namespace {

bool Same(const WorkloadEndpoints& a, const WorkloadEndpoints& b) {
  return a.replicas == b.replicas && a.endpoints == b.endpoints;
}

}  // namespace

int32_t WorkloadEndpoints::ready() const {
  int32_t n = 0;
  for (const Endpoint& e : endpoints) n += e.ready ? 1 : 0;
  return n;
}

EndpointRegistry::EndpointRegistry(const Clock* clock, decide::Scheduler* timers,
                                   EndpointRegistryOptions options)
    : clock_(clock), timers_(timers), options_(options) {}

WorkloadEndpoints EndpointRegistry::Snapshot(const std::string& workload, const Entry& e) {
  WorkloadEndpoints out;
  out.workload = workload;
  out.replicas = e.replicas;
  out.endpoints.reserve(e.pods.size());
  for (const auto& [pod, p] : e.pods) out.endpoints.push_back(p.endpoint);
  return out;
}

void EndpointRegistry::SetPods(const std::string& workload, int32_t replicas,
                               std::vector<Endpoint> pods) {
  std::vector<WorkloadEndpoints> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = workloads_[workload];
    const WorkloadEndpoints before = Snapshot(workload, e);
    std::map<std::string, Pod> next;
    for (Endpoint& p : pods) {
      Pod entry;
      auto old = e.pods.find(p.pod);
      if (old != e.pods.end()) {
        p.ready = p.ready || old->second.endpoint.ready;
        entry.seen = old->second.seen;
      }
      entry.endpoint = std::move(p);
      next[entry.endpoint.pod] = std::move(entry);
    }
    e.backend_pods = true;
    e.at_zero = false;
    e.unlisted.clear();
    e.pods = std::move(next);
    e.replicas = replicas;
    WorkloadEndpoints after = Snapshot(workload, e);
    if (!Same(before, after)) changed.push_back(std::move(after));
  }
  Notify(changed);
}

void EndpointRegistry::SetPodView(const std::string& workload,
                                  std::optional<std::vector<std::string>> pods) {
  std::vector<WorkloadEndpoints> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = workloads_[workload];
    if (e.backend_pods) return;
    const WorkloadEndpoints before = Snapshot(workload, e);
    if (!pods) {
      // Back to leases: each pod keeps the time of its latest sample.
      e.view.reset();
      for (const auto& [pod, p] : e.pods) ScheduleExpiry(p.seen + options_.lease);
    } else {
      e.view.emplace(pods->begin(), pods->end());
      for (auto it = e.pods.begin(); it != e.pods.end();) {
        it = e.view->count(it->first) ? std::next(it) : e.pods.erase(it);
      }
      // Announcements that came before the watch listed their pod.
      for (auto it = e.unlisted.begin(); it != e.unlisted.end();) {
        if (!e.view->count(it->first)) {
          ++it;
          continue;
        }
        if (!e.at_zero && it->second.endpoint.ready) e.pods[it->first] = it->second;
        it = e.unlisted.erase(it);
      }
    }
    WorkloadEndpoints after = Snapshot(workload, e);
    if (!Same(before, after)) changed.push_back(std::move(after));
  }
  Notify(changed);
}

void EndpointRegistry::SetReplicas(const std::string& workload, int32_t replicas) {
  std::vector<WorkloadEndpoints> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = workloads_[workload];
    // The local backend knows its processes better than any count.
    if (e.backend_pods) return;
    const WorkloadEndpoints before = Snapshot(workload, e);
    e.replicas = std::max(0, replicas);
    e.at_zero = replicas <= 0;
    if (e.at_zero) {
      // Whatever was announced before belongs to pods that are gone or going.
      e.pods.clear();
      e.unlisted.clear();
    }
    WorkloadEndpoints after = Snapshot(workload, e);
    if (!Same(before, after)) changed.push_back(std::move(after));
  }
  Notify(changed);
}

bool EndpointRegistry::OnSample(absl::string_view workload, absl::string_view pod, bool ready,
                                absl::string_view address, absl::Time at) {
  const absl::Time now = clock_->Now();
  if (at == absl::InfinitePast()) at = now;
  std::vector<WorkloadEndpoints> changed;
  bool became_ready = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = workloads_.find(workload);
    if (it == workloads_.end()) {
      if (!ready) return false;
      it = workloads_.try_emplace(std::string(workload)).first;
    }
    Entry& e = it->second;
    if (e.at_zero) return false;
    // A sample older than a lease (a replay, the tail of another replica) announces
    // nothing that is not otherwise known to exist.
    const bool expired = now >= at + options_.lease;
    if (expired && (Leased(e) || !e.pods.count(std::string(pod)))) return false;
    auto p = e.pods.find(std::string(pod));
    if (p == e.pods.end()) {
      if (e.backend_pods) return false;  // a replica the backend no longer runs
      if (e.view && !e.view->count(std::string(pod))) {
        // Not listed (yet): kept aside for a lease, in case the watch lags.
        Pod& u = e.unlisted[std::string(pod)];
        u.endpoint.pod = std::string(pod);
        if (!address.empty()) u.endpoint.address = std::string(address);
        u.endpoint.ready = ready;
        u.seen = std::max(u.seen, at);
        ScheduleExpiry(u.seen + options_.lease);
        return false;
      }
      if (!ready) return false;
      p = e.pods.emplace(std::string(pod), Pod{Endpoint{std::string(pod), "", false}, at}).first;
    }
    Pod& entry = p->second;
    if (at < entry.seen) return false;  // older than what this pod said since
    entry.seen = at;
    if (Leased(e)) ScheduleExpiry(entry.seen + options_.lease);
    const bool new_address = !address.empty() && entry.endpoint.address != address;
    if (entry.endpoint.ready == ready && !new_address) return false;
    became_ready = ready && !entry.endpoint.ready;
    entry.endpoint.ready = ready;
    if (new_address) entry.endpoint.address = std::string(address);
    changed.push_back(Snapshot(std::string(workload), e));
  }
  Notify(changed);
  return became_ready;
}

size_t EndpointRegistry::Expire() {
  const absl::Time now = clock_->Now();
  std::vector<WorkloadEndpoints> changed;
  size_t expired = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Time next = absl::InfiniteFuture();
    for (auto w = workloads_.begin(); w != workloads_.end();) {
      Entry& e = w->second;
      const WorkloadEndpoints before = Snapshot(w->first, e);
      auto sweep = [&](std::map<std::string, Pod>& pods) {
        for (auto it = pods.begin(); it != pods.end();) {
          if (now >= it->second.seen + options_.lease) {
            it = pods.erase(it);
            ++expired;
          } else {
            next = std::min(next, it->second.seen + options_.lease);
            ++it;
          }
        }
      };
      sweep(e.unlisted);
      if (Leased(e)) sweep(e.pods);
      WorkloadEndpoints after = Snapshot(w->first, e);
      if (!Same(before, after)) changed.push_back(std::move(after));
      // Nothing left of a workload only its sidecars ever mentioned.
      if (Leased(e) && !e.at_zero && e.replicas == 0 && e.pods.empty() && e.unlisted.empty()) {
        workloads_.erase(w++);
      } else {
        ++w;
      }
    }
    expiry_at_ = absl::InfiniteFuture();
    if (next != absl::InfiniteFuture()) ScheduleExpiry(next);
  }
  Notify(changed);
  return expired;
}

void EndpointRegistry::ScheduleExpiry(absl::Time at) {
  if (timers_ == nullptr || at >= expiry_at_) return;
  expiry_at_ = at;
  timers_->RunAt(at, [this] { Expire(); });
}

void EndpointRegistry::Remove(const std::string& workload) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (workloads_.erase(workload) == 0) return;
  }
  WorkloadEndpoints gone;
  gone.workload = workload;
  Notify({gone});
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

void EndpointRegistry::Notify(const std::vector<WorkloadEndpoints>& states) {
  for (const WorkloadEndpoints& state : states) {
    // Copy the matching listeners so none is called under the lock (a listener may add
    // or remove listeners).
    std::vector<Listener> targets;
    {
      std::lock_guard<std::mutex> lock(listeners_mu_);
      for (const auto& [id, l] : listeners_) {
        if (l.first.empty() || l.first == state.workload) targets.push_back(l.second);
      }
    }
    for (const Listener& l : targets) l(state);
  }
}

}  // namespace zeroscale::activation
