// zeroscale-proxy-bench: the sidecar proxy alone, for bench/proxy_bench.sh.
#include <csignal>
#include <cstdio>

#include "common/config/flags.h"
#include "common/log/log.h"
#include "sidecar/proxy/sidecar_proxy.h"

int main(int argc, char** argv) {
  using namespace zeroscale;
  config::HostPort listen, upstream;
  int64_t threads = 1;
  config::FlagSet flags("zeroscale-proxy-bench",
                        "Runs the sidecar's reverse proxy alone (benchmarks only).");
  flags.Address("listen", &listen, "127.0.0.1:8012", "address to listen on");
  flags.Address("upstream", &upstream, "127.0.0.1:8080", "the app (host must be 127.0.0.1)");
  flags.Int("threads", &threads, 1, "I/O threads", 1, 64);
  flags.ParseOrExit(argc, argv);
  log::SetComponent("proxy-bench");

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // inherited by the I/O threads

  sidecar::SidecarProxyOptions options;
  options.listen = listen;
  options.app_port = upstream.port;
  options.engine.threads = static_cast<int>(threads);
  sidecar::SidecarProxy proxy(options);
  if (absl::Status s = proxy.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "listening on %s:%u\n", listen.host.c_str(), proxy.port());
  int sig = 0;
  sigwait(&set, &sig);
  proxy.Stop();
  return 0;
}
