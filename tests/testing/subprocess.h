// A child process for integration tests that can be started, crashed (SIGKILL) and
// restarted with the same command line, e.g. the real scaler on fixed ports. The child
// dies with the test (PR_SET_PDEATHSIG) and on destruction.
// Not thread-safe.
#ifndef ZEROSCALE_TESTS_TESTING_SUBPROCESS_H_
#define ZEROSCALE_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace zeroscale::testing {

class Subprocess {
 public:
  // argv[0] is the program (looked up in PATH when it has no slash).
  explicit Subprocess(std::vector<std::string> argv);
  ~Subprocess();

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Forks and execs; kFailedPrecondition when already running.
  absl::Status Start();
  // SIGKILL, as a crash would, and reaps the child.
  void Kill();
  // SIGTERM, then waits up to `grace` before SIGKILL. Returns the exit status
  // (as from waitpid), or -1 when it was not running.
  int Terminate(absl::Duration grace = absl::Seconds(5));
  absl::Status Restart() {
    Kill();
    return Start();
  }
  // False once the child exited (reaps it).
  bool Running();
  pid_t pid() const { return pid_; }

 private:
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
};

// Polls until something accepts TCP connections on 127.0.0.1:`port`.
absl::Status WaitForTcpPort(uint16_t port, absl::Duration timeout);
// True when 127.0.0.1:`port` accepts a TCP connection now.
bool TcpPortOpen(uint16_t port);

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_SUBPROCESS_H_
