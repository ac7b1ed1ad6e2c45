#include "common/grpcutil/credentials.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file/read_file.h"
#include "common/http/tls_server.h"
#include "common/log/log.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace zeroscale::grpcutil {
namespace {

unsigned int RefreshSeconds(absl::Duration d) {
  return static_cast<unsigned int>(
      std::clamp<int64_t>(absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1))), 1, 86400));
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsFiles& files) {
  if (files.cert_file.empty() && files.key_file.empty()) return grpc::InsecureServerCredentials();
  if (files.cert_file.empty() || files.key_file.empty()) {
    return absl::InvalidArgumentError("a TLS certificate and its key go together");
  }
  http::TlsOptions check;
  check.cert_file = files.cert_file;
  check.key_file = files.key_file;
  if (absl::Status s = http::CheckTlsFiles(check); !s.ok()) return s;
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key_file, files.cert_file, RefreshSeconds(files.reload_check));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  return grpc::experimental::TlsServerCredentials(options);
}

void RegisterScalerTlsFlags(config::FlagSet* flags, ScalerTls* out) {
  flags->String("scaler-ca", &out->ca_file, "",
                "PEM CA bundle: connect to the scaler over TLS and verify its certificate "
                "against it (re-read when the file changes); empty: plain text");
  flags->String("scaler-ca-data", &out->ca_data, "",
                "The CA bundle itself (PEM), instead of --scaler-ca (the webhook injects it "
                "as ZEROSCALE_SCALER_CA_DATA)");
  flags->String("scaler-tls-server-name", &out->server_name, "",
                "The name the scaler's certificate must carry (default: the host of the "
                "address dialled)");
}

absl::Status ValidateScalerTls(const ScalerTls& tls) {
  if (!tls.ca_file.empty() && !tls.ca_data.empty()) {
    return absl::InvalidArgumentError("--scaler-ca and --scaler-ca-data: give one of them");
  }
  if (!tls.server_name.empty() && !tls.enabled()) {
    return absl::InvalidArgumentError(
        "--scaler-tls-server-name needs --scaler-ca or --scaler-ca-data (TLS is off without a "
        "CA)");
  }
  if (!tls.ca_data.empty()) return http::CheckCaBundle(tls.ca_data, "--scaler-ca-data");
  if (!tls.ca_file.empty()) {
    absl::StatusOr<std::string> pem = ReadFileToString(tls.ca_file, "--scaler-ca");
    if (!pem.ok()) return pem.status();
    return http::CheckCaBundle(*pem, absl::StrCat("--scaler-ca ", tls.ca_file));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ScalerTls& tls) {
  if (absl::Status s = ValidateScalerTls(tls); !s.ok()) return s;
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider;
  if (!tls.ca_data.empty()) {
    provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(tls.ca_data);
  } else {
    provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        tls.ca_file, RefreshSeconds(tls.reload_check));
  }
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  // The chain against the bundle, and (gRPC's default verifier for TLS channels) the host
  // name against the target or GRPC_SSL_TARGET_NAME_OVERRIDE_ARG.
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::experimental::TlsCredentials(options);
  if (creds == nullptr) return absl::InternalError("gRPC refused the TLS channel options");
  return creds;
}

bool IsLoopbackHost(absl::string_view host) {
  std::string h = absl::AsciiStrToLower(host);
  if (absl::StartsWith(h, "[") && absl::EndsWith(h, "]")) h = h.substr(1, h.size() - 2);
  return h == "localhost" || h == "::1" || absl::StartsWith(h, "127.");
}

void WarnIfPlaintext(absl::string_view host, absl::string_view what, absl::string_view how) {
  if (IsLoopbackHost(host)) return;
  ZS_LOG(kWarning,
         absl::StrCat(what, " is plain text beyond the loopback interface: anyone on the "
                            "network path can read and alter it; turn TLS on with ",
                      how),
         {"host", std::string(host)});
}

}  // namespace zeroscale::grpcutil
