#include "balancer/dispatch/dispatcher.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log/log.h"

namespace zeroscale::balancer {

Dispatcher::Dispatcher(RouteTable routes, Activator* activator, BalancerMetrics* metrics,
                       const Clock* clock, DispatcherOptions options)
    : activator_(activator), metrics_(metrics), clock_(clock), options_(std::move(options)) {
  if (metrics_ == nullptr) {
    own_registry_ = std::make_unique<prometheus::Registry>();
    own_metrics_ = std::make_unique<BalancerMetrics>(own_registry_.get());
    metrics_ = own_metrics_.get();
  }
  SetRoutes(std::move(routes));
}

void Dispatcher::SetRoutes(RouteTable routes) {
  auto table = std::make_shared<const RouteTable>(std::move(routes));
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::flat_hash_map<std::string, const Route*> by_workload;
    for (const Route& r : table->routes()) by_workload[r.workload] = &r;
    // A timeout dropped from a route falls back to the default for later holds.
    for (auto& [id, w] : workloads_) {
      if (!by_workload.contains(id)) {
        SetActivationTimeoutLocked(w.get(), options_.default_activation_timeout);
      }
    }
    for (const auto& [id, r] : by_workload) WorkloadLocked(id, r);
  }
  std::lock_guard<std::mutex> lock(routes_mu_);
  routes_ = std::move(table);
}

std::shared_ptr<const RouteTable> Dispatcher::Routes() const {
  std::lock_guard<std::mutex> lock(routes_mu_);
  return routes_;
}

Dispatcher::~Dispatcher() { Shutdown(); }

void Dispatcher::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || shutdown_) return;
  started_ = true;
  timer_ = std::thread([this] { TimerLoop(); });
}

void Dispatcher::Shutdown() {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!shutdown_) {
      shutdown_ = true;
      for (auto& [id, w] : workloads_) {
        while (!w->queue.empty()) {
          Waiter waiter = std::move(w->queue.front());
          w->queue.pop_front();
          w->metrics->held->Decrement();
          actions.picks.emplace_back(
              std::move(waiter.done),
              proxy::PickResult::Reject(503, "the balancer is shutting down\n",
                                        {{"Retry-After", "1"}}));
        }
      }
      waiting_ = 0;
      actions.dropped = std::move(dropped_);
    }
  }
  cv_.notify_all();
  Run(&actions);
  if (timer_.joinable()) timer_.join();
}

void Dispatcher::SetSettings(const Settings& settings) {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    settings_ = settings;
    // A raised max_connections frees slots for requests already waiting.
    const absl::Time now = clock_->Now();
    for (auto& [id, w] : workloads_) DrainLocked(w.get(), now, &actions);
  }
  Run(&actions);
}

void Dispatcher::SetRequestLogger(std::function<void(LogEntry)> logger) {
  std::lock_guard<std::mutex> lock(mu_);
  logger_ = std::move(logger);
}

Dispatcher::Workload* Dispatcher::WorkloadLocked(const std::string& id, const Route* route) {
  auto& slot = workloads_[id];
  if (!slot) {
    slot = std::make_unique<Workload>();
    slot->id = id;
    slot->metrics = metrics_->Workload(id);
    SetActivationTimeoutLocked(slot.get(), options_.default_activation_timeout);
    slot->backoff = Backoff(
        {options_.activate_backoff_initial, options_.activate_backoff_max, 2.0, Jitter::kNone});
  }
  if (route != nullptr) {
    SetActivationTimeoutLocked(
        slot.get(), route->activation_timeout.value_or(options_.default_activation_timeout));
  }
  return slot.get();
}

void Dispatcher::SetActivationTimeoutLocked(Workload* w, absl::Duration timeout) {
  w->activation_timeout = timeout;
  w->metrics->activation_timeout->Set(absl::ToDoubleSeconds(timeout));
}

proxy::PickResult Dispatcher::ForwardLocked(Workload* w, Record* rec, absl::Time now) {
  size_t idx = 0;
  if (w->ready.size() > 1) {
    std::vector<int> active;
    active.reserve(w->ready.size());
    for (const auto& ep : w->ready) active.push_back(ep->active);
    idx = SelectEndpoint(settings_.policy, active, &w->selector);
  }
  const std::shared_ptr<Endpoint>& ep = w->ready[idx];
  ep->active++;
  w->active++;
  w->metrics->in_flight->Increment();
  rec->endpoint = ep;
  rec->released = now;
  proxy::PickResult result = proxy::PickResult::Forward(ep->upstream);
  result.upstream_timeout = absl::Seconds(settings_.timeout_seconds);
  return result;
}

