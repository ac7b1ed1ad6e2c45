// One Pod's life on the kubelet stand-in (see kubelet.h for what is and is not done):
// sandbox, volumes, containers, probes, status reports and termination, on a thread
// of its own that owns every process of the Pod.
//
// Thread-safety: Update/Remove/Kill/Exec/Signal and the accessors may be called from
// any thread; the worker's own state is touched only by its thread.
#ifndef ZEROSCALE_TESTS_TESTING_POD_WORKER_H_
#define ZEROSCALE_TESTS_TESTING_POD_WORKER_H_

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/testing/command.h"
#include "tests/testing/container_spec.h"
#include "tests/testing/kube_api.h"
#include "tests/testing/pod_runtime.h"

namespace zeroscale::testing {

// What every worker of one kubelet shares. Set up before the first worker starts.
struct NodeContext {
  KubeApi* api = nullptr;  // as the node
  std::string node_name;
  std::string host_ip;
  std::map<std::string, std::string> allocatable;
  // The service variables every container gets (KUBERNETES_SERVICE_HOST ...).
  EnvList service_env;
  std::string shim;
  std::string pause;
  absl::Duration restart_backoff;
  absl::Duration max_restart_backoff;
  // Thread-safe.
  std::function<std::optional<ContainerImage>(const std::string&)> find_image;
  std::function<std::string()> allocate_ip;
  std::function<std::string()> allocate_veth_name;
};

class PodWorker {
 public:
  // Starts the worker's thread. `dir` is the Pod's directory (logs, volumes).
  PodWorker(const NodeContext* node, json pod, std::string dir);
  ~PodWorker();  // Kill() and join

  // A newer version of the Pod from the watch.
  void Update(json pod);
  // The Pod is gone from the API (force-deleted): kill everything now.
  void Remove();
  // The kubelet stops: kill everything now, leave the API alone.
  void Kill();
  // True once the worker has finished (the Pod deleted, or killed).
  bool done() const { return done_; }

  const std::string& uid() const { return uid_; }
  const std::string& ns() const { return ns_; }
  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }

  CommandResult Exec(const std::string& container, const std::vector<std::string>& argv,
                     absl::Duration timeout);
  absl::Status Signal(const std::string& container, int sig);

 private:
  struct Probe {
    json handler;  // null: not defined
    absl::Duration initial_delay, period, timeout;
    int success_threshold = 1, failure_threshold = 3;
    absl::Time next = absl::InfinitePast();
    int successes = 0, failures = 0;
  };
  struct Container {
    json spec;
    std::string name;
    bool init = false;
    std::unique_ptr<ContainerProcess> process;
    EnvList env;
    int restarts = 0;
    int runs = 0;
    absl::Time started_at;
    absl::Time next_start = absl::InfinitePast();
    absl::Duration backoff;
    json last_terminated;  // the previous run, for lastState
    json terminated;       // set while not running
    std::string waiting_reason = "ContainerCreating";
    std::string waiting_message;
    bool ready = false;
    bool started = false;   // the startup probe passed (or there is none)
    bool finished = false;  // exited and not to be restarted
    absl::Time kill_deadline = absl::InfiniteFuture();  // liveness kill in progress
    Probe readiness, liveness, startup;
  };
  struct Token {
    std::string file;
    std::string audience;
    int64_t expiration_seconds = 3600;
    absl::Time refresh_at;
  };

  void Run();
  // One pass of everything due; false when the pod has terminated for good.
  void Step();
  bool SetUpSandbox();
  absl::Status PrepareVolumes();
  absl::Status WriteVolume(const json& volume, const std::string& dir);
  absl::Status WriteProjection(const json& source, const std::string& dir, int mode);
  absl::Status WriteToken(const Token& token);
  void RefreshTokens();
  void SyncContainers();
  void StartContainer(Container& c);
  void ReapContainer(Container& c);
  void RunProbes(Container& c);
  bool RunProbe(Container& c, Probe& p, const char* kind);
  void Terminate();
  void TearDown();
  void Report();
  json StatusJson();
  json ContainerStatus(const Container& c) const;
  PodContext Context(const json& pod) const;
  absl::StatusOr<std::map<std::string, std::string>> DataOf(const std::string& kind,
                                                            const std::string& name);
  void Log(const std::string& line);
  // Waits until notified or `d` passes; true when the worker must stop at once.
  bool Wait(absl::Duration d);
  json Pod();  // the newest version

  const NodeContext* node_;
  const std::string dir_;
  std::string uid_, ns_, name_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  json pod_;              // guarded by mu_
  bool changed_ = false;  // guarded by mu_
  bool removed_ = false;  // guarded by mu_
  bool killed_ = false;   // guarded by mu_
  // Running containers' shim PIDs and environments, for Exec/Signal from other threads.
  std::map<std::string, std::pair<pid_t, EnvList>> running_;  // guarded by mu_
  std::atomic<bool> done_{false};

  // The worker thread's own.
  std::unique_ptr<PodSandbox> sandbox_;
  std::string ip_;
  absl::Time next_sandbox_try_ = absl::InfinitePast();
  bool volumes_ready_ = false;
  std::string volume_error_;
  absl::Time next_volume_try_ = absl::InfinitePast();
  std::vector<Container> containers_;  // init containers first
  std::vector<Token> tokens_;
  absl::Time start_time_;
  std::string phase_ = "Pending";
  std::map<std::string, std::pair<std::string, absl::Time>> conditions_;  // type -> status, since
  std::string last_report_;

  std::thread thread_;
};

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_POD_WORKER_H_
