#include "scaler/local/local_backend.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/log/log.h"

extern char** environ;

namespace zeroscale::local {
namespace {

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// Without pidfds (kernels before 5.3) exits are found by polling at this period.
constexpr absl::Duration kPollFallback = absl::Milliseconds(100);

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

std::string ErrnoText(int err) { return std::strerror(err); }

std::string ExitText(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)),
                        ")");
  }
  return absl::StrCat("status ", status);
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Where execve() will find `program`: as given when it has a slash (relative to the
// child's working directory), else the first executable in PATH. Resolved before fork
// because PATH search allocates, which a child of a threaded process must not do.
absl::StatusOr<std::string> ResolveProgram(const std::string& program,
                                           const std::string& working_dir,
                                           const std::string& path_env) {
  if (absl::StrContains(program, '/')) {
    const std::string full = (program.front() == '/' || working_dir.empty())
                                 ? program
                                 : absl::StrCat(working_dir, "/", program);
    if (!IsExecutableFile(full)) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", program, "' is not an executable file",
                       working_dir.empty() ? "" : absl::StrCat(" (in ", working_dir, ")")));
    }
    return program;
  }
  for (absl::string_view dir : absl::StrSplit(path_env, ':')) {
    const std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", program);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::FailedPreconditionError(absl::StrCat("'", program, "' is not found in PATH"));
}

std::string PathOf(const std::vector<std::string>& env) {
  for (const std::string& kv : env) {
    if (absl::StartsWith(kv, "PATH=")) return kv.substr(5);
  }
  return "/usr/local/bin:/usr/bin:/bin";
}

// The inherited environment with `overrides` applied.
std::vector<std::string> Environment(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view kv(*e);
    const std::string name(kv.substr(0, kv.find('=')));
    if (overrides.count(name) == 0) env.emplace_back(kv);
  }
  for (const auto& [name, value] : overrides) env.push_back(absl::StrCat(name, "=", value));
  return env;
}

struct SpawnRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string working_dir;
  std::string log_path;  // empty: inherit stdout/stderr
};

struct Spawned {
  pid_t pid = -1;
  int pidfd = -1;
};

// Child side of Spawn(): only async-signal-safe calls until execve. On failure the
// errno goes up the pipe, so the parent can say why.
[[noreturn]] void ExecChild(const char* program, char* const* argv, char* const* envp,
                            const char* working_dir, int stdin_fd, int log_fd, int err_fd,
                            pid_t parent) {
  ::setpgid(0, 0);  // own group: a stop reaches the app's own children too
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::_exit(0);  // the scaler died before the prctl took effect
  // The scaler blocks SIGTERM/SIGINT for its own sigwait and may ignore SIGPIPE; the app
  // must start with the defaults or it could never be stopped gracefully.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
  ::dup2(stdin_fd, 0);
  if (log_fd >= 0) {
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
  }
  // Descriptors the scaler opened without O_CLOEXEC (listening sockets, Redis) must not
  // leak into replicas and keep ports busy after the scaler is gone.
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  int err = 0;
  if (working_dir[0] != '\0' && ::chdir(working_dir) != 0) {
    err = errno;
  } else {
    ::execve(program, argv, envp);
    err = errno;
  }
  ssize_t ignored = ::write(err_fd, &err, sizeof(err));
  (void)ignored;
  ::_exit(127);
}

