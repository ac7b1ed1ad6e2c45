// Helpers shared by the Kubernetes client tests: a Sleeper that records what it was
// asked to wait for (optionally holding the caller until released), and a thread-safe
// collector for watch events. Thread-safe.
#ifndef ZEROSCALE_TESTS_COMMON_KUBE_TEST_UTIL_H_
#define ZEROSCALE_TESTS_COMMON_KUBE_TEST_UTIL_H_

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/kube/retry.h"
#include "common/kube/watcher.h"

namespace zeroscale::kube {

class RecordingSleeper : public Sleeper {
 public:
  // While held, Sleep() blocks until Release() or cancellation.
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
    cv_.notify_all();
  }
  bool Sleep(absl::Duration d, CancelToken* cancel) override {
    const int id = cancel->Register([this] {
      std::lock_guard<std::mutex> l(mu_);
      cv_.notify_all();
    });
    {
      std::unique_lock<std::mutex> lock(mu_);
      delays_.push_back(d);
      cv_.notify_all();
      cv_.wait(lock, [&] { return !held_ || cancel->cancelled(); });
    }
    cancel->Unregister(id);
    return !cancel->cancelled();
  }
  bool WaitForCalls(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [&] { return delays_.size() >= n; });
  }
  std::vector<absl::Duration> delays() const {
    std::lock_guard<std::mutex> lock(mu_);
    return delays_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  std::vector<absl::Duration> delays_;
};

// Records "ADDED ml/a" style lines.
class EventLog {
 public:
  void Add(WatchEventType type, const CustomAutoscaler& ca) {
    const char* name = type == WatchEventType::kAdded      ? "ADDED"
                       : type == WatchEventType::kModified ? "MODIFIED"
                                                           : "DELETED";
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(absl::StrCat(name, " ", ca.Key()));
    objects_.push_back(ca);
    cv_.notify_all();
  }
  bool WaitFor(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [&] { return lines_.size() >= n; });
  }
  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }
  std::vector<CustomAutoscaler> objects() const {
    std::lock_guard<std::mutex> lock(mu_);
    return objects_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::vector<CustomAutoscaler> objects_;
};

inline std::string CustomAutoscalerJson(const std::string& name, int min, int max,
                                        const std::string& target = "llama") {
  return absl::StrCat(
      R"({"apiVersion":"autoscaler-group.autoscaler/v1alpha1",)",
      R"("kind":"CustomAutoscaler","metadata":{"name":")", name, R"("},)",
      R"("spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment",)", R"("name":")",
      target, R"("},"minReplicas":)", min, R"(,"maxReplicas":)", max,
      R"(,"idleTimeoutSeconds":300,"rules":[)",
      R"({"id":"busy","action":"INCREASE_INSTANCES","thresholds":[)",
      R"({"metricType":"IN_FLIGHT_REQUESTS","operator":"GREATER_THAN","value":4}]}]}})");
}

inline std::string CustomAutoscalers(const std::string& ns) {
  return absl::StrCat("/apis/autoscaler-group.autoscaler/v1alpha1/namespaces/", ns,
                      "/customautoscalers");
}

}  // namespace zeroscale::kube

#endif  // ZEROSCALE_TESTS_COMMON_KUBE_TEST_UTIL_H_
