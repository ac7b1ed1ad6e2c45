// HTTP/1.1 and HTTPS to one Kubernetes API server: TLS with the cluster CA or client
// certificates, bearer tokens re-read from a rotating file, keep-alive connections, and
// bodies streamed as they arrive (for watches). It speaks HTTP only; mapping statuses
// to meaning is the client's job. Boost.Beast stays in transport.cc.
//
// Thread-safety: all methods may be called concurrently; each call uses its own
// connection (idle ones are pooled).
#ifndef ZEROSCALE_COMMON_KUBE_TRANSPORT_H_
#define ZEROSCALE_COMMON_KUBE_TRANSPORT_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kube/config.h"
#include "common/kube/retry.h"
#include "common/time/clock.h"

namespace zeroscale::kube {

struct HttpRequest {
  std::string method = "GET";
  // Path and query, e.g. "/apis/apps/v1/namespaces/ml/deployments/llama/scale".
  std::string target;
  std::string body;
  std::string content_type;  // set when there is a body
  // For Do: the whole exchange. For Stream: the longest silence tolerated between reads.
  absl::Duration timeout = absl::Seconds(30);
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Case-insensitive; "" when absent.
  std::string Header(absl::string_view name) const;
};

class Transport {
 public:
  // kFailedPrecondition for an unusable configuration (bad URL, unreadable CA or client
  // certificate).
  static absl::StatusOr<std::unique_ptr<Transport>> Create(const ClusterConfig& config,
                                                           Clock* clock);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // One request and its whole response. HTTP error statuses are responses, not errors;
  // connection failures and timeouts are kUnavailable.
  absl::StatusOr<HttpResponse> Do(const HttpRequest& request);

  // Like Do, but a 2xx body is handed to `on_data` piece by piece as it arrives rather
  // than collected (the returned body is then empty); `on_data` returning false ends the
  // exchange early. Other statuses collect the body as Do does. kCancelled when
  // `cancel` fires.
  absl::StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                      const std::function<bool(absl::string_view)>& on_data,
                                      CancelToken* cancel);

  // "https://host:port" without a trailing slash, for messages.
  const std::string& server() const;

 private:
  class Impl;
  explicit Transport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace zeroscale::kube

#endif  // ZEROSCALE_COMMON_KUBE_TRANSPORT_H_
