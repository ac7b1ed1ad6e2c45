// Internal to common/http: the Beast connection loop shared by the plain server
// (http_server.cc) and the TLS server (tls_server.cc). Only those two .cc files include
// this header, so Beast stays out of every other translation unit; it is a header only
// because each of them instantiates Session for its own stream type, and the TLS one must
// link OpenSSL while the plain one (in the statically linked sidecar) must not.
//
// Thread-safety: a Listener is started and stopped from one thread; each Session runs on
// its own strand; handlers may answer from any thread.
#ifndef ZEROSCALE_COMMON_HTTP_SERVER_CORE_H_
#define ZEROSCALE_COMMON_HTTP_SERVER_CORE_H_

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "common/http/head_checks.h"
#include "common/http/http_server.h"
#include "common/net/accept_control.h"
#include "common/time/clock.h"

namespace zeroscale::http::internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// What differs between stream types, specialised by the .cc file that instantiates
// Session<Stream>:
//   static void Handshake(Stream&, std::function<void(beast::error_code)> done);
//   static void Shutdown(Stream&, std::shared_ptr<void> keep_alive);
//   static bool Truncated(const beast::error_code&);  // the peer closed without notice
template <class Stream>
struct Transport;

// One connection: reads requests, hands them to the handler, writes each answer, and
// keeps the connection alive while the client asks for it.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  // `hold` keeps alive what the stream refers to (the TLS context it was made with).
  template <class... StreamArgs>
  Session(const ServerOptions& options, const Handler& handler, std::shared_ptr<void> hold,
          net::ConnectionSlot slot, StreamArgs&&... stream_args)
      : hold_(std::move(hold)),
        slot_(std::move(slot)),
        stream_(std::forward<StreamArgs>(stream_args)...),
        options_(options),
        handler_(handler) {}

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      // A client that connects and never completes a handshake must not hold the
      // connection forever.
      self->tcp().expires_after(std::chrono::seconds(10));
      Transport<Stream>::Handshake(self->stream_, [self](beast::error_code ec) {
        if (ec) return self->Close();
        self->Read();
      });
    });
  }

 private:
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }

  void Read() {
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    tcp().expires_after(std::chrono::seconds(120));
    ReadHead();
  }

  // The head is parsed from the buffer with Beast's parser (not eager, so it takes the
  // head alone once all of it is there, within its header limit) rather than by
  // async_read, so that the head's bytes can be checked before they are consumed.
  void ReadHead() {
    if (buffer_.size() > 0) {
      beast::error_code ec;
      const char* head = static_cast<const char*>(buffer_.data().data());
      const size_t used = parser_->put(buffer_.data(), ec);
      if (ec == bhttp::error::need_more) ec = {};
      if (!ec && parser_->is_header_done()) {
        const int status = CheckHead(absl::string_view(head, used));
        buffer_.consume(used);
        return OnHead(status);
      }
      buffer_.consume(used);
      if (ec) return OnRead(ec);
    }
    stream_.async_read_some(
        buffer_.prepare(4096), [self = this->shared_from_this()](beast::error_code ec, size_t n) {
          self->buffer_.commit(n);
          if (ec == asio::error::eof || Transport<Stream>::Truncated(ec)) {
            ec = self->parser_->got_some() ? beast::error_code(bhttp::error::partial_message)
                                           : beast::error_code(bhttp::error::end_of_stream);
          }
          if (ec) return self->OnRead(ec);
          self->ReadHead();
        });
  }

  // 0, or the status the head is refused with (head_error_ says why).
  int CheckHead(absl::string_view raw_head) {
    const auto& msg = parser_->get();
    RequestHeadCheck check(msg.version());
    for (const auto& f : msg) {
      check.Field(absl::string_view(f.name_string().data(), f.name_string().size()),
                  absl::string_view(f.value().data(), f.value().size()));
    }
    return check.Verdict(raw_head, &head_error_);
  }

  void OnHead(int refused) {
    if (refused != 0) {
      keep_alive_ = false;
      version_ = parser_->get().version();
      return Write(Response::Error(refused, absl::StrCat("bad request: ", head_error_)), false);
    }
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec == bhttp::error::body_limit) {
      keep_alive_ = false;
      return Write(Response::Error(413, absl::StrCat("request body exceeds ",
                                                     options_.max_body_bytes, " bytes")),
                   false);
    }
    if (ec) {
      keep_alive_ = false;
      return Write(Response::Error(400, absl::StrCat("bad request: ", ec.message())), false);
    }
    bhttp::request<bhttp::string_body> msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == bhttp::verb::head;
    version_ = msg.version();
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    const size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    for (const auto& f : msg) {
      req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    req.body = std::move(msg.body());
    beast::error_code ignored;
    const tcp::endpoint remote = tcp().socket().remote_endpoint(ignored);
    if (!ignored) req.remote_ip = remote.address().to_string();

    auto self = this->shared_from_this();
    auto once = std::make_shared<std::atomic<bool>>(false);
    handler_(std::move(req), [self, once](Response r) {
      if (once->exchange(true)) return;
      asio::post(self->stream_.get_executor(), [self, r = std::move(r)]() mutable {
        self->Write(std::move(r), self->keep_alive_);
      });
    });
  }

  void Write(Response r, bool keep_alive) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(r.status), version_ ? version_ : 11);
    res->set(bhttp::field::server, options_.server_name);
    res->set(bhttp::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->keep_alive(keep_alive);
    const size_t len = r.body.size();
    if (!head_) res->body() = std::move(r.body);
    res->content_length(len);
    if (head_) res->body().clear();
    tcp().expires_after(std::chrono::seconds(60));
    bhttp::async_write(
        stream_, *res,
        [self = this->shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
          if (ec || !keep_alive) return self->Close();
          self->Read();
        });
  }

  void Close() { Transport<Stream>::Shutdown(stream_, this->shared_from_this()); }

  const std::shared_ptr<void> hold_;  // first: outlives the stream
  net::ConnectionSlot slot_;          // freed with the session, after the stream closes
  Stream stream_;
  const ServerOptions& options_;
  const Handler& handler_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string head_error_;
  bool keep_alive_ = true;
  bool head_ = false;
  unsigned version_ = 11;
};

