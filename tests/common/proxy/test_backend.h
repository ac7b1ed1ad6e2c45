// An HTTP/1.1 backend and client for proxy tests, on real 127.0.0.1 sockets. The backend
// runs a thread per connection (simple, and independent of the engine under test);
// bodies stream in both directions so large transfers do not grow memory.
//
// Routes: /echo* (method, target, headers and body echoed in the body), /status/N,
// /sleep/MS, /big/N[?chunked=1] (N pattern bytes), /upload (counts the body), /sse (one
// event, then a second after ReleaseSse), /hang (never answers), /close (a
// close-delimited body), /drop (a keep-alive response, then the connection is closed).
//
// Thread-safety: all methods are thread-safe.
#ifndef ZEROSCALE_TESTS_COMMON_PROXY_TEST_BACKEND_H_
#define ZEROSCALE_TESTS_COMMON_PROXY_TEST_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace zeroscale::testing {

// Byte i of every generated body.
inline char PatternByte(uint64_t i) { return static_cast<char>((i * 131 + 7) % 251); }

class TestBackend {
 public:
  TestBackend();  // listens on 127.0.0.1, an ephemeral port
  ~TestBackend();
  uint16_t port() const;
  int connections_accepted() const;
  int connections_open() const;
  // Waits until at most `n` connections are open; false on timeout.
  bool WaitForOpenConnectionsAtMost(int n, absl::Duration timeout) const;
  void ReleaseSse();
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

struct SimpleResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string Header(const std::string& name) const;  // case-insensitive; "" when absent
  bool HasHeader(const std::string& name) const;
};

// One keep-alive client connection.
class TestClient {
 public:
  explicit TestClient(uint16_t port);
  ~TestClient();
  // Sends a request and reads the whole response. Throws on I/O errors.
  SimpleResponse Send(const std::string& method, const std::string& target,
                      const std::vector<std::pair<std::string, std::string>>& headers = {},
                      const std::string& body = "");
  // Raw socket access for streaming tests.
  void WriteRaw(const std::string& bytes);
  // Reads whatever arrives next (at most `max` bytes); "" on EOF. Times out after 10 s.
  std::string ReadSome(size_t max = 65536);
  void Close();
  bool connected() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// A TCP port on 127.0.0.1 that nothing listens on.
uint16_t UnusedPort();
// This process's resident set size.
int64_t CurrentRssBytes();

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_COMMON_PROXY_TEST_BACKEND_H_
