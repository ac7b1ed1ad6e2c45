// The HTTP server of http_server.h over TLS (1.2 and later), for endpoints the Kubernetes
// API server calls (the admission webhook). The certificate and key are PEM files that
// cert-manager or a Secret volume replace in place; the server notices a change on the
// next connection after `reload_check` and serves the new pair from then on, while
// connections already open keep theirs. A pair that does not load (say, the certificate
// written before its key) is logged and the previous pair stays in use. Library
// zs_http_tls, separate from zs_http so programs without TLS do not link OpenSSL.
//
// Thread-safety: Start/Stop from one thread; handlers as for http::Server.
#ifndef ZEROSCALE_COMMON_HTTP_TLS_SERVER_H_
#define ZEROSCALE_COMMON_HTTP_TLS_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/http/http_server.h"

namespace zeroscale::http {

struct TlsOptions {
  std::string cert_file;  // PEM: the certificate, then any intermediates
  std::string key_file;   // PEM private key
  // The files are looked at (stat, no read) on a new connection at most this often.
  absl::Duration reload_check = absl::Seconds(5);
};

// A Server speaking HTTPS with the certificate and key of `tls`; its Start() also loads
// them, and kFailedPrecondition names the file that cannot be read or used.
std::unique_ptr<Server> NewTlsServer(ServerOptions options, TlsOptions tls, Handler handler);

// Loads the pair as NewTlsServer's Start() does, and says what is wrong with it; for
// servers that serve the files with another TLS stack (gRPC) but want the same errors at
// start.
absl::Status CheckTlsFiles(const TlsOptions& tls);

// OK when `pem` holds one or more PEM certificates (a CA bundle) and nothing that fails
// to parse; kInvalidArgument starting with `what` otherwise.
absl::Status CheckCaBundle(const std::string& pem, absl::string_view what);

}  // namespace zeroscale::http

#endif  // ZEROSCALE_COMMON_HTTP_TLS_SERVER_H_
