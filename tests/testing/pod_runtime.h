// The kubelet stand-in's container runtime: pod sandboxes and container processes
// through zs-pod-shim (see pod_shim.cc), and the pod network.
//
// A sandbox is a `pause` process, PID 1 of new network, PID, mount, UTS and IPC
// namespaces, with its own /proc. Its network is a veth pair: eth0 inside with the pod
// IP/32 and a default route through the test's namespace, the other end in the test's
// namespace with a /32 route to the pod. Containers join the sandbox's namespaces
// (with a mount namespace each, and a PID namespace each unless the pod shares one).
//
// Every process is a child of the thread that started it and dies with that thread
// (PR_SET_PDEATHSIG), so a crashed test leaves nothing behind; killing the sandbox
// kills every process of the pod (the PID namespace ends with its PID 1).
//
// Thread-safety: a PodSandbox or ContainerProcess is used by one thread (its pod's
// worker), which must be the one that created it and outlive it.
#ifndef ZEROSCALE_TESTS_TESTING_POD_RUNTIME_H_
#define ZEROSCALE_TESTS_TESTING_POD_RUNTIME_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/command.h"

namespace zeroscale::testing {

using EnvList = std::vector<std::pair<std::string, std::string>>;

struct SandboxOptions {
  std::string shim;   // zs-pod-shim
  std::string pause;  // pause
  std::string hostname;
  std::string ip;         // 198.18.1.N
  std::string host_ip;    // the test's namespace address pods route through
  std::string veth_name;  // the test-side end, unique in the test's namespace (<= 15 chars)
  std::string log_path;   // the shim's own messages
};

class PodSandbox {
 public:
  static absl::StatusOr<std::unique_ptr<PodSandbox>> Create(const SandboxOptions& options);
  ~PodSandbox();  // Destroy()
  // Kills the pause process, and with it every process of the pod and its network.
  void Destroy();
  pid_t pause_pid() const { return pause_pid_; }
  const std::string& ip() const { return ip_; }

 private:
  PodSandbox() = default;
  pid_t shim_pid_ = -1;
  pid_t pause_pid_ = -1;
  std::string ip_;
};

struct ContainerStart {
  std::string shim;
  pid_t sandbox_pid = -1;
  bool own_pid_namespace = true;
  struct Mount {
    std::string source;  // a directory or file of the test's file system
    std::string target;  // where the container sees it
    bool read_only = false;
  };
  std::vector<Mount> mounts;
  std::string working_dir;
  std::vector<std::string> argv;
  EnvList env;           // the container's whole environment
  std::string log_path;  // stdout and stderr, appended
};

class ContainerProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ContainerProcess>> Start(const ContainerStart& start);
  ~ContainerProcess();  // SIGKILL and reap
  // Sends `sig` to the container's main process (through the shim).
  void Signal(int sig);
  // SIGKILL to the shim: the container's process dies with it.
  void Kill();
  // The exit code once it has exited (128+N for signal N), without blocking.
  std::optional<int> Poll();
  pid_t shim_pid() const { return pid_; }

 private:
  ContainerProcess() = default;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Runs argv in every namespace of a running container (that of `container_shim`), with
// `env`; its output and exit code. Thread-safe.
CommandResult ExecInContainer(const std::string& shim, pid_t container_shim,
                              const std::vector<std::string>& argv, const EnvList& env,
                              absl::Duration timeout);

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_POD_RUNTIME_H_
