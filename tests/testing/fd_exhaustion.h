// Helpers for tests of what servers do when file descriptors run out: a raw loopback TCP
// client whose socket exists before the descriptors are used up, and an object that uses
// them all up (under a lowered RLIMIT_NOFILE) until freed. POSIX only; not thread-safe.
#ifndef ZEROSCALE_TESTS_TESTING_FD_EXHAUSTION_H_
#define ZEROSCALE_TESTS_TESTING_FD_EXHAUSTION_H_

#include <sys/resource.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace zeroscale::testing {

// Uses up every file descriptor of this process; Free() (or the destructor) gives them
// back and restores the limit.
class FdExhaustion {
 public:
  // Lowers the soft RLIMIT_NOFILE to `limit` first, so exhausting it is quick.
  explicit FdExhaustion(rlim_t limit = 512);
  ~FdExhaustion();
  void Free();
  size_t used() const { return fds_.size(); }

 private:
  std::vector<int> fds_;
  struct rlimit old_ {};
};

// A blocking TCP socket to 127.0.0.1, created by the constructor and connected later.
class RawClient {
 public:
  RawClient();
  ~RawClient();
  // The kernel completes the handshake into the listener's backlog even while the
  // server cannot accept.
  bool Connect(uint16_t port);
  bool Write(const std::string& bytes);
  // Reads until `until` is seen, EOF, or `timeout`.
  std::string ReadUntil(const std::string& until, absl::Duration timeout = absl::Seconds(10));

 private:
  int fd_ = -1;
};

// CPU time (user + system) this process used so far.
absl::Duration ProcessCpuTime();

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_FD_EXHAUSTION_H_