void Dispatcher::DrainLocked(Workload* w, absl::Time now, Actions* actions) {
  while (!w->queue.empty() && !w->ready.empty() && w->active < settings_.max_connections) {
    Waiter waiter = std::move(w->queue.front());
    w->queue.pop_front();
    waiting_--;
    w->metrics->held->Decrement();
    w->metrics->hold_seconds->Observe(absl::ToDoubleSeconds(now - waiter.arrived));
    auto it = records_.find(waiter.id);
    if (it == records_.end()) continue;  // cannot happen: records outlive waiters
    actions->picks.emplace_back(std::move(waiter.done), ForwardLocked(w, &it->second, now));
  }
}

void Dispatcher::MaybeActivateLocked(Workload* w, absl::Time now, Actions* actions) {
  if (!w->ready.empty() || w->queue.empty() || w->call_in_flight || shutdown_) return;
  if (w->accepted && now - w->accepted_at < options_.reactivate_after) return;
  if (now < w->next_attempt) return;
  w->call_in_flight = true;
  actions->activations.emplace_back(w->id, static_cast<uint32_t>(w->queue.size()));
}

void Dispatcher::ApplyStateLocked(Workload* w, const WorkloadState& state, bool from_activate,
                                  absl::Time now, Actions* actions) {
  // An Activate answer was computed before the call returned; a Watch update may have
  // overtaken it, so it may only add pods to a workload that has none, never remove any.
  if (from_activate &&
      (!w->ready.empty() ||
       RoutableAddresses(state.endpoints, w->listed ? &*w->listed : nullptr).empty())) {
    return;
  }
  w->announced = state.endpoints;
  RebuildReadyLocked(w, now, actions);
}

void Dispatcher::RebuildReadyLocked(Workload* w, absl::Time now, Actions* actions) {
  std::vector<std::shared_ptr<Endpoint>> ready;
  for (const std::string& address :
       RoutableAddresses(w->announced, w->listed ? &*w->listed : nullptr)) {
    // Endpoints keep their identity (and connection counts) across updates.
    const auto same = [&](const auto& ep) { return ep->address == address; };
    auto existing = std::find_if(w->ready.begin(), w->ready.end(), same);
    if (existing != w->ready.end()) {
      ready.push_back(*existing);
      continue;
    }
    auto ep = std::make_shared<Endpoint>();
    if (absl::Status s = SplitAddress(address, &ep->upstream.host, &ep->upstream.port); !s.ok()) {
      ZS_LOG(kWarning, "ignoring an endpoint with a bad address", {"workload", w->id},
             {"error", std::string(s.message())});
      continue;
    }
    ep->address = address;
    ready.push_back(std::move(ep));
  }
  const bool was_empty = w->ready.empty();
  w->ready = std::move(ready);
  w->metrics->ready_endpoints->Set(static_cast<double>(w->ready.size()));
  if (!w->ready.empty()) {
    if (was_empty) {
      ZS_LOG(kInfo, "workload ready", {"workload", w->id},
             {"endpoints", absl::StrCat(w->ready.size())}, {"held", absl::StrCat(w->queue.size())});
    }
    // This wake is over; the next one asks the scaler again.
    w->accepted = false;
    w->last_error.clear();
    w->next_attempt = absl::InfinitePast();
    w->backoff.Reset();
    DrainLocked(w, now, actions);
  } else {
    MaybeActivateLocked(w, now, actions);
  }
}

void Dispatcher::OnWorkloadState(const WorkloadState& state) {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Workload* w = WorkloadLocked(state.workload, nullptr);
    ApplyStateLocked(w, state, /*from_activate=*/false, clock_->Now(), &actions);
  }
  Run(&actions);
}

void Dispatcher::OnListedPods(const std::string& workload,
                              std::optional<std::vector<ListedPod>> pods) {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Workload* w = WorkloadLocked(workload, nullptr);
    w->listed = std::move(pods);
    RebuildReadyLocked(w, clock_->Now(), &actions);
  }
  Run(&actions);
}

void Dispatcher::OnScalerChanged() {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = clock_->Now();
    for (auto& [id, w] : workloads_) {
      if (w->queue.empty() || !w->ready.empty()) continue;
      w->accepted = false;
      w->next_attempt = absl::InfinitePast();
      w->backoff.Reset();
      MaybeActivateLocked(w.get(), now, &actions);
    }
  }
  Run(&actions);
}

