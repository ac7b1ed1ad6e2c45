// Keeps an up-to-date view of CustomAutoscalers with list+watch, the way client-go's
// informers do: list to get a resourceVersion, watch from it, advance it with every event
// and bookmark, re-list on 410 Gone, honour Retry-After on 429 and back off with jitter
// on 5xx and network errors. A re-list is diffed against the cache, so the handler sees
// each change once — nothing lost across the gap, nothing repeated.
//
// Thread-safety: the handler runs on the watcher's thread, one call at a time. Start,
// Stop and the accessors may be called from any thread.
#ifndef ZEROSCALE_COMMON_KUBE_WATCHER_H_
#define ZEROSCALE_COMMON_KUBE_WATCHER_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/retry.h"
#include "common/kube/types.h"

namespace zeroscale::kube {

enum class WatchEventType { kAdded, kModified, kDeleted };

struct WatcherOptions {
  std::string namespace_;  // "" watches all namespaces
  // Servers end watches after this; client-go picks 5-10 minutes.
  absl::Duration watch_timeout = absl::Minutes(5);
  BackoffOptions backoff;
  Sleeper* sleeper = RealSleeper::Get();  // injectable to observe delays in tests
};

struct WatcherStats {
  int lists = 0;
  int watches = 0;
  int gone = 0;    // 410s that forced a re-list
  int errors = 0;  // failures that led to a wait
};

class CustomAutoscalerWatcher {
 public:
  using Handler = std::function<void(WatchEventType, const CustomAutoscaler&)>;

  CustomAutoscalerWatcher(KubeClient* client, WatcherOptions options, Handler handler);
  ~CustomAutoscalerWatcher();  // stops
  CustomAutoscalerWatcher(const CustomAutoscalerWatcher&) = delete;
  CustomAutoscalerWatcher& operator=(const CustomAutoscalerWatcher&) = delete;

  // Runs the loop on a thread of its own.
  void Start();
  // Ends the watch in progress and joins the thread.
  void Stop();

  // True once the first list has been delivered; waits up to `timeout` for it.
  bool WaitForSync(absl::Duration timeout);
  // The cached objects, by namespace/name order.
  std::vector<CustomAutoscaler> Snapshot() const;
  std::string resource_version() const;
  WatcherStats stats() const;

 private:
  void Run();
  absl::Status List();
  absl::Status Watch();
  void Apply(WatchEventType type, const CustomAutoscaler& ca);
  // Waits after a failure; false when stopping.
  bool WaitAfter(const absl::Status& error);

  KubeClient* const client_;
  const WatcherOptions options_;
  const Handler handler_;
  Backoff backoff_;
  CancelToken cancel_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable synced_cv_;
  bool synced_ = false;
  std::string resource_version_;
  std::map<std::string, CustomAutoscaler> cache_;  // by namespace/name
  WatcherStats stats_;
};

}  // namespace zeroscale::kube

#endif  // ZEROSCALE_COMMON_KUBE_WATCHER_H_
