// Where each decision goes besides the automaton: a log line with its reason,
// Prometheus counters and gauges, and the short history in Redis that answers "why does
// my model have 0 replicas?". The Redis writer runs on its own thread so the decision
// loop never waits on Redis.
//
// Thread-safety: Record may be called from any thread (the decision loop in practice).
#ifndef ZEROSCALE_SCALER_REPORT_DECISION_SINKS_H_
#define ZEROSCALE_SCALER_REPORT_DECISION_SINKS_H_

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "scaler/decide/decision.h"
#include "scaler/decide/history.h"

namespace zeroscale::report {

class LogSink : public decide::DecisionSink {
 public:
  void Record(const decide::Decision& d) override;
};

class MetricsSink : public decide::DecisionSink {
 public:
  explicit MetricsSink(prometheus::Registry* registry);
  void Record(const decide::Decision& d) override;
  // The limited-now gauge follows each workload's status.
  void OnStatus(const decide::WorkloadStatus& status) override;
  void OnRemoved(const std::string& workload) override;

 private:
  prometheus::Family<prometheus::Counter>& decisions_;
  prometheus::Family<prometheus::Gauge>& replicas_;
  prometheus::Family<prometheus::Gauge>& state_;
  prometheus::Family<prometheus::Counter>& limited_;
  prometheus::Family<prometheus::Gauge>& limited_now_;
  // (workload, reason) -> its limited-now series. Decision-loop thread only.
  std::map<std::pair<std::string, std::string>, prometheus::Gauge*> limited_series_;
};

// Hands decisions to another sink on a background thread, in order. Bounded: when the
// queue is full the oldest is dropped and counted (history is best effort; the log and
// metrics still have every decision).
class AsyncSink : public decide::DecisionSink {
 public:
  AsyncSink(decide::DecisionSink* target, size_t capacity, prometheus::Registry* registry);
  ~AsyncSink() override;
  void Record(const decide::Decision& d) override;
  // Queued with the decisions; only the newest state of a workload still queued is kept.
  void OnKeepAlive(const std::string& workload, const std::string& state) override;
  void Stop();

 private:
  void Run();

  decide::DecisionSink* const target_;
  const size_t capacity_;
  prometheus::Counter& dropped_;
  std::mutex mu_;
  std::condition_variable cv_;
  struct Item {
    decide::Decision decision;
    bool keep_alive = false;  // a keep-alive state (workload, state) rather than a decision
    std::string workload, state;
  };
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace zeroscale::report

#endif  // ZEROSCALE_SCALER_REPORT_DECISION_SINKS_H_
