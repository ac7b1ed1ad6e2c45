#include "common/kube/watcher.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace zeroscale::kube {

template <typename Traits>
Informer<Traits>::Informer(KubeClient* client, WatcherOptions options, Handler handler)
    : client_(client),
      options_(std::move(options)),
      handler_(std::move(handler)),
      backoff_(options_.backoff) {}

template <typename Traits>
Informer<Traits>::~Informer() {
  Stop();
}

template <typename Traits>
void Informer<Traits>::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

template <typename Traits>
void Informer<Traits>::Stop() {
  cancel_.Cancel();
  if (thread_.joinable()) thread_.join();
}

template <typename Traits>
bool Informer<Traits>::WaitForSync(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return synced_cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return synced_; });
}

template <typename Traits>
std::vector<typename Informer<Traits>::Object> Informer<Traits>::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Object> out;
  out.reserve(cache_.size());
  for (const auto& [key, object] : cache_) out.push_back(object);
  return out;
}

template <typename Traits>
std::string Informer<Traits>::resource_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resource_version_;
}

template <typename Traits>
WatcherStats Informer<Traits>::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

template <typename Traits>
void Informer<Traits>::Run() {
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
      ZS_LOG(kInfo, absl::StrCat(Traits::kKind, " watch expired; re-listing"),
             {"error", s.ToString()});
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

template <typename Traits>
bool Informer<Traits>::WaitAfter(const absl::Status& error) {
  const std::optional<absl::Duration> retry_after = RetryAfterOf(error);
  const absl::Duration delay = retry_after ? *retry_after : backoff_.Next();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.errors;
  }
  if (options_.on_error) options_.on_error(error);
  ZS_LOG(kWarning, absl::StrCat(Traits::kKind, " list/watch failed; retrying"),
         {"error", error.ToString()}, {"delay", absl::FormatDuration(delay)});
  return options_.sleeper->Sleep(delay, &cancel_) && !cancel_.cancelled();
}

template <typename Traits>
absl::Status Informer<Traits>::List() {
  absl::StatusOr<ObjectList<Object>> list = (client_->*Traits::kList)(
      options_.namespace_, options_.label_selector, options_.field_selector);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.lists;
  }
  if (!list.ok()) return list.status();
  // Diff against what the handler has already seen.
  std::vector<std::pair<WatchEventType, Object>> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, Object> fresh;
    for (Object& object : list->items) {
      std::string key = object.Key();
      auto old = cache_.find(key);
      if (old == cache_.end()) {
        changes.emplace_back(WatchEventType::kAdded, object);
      } else if (old->second.resource_version != object.resource_version) {
        changes.emplace_back(WatchEventType::kModified, object);
      }
      fresh.emplace(std::move(key), std::move(object));
    }
    for (const auto& [key, object] : cache_) {
      if (fresh.find(key) == fresh.end()) changes.emplace_back(WatchEventType::kDeleted, object);
    }
    cache_ = std::move(fresh);
    resource_version_ = list->resource_version;
  }
  for (const auto& [type, object] : changes) handler_(type, object);
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first = !synced_;
  }
  // Before WaitForSync returns, so that a caller waiting for it sees on_synced's effects.
  if (first && options_.on_synced) options_.on_synced();
  {
    std::lock_guard<std::mutex> lock(mu_);
    synced_ = true;
  }
  synced_cv_.notify_all();
  return absl::OkStatus();
}

template <typename Traits>
void Informer<Traits>::Apply(WatchEventType type, const Object& object) {
  bool deliver = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string key = object.Key();
    auto it = cache_.find(key);
    if (type == WatchEventType::kDeleted) {
      if (it == cache_.end()) {
        deliver = false;  // Already reported gone by a re-list.
      } else {
        cache_.erase(it);
      }
    } else if (it != cache_.end() && it->second.resource_version == object.resource_version) {
      deliver = false;  // Seen already, e.g. replayed after a re-list.
    } else {
      // The cache, not the server's label, decides: after a re-list an ADDED may be an
      // object the handler already knows.
      type = it == cache_.end() ? WatchEventType::kAdded : WatchEventType::kModified;
      cache_[key] = object;
    }
    if (!object.resource_version.empty()) resource_version_ = object.resource_version;
  }
  if (deliver) handler_(type, object);
}

template <typename Traits>
absl::Status Informer<Traits>::Watch() {
  const std::string rv = resource_version();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.watches;
  }
  int events = 0;
  using Type = typename WatchEvent<Object>::Type;
  const std::function<bool(const WatchEvent<Object>&)> on_event =
      [&](const WatchEvent<Object>& ev) {
        ++events;
        switch (ev.type) {
          case Type::kBookmark: {
            std::lock_guard<std::mutex> lock(mu_);
            if (!ev.resource_version.empty()) resource_version_ = ev.resource_version;
            break;
          }
          case Type::kAdded:
            Apply(WatchEventType::kAdded, ev.object);
            break;
          case Type::kModified:
            Apply(WatchEventType::kModified, ev.object);
            break;
          case Type::kDeleted:
            Apply(WatchEventType::kDeleted, ev.object);
            break;
        }
        backoff_.Reset();
        return !cancel_.cancelled();
      };
  absl::Status s =
      (client_->*Traits::kWatch)(options_.namespace_, rv, options_.watch_timeout, on_event,
                                 &cancel_, options_.label_selector, options_.field_selector);
  if (s.ok() && events == 0 && !cancel_.cancelled()) {
    // A watch that ends at once without news would otherwise spin against the server.
    // The pause stays short: a quiet cluster is not an error.
    options_.sleeper->Sleep(options_.backoff.initial, &cancel_);
  }
  return s;
}

template class Informer<CustomAutoscalerTraits>;
template class Informer<EndpointSliceTraits>;
template class Informer<LeaseTraits>;
template class Informer<PodTraits>;
template class Informer<NodeTraits>;
template class Informer<AllocationPolicyTraits>;

}  // namespace zeroscale::kube