absl::StatusOr<Spawned> Spawn(const SpawnRequest& req) {
  absl::StatusOr<std::string> program =
      ResolveProgram(req.argv.at(0), req.working_dir, PathOf(req.env));
  if (!program.ok()) return program.status();
  std::vector<char*> argv, envp;
  for (const std::string& a : req.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : req.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  const int stdin_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int log_fd = -1;
  if (!req.log_path.empty()) {
    log_fd = ::open(req.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      const int err = errno;
      if (stdin_fd >= 0) ::close(stdin_fd);
      return absl::FailedPreconditionError(
          absl::StrCat("cannot open log file ", req.log_path, ": ", ErrnoText(err)));
    }
  }
  int pipe_fds[2];
  if (stdin_fd < 0 || ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    const int err = errno;
    if (stdin_fd >= 0) ::close(stdin_fd);
    if (log_fd >= 0) ::close(log_fd);
    return absl::UnavailableError(absl::StrCat("cannot prepare a child: ", ErrnoText(err)));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ExecChild(program->c_str(), argv.data(), envp.data(), req.working_dir.c_str(), stdin_fd, log_fd,
              pipe_fds[1], parent);
  }
  const int fork_errno = errno;
  ::close(pipe_fds[1]);
  ::close(stdin_fd);
  if (log_fd >= 0) ::close(log_fd);
  if (pid < 0) {
    ::close(pipe_fds[0]);
    return absl::UnavailableError(absl::StrCat("fork failed: ", ErrnoText(fork_errno)));
  }
  ::setpgid(pid, pid);  // also from here, so the group exists before any kill(-pid)
  // The pipe closes on a successful exec; otherwise it carries the child's errno.
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(pipe_fds[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(pipe_fds[0]);
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return absl::FailedPreconditionError(
        absl::StrCat("cannot execute ", req.argv[0],
                     req.working_dir.empty() ? "" : absl::StrCat(" in ", req.working_dir), ": ",
                     ErrnoText(child_errno)));
  }
  Spawned s;
  s.pid = pid;
  s.pidfd = PidfdOpen(pid);  // -1: fall back to polling
  if (s.pidfd >= 0) ::fcntl(s.pidfd, F_SETFD, FD_CLOEXEC);
  return s;
}

// Signals the process's group, which it leads; the process itself when the group is gone.
void SignalGroup(pid_t pid, int sig) {
  if (pid <= 0) return;
  if (::kill(-pid, sig) != 0) ::kill(pid, sig);
}

}  // namespace

decide::WorkloadSpec SpecOf(const workloads::Workload& workload) {
  decide::WorkloadSpec spec;
  spec.workload = workload.id;
  spec.min_replicas = workload.min_replicas;
  spec.max_replicas = workload.max_replicas;
  spec.idle_timeout = workload.idle_timeout;
  spec.keep_alive = workload.keep_alive;
  spec.rules = workload.rules;
  spec.rules_source = decide::RuleSource::kWorkloadsFile;
  return spec;
}

LocalBackend::LocalBackend(std::vector<workloads::Workload> workloads, LocalBackendOptions options,
                           const Clock* clock)
    : workloads_(std::move(workloads)), options_(std::move(options)), clock_(clock) {
  for (const workloads::Workload& w : workloads_) state_[w.id].spec = &w;
}

LocalBackend::~LocalBackend() {
  Shutdown();
  if (clock_subscription_ != 0) clock_->Unsubscribe(clock_subscription_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void LocalBackend::SetEndpointsListener(EndpointsListener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  listener_ = std::move(listener);
}

absl::Status LocalBackend::Start() {
  if (!IsExecutableFile(options_.sidecar_path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "local backend: the sidecar '", options_.sidecar_path, "' is not an executable file"));
  }
  if (options_.scaler_address.empty()) {
    return absl::FailedPreconditionError("local backend: no scaler address for the sidecars");
  }
  if (!options_.log_dir.empty() && !IsDirectory(options_.log_dir) &&
      ::mkdir(options_.log_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrCat("local backend: cannot create the log directory ", options_.log_dir, ": ",
                     ErrnoText(errno)));
  }
  if (options_.credentials != nullptr) {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir_template = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                                            "/zeroscale-credentials-XXXXXX");
    // mkdtemp makes it 0700: only this user may read the tokens inside.
    if (::mkdtemp(dir_template.data()) == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("local backend: cannot create a directory for the replicas' credentials: ",
                       ErrnoText(errno)));
    }
    credential_dir_ = dir_template;
  }
  for (const workloads::Workload& w : workloads_) {
    if (!w.working_dir.empty() && !IsDirectory(w.working_dir)) {
      return absl::FailedPreconditionError(
          absl::StrCat("workload ", w.name, ": workingDir ", w.working_dir, " is not a directory"));
    }
    const std::vector<std::string> env = Environment(w.env);
    if (absl::StatusOr<std::string> p = ResolveProgram(w.command[0], w.working_dir, PathOf(env));
        !p.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("workload ", w.name, ": command[0]: ", p.status().message()));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return absl::FailedPreconditionError("local backend: already started");
  if (shutting_down_) return absl::UnavailableError("local backend: shut down");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("local backend: eventfd: ", ErrnoText(errno)));
  }
  started_ = true;
  // A simulated clock that moves must wake the supervisor as a deadline would.
  clock_subscription_ = clock_->Subscribe([this] { Wake(); });
  thread_ = std::thread([this] { Run(); });
  ZS_LOG(kInfo, "local backend started", {"workloads", absl::StrCat(workloads_.size())},
         {"sidecar", options_.sidecar_path}, {"scaler", options_.scaler_address});
  return absl::OkStatus();
}

