// zs-pod-shim: the kubelet stand-in's container runtime, one process per pod sandbox or
// container (as containerd-shim is). Single-threaded, so it may join namespaces that a
// multi-threaded test cannot (mount namespaces refuse threaded callers).
//
//   zs-pod-shim sandbox --pause=PATH --hostname=NAME
//       New network, PID, mount, UTS and IPC namespaces; forks PATH as their PID 1 with
//       its own /proc (and /dev/shm); prints that process's PID (as the caller sees it)
//       on stdout, then waits for it and exits with its status.
//   zs-pod-shim run --sandbox=PID [--own-pid-namespace] [--mount=SRC:DST[:ro]]...
//                   [--workdir=DIR] -- PROGRAM ARGS...
//       Joins the sandbox of PID, makes a mount namespace of the container's own with the
//       bind mounts (and, with --own-pid-namespace, a PID namespace whose PID 1 is
//       PROGRAM, with its own /proc), and runs PROGRAM with the shim's environment.
//   zs-pod-shim exec --container=SHIM_PID [--workdir=DIR] -- PROGRAM ARGS...
//       Runs PROGRAM in every namespace of a running container (the process the `run`
//       shim SHIM_PID started): exec probes, preStop hooks, a test's "kubectl exec".
//
// In every mode the shim forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2
// to its child and exits with the child's exit code, or 128+N when it was killed by
// signal N. The child dies with the shim (PR_SET_PDEATHSIG), and the shim with its
// caller's thread.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

pid_t g_child = -1;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "zs-pod-shim: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(126);
}

void Forward(int sig) {
  if (g_child > 0) ::kill(g_child, sig);
}

// Waits for the child, forwarding signals, and exits as it did.
[[noreturn]] void Supervise() {
  struct sigaction sa {};
  sa.sa_handler = Forward;
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2})
    ::sigaction(sig, &sa, nullptr);
  int status = 0;
  while (::waitpid(g_child, &status, 0) < 0) {
    if (errno != EINTR) Die("waitpid");
  }
  std::exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

bool StartsWith(const std::string& s, const char* prefix) {
  return s.compare(0, std::strlen(prefix), prefix) == 0;
}

void MkdirAll(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') ::mkdir(path.substr(0, i).c_str(), 0755);
  }
}

void MountProc() {
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    Die("mounting /proc");
  }
}

// Every namespace of process `pid` (mnt last: it changes what paths mean). Joining its
// PID namespace applies to the children forked afterwards.
void JoinAll(const std::string& pid) {
  const std::string base = "/proc/" + pid + "/ns/";
  // Opened first: after joining the mount namespace, /proc is the pod's.
  struct Ns {
    std::string file;
    int type;
    int fd;
  };
  std::vector<Ns> all = {{"ipc", CLONE_NEWIPC, -1},
                         {"uts", CLONE_NEWUTS, -1},
                         {"net", CLONE_NEWNET, -1},
                         {"pid", CLONE_NEWPID, -1},
                         {"mnt", CLONE_NEWNS, -1}};
  for (Ns& ns : all) {
    ns.fd = ::open((base + ns.file).c_str(), O_RDONLY | O_CLOEXEC);
    if (ns.fd < 0) Die("open " + base + ns.file);
  }
  for (Ns& ns : all) {
    if (::setns(ns.fd, ns.type) != 0) Die("setns " + base + ns.file);
    ::close(ns.fd);
  }
}

[[noreturn]] void ExecChild(const std::vector<std::string>& argv, const std::string& workdir,
                            bool mount_proc) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (mount_proc) MountProc();
  if (::chdir(workdir.empty() ? "/" : workdir.c_str()) != 0) Die("chdir " + workdir);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  std::fprintf(stderr, "zs-pod-shim: exec %s: %s\n", args[0], std::strerror(errno));
  std::exit(127);
}

int Sandbox(const std::string& pause, const std::string& hostname) {
  if (::unshare(CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC) != 0) {
    Die("unshare");
  }
  // Nothing mounted for the pod propagates back to the test's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Die("making / private");
  if (!hostname.empty() && ::sethostname(hostname.data(), hostname.size()) != 0) Die("sethostname");
  g_child = ::fork();
  if (g_child < 0) Die("fork");
  if (g_child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    MountProc();  // this process is PID 1 of the new namespace: /proc shows the pod
    ::mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    ::execl(pause.c_str(), pause.c_str(), static_cast<char*>(nullptr));
    Die("exec " + pause);
  }
  std::printf("%d\n", g_child);
  std::fflush(stdout);
  ::close(STDOUT_FILENO);
  Supervise();
}

struct Mount {
  std::string src;
  std::string dst;
  bool read_only = false;
};