void Dispatcher::OnActivateDone(const std::string& workload, absl::StatusOr<WorkloadState> result) {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Workload* w = WorkloadLocked(workload, nullptr);
    w->call_in_flight = false;
    const absl::Time now = clock_->Now();
    if (result.ok()) {
      w->metrics->activations->Increment();
      w->accepted = true;
      w->accepted_at = now;
      w->last_error.clear();
      w->backoff.Reset();
      ZS_LOG(kInfo, "activation requested", {"workload", workload},
             {"held", absl::StrCat(w->queue.size())},
             {"ready_replicas", absl::StrCat(result->ready_replicas)});
      ApplyStateLocked(w, *result, /*from_activate=*/true, now, &actions);
    } else {
      w->metrics->activation_failures->Increment();
      if (w->last_error.empty()) {
        ZS_LOG(kWarning, "cannot activate workload; retrying with backoff", {"workload", workload},
               {"error", std::string(result.status().message())});
      }
      w->last_error = std::string(result.status().message());
      w->accepted = false;
      w->next_attempt = now + w->backoff.Next();
    }
  }
  cv_.notify_all();
  Run(&actions);
}

void Dispatcher::ExpireLocked(Workload* w, absl::Time now, Actions* actions) {
  for (auto it = w->queue.begin(); it != w->queue.end();) {
    if (it->deadline > now) {
      ++it;
      continue;
    }
    const absl::Duration waited = now - it->arrived;
    std::string body;
    int retry_after = options_.retry_after_hold_seconds;
    if (!w->ready.empty()) {
      body =
          absl::StrCat("workload ", w->id, " had no free connection slot (max_connections ",
                       settings_.max_connections, ") within ", absl::FormatDuration(waited), "\n");
      retry_after = options_.retry_after_queue_seconds;
    } else if (!w->last_error.empty()) {
      body = absl::StrCat("workload ", w->id, " could not be woken within ",
                          absl::FormatDuration(waited), ": the scaler is unreachable (",
                          w->last_error, ")\n");
    } else {
      body =
          absl::StrCat("workload ", w->id, " has no ready pod after ", absl::FormatDuration(waited),
                       " (activation was requested; it may still be starting)\n");
    }
    w->metrics->held->Decrement();
    w->metrics->hold_timeouts->Increment();
    w->metrics->hold_seconds->Observe(absl::ToDoubleSeconds(waited));
    waiting_--;
    actions->picks.emplace_back(
        std::move(it->done),
        proxy::PickResult::Reject(503, std::move(body),
                                  {{"Retry-After", absl::StrCat(retry_after)}}));
    it = w->queue.erase(it);
  }
}

void Dispatcher::Run(Actions* actions) {
  for (auto& [done, result] : actions->picks) done(std::move(result));
  actions->picks.clear();
  for (auto& [workload, held] : actions->activations) {
    activator_->Activate(workload, held, [this, workload = workload](auto result) {
      OnActivateDone(workload, std::move(result));
    });
  }
  actions->activations.clear();
  actions->dropped.clear();
}

void Dispatcher::TimerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutdown_) {
    const absl::Duration wait = waiting_ > 0 ? options_.tick : absl::Seconds(1);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(wait),
                 [this] { return shutdown_ || wake_timer_ || !dropped_.empty(); });
    wake_timer_ = false;
    if (shutdown_) break;
    Actions actions;
    actions.dropped = std::move(dropped_);
    dropped_.clear();
    if (waiting_ > 0) {
      const absl::Time now = clock_->Now();
      for (auto& [id, w] : workloads_) {
        if (w->queue.empty()) continue;
        ExpireLocked(w.get(), now, &actions);
        MaybeActivateLocked(w.get(), now, &actions);
      }
    }
    lock.unlock();
    Run(&actions);
    lock.lock();
  }
}

void Dispatcher::Pick(const proxy::RequestHead& head, proxy::PickDone done) {
  const std::shared_ptr<const RouteTable> routes = Routes();
  const Route* route = routes->Match(head.host, head.target);
  const absl::Time now = clock_->Now();
  std::optional<proxy::PickResult> result;
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) {
      result =
          proxy::PickResult::Reject(503, "the balancer is shutting down\n", {{"Retry-After", "1"}});
    } else if (route == nullptr) {
      records_[head.id] = Record{nullptr, nullptr, now, now};
      result = proxy::PickResult::Reject(404, absl::StrCat("no route for host \"", head.host,
                                                           "\" and path \"", head.target, "\"\n"));
    } else {
      Workload* w = WorkloadLocked(route->workload, nullptr);
      w->requests_since_report++;
      Record rec{w, nullptr, now, now};
      if (!w->ready.empty() && w->queue.empty() && w->active < settings_.max_connections) {
        result = ForwardLocked(w, &rec, now);
      } else if (w->queue.size() >= options_.max_queue) {
        w->metrics->queue_full->Increment();
        result = proxy::PickResult::Reject(
            503,
            absl::StrCat("workload ", w->id, " has ", w->queue.size(),
                         " requests waiting already\n"),
            {{"Retry-After", absl::StrCat(options_.retry_after_queue_seconds)}});
      } else {
        const absl::Duration limit =
            w->ready.empty() ? w->activation_timeout : absl::Seconds(settings_.timeout_seconds);
        w->queue.push_back(Waiter{head.id, std::move(done), now, now + limit});
        waiting_++;
        w->metrics->held->Increment();
        MaybeActivateLocked(w, now, &actions);
        if (waiting_ == 1) {  // the timer switches to its short tick
          wake_timer_ = true;
          cv_.notify_all();
        }
      }
      records_[head.id] = std::move(rec);
    }
  }
  Run(&actions);
  if (result) done(*std::move(result));
}