// The listening socket and the I/O threads; each accepted socket goes to `on_accept`
// (on an I/O thread, with its own strand) with the slot it holds under
// ServerOptions::max_connections.
class Listener {
 public:
  using OnAccept = std::function<void(tcp::socket, net::ConnectionSlot)>;

  Listener(const ServerOptions& options, OnAccept on_accept)
      : options_(options),
        on_accept_(std::move(on_accept)),
        control_(options.name, Limits(options), RealClock::Get(), options.observer),
        ioc_(options.threads),
        acceptor_(asio::make_strand(ioc_)),
        retry_timer_(acceptor_.get_executor()) {}

  // kFailedPrecondition names the address when it cannot be bound.
  absl::Status Start() {
    beast::error_code ec;
    const auto addr = asio::ip::make_address(options_.listen.host, ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot listen on ", options_.listen.ToString(), ": bad address: ", ec.message()));
    }
    const tcp::endpoint ep(addr, options_.listen.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot listen on ", options_.listen.ToString(), ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    for (int i = 0; i < std::max(1, options_.threads); ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    return absl::OkStatus();
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    control_.Close();
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code ec;
      acceptor_.close(ec);
      retry_timer_.cancel();
    });
    ioc_.stop();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  uint16_t port() const { return port_; }
  net::ListenerStats stats() const { return control_.stats(); }

 private:
  static net::ListenerLimits Limits(const ServerOptions& options) {
    net::ListenerLimits limits;
    limits.max_connections = options.max_connections;
    return limits;
  }

  // On the acceptor's strand.
  void Accept() {
    if (stopped_) return;
    const bool may = control_.MayAccept([this] {
      // A connection closed: accept again (on the acceptor's strand).
      asio::post(acceptor_.get_executor(), [this] { Accept(); });
    });
    if (!may) return;  // at the cap: new connections wait in the backlog
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) {
        // Out of file descriptors (or buffers): the connection stays in the backlog, and
        // accepting again at once would spin. Wait, then try again.
        retry_timer_.expires_after(absl::ToChronoNanoseconds(control_.OnAcceptError(ec.message())));
        retry_timer_.async_wait([this](beast::error_code tec) {
          if (!tec) Accept();
        });
        return;
      }
      control_.OnAccepted();
      s.set_option(tcp::no_delay(true), ec);
      on_accept_(std::move(s), net::ConnectionSlot(&control_));
      Accept();
    });
  }

  const ServerOptions& options_;
  const OnAccept on_accept_;
  net::AcceptControl control_;  // before ioc_: sessions destroyed with it release slots
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;
};

}  // namespace zeroscale::http::internal

#endif  // ZEROSCALE_COMMON_HTTP_SERVER_CORE_H_
