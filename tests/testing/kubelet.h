// The kubelet stand-in (and the scheduler's part): makes the Pods that the real
// controllers create run on this machine, so tests exercise the real API server, the
// real ReplicaSet/StatefulSet/EndpointSlice controllers and real processes together.
//
// What it does, as the real components do:
// - Registers a Node (allocatable cpu, memory, pods, ephemeral-storage and any extended
//   resource, e.g. "nvidia.com/gpu") and acts as that node with its own credentials
//   (system:node:NAME in system:nodes, so the Node authorizer and NodeRestriction apply).
// - Scheduler (as system:kube-scheduler): binds each unscheduled Pod whose requests fit
//   what the node has left (and whose nodeSelector matches); a Pod that does not fit
//   stays Pending with PodScheduled=False, reason Unschedulable, "0/1 nodes are
//   available: 1 Insufficient nvidia.com/gpu." - and is bound once room is made.
// - For each Pod bound to the node: a sandbox of its own (pod_runtime.h: network
//   namespace with IP 198.18.1.N reached from the test's namespace, PID namespace with
//   `pause` as PID 1, mount namespace with its own /proc, UTS with the pod's name as
//   hostname), volumes (emptyDir, hostPath, configMap, secret, downwardAPI, projected
//   with serviceAccountToken minted by TokenRequest for the given audience and expiry,
//   bound to the Pod, refreshed at 80% of its lifetime), init containers in order, then
//   each container's process from the image table: command/args from the stored Pod
//   with $(VAR) expansion, env with the Downward API (fieldRef, resourceFieldRef),
//   configMapKeyRef/secretKeyRef and envFrom, plus KUBERNETES_SERVICE_HOST/PORT
//   pointing at the API server. Containers share one PID namespace when
//   spec.shareProcessNamespace is true, else each has its own (its process is PID 1).
// - Status as merge patches of pods/status: phase, podIP(s), hostIP, startTime,
//   container statuses (state, lastState, ready, started, restartCount) and the
//   PodScheduled, Initialized, ContainersReady and Ready conditions. Readiness,
//   liveness and startup probes (httpGet, tcpSocket, exec) with initialDelaySeconds,
//   periodSeconds, timeoutSeconds, success/failureThreshold; no readiness probe means
//   ready once started. restartPolicy Always/OnFailure/Never with exponential restart
//   backoff (CrashLoopBackOff while waiting).
// - Deletion: on deletionTimestamp, preStop hooks, SIGTERM to each container, up to
//   deletionGracePeriodSeconds, SIGKILL to what is left, the sandbox torn down, then
//   DELETE with gracePeriodSeconds 0 and the Pod's uid as precondition. A Pod removed
//   outright (force delete) is killed at once.
//
// Not done: image pulls (an image missing from the table is ErrImagePull /
// ImagePullBackOff, which is also a way to keep a Pod not ready), securityContext
// (runAsUser, capabilities, read-only root: processes run as the test's user on the
// host's file system), resource limits (no cgroups; limits only reach the Downward
// API), service links (FOO_SERVICE_HOST variables), postStart hooks, ephemeral and
// persistent volumes other than the above, node heartbeats and Events.
//
// Every process of every pod dies with the test, also when it crashes.
//
// Thread-safety: all public methods are thread-safe.
#ifndef ZEROSCALE_TESTS_TESTING_KUBELET_H_
#define ZEROSCALE_TESTS_TESTING_KUBELET_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/testing/command.h"
#include "tests/testing/container_spec.h"
#include "tests/testing/kube_control_plane.h"

namespace zeroscale::testing {

struct KubeletOptions {
  std::string node_name = "zs-node-0";
  // The node's capacity and allocatable. Add extended resources, e.g.
  // {"nvidia.com/gpu", "1"}.
  std::map<std::string, std::string> allocatable = {
      {"cpu", "8"}, {"memory", "16Gi"}, {"pods", "110"}, {"ephemeral-storage", "100Gi"}};
  std::map<std::string, std::string> node_labels;
  // Image name (with or without tag) -> the local program standing for it.
  std::map<std::string, ContainerImage> images;
  // Pod directories (logs, volumes). Default: <control plane work dir>/kubelet.
  std::string root_dir;
  // Restart backoff: first delay, doubled per restart up to the maximum (the real
  // kubelet's 10 s / 5 min would make tests slow).
  absl::Duration restart_backoff = absl::Seconds(1);
  absl::Duration max_restart_backoff = absl::Seconds(10);
  // Defaults: the programs built with the tests.
  std::string shim_path;
  std::string pause_path;
};

class Kubelet {
 public:
  // Registers the Node and starts scheduling and running Pods. `cluster` must outlive
  // the kubelet. Needs the test's private network (private_network.h).
  static absl::StatusOr<std::unique_ptr<Kubelet>> Start(KubeControlPlane* cluster,
                                                        KubeletOptions options = {});
  ~Kubelet();  // Stop()
  // Kills every pod's processes at once and stops watching; the Pods stay in the API.
  void Stop();

  const std::string& node_name() const;
  // Adds or replaces an image of the table (Pods waiting on ErrImagePull retry it).
  void SetImage(const std::string& name, ContainerImage image);

  // The output of a container of the newest Pod `ns`/`pod` this kubelet ran (it stays
  // after the Pod is deleted), every restart appended; "" when there is none.
  std::string ContainerLog(absl::string_view ns, absl::string_view pod,
                           absl::string_view container) const;
  std::string ContainerLogPath(absl::string_view ns, absl::string_view pod,
                               absl::string_view container) const;
  // Every container's log of every Pod of namespace `ns` (all namespaces when empty)
  // this kubelet ran, each under a header naming it: for failure messages.
  std::string Logs(absl::string_view ns = "") const;

  // Runs `argv` inside a running container (its namespaces and environment), like
  // `kubectl exec`. exit_code -1 when the container is not running.
  CommandResult Exec(absl::string_view ns, absl::string_view pod, absl::string_view container,
                     const std::vector<std::string>& argv,
                     absl::Duration timeout = absl::Seconds(30));
  // Sends `sig` to a running container's main process (e.g. SIGKILL to test a restart).
  absl::Status SignalContainer(absl::string_view ns, absl::string_view pod,
                               absl::string_view container, int sig);

  class Impl;

 private:
  explicit Kubelet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_KUBELET_H_