void Dispatcher::Cancel(const proxy::RequestHead& head) {
  std::lock_guard<std::mutex> lock(mu_);
  auto rec = records_.find(head.id);
  if (rec == records_.end() || rec->second.workload == nullptr) return;
  Workload* w = rec->second.workload;
  for (auto it = w->queue.begin(); it != w->queue.end(); ++it) {
    if (it->id != head.id) continue;
    // Destroying a PickDone answers it; on this (the session's) thread that would run
    // inline inside the engine's abort, so the timer thread destroys it instead.
    dropped_.push_back(std::move(it->done));
    w->queue.erase(it);
    waiting_--;
    w->metrics->held->Decrement();
    w->metrics->cancelled_while_held->Increment();
    cv_.notify_all();
    return;
  }
}

void Dispatcher::OnRequestDone(const proxy::RequestResult& r) {
  Actions actions;
  std::string workload;
  std::string upstream;
  std::function<void(LogEntry)> logger;
  prometheus::Counter* requests = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(r.head->id);
    if (it != records_.end()) {
      Record rec = std::move(it->second);
      records_.erase(it);
      if (rec.workload != nullptr) {
        Workload* w = rec.workload;
        workload = w->id;
        for (const auto& [status, counter] : w->requests_by_status) {
          if (status == r.status) requests = counter;
        }
        if (requests == nullptr) {
          requests = metrics_->Requests(w->id, r.status);
          w->requests_by_status.emplace_back(r.status, requests);
        }
        if (rec.endpoint) {
          rec.endpoint->active--;
          w->active--;
          w->metrics->in_flight->Decrement();
          upstream = rec.endpoint->address;
          const absl::Duration upstream_latency = r.latency - (rec.released - rec.arrived);
          w->metrics->upstream_seconds->Observe(
              std::max(0.0, absl::ToDoubleSeconds(upstream_latency)));
          DrainLocked(w, clock_->Now(), &actions);
        }
      }
    }
    logger = logger_;
  }
  Run(&actions);
  if (requests == nullptr) requests = metrics_->Requests(workload, r.status);  // no route
  requests->Increment();
  if (logger) {
    LogEntry e;
    e.timestamp = clock_->Now();
    e.client_ip = r.head->client_ip;
    e.target_url = absl::StrCat("http://", r.head->host, r.head->target);
    e.http_method = r.head->method;
    e.response_status = r.status;
    e.latency_ms = absl::ToInt64Milliseconds(r.latency);
    e.workload = std::move(workload);
    e.upstream = std::move(upstream);
    logger(std::move(e));
  }
}

std::vector<TrafficSample> Dispatcher::TakeTraffic() {
  std::vector<TrafficSample> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, w] : workloads_) {
    const uint32_t in_flight = static_cast<uint32_t>(w->queue.size()) + w->active;
    const bool nonzero = w->requests_since_report > 0 || in_flight > 0;
    if (nonzero || w->reported_nonzero) out.push_back({id, w->requests_since_report, in_flight});
    w->reported_nonzero = nonzero;
    w->requests_since_report = 0;
  }
  return out;
}

void Dispatcher::RefreshHeldAges() {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = clock_->Now();
  for (auto& [id, w] : workloads_) {
    // The queue is in arrival order (expiry and cancellation remove from anywhere but keep
    // the order), so its front has waited longest.
    const absl::Duration age = w->queue.empty()
                                   ? absl::ZeroDuration()
                                   : std::max(absl::ZeroDuration(), now - w->queue.front().arrived);
    w->metrics->oldest_held_age->Set(absl::ToDoubleSeconds(age));
  }
}

WorkloadStatus Dispatcher::Status(const std::string& workload) const {
  std::lock_guard<std::mutex> lock(mu_);
  WorkloadStatus s;
  auto it = workloads_.find(workload);
  if (it == workloads_.end()) return s;
  s.held = it->second->queue.size();
  s.in_flight = it->second->active;
  s.ready = it->second->ready.size();
  s.activating = it->second->call_in_flight || it->second->accepted;
  return s;
}

}  // namespace zeroscale::balancer
