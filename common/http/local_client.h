// One HTTP/1.1 GET to a server on this host's loopback (the app next to the sidecar), with
// the whole exchange bounded by a deadline and the body by a size, so a slow or hostile
// app costs the caller at most `timeout` and `max_body_bytes`. Boost.Beast stays in the .cc.
//
// Thread-safety: a function with no shared state; concurrent calls are independent.
#ifndef ZEROSCALE_COMMON_HTTP_LOCAL_CLIENT_H_
#define ZEROSCALE_COMMON_HTTP_LOCAL_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace zeroscale::http {

struct LocalGetOptions {
  uint16_t port = 0;
  std::string path = "/";  // starts with '/'; no whitespace or control characters
  absl::Duration timeout = absl::Seconds(1);  // connect through the last body byte
  size_t max_body_bytes = 1 << 20;
};

struct LocalGetResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

// OK when `path` can be sent as a request target: starts with '/', no whitespace or control
// characters (they would break the request line; a URL percent-encodes them anyway).
// Otherwise kInvalidArgument quoting it.
absl::Status ValidateLocalPath(absl::string_view path);

// GET http://127.0.0.1:<port><path>. Any status is a response. Errors: kInvalidArgument for
// a bad port or path, kDeadlineExceeded when the timeout passes, kResourceExhausted for a
// body over the bound, kUnavailable for a refused connection or a broken response; the
// message names the address and the step that failed.
absl::StatusOr<LocalGetResponse> LocalGet(const LocalGetOptions& options);

}  // namespace zeroscale::http

#endif  // ZEROSCALE_COMMON_HTTP_LOCAL_CLIENT_H_