int Run(const std::string& sandbox, bool own_pid, const std::vector<Mount>& mounts,
        const std::string& workdir, const std::vector<std::string>& argv) {
  JoinAll(sandbox);
  if (::unshare(CLONE_NEWNS) != 0) Die("unshare(CLONE_NEWNS)");
  for (const Mount& m : mounts) {
    struct stat st {};
    const bool dir = ::stat(m.src.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    if (dir) {
      MkdirAll(m.dst);
    } else {
      MkdirAll(m.dst.substr(0, m.dst.rfind('/')));
      const int fd = ::open(m.dst.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0) ::close(fd);
    }
    if (::mount(m.src.c_str(), m.dst.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      Die("bind-mounting " + m.src + " at " + m.dst);
    }
    if (m.read_only &&
        ::mount(nullptr, m.dst.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      Die("making " + m.dst + " read-only");
    }
  }
  g_child = ::fork();
  if (g_child < 0) Die("fork");
  if (g_child == 0) {
    if (!own_pid) ExecChild(argv, workdir, false);
    // A process that joined a PID namespace with setns cannot make another one (EINVAL):
    // this child, already in the pod's, nests the container's own inside it and
    // supervises the container as its parent does.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::unshare(CLONE_NEWPID) != 0) Die("unshare(CLONE_NEWPID)");
    g_child = ::fork();
    if (g_child < 0) Die("fork");
    if (g_child == 0) ExecChild(argv, workdir, true);
  }
  Supervise();
}

std::string ReadSmall(const std::string& path) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  ::close(fd);
  return out;
}

// The container's process under a `run` shim: the first descendant that is not a shim.
std::string ContainerProcessOf(const std::string& shim) {
  std::string pid = shim;
  for (int depth = 0; depth < 4; ++depth) {
    std::string comm = ReadSmall("/proc/" + pid + "/comm");
    if (comm.empty()) break;
    if (comm != "zs-pod-shim\n") return pid;
    const std::string children = ReadSmall("/proc/" + pid + "/task/" + pid + "/children");
    pid = children.substr(0, children.find(' '));
    if (pid.empty()) break;
  }
  errno = ESRCH;
  Die("the container of shim " + shim + " is not running");
}

int Exec(const std::string& container, const std::string& workdir,
         const std::vector<std::string>& argv) {
  JoinAll(ContainerProcessOf(container));
  g_child = ::fork();
  if (g_child < 0) Die("fork");
  if (g_child == 0) ExecChild(argv, workdir, false);
  Supervise();
}

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: zs-pod-shim sandbox --pause=PATH [--hostname=NAME]\n"
               "       zs-pod-shim run --sandbox=PID [--own-pid-namespace] "
               "[--mount=SRC:DST[:ro]]... [--workdir=DIR] -- PROGRAM ARGS...\n"
               "       zs-pod-shim exec --container=PID [--workdir=DIR] -- PROGRAM ARGS...\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  // A container's crash must not leave core files in the test's working directory.
  rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (argc < 2) Usage();
  const std::string mode = argv[1];
  std::string pause, hostname, sandbox, container, workdir;
  bool own_pid = false;
  std::vector<Mount> mounts;
  std::vector<std::string> program;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      program.assign(argv + i + 1, argv + argc);
      break;
    }
    const std::string value = a.substr(a.find('=') + 1);
    if (StartsWith(a, "--pause=")) {
      pause = value;
    } else if (StartsWith(a, "--hostname=")) {
      hostname = value;
    } else if (StartsWith(a, "--sandbox=")) {
      sandbox = value;
    } else if (StartsWith(a, "--container=")) {
      container = value;
    } else if (StartsWith(a, "--workdir=")) {
      workdir = value;
    } else if (a == "--own-pid-namespace") {
      own_pid = true;
    } else if (StartsWith(a, "--mount=")) {
      // SRC:DST[:ro]; paths in these tests hold no ':'.
      Mount m;
      const size_t c1 = value.find(':');
      if (c1 == std::string::npos) Usage();
      m.src = value.substr(0, c1);
      std::string rest = value.substr(c1 + 1);
      if (rest.size() > 3 && rest.compare(rest.size() - 3, 3, ":ro") == 0) {
        m.read_only = true;
        rest.resize(rest.size() - 3);
      }
      m.dst = rest;
      mounts.push_back(m);
    } else {
      Usage();
    }
  }
  if (mode == "sandbox" && !pause.empty()) return Sandbox(pause, hostname);
  if (mode == "run" && !sandbox.empty() && !program.empty()) {
    return Run(sandbox, own_pid, mounts, workdir, program);
  }
  if (mode == "exec" && !container.empty() && !program.empty()) {
    return Exec(container, workdir, program);
  }
  Usage();
}
