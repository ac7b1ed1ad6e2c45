// Helpers shared by the Kubernetes client tests: a Sleeper that records what it was
// asked to wait for (optionally holding the caller until released), a thread-safe
// collector for informer events, and objects as the API server holds them. Thread-safe.
#ifndef ZEROSCALE_TESTS_COMMON_KUBE_TEST_UTIL_H_
#define ZEROSCALE_TESTS_COMMON_KUBE_TEST_UTIL_H_

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/retry.h"
#include "common/kube/watcher.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_apiserver.h"

namespace zeroscale::kube {

// A fake API server on 127.0.0.1 and a client of it.
class FakeApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ClusterConfig config;
    config.server = server_.url();
    auto client = KubeClient::Create(config);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  testing::FakeApiServer server_;
  std::unique_ptr<KubeClient> client_;
};

// Options for an informer under test: waits go to `sleeper`, and the backoff has no
// jitter, so its sequence is exact (1s, 2s, 4s...).
inline WatcherOptions TestWatcherOptions(std::string ns, Sleeper* sleeper,
                                         std::string label_selector = "") {
  WatcherOptions options;
  options.namespace_ = std::move(ns);
  options.label_selector = std::move(label_selector);
  options.sleeper = sleeper;
  options.backoff = {absl::Seconds(1), absl::Seconds(30), 2.0, Jitter::kNone};
  return options;
}

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

// Records an informer's events as "ADDED ml/a" style lines, and the objects.
template <typename T>
class EventLogOf {
 public:
  void Add(WatchEventType type, const T& object) {
    const char* name = type == WatchEventType::kAdded      ? "ADDED"
                       : type == WatchEventType::kModified ? "MODIFIED"
                                                           : "DELETED";
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(absl::StrCat(name, " ", object.Key()));
    objects_.push_back(object);
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
  std::vector<T> objects() const {
    std::lock_guard<std::mutex> lock(mu_);
    return objects_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::vector<T> objects_;
};
using EventLog = EventLogOf<CustomAutoscaler>;

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

// An EndpointSlice of Service `service` as the EndpointSlice controller writes it: one
// port "http" 8012/TCP, and one endpoint per address, ready unless listed in `not_ready`.
inline std::string EndpointSliceJson(const std::string& name, const std::string& service,
                                     const std::vector<std::string>& addresses,
                                     const std::vector<std::string>& not_ready = {}) {
  std::string endpoints;
  for (size_t i = 0; i < addresses.size(); ++i) {
    const bool ready =
        std::find(not_ready.begin(), not_ready.end(), addresses[i]) == not_ready.end();
    absl::StrAppend(&endpoints, i == 0 ? "" : ",", R"({"addresses":[")", addresses[i],
                    R"("],"conditions":{"ready":)", ready ? "true" : "false", R"(,"serving":)",
                    ready ? "true" : "false",
                    R"(,"terminating":false},"targetRef":{"kind":"Pod","namespace":"ml",)",
                    R"("name":")", service, "-", i, R"("}})");
  }
  return absl::StrCat(
      R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",)", R"("metadata":{"name":")",
      name, R"(","labels":{)", R"("kubernetes.io/service-name":")", service, R"(",)",
      R"("endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"}},)",
      R"("addressType":"IPv4","endpoints":[)", endpoints, "],",
      R"("ports":[{"name":"http","port":8012,"protocol":"TCP"}]})");
}

inline std::string EndpointSlices(const std::string& ns) {
  return absl::StrCat("/apis/discovery.k8s.io/v1/namespaces/", ns, "/endpointslices");
}

inline std::string CustomAutoscalers(const std::string& ns) {
  return absl::StrCat("/apis/autoscaler-group.autoscaler/v1alpha1/namespaces/", ns,
                      "/customautoscalers");
}

}  // namespace zeroscale::kube

#endif  // ZEROSCALE_TESTS_COMMON_KUBE_TEST_UTIL_H_
