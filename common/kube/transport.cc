#include "common/kube/transport.h"

#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "common/log/log.h"

namespace zeroscale::kube {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

std::string HttpResponse::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

namespace {

constexpr size_t kMaxIdleConnections = 4;
// Lists of every CustomAutoscaler in a big cluster stay well below this.
constexpr uint64_t kMaxBodyBytes = 256ull << 20;
constexpr size_t kMaxErrorBodyBytes = 1 << 20;

struct ServerUrl {
  bool tls = true;
  std::string host;
  std::string port;
  std::string base_path;  // "" or "/k8s/clusters/c-1" for servers behind a path prefix
  std::string host_header;
};

absl::StatusOr<ServerUrl> ParseServer(absl::string_view server) {
  ServerUrl u;
  absl::string_view rest = server;
  if (absl::ConsumePrefix(&rest, "https://")) {
    u.tls = true;
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    u.tls = false;
  } else {
    return absl::FailedPreconditionError(
        absl::StrCat("server '", server, "' must start with https:// or http://"));
  }
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  if (slash != absl::string_view::npos) {
    u.base_path = std::string(rest.substr(slash));
    while (!u.base_path.empty() && u.base_path.back() == '/') u.base_path.pop_back();
  }
  u.host_header = std::string(authority);
  if (absl::StartsWith(authority, "[")) {  // [::1]:6443
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return absl::FailedPreconditionError(absl::StrCat("server '", server, "': bad IPv6 host"));
    }
    u.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (absl::ConsumePrefix(&after, ":")) u.port = std::string(after);
  } else {
    const size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  int port = 0;
  if (u.host.empty() || !absl::SimpleAtoi(u.port, &port) || port <= 0 || port > 65535) {
    return absl::FailedPreconditionError(absl::StrCat("server '", server, "': bad host or port"));
  }
  return u;
}

bool IsIpAddress(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// One keep-alive connection with its own io_context, driven by whichever thread is using
// it: every operation is started and then run to completion with ioc.run(), so there
// are no background threads and a request's timers live and die with it.
struct Conn {
  asio::io_context ioc;
  std::optional<beast::tcp_stream> tcp;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  bool cancelled = false;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }
};

// Starts `start(handler)` and runs the connection's io_context until it completes.
template <class Start>
beast::error_code RunOp(Conn& c, Start&& start) {
  beast::error_code result;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  c.ioc.restart();
  c.ioc.run();
  if (c.cancelled && !result) result = asio::error::operation_aborted;
  return result;
}

}  // namespace

class Transport::Impl {
 public:
  Impl(ClusterConfig config, ServerUrl url, Clock* clock)
      : config_(std::move(config)),
        url_(std::move(url)),
        clock_(clock),
        ssl_ctx_(ssl::context::tls_client) {}

  absl::Status Init() {
    if (!url_.tls) return absl::OkStatus();
    beast::error_code ec;
    ssl_ctx_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1);
    if (!config_.ca_pem.empty()) {
      ssl_ctx_.add_certificate_authority(asio::buffer(config_.ca_pem), ec);
      if (ec) {
        return absl::FailedPreconditionError(
            absl::StrCat("cluster CA is not a usable PEM certificate: ", ec.message()));
      }
    } else {
      ssl_ctx_.set_default_verify_paths(ec);
    }
    ssl_ctx_.set_verify_mode(config_.insecure_skip_tls_verify ? ssl::verify_none
                                                              : ssl::verify_peer);
    if (!config_.client_cert_pem.empty()) {
      ssl_ctx_.use_certificate_chain(asio::buffer(config_.client_cert_pem), ec);
      if (!ec) {
        ssl_ctx_.use_private_key(asio::buffer(config_.client_key_pem), ssl::context::pem, ec);
      }
      if (ec) {
        return absl::FailedPreconditionError(
            absl::StrCat("client certificate or key is not usable: ", ec.message()));
      }
    }
    return absl::OkStatus();
  }

  const std::string& server() const { return config_.server; }

