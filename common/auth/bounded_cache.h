// A small least-recently-used map whose entries also expire at a time of their own:
// the verdicts of TokenReview and SubjectAccessReview, which must neither grow with the
// number of distinct tokens an attacker sends nor outlive what they were told.
//
// Thread-safety: none; the owner locks.
#ifndef ZEROSCALE_COMMON_AUTH_BOUNDED_CACHE_H_
#define ZEROSCALE_COMMON_AUTH_BOUNDED_CACHE_H_

#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace zeroscale::auth {

template <typename V>
class BoundedCache {
 public:
  explicit BoundedCache(size_t max_entries) : max_entries_(max_entries < 1 ? 1 : max_entries) {}

  // The value of `key` unless absent or expired at `now` (an expired entry is dropped).
  std::optional<V> Get(const std::string& key, absl::Time now) {
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    if (it->second->expires <= now) {
      order_.erase(it->second);
      index_.erase(it);
      return std::nullopt;
    }
    order_.splice(order_.begin(), order_, it->second);
    return it->second->value;
  }

  // Keeps `value` until `expires`; at the bound the least recently used entry goes.
  void Put(const std::string& key, V value, absl::Time expires) {
    if (auto it = index_.find(key); it != index_.end()) {
      order_.erase(it->second);
      index_.erase(it);
    }
    while (index_.size() >= max_entries_) {
      index_.erase(order_.back().key);
      order_.pop_back();
    }
    order_.push_front(Entry{key, std::move(value), expires});
    index_[key] = order_.begin();
  }

  size_t size() const { return index_.size(); }
  void Clear() {
    index_.clear();
    order_.clear();
  }

 private:
  struct Entry {
    std::string key;
    V value;
    absl::Time expires;
  };
  const size_t max_entries_;
  std::list<Entry> order_;  // most recently used first
  absl::flat_hash_map<std::string, typename std::list<Entry>::iterator> index_;
};

}  // namespace zeroscale::auth

#endif  // ZEROSCALE_COMMON_AUTH_BOUNDED_CACHE_H_