void LocalBackend::Wake() {
  if (wake_fd_ < 0) return;
  const uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void LocalBackend::SetReplicas(const std::string& workload, int32_t from, int32_t n,
                               const std::string& reason, std::function<void(absl::Status)> done) {
  absl::Status error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = state_.find(workload);
    if (it == state_.end()) {
      error = absl::NotFoundError(absl::StrCat("no workload ", workload, " in the workloads file"));
    } else if (n < 0 || n > it->second.spec->max_replicas) {
      error = absl::InvalidArgumentError(absl::StrCat("replicas for ", workload, " must be 0..",
                                                      it->second.spec->max_replicas, ", got ", n));
    } else if (shutting_down_) {
      error = absl::UnavailableError("local backend is shutting down");
    } else {
      WorkloadState& w = it->second;
      if (w.desired != n) {
        ZS_LOG(kInfo, "setting replicas", {"workload", workload}, {"from", absl::StrCat(w.desired)},
               {"to", absl::StrCat(n)}, {"reason", reason});
      }
      w.desired = n;
      w.stats.desired = n;
      if (done) w.pending_done.push_back(std::move(done));
      Wake();
      return;
    }
  }
  if (done) done(error);
}

void LocalBackend::GetReplicas(const std::string& workload,
                               std::function<void(absl::StatusOr<int32_t>)> done) {
  absl::StatusOr<int32_t> result;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = state_.find(workload);
    if (it == state_.end()) {
      result =
          absl::NotFoundError(absl::StrCat("no workload ", workload, " in the workloads file"));
    } else {
      result = it->second.desired;
    }
  }
  if (done) done(std::move(result));
}

std::vector<Endpoint> LocalBackend::EndpointsLocked(const WorkloadState& w) const {
  std::vector<Endpoint> out;
  for (const auto& r : w.replicas) {
    if (r->phase != Phase::kRunning) continue;
    out.push_back({r->pod, absl::StrCat("127.0.0.1:", r->proxy_port), r->started_at});
  }
  return out;
}

std::vector<Endpoint> LocalBackend::Endpoints(const std::string& workload) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.find(workload);
  if (it == state_.end()) return {};
  return EndpointsLocked(it->second);
}

std::vector<std::pair<pid_t, pid_t>> LocalBackend::Pids(const std::string& workload) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<pid_t, pid_t>> out;
  auto it = state_.find(workload);
  if (it == state_.end()) return out;
  for (const auto& r : it->second.replicas) {
    if (r->phase == Phase::kRunning) out.emplace_back(r->app.pid, r->sidecar.pid);
  }
  return out;
}

ReplicaStats LocalBackend::Stats(const std::string& workload) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.find(workload);
  if (it == state_.end()) return {};
  ReplicaStats s = it->second.stats;
  s.running = 0;
  for (const auto& r : it->second.replicas) s.running += r->phase == Phase::kRunning;
  s.restarting = std::max(0, it->second.desired - s.running);
  if (s.restarting > 0) s.next_start_at = it->second.next_start_at;
  return s;
}

