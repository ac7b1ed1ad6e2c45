#include "tests/testing/probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/kube/transport.h"
#include "common/time/clock.h"
#include "tests/testing/json_fields.h"

namespace zeroscale::testing {
namespace {

using json = nlohmann::json;

// A port given as a number, a numeric string, or a container port's name; 0 if unknown.
int ResolvePort(const json& port, const json* container) {
  if (port.is_number_integer()) return port.get<int>();
  if (!port.is_string()) return 0;
  int n;
  if (absl::SimpleAtoi(port.get<std::string>(), &n)) return n;
  if (container != nullptr && container->contains("ports") && (*container)["ports"].is_array()) {
    for (const json& p : (*container)["ports"]) {
      if (JsonStr(p, "name") == port.get<std::string>() && p.contains("containerPort")) {
        return p["containerPort"].get<int>();
      }
    }
  }
  return 0;
}

ProbeOutcome Fail(std::string message) { return {false, std::move(message)}; }

ProbeOutcome TcpConnect(const std::string& host, int port, absl::Duration timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Fail(absl::StrCat("'", host, "' is not an IPv4 address"));
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail("socket failed");
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    int err = 0;
    socklen_t len = sizeof(err);
    if (rc == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
      rc = 0;
    } else {
      errno = rc == 0 ? ETIMEDOUT : err;
      rc = -1;
    }
  }
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Fail(absl::StrCat("dial tcp ", host, ":", port, ": ", std::strerror(err)));
  return {true, ""};
}

ProbeOutcome HttpGet(const json& spec, const ProbeTarget& target, absl::Duration timeout) {
  const std::string host = JsonStr(spec, "host").empty() ? target.pod_ip : JsonStr(spec, "host");
  const int port = ResolvePort(spec.value("port", json()), target.container);
  if (port <= 0) return Fail(absl::StrCat("httpGet port ", spec.value("port", json()).dump()));
  kube::ClusterConfig config;
  const bool https = JsonStr(spec, "scheme") == "HTTPS";
  config.server = absl::StrCat(https ? "https://" : "http://", host, ":", port);
  config.insecure_skip_tls_verify = true;
  // A transport per probe: a fresh connection each time, as the kubelet's probes make.
  absl::StatusOr<std::unique_ptr<kube::Transport>> transport =
      kube::Transport::Create(config, RealClock::Get());
  if (!transport.ok()) return Fail(std::string(transport.status().message()));
  kube::HttpRequest req;
  req.target = JsonStr(spec, "path").empty() ? "/" : JsonStr(spec, "path");
  req.timeout = timeout;
  absl::StatusOr<kube::HttpResponse> res = (*transport)->Do(req);
  if (!res.ok()) {
    return Fail(absl::StrCat("Get \"", config.server, req.target, "\": ", res.status().message()));
  }
  if (res->status >= 200 && res->status < 400) return {true, ""};
  return Fail(absl::StrCat("HTTP probe failed with statuscode: ", res->status));
}

}  // namespace

ProbeOutcome RunHandler(const json& handler, const ProbeTarget& target, absl::Duration timeout) {
  if (handler.contains("httpGet")) return HttpGet(handler["httpGet"], target, timeout);
  if (handler.contains("tcpSocket")) {
    const json& spec = handler["tcpSocket"];
    const int port = ResolvePort(spec.value("port", json()), target.container);
    if (port <= 0) return Fail(absl::StrCat("tcpSocket port ", spec.value("port", json()).dump()));
    return TcpConnect(JsonStr(spec, "host").empty() ? target.pod_ip : JsonStr(spec, "host"), port,
                      timeout);
  }
  if (handler.contains("exec")) {
    std::vector<std::string> argv;
    const json& command = handler["exec"].value("command", json::array());
    for (const json& a : command) argv.push_back(a.is_string() ? a.get<std::string>() : a.dump());
    if (argv.empty() || !target.exec) return Fail("exec handler without a command");
    const int code = target.exec(argv, timeout);
    if (code == 0) return {true, ""};
    return Fail(absl::StrCat("command ", command.dump(), " exited with ", code));
  }
  return Fail(absl::StrCat("unsupported handler ", handler.dump()));
}

ProbeTiming TimingOf(const json& probe) {
  ProbeTiming t;
  auto seconds = [&](const char* key, absl::Duration* out) {
    if (probe.contains(key) && probe[key].is_number_integer())
      *out = absl::Seconds(probe[key].get<int>());
  };
  seconds("initialDelaySeconds", &t.initial_delay);
  seconds("periodSeconds", &t.period);
  seconds("timeoutSeconds", &t.timeout);
  if (probe.contains("successThreshold"))
    t.success_threshold = probe["successThreshold"].get<int>();
  if (probe.contains("failureThreshold"))
    t.failure_threshold = probe["failureThreshold"].get<int>();
  return t;
}

}  // namespace zeroscale::testing
