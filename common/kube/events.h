// Records core/v1 Events on the workloads the scaler acts on, so `kubectl describe`
// explains each decision. Repeats of the same explanation (object, type, reason,
// message) within a window bump the count of one Event, as kubectl's recorder does,
// instead of flooding the namespace.
//
// Thread-safety: Record may be called concurrently.
#ifndef ZEROSCALE_COMMON_KUBE_EVENTS_H_
#define ZEROSCALE_COMMON_KUBE_EVENTS_H_

#include <cstddef>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kube/client.h"
#include "common/kube/types.h"
#include "common/time/clock.h"

namespace zeroscale::kube {

enum class EventType { kNormal, kWarning };

struct EventRecorderOptions {
  std::string component = "zeroscale-scaler";
  std::string instance;  // this replica, e.g. the pod name
  absl::Duration series_window = absl::Minutes(10);
  size_t max_series = 1024;  // remembered explanations; the oldest is forgotten first
};

class EventRecorder {
 public:
  EventRecorder(KubeClient* client, EventRecorderOptions options, Clock* clock = RealClock::Get());

  // `reason` is CamelCase ("ScaledToZero"); `message` is for people. The Event goes
  // into the object's namespace.
  absl::Status Record(const ObjectReference& object, EventType type, absl::string_view reason,
                      absl::string_view message);

 private:
  struct Series {
    std::string name;
    int32_t count = 0;
    absl::Time last = absl::InfinitePast();
  };

  KubeClient* const client_;
  const EventRecorderOptions options_;
  Clock* const clock_;
  std::mutex mu_;
  std::map<std::string, Series> series_;  // by object+type+reason+message
  uint64_t next_seq_ = 0;
};

}  // namespace zeroscale::kube

#endif  // ZEROSCALE_COMMON_KUBE_EVENTS_H_
