// Starts a real redis-server on a free 127.0.0.1 port for integration tests, and can
// kill and restart it on the same port to test faults. The server dies with the test
// (SIGKILL on destruction, and PR_SET_PDEATHSIG if the test itself dies).
// Not thread-safe.
#ifndef ZEROSCALE_TESTS_TESTING_REDIS_SERVER_H_
#define ZEROSCALE_TESTS_TESTING_REDIS_SERVER_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace zeroscale::testing {

// charts/zeroscale/files/redis.conf: the persistence settings the chart and the demo run
// Redis with.
extern const char kShippedRedisConf[];

// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
uint16_t FreePort();

class RedisServer {
 public:
  // Picks a port; call Start(). A persistent server runs with the persistence zeroscale
  // ships (kShippedRedisConf: the chart's and the demo's), its append-only file in a
  // temporary directory kept across Kill and Start: what "nothing acknowledged is lost"
  // tests rely on. A non-persistent one comes back empty from a restart.
  explicit RedisServer(bool persistent = false);
  ~RedisServer();

  // Starts redis-server and waits until it answers PING.
  absl::Status Start();
  // SIGKILL, as a crash would.
  void Kill();
  absl::Status Restart() {
    Kill();
    return Start();
  }
  uint16_t port() const { return port_; }
  std::string address() const;
  // Runs a command through redis-cli and returns its raw output (for assertions).
  std::string Cli(const std::string& args) const;

 private:
  absl::Status StartOnce();

  uint16_t port_;
  bool started_ = false;  // once started, restarts keep the port
  std::string dir_;       // non-empty when persistent
  pid_t pid_ = -1;
};

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_REDIS_SERVER_H_