void LocalBackend::Shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!started_) {
    shutting_down_ = true;
    return;
  }
  if (!shutting_down_) {
    shutting_down_ = true;
    ZS_LOG(kInfo, "local backend stopping every replica");
    Wake();
  }
  finished_cv_.wait(lock, [this] { return finished_; });
  lock.unlock();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  if (!credential_dir_.empty()) {
    ::rmdir(credential_dir_.c_str());  // empty by now: each replica's file left with it
    credential_dir_.clear();
  }
}

absl::Status LocalBackend::IssueCredential(const WorkloadState& w, Replica& r,
                                           const std::string& base) {
  if (options_.credentials == nullptr) return absl::OkStatus();
  absl::StatusOr<std::string> token = auth::GenerateToken();
  if (!token.ok()) return token.status();
  const std::string path = absl::StrCat(credential_dir_, "/", base, ".token");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", ErrnoText(errno)));
  }
  const bool written =
      ::write(fd, token->data(), token->size()) == static_cast<ssize_t>(token->size());
  ::close(fd);
  if (!written) {
    ::unlink(path.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ", path));
  }
  options_.credentials->AddPodCredential(*token, r.pod, w.spec->id);
  r.token = *std::move(token);
  r.token_file = path;
  return absl::OkStatus();
}

void LocalBackend::ForgetCredential(Replica& r) {
  if (r.token.empty()) return;
  options_.credentials->Remove(r.token);
  ::unlink(r.token_file.c_str());
  r.token.clear();
  r.token_file.clear();
}

BackoffPolicy LocalBackend::RestartBackoff() const {
  return {options_.restart_backoff_initial, options_.restart_backoff_max, 2.0, Jitter::kNone};
}

absl::Duration LocalBackend::GraceOf(const WorkloadState& w) const {
  return w.spec->stop_grace.value_or(options_.stop_grace);
}

uint16_t LocalBackend::PickPort() {
  // Bound and released at once: another program may take it before the child binds,
  // in which case the replica crashes and is replaced on fresh ports.
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    if (port != 0 && ports_in_use_.insert(port).second) return port;
  }
  return 0;
}

