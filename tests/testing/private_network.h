// The network of a Kubernetes test binary: a network namespace of its own, entered by
// main() before any thread exists, in which every process of the test lives (etcd, the
// API server, the programs under test, the pods). Nothing it binds is reachable from
// outside, so fixed ports are safe and tests may run in parallel.
//
// Inside it: `lo` is up with 127.0.0.1 (the control plane) and the host address
// 198.18.0.1/32, where pods reach what runs in the test's namespace (the scaler, the
// balancer); IPv4 forwarding is on so pods reach each other through it. Pods get
// addresses from 198.18.1.0 up (see kubelet.h). 198.18.0.0/15 is reserved for
// benchmarking (RFC 2544): never a real network, and the API server accepts it as pod
// IPs and in EndpointSlices, unlike 127.0.0.0/8.
//
// Thread-safety: EnterPrivateNetwork() must run before any thread starts;
// PrivateNetworkStatus() is safe anywhere after it.
#ifndef ZEROSCALE_TESTS_TESTING_PRIVATE_NETWORK_H_
#define ZEROSCALE_TESTS_TESTING_PRIVATE_NETWORK_H_

#include "absl/status/status.h"

namespace zeroscale::testing {

// Where pods reach the test's own processes.
inline constexpr char kHostAddress[] = "198.18.0.1";

// unshare(CLONE_NEWNET) and the set-up above. kFailedPrecondition when not root (or the
// kernel refuses), naming what failed. Call first thing in main().
absl::Status EnterPrivateNetwork();

// What EnterPrivateNetwork() returned; kFailedPrecondition when it was never called.
absl::Status PrivateNetworkStatus();

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_PRIVATE_NETWORK_H_
