#include "common/http/tls_server.h"

#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "boost/asio/ssl.hpp"
#include "boost/beast/ssl.hpp"
#include "common/file/read_file.h"
#include "common/file/watched_file.h"
#include "common/http/server_core.h"
#include "common/log/log.h"
#include "openssl/bio.h"
#include "openssl/err.h"
#include "openssl/pem.h"
#include "openssl/x509.h"
#include "openssl/ssl.h"

namespace zeroscale::http {
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using SslStream = beast::ssl_stream<beast::tcp_stream>;

namespace internal {

template <>
struct Transport<SslStream> {
  static void Handshake(SslStream& stream, std::function<void(beast::error_code)> done) {
    stream.async_handshake(ssl::stream_base::server, std::move(done));
  }
  // close_notify, then the socket goes with the session; `keep_alive` holds the session
  // until the shutdown finishes (bounded by the stream's timeout).
  static void Shutdown(SslStream& stream, std::shared_ptr<void> keep_alive) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    stream.async_shutdown([keep_alive = std::move(keep_alive)](beast::error_code) {});
  }
  static bool Truncated(const beast::error_code& ec) { return ec == ssl::error::stream_truncated; }
};

}  // namespace internal

namespace {

// OpenSSL's reasons for the last failure: asio reports the first queued error ("PEM lib"),
// the more telling ones ("no start line", "bad base64 decode") are queued after it.
std::string Reasons(const beast::error_code& ec) {
  std::string out = ec.message();
  while (unsigned long e = ERR_get_error()) {
    if (const char* reason = ERR_reason_error_string(e)) absl::StrAppend(&out, ": ", reason);
  }
  return out;
}

// A server context for one certificate and key pair; errors name the file at fault.
absl::StatusOr<std::shared_ptr<ssl::context>> LoadContext(const TlsOptions& files) {
  absl::StatusOr<std::string> cert = ReadFileToString(files.cert_file, "TLS certificate");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFileToString(files.key_file, "TLS key");
  if (!key.ok()) return key.status();
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  ERR_clear_error();
  ctx->use_certificate_chain(boost::asio::buffer(*cert), ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "TLS certificate ", files.cert_file, " is not a usable PEM certificate: ", Reasons(ec)));
  }
  ctx->use_private_key(boost::asio::buffer(*key), ssl::context::pem, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "TLS key ", files.key_file, " is not a usable PEM private key: ", Reasons(ec)));
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "TLS key ", files.key_file, " does not belong to the certificate ", files.cert_file));
  }
  return ctx;
}

// The context new connections get, replaced when the files change.
class CertStore {
 public:
  explicit CertStore(TlsOptions files) : files_(std::move(files)) {}

  absl::Status Load() {
    const FileStamp cert = StampOf(files_.cert_file), key = StampOf(files_.key_file);
    absl::StatusOr<std::shared_ptr<ssl::context>> ctx = LoadContext(files_);
    if (!ctx.ok()) return ctx.status();
    std::lock_guard<std::mutex> lock(mu_);
    current_ = *std::move(ctx);
    cert_stamp_ = cert;
    key_stamp_ = key;
    last_check_ = absl::Now();
    return absl::OkStatus();
  }

  std::shared_ptr<ssl::context> Current() {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = absl::Now();
    if (now - last_check_ < files_.reload_check) return current_;
    last_check_ = now;
    const FileStamp cert = StampOf(files_.cert_file), key = StampOf(files_.key_file);
    if (cert == cert_stamp_ && key == key_stamp_) return current_;
    // Tried once per version of the files: a half-written pair is retried when the
    // second file lands, which changes its stamp again.
    cert_stamp_ = cert;
    key_stamp_ = key;
    absl::StatusOr<std::shared_ptr<ssl::context>> ctx = LoadContext(files_);
    if (!ctx.ok()) {
      ZS_LOG(kWarning, "TLS certificate changed but does not load; serving the previous one",
             {"error", std::string(ctx.status().message())});
      return current_;
    }
    current_ = *std::move(ctx);
    ZS_LOG(kInfo, "TLS certificate reloaded", {"cert", files_.cert_file}, {"key", files_.key_file});
    return current_;
  }

 private:
  const TlsOptions files_;
  std::mutex mu_;
  std::shared_ptr<ssl::context> current_;
  FileStamp cert_stamp_, key_stamp_;
  absl::Time last_check_;
};

class TlsTransport : public Server::Transport {
 public:
  TlsTransport(ServerOptions options, TlsOptions tls, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        certs_(std::move(tls)),
        listener_(options_, [this](tcp::socket s, net::ConnectionSlot slot) {
          std::shared_ptr<ssl::context> ctx = certs_.Current();
          std::make_shared<internal::Session<SslStream>>(options_, handler_, ctx, std::move(slot),
                                                         std::move(s), *ctx)
              ->Start();
        }) {}

  absl::Status Start() override {
    if (absl::Status s = certs_.Load(); !s.ok()) return s;
    return listener_.Start();
  }
  void Stop() override { listener_.Stop(); }
  uint16_t port() const override { return listener_.port(); }
  net::ListenerStats stats() const override { return listener_.stats(); }

 private:
  const ServerOptions options_;
  const Handler handler_;
  CertStore certs_;
  internal::Listener listener_;  // last: its sessions refer to the members above
};

}  // namespace

absl::Status CheckCaBundle(const std::string& pem, absl::string_view what) {
  if (pem.size() > (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": larger than 1 MiB"));
  }
  ERR_clear_error();
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return absl::InternalError("out of memory reading a CA bundle");
  int count = 0;
  for (;;) {
    X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    X509_free(cert);
    ++count;
  }
  // The loop ends on "no start line" after the last certificate; anything else is a
  // certificate that does not parse.
  const unsigned long err = ERR_peek_last_error();
  const bool clean_end =
      ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  ERR_clear_error();
  BIO_free(bio);
  if (count == 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": no PEM certificate in it"));
  }
  if (err != 0 && !clean_end) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": certificate ", count + 1, " does not parse"));
  }
  return absl::OkStatus();
}

absl::Status CheckTlsFiles(const TlsOptions& tls) { return LoadContext(tls).status(); }

std::unique_ptr<Server> NewTlsServer(ServerOptions options, TlsOptions tls, Handler handler) {
  return std::make_unique<Server>(
      std::make_unique<TlsTransport>(std::move(options), std::move(tls), std::move(handler)));
}

}  // namespace zeroscale::http
