// A small HTTP/1.1 server for admin and API endpoints (metrics, health, settings,
// ingest): whole request bodies, keep-alive, handlers that may answer later from any
// thread. Built on Boost.Beast, which stays out of this header. Streaming proxies do
// not use this; they have their own data path.
//
// Thread-safety: Start/Stop from one thread; handlers run on the server's I/O threads
// and may call their Responder once, from any thread.
#ifndef ZEROSCALE_COMMON_HTTP_HTTP_SERVER_H_
#define ZEROSCALE_COMMON_HTTP_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/config/flags.h"
#include "common/net/accept_control.h"

namespace zeroscale::http {

struct Request {
  std::string method;  // "GET"
  std::string target;  // "/proxy/logs?limit=10"
  std::string path;    // "/proxy/logs"
  std::string query;   // "limit=10"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_ip;

  // Case-insensitive header lookup; "" when absent.
  std::string Header(absl::string_view name) const;
  // A decoded query parameter; "" when absent.
  std::string QueryParam(absl::string_view name) const;
  bool HasQueryParam(absl::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static Response Json(int status, std::string body);
  static Response Text(int status, std::string body);
  // {"error": message} with the given status.
  static Response Error(int status, absl::string_view message);
};

using Responder = std::function<void(Response)>;
using Handler = std::function<void(Request&&, Responder)>;
// Synchronous convenience.
using SyncHandler = std::function<Response(const Request&)>;

// Dispatches by exact path and method; 404 and 405 otherwise.
class Router {
 public:
  void Handle(std::string method, std::string path, Handler handler);
  void HandleSync(std::string method, std::string path, SyncHandler handler);
  void Dispatch(Request&& req, Responder respond) const;
  // A Handler dispatching through this router, for Server; the router must outlive it.
  Handler AsHandler() const;

 private:
  struct Route {
    std::string method;
    std::string path;
    Handler handler;
  };
  std::vector<Route> routes_;
};

struct ServerOptions {
  config::HostPort listen;
  int threads = 1;
  size_t max_body_bytes = 16 << 20;
  std::string server_name = "zeroscale";
  // Connections open at once (0: no cap); beyond it new ones wait in the backlog. See
  // common/net/accept_control.h, also for the backoff after a failed accept.
  int64_t max_connections = 1024;
  // Names this listener in logs and metrics.
  std::string name = "http";
  net::ListenerObserver* observer = nullptr;  // not owned; may be null
};

class Server {
 public:
  // What listens and serves connections: plain HTTP here, TLS in tls_server.h (kept in
  // its own library so programs without TLS do not link OpenSSL).
  class Transport {
   public:
    virtual ~Transport() = default;
    virtual absl::Status Start() = 0;
    virtual void Stop() = 0;
    virtual uint16_t port() const = 0;
    virtual net::ListenerStats stats() const = 0;
  };

  // Plain HTTP.
  Server(ServerOptions options, Handler handler);
  explicit Server(std::unique_ptr<Transport> transport);
  ~Server();  // stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the I/O threads. kFailedPrecondition names the address when the
  // port cannot be bound (and, for TLS, the file that cannot be used).
  absl::Status Start();
  void Stop();
  uint16_t port() const;
  net::ListenerStats stats() const;

 private:
  std::unique_ptr<Transport> impl_;
};

// Percent-decodes a URL component ('+' becomes a space).
std::string UrlDecode(absl::string_view s);

}  // namespace zeroscale::http

#endif  // ZEROSCALE_COMMON_HTTP_HTTP_SERVER_H_