absl::Status LocalBackend::StartReplica(WorkloadState& w, Replica& r, absl::Time now) {
  const workloads::Workload& spec = *w.spec;
  r.app_port = spec.port != 0 ? spec.port : PickPort();
  r.proxy_port = PickPort();
  r.admin_port = PickPort();
  if (r.app_port == 0 || r.proxy_port == 0 || r.admin_port == 0) {
    return absl::UnavailableError("no free port on 127.0.0.1");
  }
  const std::string port = absl::StrCat(r.app_port);
  const std::string base = absl::StrCat(spec.name, "-", r.serial);

  SpawnRequest app;
  for (const std::string& arg : spec.command) {
    app.argv.push_back(absl::StrReplaceAll(arg, {{workloads::kPortPlaceholder, port}}));
  }
  std::map<std::string, std::string> env;
  for (const auto& [name, value] : spec.env) {
    env[name] = absl::StrReplaceAll(value, {{workloads::kPortPlaceholder, port}});
  }
  app.env = Environment(env);
  app.working_dir = spec.working_dir;
  if (!options_.log_dir.empty())
    app.log_path = absl::StrCat(options_.log_dir, "/", base, ".app.log");
  absl::StatusOr<Spawned> a = Spawn(app);
  if (!a.ok()) return a.status();
  r.app.pid = a->pid;
  r.app.pidfd = a->pidfd;

  SpawnRequest sidecar;
  sidecar.argv = {
      options_.sidecar_path, absl::StrCat("--scaler=", options_.scaler_address),
      absl::StrCat("--app-port=", r.app_port),
      // Only the balancer on this machine dials a local replica.
      absl::StrCat("--proxy-listen=127.0.0.1:", r.proxy_port),
      absl::StrCat("--pod=", r.pod), absl::StrCat("--workload=", spec.id),
      absl::StrCat("--admin-listen=127.0.0.1:", r.admin_port),
      absl::StrCat("--sample-interval=", absl::FormatDuration(options_.sample_interval)),
      // A local replica has no container: the sidecar measures the app's process.
      absl::StrCat("--app-pid=", r.app.pid)};
  if (!spec.readiness_path.empty()) {
    sidecar.argv.push_back(absl::StrCat("--readiness-path=", spec.readiness_path));
  }
  if (spec.metrics) {
    sidecar.argv.push_back(absl::StrCat("--app-metrics-path=", spec.metrics->path));
    if (!spec.metrics->preset.empty()) {
      sidecar.argv.push_back(absl::StrCat("--app-metrics-preset=", spec.metrics->preset));
    }
    if (!spec.metrics->series.empty()) {
      sidecar.argv.push_back(absl::StrCat("--app-metrics-series=", spec.metrics->series));
    }
  }
  if (!options_.scaler_ca_file.empty()) {
    sidecar.argv.push_back(absl::StrCat("--scaler-ca=", options_.scaler_ca_file));
  }
  if (absl::Status c = IssueCredential(w, r, base); !c.ok()) return c;  // the caller stops the app
  if (!r.token_file.empty()) sidecar.argv.push_back(absl::StrCat("--token-file=", r.token_file));
  for (const std::string& arg : options_.extra_sidecar_args) sidecar.argv.push_back(arg);
  sidecar.env = Environment({});
  if (!options_.log_dir.empty()) {
    sidecar.log_path = absl::StrCat(options_.log_dir, "/", base, ".sidecar.log");
  }
  absl::StatusOr<Spawned> s = Spawn(sidecar);
  if (!s.ok()) return s.status();  // the caller stops the app
  r.sidecar.pid = s->pid;
  r.sidecar.pidfd = s->pidfd;
  r.started_at = now;
  ++w.stats.started;
  ZS_LOG(kInfo, "replica started", {"workload", spec.id}, {"pod", r.pod},
         {"app_pid", absl::StrCat(r.app.pid)}, {"sidecar_pid", absl::StrCat(r.sidecar.pid)},
         {"app_port", port}, {"address", absl::StrCat("127.0.0.1:", r.proxy_port)});
  return absl::OkStatus();
}

void LocalBackend::StopReplica(WorkloadState& w, Replica& r, absl::Time now, const char* why) {
  r.phase = Phase::kStopping;
  r.deadline = now + GraceOf(w);
  SignalGroup(r.app.pid, SIGTERM);
  SignalGroup(r.sidecar.pid, SIGTERM);
  ZS_LOG(kInfo, "stopping replica", {"workload", w.spec->id}, {"pod", r.pod},
         {"app_pid", absl::StrCat(r.app.pid)}, {"sidecar_pid", absl::StrCat(r.sidecar.pid)},
         {"why", why}, {"grace", absl::FormatDuration(GraceOf(w))});
}

void LocalBackend::NotifyEndpoints(const WorkloadState& w,
                                   std::vector<std::function<void()>>* calls) {
  if (!listener_) return;
  calls->push_back([listener = listener_, id = w.spec->id, endpoints = EndpointsLocked(w)] {
    listener(id, endpoints);
  });
}

