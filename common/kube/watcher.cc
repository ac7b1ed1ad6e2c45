#include "common/kube/watcher.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::kube {

CustomAutoscalerWatcher::CustomAutoscalerWatcher(KubeClient* client, WatcherOptions options,
                                                 Handler handler)
    : client_(client),
      options_(std::move(options)),
      handler_(std::move(handler)),
      backoff_(options_.backoff) {}

CustomAutoscalerWatcher::~CustomAutoscalerWatcher() { Stop(); }

void CustomAutoscalerWatcher::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void CustomAutoscalerWatcher::Stop() {
  cancel_.Cancel();
  if (thread_.joinable()) thread_.join();
}

bool CustomAutoscalerWatcher::WaitForSync(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return synced_cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return synced_; });
}

std::vector<CustomAutoscaler> CustomAutoscalerWatcher::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<CustomAutoscaler> out;
  out.reserve(cache_.size());
  for (const auto& [key, ca] : cache_) out.push_back(ca);
  return out;
}

std::string CustomAutoscalerWatcher::resource_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resource_version_;
}

WatcherStats CustomAutoscalerWatcher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CustomAutoscalerWatcher::Run() {
  bool need_list = true;
  while (!cancel_.cancelled()) {
    if (need_list) {
      absl::Status s = List();
      if (!s.ok()) {
        if (!WaitAfter(s)) return;
        continue;
      }
      need_list = false;
      backoff_.Reset();
    }
    absl::Status s = Watch();
    if (cancel_.cancelled()) return;
    if (s.ok()) continue;  // The server ended the watch; resume from where it got to.
    if (IsGone(s)) {
      // Our resourceVersion fell out of the server's history: only a list can tell
      // what happened meanwhile.
      ZS_LOG(kInfo, "CustomAutoscaler watch expired; re-listing", {"error", s.ToString()});
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.gone;
      need_list = true;
      continue;
    }
    // A stream we could not make sense of may have cost us events; start afresh.
    if (s.code() == absl::StatusCode::kInvalidArgument) need_list = true;
    if (!WaitAfter(s)) return;
  }
}

bool CustomAutoscalerWatcher::WaitAfter(const absl::Status& error) {
  const std::optional<absl::Duration> retry_after = RetryAfterOf(error);
  const absl::Duration delay = retry_after ? *retry_after : backoff_.Next();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.errors;
  }
  ZS_LOG(kWarning, "CustomAutoscaler list/watch failed; retrying", {"error", error.ToString()},
         {"delay", absl::FormatDuration(delay)});
  return options_.sleeper->Sleep(delay, &cancel_) && !cancel_.cancelled();
}

absl::Status CustomAutoscalerWatcher::List() {
  auto list = client_->ListCustomAutoscalers(options_.namespace_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.lists;
  }
  if (!list.ok()) return list.status();
  // Diff against what the handler has already seen.
  std::vector<std::pair<WatchEventType, CustomAutoscaler>> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, CustomAutoscaler> fresh;
    for (CustomAutoscaler& ca : list->items) {
      const std::string key = ca.Key();
      auto old = cache_.find(key);
      if (old == cache_.end()) {
        changes.emplace_back(WatchEventType::kAdded, ca);
      } else if (old->second.resource_version != ca.resource_version) {
        changes.emplace_back(WatchEventType::kModified, ca);
      }
      fresh.emplace(key, std::move(ca));
    }
    for (const auto& [key, ca] : cache_) {
      if (fresh.find(key) == fresh.end()) changes.emplace_back(WatchEventType::kDeleted, ca);
    }
    cache_ = std::move(fresh);
    resource_version_ = list->resource_version;
  }
  for (const auto& [type, ca] : changes) handler_(type, ca);
  {
    std::lock_guard<std::mutex> lock(mu_);
    synced_ = true;
  }
  synced_cv_.notify_all();
  return absl::OkStatus();
}

void CustomAutoscalerWatcher::Apply(WatchEventType type, const CustomAutoscaler& ca) {
  bool deliver = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string key = ca.Key();
    auto it = cache_.find(key);
    if (type == WatchEventType::kDeleted) {
      if (it == cache_.end()) {
        deliver = false;  // Already reported gone by a re-list.
      } else {
        cache_.erase(it);
      }
    } else if (it != cache_.end() && it->second.resource_version == ca.resource_version) {
      deliver = false;  // Seen already, e.g. replayed after a re-list.
    } else {
      // The cache, not the server's label, decides: after a re-list an ADDED may be an
      // object the handler already knows.
      type = it == cache_.end() ? WatchEventType::kAdded : WatchEventType::kModified;
      cache_[key] = ca;
    }
    if (!ca.resource_version.empty()) resource_version_ = ca.resource_version;
  }
  if (deliver) handler_(type, ca);
}

absl::Status CustomAutoscalerWatcher::Watch() {
  const std::string rv = resource_version();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.watches;
  }
  int events = 0;
  absl::Status s = client_->WatchCustomAutoscalers(
      options_.namespace_, rv, options_.watch_timeout,
      [&](const CustomAutoscalerWatchEvent& ev) {
        ++events;
        switch (ev.type) {
          case CustomAutoscalerWatchEvent::Type::kBookmark: {
            std::lock_guard<std::mutex> lock(mu_);
            if (!ev.resource_version.empty()) resource_version_ = ev.resource_version;
            break;
          }
          case CustomAutoscalerWatchEvent::Type::kAdded:
            Apply(WatchEventType::kAdded, ev.object);
            break;
          case CustomAutoscalerWatchEvent::Type::kModified:
            Apply(WatchEventType::kModified, ev.object);
            break;
          case CustomAutoscalerWatchEvent::Type::kDeleted:
            Apply(WatchEventType::kDeleted, ev.object);
            break;
        }
        backoff_.Reset();
        return !cancel_.cancelled();
      },
      &cancel_);
  if (s.ok() && events == 0 && !cancel_.cancelled()) {
    // A watch that ends at once without news would otherwise spin against the server.
    // The pause stays short: a quiet cluster is not an error.
    options_.sleeper->Sleep(options_.backoff.initial, &cancel_);
  }
  return s;
}

}  // namespace zeroscale::kube
