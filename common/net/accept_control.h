// What every listening socket of the programs does between two accepts (the HTTP servers
// of common/http and each worker of the proxy engine in common/proxy):
//   - a cap on open connections: at the cap the listener stops accepting, so new
//     connections wait in the kernel's backlog (and, past it, see the kernel refuse
//     them) instead of taking file descriptors and memory; a closing connection resumes
//     it. Each acceptor checks before it accepts, so with several acceptors on one
//     control (the proxy's workers) the cap may be passed by one connection per further
//     acceptor;
//   - backoff after a failed accept (EMFILE, ENFILE, ENOBUFS, ...): the pending connection
//     stays in the backlog and a readiness-based loop would be woken for it again at
//     once, a busy spin that burned a core and logged 20 MB/s; instead the listener waits
//     10 ms, doubling to 1 s while accepts keep failing;
//   - a log line at most once per interval with the number of failures since the last
//     one, and counts for metrics (ListenerObserver).
// Asio stays out of this unit: the listener asks what to do and does it.
//
// Thread-safety: thread-safe; callbacks (resume, observer) run on the calling thread
// without the lock held.
#ifndef ZEROSCALE_COMMON_NET_ACCEPT_CONTROL_H_
#define ZEROSCALE_COMMON_NET_ACCEPT_CONTROL_H_

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/time/backoff.h"
#include "common/time/clock.h"

namespace zeroscale::net {

// Hears what a listener does, for metrics. Called without locks, from I/O threads.
class ListenerObserver {
 public:
  virtual ~ListenerObserver() = default;
  virtual void OnAccepted(absl::string_view listener) {}
  virtual void OnClosed(absl::string_view listener) {}
  virtual void OnAcceptError(absl::string_view listener) {}
  // Accepting paused because max_connections are open.
  virtual void OnAtCapacity(absl::string_view listener) {}
};

struct ListenerLimits {
  // Connections open at once; 0: no cap.
  int64_t max_connections = 0;
  absl::Duration backoff_min = absl::Milliseconds(10);
  absl::Duration backoff_max = absl::Seconds(1);
  // At most one "accept failed" line per interval.
  absl::Duration log_interval = absl::Seconds(10);
};

struct ListenerStats {
  uint64_t accepted = 0;
  uint64_t accept_errors = 0;
  uint64_t open = 0;
  uint64_t at_capacity = 0;  // times accepting paused at the cap
  uint64_t log_lines = 0;    // "accept failed" lines written
};

class AcceptControl {
 public:
  // `name` labels log lines and metrics ("proxy", "admin", "http", "webhook").
  AcceptControl(std::string name, ListenerLimits limits, const Clock* clock,
                ListenerObserver* observer = nullptr);
  AcceptControl(const AcceptControl&) = delete;
  AcceptControl& operator=(const AcceptControl&) = delete;

  // Asked before an accept is started: true while fewer than max_connections are open.
  // At the cap it returns false and keeps `resume`, which runs once (on the thread whose
  // connection closes) when one closes; the listener then asks again.
  bool MayAccept(std::function<void()> resume);
  // A connection was accepted; it counts as open until Release().
  void OnAccepted();
  // The accept failed: the answer is how long to wait before the next accept.
  absl::Duration OnAcceptError(absl::string_view error);
  // A connection closed.
  void Release();
  // From now on, freed slots resume no listener (it is being torn down).
  void Close();

  const std::string& name() const { return name_; }
  ListenerStats stats() const;

 private:
  const std::string name_;
  const ListenerLimits limits_;
  const Clock* const clock_;
  ListenerObserver* const observer_;

  mutable std::mutex mu_;
  int64_t open_ = 0;
  std::vector<std::function<void()>> waiting_;
  Backoff backoff_;  // common/time/backoff.h: doubling, no jitter (one listener)
  absl::Time last_log_ = absl::InfinitePast();
  uint64_t errors_since_log_ = 0;
  bool closed_ = false;
  ListenerStats stats_;
};

// A connection's slot: released when the connection (which owns this) goes away.
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  explicit ConnectionSlot(AcceptControl* control) : control_(control) {}
  ConnectionSlot(ConnectionSlot&& o) noexcept : control_(o.control_) { o.control_ = nullptr; }
  ConnectionSlot& operator=(ConnectionSlot&& o) noexcept;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot();

 private:
  AcceptControl* control_ = nullptr;
};

}  // namespace zeroscale::net

#endif  // ZEROSCALE_COMMON_NET_ACCEPT_CONTROL_H_
