// Runs a real program (a zeroscale binary, redis-server, a python backend) as a child
// of the test, with its output in a log file, and kills it when the test ends (also
// if the test process dies: PR_SET_PDEATHSIG). Not thread-safe.
#ifndef ZEROSCALE_TESTS_TESTING_CHILD_PROCESS_H_
#define ZEROSCALE_TESTS_TESTING_CHILD_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace zeroscale::testing {

class ChildProcess {
 public:
  // argv[0] is the program path (or a name looked up in PATH).
  explicit ChildProcess(std::vector<std::string> argv, std::string log_path = "");
  ~ChildProcess();

  absl::Status Start();
  void Signal(int sig);
  // SIGKILL, as a crash would, and reaps the child.
  void Kill();
  // Kill, then Start with the same command line (e.g. the scaler on the same ports).
  absl::Status Restart() {
    Kill();
    return Start();
  }
  // SIGTERM, then SIGKILL after `grace`; returns the exit status from waitpid.
  int Stop(absl::Duration grace = absl::Seconds(5));
  // Waits for the child to exit by itself (sending nothing); its waitpid status, or
  // nullopt when it still runs after `timeout` (or was never started).
  std::optional<int> WaitForExit(absl::Duration timeout);
  bool running();
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  std::vector<std::string> argv_;
  std::string log_path_;
  pid_t pid_ = -1;
};

// Polls `condition` every 10 ms until it holds or `timeout` passes. For waiting on
// another process's observable state (a port answering, a key in Redis), where no
// event can be subscribed to.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout);

// True when 127.0.0.1:`port` accepts a TCP connection now.
bool TcpPortOpen(uint16_t port);
// Polls until something accepts TCP connections on 127.0.0.1:`port`.
absl::Status WaitForTcpPort(uint16_t port, absl::Duration timeout);

// GET http://127.0.0.1:<port><path>; the status code, or -1 when nothing answers.
int HttpGetStatus(uint16_t port, const std::string& path);

// Runs `cmd` with /bin/sh and returns what it printed, stdout and stderr together.
std::string Shell(const std::string& cmd);

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_CHILD_PROCESS_H_
