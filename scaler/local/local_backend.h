// The local backend (SPEC.md section 8): replicas of the workloads file as real child
// processes. Each replica is the app (its command, with {port} replaced by the app port)
// plus a real zeroscale-sidecar in front of it on its own proxy port, so samples reach
// the scaler exactly as from a pod. Scale up starts replicas; scale down stops the
// newest (SIGTERM, SIGKILL after a grace period); a replica whose app or sidecar dies is
// replaced after a backoff that grows while it keeps crashing. Children get their own
// process group and PR_SET_PDEATHSIG(SIGTERM), so nothing outlives the scaler even if it
// is killed; Shutdown() stops them all in order.
//
// Thread-safety: all public methods are thread-safe. One supervisor thread forks, reaps
// and restarts every child (the death signal fires when the thread that forked exits, so
// only a thread that lives as long as the backend may fork). Callbacks (`done`, the
// endpoints listener) run on the supervisor thread, never under the backend's lock; they
// must not block, and they may call back into the backend.
#ifndef ZEROSCALE_SCALER_LOCAL_LOCAL_BACKEND_H_
#define ZEROSCALE_SCALER_LOCAL_LOCAL_BACKEND_H_

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/static_tokens.h"
#include "common/time/backoff.h"
#include "common/time/clock.h"
#include "common/workloads/workloads.h"
#include "scaler/decide/decision.h"

namespace zeroscale::local {

struct LocalBackendOptions {
  // The zeroscale-sidecar executable.
  std::string sidecar_path;
  // The scaler's gRPC address as the sidecars should dial it ("127.0.0.1:9090").
  std::string scaler_address;
  // The sidecars' --scaler-ca (the scaler serves TLS); empty: plain text.
  std::string scaler_ca_file;
  // The sidecars' --sample-interval.
  absl::Duration sample_interval = absl::Seconds(1);
  // SIGTERM -> SIGKILL, unless the workload sets stopGraceSeconds.
  absl::Duration stop_grace = absl::Seconds(10);
  // Restart delays of a crash-looping replica: the first crash after a healthy run is
  // replaced at once, further ones after initial, 2*initial, ... up to max.
  absl::Duration restart_backoff_initial = absl::Milliseconds(500);
  absl::Duration restart_backoff_max = absl::Seconds(30);
  // A replica that lived this long before dying was healthy: the backoff starts over.
  absl::Duration healthy_after = absl::Seconds(10);
  // Empty: children inherit the scaler's stdout and stderr. Otherwise each process
  // appends to <log_dir>/<name>-<n>.app.log and .sidecar.log.
  std::string log_dir;
  // Appended to every sidecar's command line (e.g. "--cgroup-root=" for /proc only).
  std::vector<std::string> extra_sidecar_args;
  // When set (not owned), each replica's sidecar gets a credential of its own, bound to
  // its pod and workload: a fresh random token registered here while the replica lives,
  // written 0600 into a directory only this user may enter (made with mkdtemp under
  // $TMPDIR, removed at Shutdown) and passed as --token-file. The scaler accepts it for
  // that pod's samples only.
  auth::StaticTokens* credentials = nullptr;
};

// One running replica as the balancer should reach it.
struct Endpoint {
  std::string pod;      // "local/demo-model-3"
  std::string address;  // "127.0.0.1:<proxy port>", the sidecar in front of the app
  absl::Time started_at;
  bool operator==(const Endpoint& o) const {
    return pod == o.pod && address == o.address && started_at == o.started_at;
  }
};

// Counters of one workload since the backend started.
struct ReplicaStats {
  int32_t desired = 0;          // what SetReplicas asked for (GetReplicas)
  int32_t running = 0;          // replicas with both processes alive
  int32_t restarting = 0;       // desired but not running yet (waiting out a restart backoff)
  uint64_t started = 0;         // replicas started (including replacements)
  uint64_t stopped = 0;         // replicas stopped by scale-down or shutdown
  uint64_t crashed = 0;         // replicas whose app or sidecar exited on its own
  uint64_t spawn_failures = 0;  // commands that could not be executed at all
  // While a crash-looping replica waits out its restart backoff: when it may start.
  absl::Time next_start_at = absl::InfinitePast();
};

class LocalBackend : public decide::ReplicaSetter {
 public:
  // Called with a workload's running replicas whenever one is added or removed.
  using EndpointsListener =
      std::function<void(const std::string& workload, const std::vector<Endpoint>& endpoints)>;

  // `clock` times restart backoffs and stop grace periods; it must outlive the backend.
  LocalBackend(std::vector<workloads::Workload> workloads, LocalBackendOptions options,
               const Clock* clock = RealClock::Get());
  // Shutdown().
  ~LocalBackend() override;

  LocalBackend(const LocalBackend&) = delete;
  LocalBackend& operator=(const LocalBackend&) = delete;

  // Set before Start(); replaces any earlier listener.
  void SetEndpointsListener(EndpointsListener listener);