// Reaps whichever of the replica's processes exited. A running replica that loses either
// process has crashed: the survivor is stopped and the workload is gated by the backoff.
void LocalBackend::Reap(WorkloadState& w, Replica& r, absl::Time now,
                        std::vector<std::function<void()>>* calls) {
  for (Process* p : {&r.app, &r.sidecar}) {
    if (p->pid <= 0) continue;
    int status = 0;
    const pid_t got = ::waitpid(p->pid, &status, WNOHANG);
    if (got == 0 || (got < 0 && errno == EINTR)) continue;
    // ECHILD: someone reaped it for us (SIGCHLD ignored); it is gone all the same.
    const pid_t pid = p->pid;
    const bool is_app = p == &r.app;
    SignalGroup(pid, SIGKILL);  // stragglers the app left in its group
    if (p->pidfd >= 0) ::close(p->pidfd);
    p->pidfd = -1;
    p->pid = -1;
    const std::string exit = got < 0 ? "reaped elsewhere" : ExitText(status);
    if (r.phase == Phase::kRunning) {
      const absl::Duration lived = now - r.started_at;
      if (lived >= options_.healthy_after) w.consecutive_crashes = 0;
      ++w.consecutive_crashes;
      // The first crash after a healthy run is replaced at once.
      const absl::Duration delay = w.consecutive_crashes > 1
                                       ? RestartBackoff().Ceiling(w.consecutive_crashes - 2)
                                       : absl::ZeroDuration();
      w.next_start_at = now + delay;
      ++w.stats.crashed;
      ZS_LOG(kWarning, "replica crashed", {"workload", w.spec->id}, {"pod", r.pod},
             {"process", is_app ? "app" : "sidecar"}, {"pid", absl::StrCat(pid)}, {"exit", exit},
             {"lived", absl::FormatDuration(absl::Trunc(lived, absl::Milliseconds(1)))},
             {"crashes_in_a_row", absl::StrCat(w.consecutive_crashes)},
             {"restart_in", absl::FormatDuration(delay)});
      StopReplica(w, r, now, "its other process crashed");
      NotifyEndpoints(w, calls);
    } else {
      ZS_LOG(kInfo, "replica process exited", {"workload", w.spec->id}, {"pod", r.pod},
             {"process", is_app ? "app" : "sidecar"}, {"pid", absl::StrCat(pid)}, {"exit", exit});
    }
  }
}

void LocalBackend::Reconcile(WorkloadState& w, absl::Time now,
                             std::vector<std::function<void()>>* calls) {
  // Stopping replicas: SIGKILL past the grace period, forget them once both are reaped.
  for (auto it = w.replicas.begin(); it != w.replicas.end();) {
    Replica& r = **it;
    if (r.phase == Phase::kStopping) {
      if (r.app.pid <= 0 && r.sidecar.pid <= 0) {
        ports_in_use_.erase(r.app_port);
        ports_in_use_.erase(r.proxy_port);
        ports_in_use_.erase(r.admin_port);
        ZS_LOG(kInfo, "replica stopped", {"workload", w.spec->id}, {"pod", r.pod});
        ForgetCredential(r);
        it = w.replicas.erase(it);
        continue;
      }
      if (!r.killed && now >= r.deadline) {
        r.killed = true;
        ZS_LOG(kWarning, "replica did not stop within its grace period; killing it",
               {"workload", w.spec->id}, {"pod", r.pod}, {"app_pid", absl::StrCat(r.app.pid)},
               {"sidecar_pid", absl::StrCat(r.sidecar.pid)});
        SignalGroup(r.app.pid, SIGKILL);
        SignalGroup(r.sidecar.pid, SIGKILL);
      }
    }
    ++it;
  }

  const int32_t target = shutting_down_ ? 0 : w.desired;
  int32_t running = 0;
  for (const auto& r : w.replicas) running += r->phase == Phase::kRunning;
  bool changed = false;
  // Newest first: the oldest replicas are the warmest.
  for (auto it = w.replicas.rbegin(); it != w.replicas.rend() && running > target; ++it) {
    if ((*it)->phase != Phase::kRunning) continue;
    StopReplica(w, **it, now, shutting_down_ ? "shutdown" : "scale down");
    ++w.stats.stopped;
    --running;
    changed = true;
  }
  absl::Status spawn_error;
  while (running < target && now >= w.next_start_at) {
    auto r = std::make_unique<Replica>();
    r->serial = w.next_serial++;
    r->pod = absl::StrCat(workloads::kNamespace, "/", w.spec->name, "-", r->serial);
    absl::Status s = StartReplica(w, *r, now);
    if (!s.ok()) {
      // Whatever did start is stopped; the workload retries after a backoff, as for a crash.
      ++w.stats.spawn_failures;
      ++w.consecutive_crashes;
      const absl::Duration delay = RestartBackoff().Ceiling(w.consecutive_crashes - 1);
      w.next_start_at = now + delay;
      ZS_LOG(kError, "cannot start replica", {"workload", w.spec->id}, {"pod", r->pod},
             {"error", std::string(s.message())}, {"retry_in", absl::FormatDuration(delay)});
      spawn_error = s;
      if (r->app.pid > 0 || r->sidecar.pid > 0) {
        StopReplica(w, *r, now, "its sidecar could not start");
        w.replicas.push_back(std::move(r));
      } else {
        ForgetCredential(*r);
        ports_in_use_.erase(r->app_port);
        ports_in_use_.erase(r->proxy_port);
        ports_in_use_.erase(r->admin_port);
      }
      break;
    }
    w.replicas.push_back(std::move(r));
    ++running;
    changed = true;
  }
  if (changed) NotifyEndpoints(w, calls);
  if (!w.pending_done.empty()) {
    for (auto& done : w.pending_done) {
      calls->push_back([done = std::move(done), spawn_error] { done(spawn_error); });
    }
    w.pending_done.clear();
  }
}

