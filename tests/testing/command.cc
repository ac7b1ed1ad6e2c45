#include "tests/testing/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

extern char** environ;

namespace zeroscale::testing {

CommandResult RunCommand(const std::vector<std::string>& argv, const CommandOptions& options) {
  CommandResult result;
  if (argv.empty()) return result;
  // Everything the child needs is built before fork: after it, only system calls.
  std::map<std::string, std::string> env;
  for (char** e = environ; options.inherit_env && *e != nullptr; ++e) {
    const std::string kv(*e);
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (std::string& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);
  const std::string dir = options.working_dir;

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return result;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    return result;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    if (!dir.empty() && ::chdir(dir.c_str()) != 0) ::_exit(126);
    ::execvpe(argp[0], argp.data(), envp.data());
    const char msg[] = "exec failed\n";
    (void)!::write(STDERR_FILENO, msg, sizeof(msg) - 1);
    ::_exit(127);
  }
  ::close(out[1]);
  const absl::Time deadline = absl::Now() + options.timeout;
  bool killed = false;
  char buf[8192];
  while (true) {
    pollfd p{out[0], POLLIN, 0};
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0 && !killed) {
      ::kill(pid, SIGKILL);
      killed = true;
      absl::StrAppend(&result.output, "\n[killed after ", absl::FormatDuration(options.timeout),
                      "]\n");
    }
    const int ready =
        ::poll(&p, 1, killed ? 1000 : static_cast<int>(std::min<int64_t>(left, 1000)));
    if (ready < 0 && errno != EINTR) break;
    // A grandchild may hold the pipe open after the kill: stop reading soon after.
    if (killed && absl::Now() > deadline + absl::Seconds(5)) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    result.output.append(buf, n);
  }
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

absl::Status RunCommandOk(const std::vector<std::string>& argv, const CommandOptions& options) {
  CommandResult r = RunCommand(argv, options);
  if (r.ok()) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("`", absl::StrJoin(argv, " "), "` exited ", r.exit_code, ": ", r.output));
}

}  // namespace zeroscale::testing
