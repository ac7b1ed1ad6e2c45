// What Kubernetes lists of each scale target's pods, kept current with one pod informer
// per target (its namespace and the label selector its scale subresource reports), for
// those who must tell pods that exist and serve from pods that merely were announced or
// cannot report: the decider (missing data versus Pending pods) and the endpoint registry
// (only pods that exist take traffic). A target's view is handed over once its first
// list is in and then on every change that matters; nullopt when it stops (the target is
// forgotten). Without RBAC to list pods a view never starts, and the listener never
// hears of it: its consumers keep their behaviour for "not known".
//
// Thread-safety: Watch, Forget and Clear are for one thread (the reconciler's worker).
// The listener runs on the informers' threads, one call at a time per target.
#ifndef ZEROSCALE_SCALER_RECONCILE_POD_VIEWS_H_
#define ZEROSCALE_SCALER_RECONCILE_POD_VIEWS_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/kube/client.h"
#include "common/kube/retry.h"
#include "common/kube/watcher.h"
#include "scaler/decide/decision.h"

namespace zeroscale::reconcile {

// The pods of a list as the decider sees them.
decide::TargetPods TargetPodsOf(const std::vector<kube::Pod>& pods);

class PodViews {
 public:
  using Listener =
      std::function<void(const std::string& workload, const std::optional<decide::TargetPods>&)>;

  // `client` and `sleeper` (the informers' waits) must outlive it.
  PodViews(kube::KubeClient* client, kube::Sleeper* sleeper, Listener listener);
  ~PodViews();  // Clear()
  PodViews(const PodViews&) = delete;
  PodViews& operator=(const PodViews&) = delete;

  // Watches the pods of `workload` in `ns` that `selector` matches; restarts the watch
  // when the selector changed, does nothing when it did not. An empty selector stops it.
  void Watch(const std::string& workload, const std::string& ns, const std::string& selector);
  // Stops watching; the listener hears nullopt if it had heard a view.
  void Forget(const std::string& workload);
  void Clear();
  size_t size() const { return views_.size(); }

 private:
  struct View {
    std::string ns;
    std::string selector;
    std::unique_ptr<kube::PodWatcher> watcher;
    std::mutex mu;  // the informer's thread against Forget
    bool synced = false;
    std::optional<decide::TargetPods> last;  // as last handed over
  };
  // The informer's thread: hands the view over if it changed.
  void Deliver(const std::string& workload, View* view);

  kube::KubeClient* const client_;
  kube::Sleeper* const sleeper_;
  const Listener listener_;
  std::map<std::string, std::unique_ptr<View>> views_;
};

}  // namespace zeroscale::reconcile

#endif  // ZEROSCALE_SCALER_RECONCILE_POD_VIEWS_H_