  absl::StatusOr<HttpResponse> Exchange(const HttpRequest& req,
                                        const std::function<bool(absl::string_view)>* on_data,
                                        CancelToken* cancel) {
    // A pooled connection may have been closed by the server while idle; that shows as
    // an error before any response byte, and then one fresh connection is tried. A
    // write that did reach the server cannot be applied twice: our writes carry a
    // resourceVersion, so a replay would be refused with 409.
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool reused = false;
      std::unique_ptr<Conn> conn = TakeIdle();
      if (conn) {
        reused = true;
      } else {
        auto fresh = Connect(req, cancel);
        if (!fresh.ok()) return fresh.status();
        conn = *std::move(fresh);
      }
      bool got_response = false;
      bool reusable = false;
      auto result = RunExchange(*conn, req, on_data, cancel, &got_response, &reusable);
      if (reusable) ReturnIdle(std::move(conn));
      if (!result.ok() && reused && !got_response &&
          result.status().code() != absl::StatusCode::kCancelled) {
        continue;
      }
      return result;
    }
    return absl::UnavailableError("unreachable");
  }

 private:
  std::string Describe(const HttpRequest& req) const {
    return absl::StrCat(req.method, " ", config_.server, req.target);
  }

  absl::Status NetError(const HttpRequest& req, absl::string_view stage,
                        const beast::error_code& ec, const Conn& c) const {
    if (c.cancelled || ec == asio::error::operation_aborted) {
      return absl::CancelledError(absl::StrCat(Describe(req), ": cancelled"));
    }
    if (ec == beast::error::timeout) {
      return absl::UnavailableError(absl::StrCat(Describe(req), ": ", stage, ": timed out"));
    }
    return absl::UnavailableError(absl::StrCat(Describe(req), ": ", stage, ": ", ec.message()));
  }

  std::unique_ptr<Conn> TakeIdle() {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.empty()) return nullptr;
    std::unique_ptr<Conn> c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }

  void ReturnIdle(std::unique_ptr<Conn> c) {
    c->cancelled = false;
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(c));
  }

  absl::StatusOr<std::unique_ptr<Conn>> Connect(const HttpRequest& req, CancelToken* cancel) {
    auto c = std::make_unique<Conn>();
    if (url_.tls) {
      c->tls.emplace(c->ioc, ssl_ctx_);
    } else {
      c->tcp.emplace(c->ioc);
    }
    const int cancel_id = RegisterCancel(*c, cancel);
    absl::Status status = DoConnect(*c, req);
    if (cancel != nullptr) cancel->Unregister(cancel_id);
    if (!status.ok()) return status;
    return c;
  }

  absl::Status DoConnect(Conn& c, const HttpRequest& req) {
    tcp::resolver resolver(c.ioc);
    tcp::resolver::results_type endpoints;
    beast::error_code ec = RunOp(c, [&](auto handler) {
      resolver.async_resolve(
          url_.host, url_.port,
          [&endpoints, handler](beast::error_code ec, tcp::resolver::results_type r) mutable {
            endpoints = std::move(r);
            handler(ec);
          });
    });
    if (ec) return NetError(req, "resolve", ec, c);
    c.lowest().expires_after(std::chrono::seconds(10));
    ec = RunOp(c, [&](auto handler) {
      c.lowest().async_connect(endpoints, [handler](beast::error_code ec,
                                                    const tcp::endpoint&) mutable { handler(ec); });
    });
    if (ec) return NetError(req, "connect", ec, c);
    beast::error_code ignored;
    c.lowest().socket().set_option(tcp::no_delay(true), ignored);
    if (c.tls) {
      if (!IsIpAddress(url_.host) &&
          !SSL_set_tlsext_host_name(c.tls->native_handle(), url_.host.c_str())) {
        return absl::UnavailableError(absl::StrCat(Describe(req), ": cannot set TLS SNI"));
      }
      if (!config_.insecure_skip_tls_verify) {
        c.tls->set_verify_callback(ssl::host_name_verification(url_.host));
      }
      ec = RunOp(c, [&](auto handler) {
        c.tls->async_handshake(ssl::stream_base::client, std::move(handler));
      });
      if (ec) return NetError(req, "TLS handshake", ec, c);
    }
    c.lowest().expires_never();
    return absl::OkStatus();
  }

  int RegisterCancel(Conn& c, CancelToken* cancel) {
    if (cancel == nullptr) return -1;
    // Posting is the only thread-safe way into the connection; the handler then runs
    // on the thread driving it.
    return cancel->Register([&c] {
      asio::post(c.ioc, [&c] {
        c.cancelled = true;
        c.lowest().cancel();
      });
    });
  }

  std::string Token() {
    std::lock_guard<std::mutex> lock(mu_);
    if (config_.token_file.empty()) return config_.token;
    const absl::Time now = clock_->Now();
    if (!token_read_ || now - last_token_read_ >= config_.token_refresh) {
      std::ifstream in(config_.token_file);
      std::ostringstream ss;
      if (in) ss << in.rdbuf();
      if (in && !ss.str().empty()) {
        token_ = std::string(absl::StripAsciiWhitespace(ss.str()));
        token_read_ = true;
        last_token_read_ = now;
      } else {
        // Keep the last token: a rotation in progress can briefly leave the file empty.
        ZS_LOG(kWarning, "cannot read service-account token; keeping the previous one",
               {"file", config_.token_file});
      }
    }
    return token_;
  }

  template <class Stream>
  absl::StatusOr<HttpResponse> Send(Conn& c, Stream& stream, const HttpRequest& req,
                                    const std::function<bool(absl::string_view)>* on_data,
                                    bool* got_response, bool* reusable) {
    bhttp::request<bhttp::string_body> msg(bhttp::string_to_verb(req.method),
                                           url_.base_path + req.target, 11);
    msg.set(bhttp::field::host, url_.host_header);
    msg.set(bhttp::field::user_agent, "zeroscale-scaler/0.1");
    msg.set(bhttp::field::accept, "application/json");
    const std::string token = Token();
    if (!token.empty()) msg.set(bhttp::field::authorization, absl::StrCat("Bearer ", token));
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
      msg.set(bhttp::field::content_type,
              req.content_type.empty() ? "application/json" : req.content_type);
      msg.body() = req.body;
    }
    msg.keep_alive(true);
    msg.prepare_payload();

    const auto timeout = absl::ToChronoNanoseconds(req.timeout);
    c.lowest().expires_after(timeout);
    beast::error_code ec =
        RunOp(c, [&](auto handler) { bhttp::async_write(stream, msg, std::move(handler)); });
    if (ec) return NetError(req, "write", ec, c);

    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(on_data != nullptr ? std::numeric_limits<uint64_t>::max() : kMaxBodyBytes);
    c.lowest().expires_after(timeout);
    ec = RunOp(c, [&](auto handler) {
      bhttp::async_read_header(stream, c.buffer, parser, std::move(handler));
    });
    if (ec) return NetError(req, "read response", ec, c);
    *got_response = true;

    HttpResponse res;
    const auto& head = parser.get();
    res.status = static_cast<int>(head.result_int());
    for (const auto& f : head) {
      res.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    const bool stream_body = on_data != nullptr && res.status >= 200 && res.status < 300;
    char buf[16384];
    bool stopped = false;
    while (!parser.is_done()) {
      parser.get().body().data = buf;
      parser.get().body().size = sizeof(buf);
      // Unary requests share one deadline; streams tolerate `timeout` of silence.
      if (stream_body) c.lowest().expires_after(timeout);
      ec = RunOp(c, [&](auto handler) {
        bhttp::async_read_some(stream, c.buffer, parser, std::move(handler));
      });
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) return NetError(req, "read body", ec, c);
      const size_t n = sizeof(buf) - parser.get().body().size;
      if (n == 0) continue;
      if (stream_body) {
        if (!(*on_data)(absl::string_view(buf, n))) {
          stopped = true;
          break;
        }
      } else if (on_data == nullptr || res.body.size() < kMaxErrorBodyBytes) {
        res.body.append(buf, n);
      }
    }
    *reusable = !stopped && parser.is_done() && parser.keep_alive();
    return res;
  }

  absl::StatusOr<HttpResponse> RunExchange(Conn& c, const HttpRequest& req,
                                           const std::function<bool(absl::string_view)>* on_data,
                                           CancelToken* cancel, bool* got_response,
                                           bool* reusable) {
    if (cancel != nullptr && cancel->cancelled()) {
      return absl::CancelledError(absl::StrCat(Describe(req), ": cancelled"));
    }
    const int cancel_id = RegisterCancel(c, cancel);
    absl::StatusOr<HttpResponse> res = c.tls
                                           ? Send(c, *c.tls, req, on_data, got_response, reusable)
                                           : Send(c, *c.tcp, req, on_data, got_response, reusable);
    if (cancel != nullptr) cancel->Unregister(cancel_id);
    // Drain a cancellation posted after the last operation so it cannot hit the next user.
    c.ioc.restart();
    c.ioc.poll();
    *reusable = res.ok() && *reusable && !c.cancelled;
    if (*reusable) c.lowest().expires_never();
    return res;
  }

  const ClusterConfig config_;
  const ServerUrl url_;
  Clock* const clock_;
  ssl::context ssl_ctx_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::string token_;
  bool token_read_ = false;
  absl::Time last_token_read_;
};

Transport::Transport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Transport::~Transport() = default;

absl::StatusOr<std::unique_ptr<Transport>> Transport::Create(const ClusterConfig& config,
                                                             Clock* clock) {
  auto url = ParseServer(config.server);
  if (!url.ok()) return url.status();
  auto impl = std::make_unique<Impl>(config, *std::move(url), clock);
  absl::Status s = impl->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<Transport>(new Transport(std::move(impl)));
}

absl::StatusOr<HttpResponse> Transport::Do(const HttpRequest& request) {
  return impl_->Exchange(request, nullptr, nullptr);
}

absl::StatusOr<HttpResponse> Transport::Stream(
    const HttpRequest& request, const std::function<bool(absl::string_view)>& on_data,
    CancelToken* cancel) {
  return impl_->Exchange(request, &on_data, cancel);
}

const std::string& Transport::server() const { return impl_->server(); }

}  // namespace zeroscale::kube