  // Checks what can be checked before anything runs (the sidecar binary is executable,
  // each command's program is found, working directories exist) and starts the
  // supervisor. Every workload starts at zero replicas: the decider brings them to
  // minReplicas. kFailedPrecondition naming the workload and field when the
  // configuration cannot work.
  absl::Status Start();

  // Starts or stops replicas so that `n` run, then calls `done` without waiting for the
  // apps to become ready (readiness arrives with the sidecars' samples). kNotFound for
  // a workload not in the file; kInvalidArgument for n outside 0..maxReplicas;
  // kUnavailable once shut down; kFailedPrecondition when the command could not be
  // executed at all (the replicas are retried with backoff anyway). Before Start() the
  // count is recorded, and applied (and `done` called) once started.
  // `from` is not checked: the backend is the only writer of its replica counts.
  void SetReplicas(const std::string& workload, int32_t from, int32_t n, const std::string& reason,
                   std::function<void(absl::Status)> done) override;
  // The replica count last set, like a Deployment's spec.replicas: a crashed replica
  // waiting for its restart still counts, one being stopped does not.
  void GetReplicas(const std::string& workload,
                   std::function<void(absl::StatusOr<int32_t>)> done) override;

  // Running replicas of `workload` (empty when unknown), oldest first.
  std::vector<Endpoint> Endpoints(const std::string& workload) const;
  // The process ids of `workload`'s running replicas: {app pid, sidecar pid} each, oldest
  // first. For tests and diagnostics.
  std::vector<std::pair<pid_t, pid_t>> Pids(const std::string& workload) const;
  ReplicaStats Stats(const std::string& workload) const;
  const std::vector<workloads::Workload>& workloads() const { return workloads_; }

  // Stops every replica (SIGTERM, SIGKILL after the grace period), reaps them and ends
  // the supervisor. Blocks until every child is gone. Idempotent. Not from a callback.
  void Shutdown();

 private:
  struct Process {
    pid_t pid = -1;
    int pidfd = -1;  // readable when the process exits; -1 once reaped
  };
  enum class Phase { kRunning, kStopping };
  struct Replica {
    uint64_t serial = 0;  // makes the pod id unique: <name>-<serial>
    std::string pod;
    Phase phase = Phase::kRunning;
    Process app, sidecar;
    uint16_t app_port = 0, proxy_port = 0, admin_port = 0;
    absl::Time started_at;
    absl::Time deadline = absl::InfiniteFuture();  // kStopping: when SIGKILL follows
    bool killed = false;                           // SIGKILL sent
    std::string token, token_file;                 // its credential, when given one
  };
  struct WorkloadState {
    const workloads::Workload* spec = nullptr;
    int32_t desired = 0;
    uint64_t next_serial = 0;
    int consecutive_crashes = 0;
    // Restart backoff: no replica of this workload starts before then.
    absl::Time next_start_at = absl::InfinitePast();
    // Replicas in start order; kStopping ones linger here until both processes are reaped.
    std::vector<std::unique_ptr<Replica>> replicas;
    std::vector<std::function<void(absl::Status)>> pending_done;
    ReplicaStats stats;
  };

  void Run();
  void Wake();
  // Everything below runs on the supervisor thread with mu_ held.
  void Reconcile(WorkloadState& w, absl::Time now, std::vector<std::function<void()>>* calls);
  absl::Status StartReplica(WorkloadState& w, Replica& r, absl::Time now);
  void StopReplica(WorkloadState& w, Replica& r, absl::Time now, const char* why);
  void Reap(WorkloadState& w, Replica& r, absl::Time now,
            std::vector<std::function<void()>>* calls);
  void NotifyEndpoints(const WorkloadState& w, std::vector<std::function<void()>>* calls);
  // Gives `r` a credential (options_.credentials); ForgetCredential withdraws it.
  absl::Status IssueCredential(const WorkloadState& w, Replica& r, const std::string& base);
  void ForgetCredential(Replica& r);
  std::vector<Endpoint> EndpointsLocked(const WorkloadState& w) const;
  uint16_t PickPort();
  absl::Duration GraceOf(const WorkloadState& w) const;
  // Restart delays of a crash-looping workload (one process tree: nothing to jitter).
  BackoffPolicy RestartBackoff() const;

  const std::vector<workloads::Workload> workloads_;
  const LocalBackendOptions options_;
  const Clock* const clock_;
  uint64_t clock_subscription_ = 0;

  mutable std::mutex mu_;
  std::map<std::string, WorkloadState> state_;  // by workload id
  std::set<uint16_t> ports_in_use_;
  EndpointsListener listener_;
  bool started_ = false;
  bool shutting_down_ = false;
  bool finished_ = false;
  std::condition_variable finished_cv_;
  int wake_fd_ = -1;            // eventfd: a command is waiting for the supervisor
  std::string credential_dir_;  // mkdtemp'd by Start when credentials are given
  std::thread thread_;
};

// The decider's view of a workload of the file.
decide::WorkloadSpec SpecOf(const workloads::Workload& workload);

}  // namespace zeroscale::local

#endif  // ZEROSCALE_SCALER_LOCAL_LOCAL_BACKEND_H_
