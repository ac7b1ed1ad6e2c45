// The latest status of every workload the decider manages, as the decider pushes it
// (DecisionSink::OnStatus), for readers on other threads: /workloads and the leader's
// sample tail read from here instead of asking the decider's loop.
//
// Thread-safe: the loop writes, any thread reads.
#ifndef ZEROSCALE_SCALER_REPORT_STATUS_BOARD_H_
#define ZEROSCALE_SCALER_REPORT_STATUS_BOARD_H_

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "scaler/decide/decision.h"

namespace zeroscale::report {

class StatusBoard : public decide::DecisionSink {
 public:
  void Record(const decide::Decision& decision) override {}
  void OnStatus(const decide::WorkloadStatus& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    statuses_[status.workload] = status;
  }
  void OnRemoved(const std::string& workload) override {
    std::lock_guard<std::mutex> lock(mu_);
    statuses_.erase(workload);
  }
  // Every workload's latest status, by workload id.
  std::vector<decide::WorkloadStatus> All() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<decide::WorkloadStatus> out;
    out.reserve(statuses_.size());
    for (const auto& [w, s] : statuses_) out.push_back(s);
    return out;
  }
  // The workloads the decider manages.
  std::vector<std::string> Workloads() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    out.reserve(statuses_.size());
    for (const auto& [w, s] : statuses_) out.push_back(w);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, decide::WorkloadStatus> statuses_;
};

}  // namespace zeroscale::report

#endif  // ZEROSCALE_SCALER_REPORT_STATUS_BOARD_H_
