// The proxy engine's handling of what a client sends (request heads first: framing,
// Host, hop-by-hop fields, pipelining, bodies), run for real: each input goes over a
// loopback connection into a Proxy in front of the test backend, the client half-closes,
// and the proxy must answer without crashing. The client waits at most 10 s for the
// proxy to close: pipelined requests for the backend's slow endpoints (/sleep, /hang) are
// each answered only when the proxy's upstream timeout (2 s here) ends them, and those
// timeouts have tests of their own; a proxy that hangs for good is caught by libFuzzer's
// -timeout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "common/proxy/proxy.h"
#include "tests/common/proxy/test_backend.h"

namespace {

struct Fixture {
  Fixture() {
    zeroscale::proxy::ProxyOptions o;
    o.listen = {"127.0.0.1", 0};
    o.client_timeout = absl::Seconds(2);
    o.upstream_timeout = absl::Seconds(2);
    o.client_idle_timeout = absl::Seconds(2);
    picker = std::make_unique<zeroscale::proxy::FixedUpstreamPicker>(
        zeroscale::proxy::Upstream{"127.0.0.1", backend.port()});
    proxy = std::make_unique<zeroscale::proxy::Proxy>(o, picker.get(), nullptr);
    if (!proxy->Start().ok()) abort();
  }
  zeroscale::testing::TestBackend backend;
  std::unique_ptr<zeroscale::proxy::FixedUpstreamPicker> picker;
  std::unique_ptr<zeroscale::proxy::Proxy> proxy;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(fixture->proxy->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) abort();
  for (size_t off = 0; off < size;) {
    const ssize_t n = ::send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the proxy refused the request and closed early
    off += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  // Read what comes back until the proxy closes; a response larger than 1 MiB (the
  // backend serves bodies of any size asked for) is cut short by closing.
  size_t total = 0;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) break;
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    total += static_cast<size_t>(n);
    if (total > (1 << 20)) break;
  }
  ::close(fd);
  return 0;
}
