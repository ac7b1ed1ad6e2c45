// Runs a command to completion and collects its exit status and output (stdout and
// stderr together): openssl for the test PKI, helm, ip. The child dies with the test
// (PR_SET_PDEATHSIG) and is killed when it outlives `timeout`.
//
// Thread-safety: thread-safe (each call forks its own child). The fork is done with
// everything prepared beforehand, so it is safe in a multi-threaded test.
#ifndef ZEROSCALE_TESTS_TESTING_COMMAND_H_
#define ZEROSCALE_TESTS_TESTING_COMMAND_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace zeroscale::testing {

struct CommandResult {
  // The exit code; 128+N when killed by signal N; -1 when it could not be started.
  int exit_code = -1;
  std::string output;
  bool ok() const { return exit_code == 0; }
};

struct CommandOptions {
  // Added to (or replacing entries of) the test's own environment.
  std::vector<std::pair<std::string, std::string>> env;
  // false: `env` is the whole environment.
  bool inherit_env = true;
  std::string working_dir;
  absl::Duration timeout = absl::Minutes(2);
};

// argv[0] is a path or a name looked up in PATH.
CommandResult RunCommand(const std::vector<std::string>& argv, const CommandOptions& options = {});

// OK when the command exits 0; else kInternal with the command line, exit code and
// output.
absl::Status RunCommandOk(const std::vector<std::string>& argv, const CommandOptions& options = {});

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_COMMAND_H_
