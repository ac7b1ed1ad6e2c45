#include "common/kube/events.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace zeroscale::kube {

EventRecorder::EventRecorder(KubeClient* client, EventRecorderOptions options, Clock* clock)
    : client_(client), options_(std::move(options)), clock_(clock) {}

absl::Status EventRecorder::Record(const ObjectReference& object, EventType type,
                                   absl::string_view reason, absl::string_view message) {
  const absl::Time now = clock_->Now();
  const std::string type_name = type == EventType::kWarning ? "Warning" : "Normal";
  const std::string key =
      absl::StrCat(object.namespace_, "\x1f", object.kind, "\x1f", object.name, "\x1f", object.uid,
                   "\x1f", type_name, "\x1f", reason, "\x1f", message);
  Series series;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = series_.find(key);
    if (it != series_.end() && now - it->second.last < options_.series_window) {
      it->second.count++;
      it->second.last = now;
      series = it->second;
    }
  }
  if (series.count > 1) {
    auto patched = client_->PatchEventSeries(object.namespace_, series.name, series.count, now);
    if (patched.ok()) return absl::OkStatus();
    // The Event may have been garbage-collected (events expire after an hour by
    // default); start a new one.
    if (patched.status().code() != absl::StatusCode::kNotFound) return patched.status();
  }

  Event e;
  e.namespace_ = object.namespace_;
  // Unique per occurrence, as client-go names them ("<object>.<nanoseconds in hex>"), plus
  // this recorder's sequence number: two Events in the same tick (a clock that did not
  // move, a coarse one) must not collide and lose the second to AlreadyExists.
  uint64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = next_seq_++;
  }
  e.name = absl::StrCat(object.name, ".", absl::Hex(absl::ToUnixNanos(now)),
                        absl::Hex(seq, absl::kZeroPad4));
  e.involved_object = object;
  e.type = type_name;
  e.reason = std::string(reason);
  e.message = std::string(message);
  e.count = 1;
  e.first_timestamp = now;
  e.last_timestamp = now;
  e.reporting_component = options_.component;
  e.reporting_instance = options_.instance;
  auto created = client_->CreateEvent(e);
  if (!created.ok()) return created.status();
  std::lock_guard<std::mutex> lock(mu_);
  if (series_.size() >= options_.max_series && series_.find(key) == series_.end()) {
    auto oldest = series_.begin();
    for (auto it = series_.begin(); it != series_.end(); ++it) {
      if (it->second.last < oldest->second.last) oldest = it;
    }
    series_.erase(oldest);
  }
  series_[key] = Series{created->name, 1, now};
  return absl::OkStatus();
}

}  // namespace zeroscale::kube
