#include "scaler/report/decision_sinks.h"

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::report {

void LogSink::Record(const decide::Decision& d) {
  ZS_LOG(kInfo, "decision", {"workload", d.workload},
         {"from", std::string(decide::StateName(d.from))},
         {"to", std::string(decide::StateName(d.to))},
         {"replicas", absl::StrCat(d.replicas_before, "->", d.replicas_after)},
         {"trigger", std::string(decide::TriggerName(d.trigger))}, {"rule", d.rule},
         {"rule_source", d.rule_source}, {"reason", d.reason},
         {"dry_run", d.dry_run ? "true" : "false"});
}

MetricsSink::MetricsSink(prometheus::Registry* registry)
    : decisions_(prometheus::BuildCounter()
                     .Name("zeroscale_decisions_total")
                     .Help("Automaton transitions, by workload, target state and trigger")
                     .Register(*registry)),
      replicas_(prometheus::BuildGauge()
                    .Name("zeroscale_workload_desired_replicas")
                    .Help("Replicas the latest decision asked for")
                    .Register(*registry)),
      state_(prometheus::BuildGauge()
                 .Name("zeroscale_workload_state")
                 .Help("1 for the automaton's current state of each workload")
                 .Register(*registry)),
      limited_(prometheus::BuildCounter()
                   .Name("zeroscale_scaleups_limited_total")
                   .Help("Scale-ups held back (in part or entirely) by an allocation limit, by "
                         "workload and reason: group (its AllocationPolicy's budget), cluster "
                         "(no node has the extended resource free), pending (its pods are "
                         "unschedulable); a hold counts once per distinct reason")
                   .Register(*registry)),
      limited_now_(prometheus::BuildGauge()
                       .Name("zeroscale_workload_scaleup_limited")
                       .Help("1 while an allocation limit holds a workload's scale-up back, by "
                             "reason")
                       .Register(*registry)) {}

void MetricsSink::Record(const decide::Decision& d) {
  decisions_
      .Add({{"workload", d.workload},
            {"to", std::string(decide::StateName(d.to))},
            {"trigger", std::string(decide::TriggerName(d.trigger))}})
      .Increment();
  replicas_.Add({{"workload", d.workload}}).Set(d.replicas_after);
  if (!d.limited_by.empty()) {
    limited_.Add({{"workload", d.workload}, {"reason", d.limited_by}}).Increment();
  }
  for (decide::State s : {decide::State::kActive, decide::State::kHolding,
                          decide::State::kScaledToZero, decide::State::kWaking}) {
    state_.Add({{"workload", d.workload}, {"state", std::string(decide::StateName(s))}})
        .Set(s == d.to ? 1 : 0);
  }
}

void MetricsSink::OnStatus(const decide::WorkloadStatus& status) {
  for (const char* reason : {"group", "cluster", "pending"}) {
    const bool now = status.limited_by == reason;
    auto key = std::make_pair(status.workload, std::string(reason));
    auto it = limited_series_.find(key);
    if (it == limited_series_.end()) {
      if (!now) continue;  // no series for reasons that never applied
      it = limited_series_
               .emplace(key, &limited_now_.Add({{"workload", status.workload}, {"reason", reason}}))
               .first;
    }
    it->second->Set(now ? 1 : 0);
  }
}

void MetricsSink::OnRemoved(const std::string& workload) {
  for (auto it = limited_series_.begin(); it != limited_series_.end();) {
    if (it->first.first == workload) {
      limited_now_.Remove(it->second);
      it = limited_series_.erase(it);
    } else {
      ++it;
    }
  }
}

AsyncSink::AsyncSink(decide::DecisionSink* target, size_t capacity, prometheus::Registry* registry)
    : target_(target),
      capacity_(capacity),
      dropped_(prometheus::BuildCounter()
                   .Name("zeroscale_decision_history_dropped_total")
                   .Help("Decisions not written to the Redis history (queue full)")
                   .Register(*registry)
                   .Add({})),
      thread_([this] { Run(); }) {}

AsyncSink::~AsyncSink() { Stop(); }

void AsyncSink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AsyncSink::Record(const decide::Decision& d) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= capacity_) {
      queue_.pop_front();
      dropped_.Increment();
    }
    Item item;
    item.decision = d;
    queue_.push_back(std::move(item));
  }
  cv_.notify_one();
}

void AsyncSink::OnKeepAlive(const std::string& workload, const std::string& state) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Item& i : queue_) {
      if (i.keep_alive && i.workload == workload) {
        i.state = state;
        return;
      }
    }
    if (queue_.size() >= capacity_) {
      queue_.pop_front();
      dropped_.Increment();
    }
    queue_.push_back(Item{decide::Decision{}, true, workload, state});
  }
  cv_.notify_one();
}

void AsyncSink::Run() {
  for (;;) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, drained
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    if (item.keep_alive) {
      target_->OnKeepAlive(item.workload, item.state);
    } else {
      target_->Record(item.decision);
    }
  }
}

}  // namespace zeroscale::report
