// One run of a Kubernetes probe or lifecycle handler, as the kubelet does it: httpGet
// (a 2xx or 3xx status within the timeout; HTTPS without verifying the certificate;
// httpHeaders are not sent), tcpSocket (a connection accepted within the timeout) and
// exec (exit status 0, through the caller's exec function). Ports may be numbers or
// the names of the container's ports; the host defaults to the pod's IP.
//
// Thread-safety: thread-safe.
#ifndef ZEROSCALE_TESTS_TESTING_PROBE_H_
#define ZEROSCALE_TESTS_TESTING_PROBE_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace zeroscale::testing {

struct ProbeTarget {
  std::string pod_ip;
  const nlohmann::json* container = nullptr;  // for named ports
  // Runs a command in the container; returns its exit code (non-zero on timeout).
  std::function<int(const std::vector<std::string>& argv, absl::Duration timeout)> exec;
};

struct ProbeOutcome {
  bool success = false;
  std::string message;  // why it failed
};

// `handler` holds httpGet, tcpSocket or exec (a probe or a preStop/postStart handler).
ProbeOutcome RunHandler(const nlohmann::json& handler, const ProbeTarget& target,
                        absl::Duration timeout);

// The probe's timing fields with Kubernetes' defaults.
struct ProbeTiming {
  absl::Duration initial_delay;
  absl::Duration period = absl::Seconds(10);
  absl::Duration timeout = absl::Seconds(1);
  int success_threshold = 1;
  int failure_threshold = 3;
};
ProbeTiming TimingOf(const nlohmann::json& probe);

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_PROBE_H_
