#include "tests/testing/pod_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/status/status_macros.h"

namespace zeroscale::testing {
namespace {

// fork + execve with everything prepared beforehand (the caller is multi-threaded).
// stdout goes to `stdout_fd` when >= 0, else with stderr to `log_path`.
absl::StatusOr<pid_t> Spawn(std::vector<std::string> argv, const EnvList& env,
                            const std::string& log_path, int stdout_fd = -1) {
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", log_path, ": ", std::strerror(errno)));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log);
    return absl::InternalError("fork failed");
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::setpgid(0, 0);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::dup2(stdout_fd >= 0 ? stdout_fd : log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(log);
  return pid;
}

// Reaps `pid`, waiting at most `timeout`; its exit code (128+N for signal N), or
// nullopt while it runs.
std::optional<int> Reap(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) return 255;  // not our child any more
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

// A line from `fd` within `timeout` (the sandbox shim's report of its pause PID).
absl::StatusOr<std::string> ReadLine(int fd, absl::Duration timeout) {
  std::string line;
  const absl::Time deadline = absl::Now() + timeout;
  while (line.find('\n') == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return absl::DeadlineExceededError("the sandbox shim did not report");
    if (::poll(&p, 1, ms) <= 0) continue;
    char buf[64];
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return absl::InternalError("the sandbox shim exited before reporting");
    line.append(buf, n);
  }
  return line.substr(0, line.find('\n'));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PodSandbox>> PodSandbox::Create(const SandboxOptions& o) {
  std::unique_ptr<PodSandbox> sandbox(new PodSandbox());
  sandbox->ip_ = o.ip;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  absl::StatusOr<pid_t> pid =
      Spawn({o.shim, "sandbox", "--pause=" + o.pause, "--hostname=" + o.hostname}, {}, o.log_path,
            out[1]);
  ::close(out[1]);
  if (!pid.ok()) {
    ::close(out[0]);
    return pid.status();
  }
  sandbox->shim_pid_ = *pid;
  absl::StatusOr<std::string> line = ReadLine(out[0], absl::Seconds(10));
  ::close(out[0]);
  if (!line.ok() || !absl::SimpleAtoi(*line, &sandbox->pause_pid_)) {
    return absl::InternalError(absl::StrCat(
        "creating the pod sandbox: ", line.ok() ? *line : std::string(line.status().message()),
        " (see ", o.log_path, ")"));
  }
  const std::string pid_text = absl::StrCat(sandbox->pause_pid_);
  const std::string cidr = absl::StrCat(o.ip, "/32");
  const CommandOptions quiet{{}, true, "", absl::Seconds(20)};
  ZS_RETURN_IF_ERROR(RunCommandOk(
      {"ip", "link", "add", o.veth_name, "type", "veth", "peer", "name", "eth0", "netns", pid_text},
      quiet));
  ZS_RETURN_IF_ERROR(RunCommandOk({"ip", "link", "set", o.veth_name, "up"}, quiet));
  ZS_RETURN_IF_ERROR(
      RunCommandOk({"ip", "route", "add", cidr, "dev", o.veth_name, "src", o.host_ip}, quiet));
  const std::string in_pod =
      absl::StrCat("ip link set lo up && ip addr add ", cidr,
                   " dev eth0 && ip link set eth0 up && ", "ip route add ", o.host_ip,
                   "/32 dev eth0 && ip route add default via ", o.host_ip, " dev eth0");
  ZS_RETURN_IF_ERROR(RunCommandOk(
      {"nsenter", absl::StrCat("--net=/proc/", pid_text, "/ns/net"), "sh", "-c", in_pod}, quiet));
  return sandbox;
}

PodSandbox::~PodSandbox() { Destroy(); }

void PodSandbox::Destroy() {
  if (shim_pid_ <= 0) return;
  // The PID namespace ends with its PID 1: every process of the pod is killed.
  if (pause_pid_ > 0) ::kill(pause_pid_, SIGKILL);
  ::kill(shim_pid_, SIGKILL);
  Reap(shim_pid_, absl::Seconds(10));
  shim_pid_ = pause_pid_ = -1;
}

absl::StatusOr<std::unique_ptr<ContainerProcess>> ContainerProcess::Start(const ContainerStart& s) {
  std::vector<std::string> argv = {s.shim, "run", absl::StrCat("--sandbox=", s.sandbox_pid)};
  if (s.own_pid_namespace) argv.push_back("--own-pid-namespace");
  for (const ContainerStart::Mount& m : s.mounts) {
    argv.push_back(absl::StrCat("--mount=", m.source, ":", m.target, m.read_only ? ":ro" : ""));
  }
  if (!s.working_dir.empty()) argv.push_back("--workdir=" + s.working_dir);
  argv.push_back("--");
  argv.insert(argv.end(), s.argv.begin(), s.argv.end());
  ZS_ASSIGN_OR_RETURN(pid_t pid, Spawn(std::move(argv), s.env, s.log_path));
  std::unique_ptr<ContainerProcess> p(new ContainerProcess());
  p->pid_ = pid;
  return p;
}

ContainerProcess::~ContainerProcess() {
  Kill();
  if (!exit_code_) Reap(pid_, absl::Seconds(10));
}

void ContainerProcess::Signal(int sig) {
  if (!exit_code_) ::kill(pid_, sig);
}

void ContainerProcess::Kill() { Signal(SIGKILL); }

std::optional<int> ContainerProcess::Poll() {
  if (!exit_code_) exit_code_ = Reap(pid_, absl::ZeroDuration());
  return exit_code_;
}

CommandResult ExecInContainer(const std::string& shim, pid_t container_shim,
                              const std::vector<std::string>& argv, const EnvList& env,
                              absl::Duration timeout) {
  std::vector<std::string> full = {shim, "exec", absl::StrCat("--container=", container_shim),
                                   "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  CommandOptions options;
  options.env = env;
  options.inherit_env = false;
  options.timeout = timeout;
  return RunCommand(full, options);
}

}  // namespace zeroscale::testing
