#include "scaler/reconcile/pod_views.h"

#include <algorithm>
#include <utility>

#include "common/log/log.h"

namespace zeroscale::reconcile {

decide::TargetPods TargetPodsOf(const std::vector<kube::Pod>& pods) {
  decide::TargetPods out;
  std::string first_unschedulable;
  for (const kube::Pod& p : pods) {
    out.members.push_back(p.Key());
    if (p.terminating) continue;  // on its way out: not a pod to wait for or send to
    out.existing.push_back(p.Key());
    if (p.Serving()) out.serving.push_back(p.Key());
    if (p.node_name.empty()) out.unscheduled.push_back(p.Key());
    if (p.unschedulable) {
      // One message stands for all (they usually say the same): the smallest key's, so
      // the view does not change with the order pods are listed in.
      if (out.unschedulable.empty() || p.Key() < first_unschedulable) {
        first_unschedulable = p.Key();
        out.unschedulable_message = p.unschedulable_message;
      }
      out.unschedulable.push_back(p.Key());
    }
  }
  std::sort(out.unscheduled.begin(), out.unscheduled.end());
  std::sort(out.unschedulable.begin(), out.unschedulable.end());
  std::sort(out.existing.begin(), out.existing.end());
  std::sort(out.serving.begin(), out.serving.end());
  std::sort(out.members.begin(), out.members.end());
  return out;
}

PodViews::PodViews(kube::KubeClient* client, kube::Sleeper* sleeper, Listener listener)
    : client_(client), sleeper_(sleeper), listener_(std::move(listener)) {}

PodViews::~PodViews() { Clear(); }

void PodViews::Watch(const std::string& workload, const std::string& ns,
                     const std::string& selector) {
  auto it = views_.find(workload);
  if (it != views_.end() && it->second->ns == ns && it->second->selector == selector) return;
  if (it != views_.end()) Forget(workload);
  if (selector.empty()) return;
  auto view = std::make_unique<View>();
  View* raw = view.get();
  view->ns = ns;
  view->selector = selector;
  kube::WatcherOptions options;
  options.namespace_ = ns;
  options.label_selector = selector;
  options.sleeper = sleeper_;
  options.on_synced = [this, workload, raw] {
    {
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->synced = true;
    }
    Deliver(workload, raw);
  };
  view->watcher = std::make_unique<kube::PodWatcher>(
      client_, std::move(options),
      [this, workload, raw](kube::WatchEventType, const kube::Pod&) { Deliver(workload, raw); });
  view->watcher->Start();
  ZS_LOG(kInfo, "watching the target's pods", {"workload", workload}, {"selector", selector});
  views_[workload] = std::move(view);
}

void PodViews::Deliver(const std::string& workload, View* view) {
  // Under the view's lock, so views of one target reach the listener in order and never
  // after Forget has said the view is gone.
  std::lock_guard<std::mutex> lock(view->mu);
  if (!view->synced) return;  // the first list's adds: delivered once it is complete
  decide::TargetPods pods = TargetPodsOf(view->watcher->Snapshot());
  if (view->last && *view->last == pods) return;  // a change that does not matter here
  view->last = pods;
  listener_(workload, view->last);
}

void PodViews::Forget(const std::string& workload) {
  auto it = views_.find(workload);
  if (it == views_.end()) return;
  std::unique_ptr<View> view = std::move(it->second);
  views_.erase(it);
  view->watcher->Stop();
  std::lock_guard<std::mutex> lock(view->mu);
  if (view->last) listener_(workload, std::nullopt);
}

void PodViews::Clear() {
  while (!views_.empty()) {
    const std::string workload = views_.begin()->first;
    Forget(workload);
  }
}

}  // namespace zeroscale::reconcile
