// TLS for the scaler's gRPC port and for its clients (the sidecar's metrics stream, the
// balancer's ActivationService calls): the one place where programs turn their TLS
// flags into gRPC credentials, so each program builds its server or channel credentials
// with one call.
//
// Server: the certificate and key files are served through gRPC's
// FileWatcherCertificateProvider, which re-reads them on its refresh interval; a
// replaced pair (a Secret volume's symlink swap, cert-manager's rewrite) is served to
// new connections without a restart, connections already open keep theirs. The files
// are checked at start with the same loader (and errors) as the HTTPS servers'
// (common/http/tls_server.h).
//
// Client: the scaler's certificate is verified against a CA bundle (a file, watched the
// same way, or PEM data given inline) and its host name against the address dialled or
// an override (the balancer dials the leader's pod IP, whose certificate names the
// Service). Without a CA the channel is plain text.
//
// Thread-safety: pure functions; the credentials they return are thread-safe.
#ifndef ZEROSCALE_COMMON_GRPCUTIL_CREDENTIALS_H_
#define ZEROSCALE_COMMON_GRPCUTIL_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/config/flags.h"

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace zeroscale::grpcutil {

struct ServerTlsFiles {
  std::string cert_file;  // PEM certificate chain; empty: plain text
  std::string key_file;   // PEM private key
  // How often the files are looked at (gRPC counts whole seconds; at least 1 s).
  absl::Duration reload_check = absl::Seconds(5);
};

// Insecure server credentials when `files.cert_file` is empty; otherwise TLS (1.2 and
// later) with the pair, after checking it loads: kFailedPrecondition names the file that
// cannot be used, kInvalidArgument a certificate without its key or the reverse.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsFiles& files);

// How a client reaches the scaler: the flags --scaler-ca, --scaler-ca-data and
// --scaler-tls-server-name of the sidecar and the balancer.
struct ScalerTls {
  std::string ca_file;      // PEM CA bundle, re-read when it changes
  std::string ca_data;      // or the bundle itself
  std::string server_name;  // the name the certificate must carry; empty: the dialled host
  absl::Duration reload_check = absl::Seconds(5);

  bool enabled() const { return !ca_file.empty() || !ca_data.empty(); }
};

// Declares the three flags on `flags` (one wording for both programs).
void RegisterScalerTlsFlags(config::FlagSet* flags, ScalerTls* out);

// kInvalidArgument naming the flag: both a file and data, a server name without a CA,
// a bundle that holds no PEM certificate; kFailedPrecondition: an unreadable file.
absl::Status ValidateScalerTls(const ScalerTls& tls);

// Insecure channel credentials without a CA; otherwise TLS verifying the scaler's
// certificate chain and host name (the channel's GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, i.e.
// ChannelArguments::SetSslTargetNameOverride(tls.server_name), replaces the dialled
// host). Errors as ValidateScalerTls.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ScalerTls& tls);

// True when `host` (of HOST:PORT, an IP or a name) is this machine's loopback.
bool IsLoopbackHost(absl::string_view host);

// The start-up warning of a program that talks to, or listens for, the scaler in plain
// text beyond the loopback interface: `what` says which connection, `how` which flags
// turn TLS on. Nothing when `host` is loopback.
void WarnIfPlaintext(absl::string_view host, absl::string_view what, absl::string_view how);

}  // namespace zeroscale::grpcutil

#endif  // ZEROSCALE_COMMON_GRPCUTIL_CREDENTIALS_H_