void LocalBackend::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  struct Watch {
    WorkloadState* workload;
    Replica* replica;
  };
  for (;;) {
    const absl::Time now = clock_->Now();
    std::vector<std::function<void()>> calls;
    for (auto& [id, w] : state_) Reconcile(w, now, &calls);

    // What to wait for: any child's exit, a command, or the next deadline.
    std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
    std::vector<Watch> watches{{nullptr, nullptr}};
    absl::Time next = absl::InfiniteFuture();
    bool any_child = false, fallback = false;
    for (auto& [id, w] : state_) {
      int32_t running = 0;
      for (auto& r : w.replicas) {
        running += r->phase == Phase::kRunning;
        if (r->phase == Phase::kStopping && !r->killed) next = std::min(next, r->deadline);
        for (Process* p : {&r->app, &r->sidecar}) {
          if (p->pid <= 0) continue;
          any_child = true;
          if (p->pidfd >= 0) {
            fds.push_back({p->pidfd, POLLIN, 0});
            watches.push_back({&w, r.get()});
          } else {
            fallback = true;
          }
        }
      }
      if (running < (shutting_down_ ? 0 : w.desired)) next = std::min(next, w.next_start_at);
    }
    if (shutting_down_ && !any_child) {
      finished_ = true;
      lock.unlock();
      for (auto& call : calls) call();
      // Commands that raced with the shutdown.
      lock.lock();
      std::vector<std::function<void(absl::Status)>> late;
      for (auto& [id, w] : state_) {
        for (auto& done : w.pending_done) late.push_back(std::move(done));
        w.pending_done.clear();
      }
      lock.unlock();
      for (auto& done : late) done(absl::UnavailableError("local backend shut down"));
      ZS_LOG(kInfo, "local backend stopped");
      finished_cv_.notify_all();
      return;
    }
    if (fallback) next = std::min(next, now + kPollFallback);
    int timeout_ms = -1;
    const absl::Duration block = clock_->BlockFor(next);
    if (block != absl::InfiniteDuration()) {
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(block, absl::Milliseconds(1))), 0, 60000));
    }

    lock.unlock();
    for (auto& call : calls) call();
    calls.clear();
    int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    lock.lock();
    if (ready < 0 && errno != EINTR) {
      ZS_LOG(kError, "local backend: poll failed", {"error", ErrnoText(errno)});
    }
    if (fds[0].revents & POLLIN) {
      uint64_t count;
      ssize_t ignored = ::read(wake_fd_, &count, sizeof(count));
      (void)ignored;
    }
    // Only the supervisor removes replicas, so the pointers are still valid.
    const absl::Time after = clock_->Now();
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents != 0) Reap(*watches[i].workload, *watches[i].replica, after, &calls);
    }
    if (fallback) {
      for (auto& [id, w] : state_) {
        for (auto& r : w.replicas) {
          if ((r->app.pid > 0 && r->app.pidfd < 0) ||
              (r->sidecar.pid > 0 && r->sidecar.pidfd < 0)) {
            Reap(w, *r, after, &calls);
          }
        }
      }
    }
    if (!calls.empty()) {
      lock.unlock();
      for (auto& call : calls) call();
      lock.lock();
    }
  }
}

}  // namespace zeroscale::local
