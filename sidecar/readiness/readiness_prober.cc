#include "sidecar/readiness/readiness_prober.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/address_v4.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/error.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/empty_body.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"
#include "common/log/log.h"

namespace zeroscale::sidecar {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

absl::Status Validate(const ReadinessOptions& o) {
  if (o.app_port == 0) return absl::InvalidArgumentError("app_port: must be set (1-65535)");
  if (!o.path.empty()) {
    if (o.path.front() != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("readiness path: \"", o.path, "\" must start with '/'"));
    }
    for (char c : o.path) {
      // Would break the request line; a URL needs these percent-encoded anyway.
      if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
        return absl::InvalidArgumentError(absl::StrCat(
            "readiness path: \"", o.path, "\" contains whitespace or control characters"));
      }
    }
  }
  if (o.interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("interval: must be positive");
  }
  if (o.not_ready_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("not_ready_interval: must be positive");
  }
  if (o.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout: must be positive");
  }
  return absl::OkStatus();
}

// One probe in flight; owned by its own completion handlers.
class Probe : public std::enable_shared_from_this<Probe> {
 public:
  using Done = std::function<void(absl::Status)>;

  Probe(asio::io_context& ioc, const ReadinessOptions& options, Done done)
      : options_(options), stream_(ioc), done_(std::move(done)) {}

  void Run() {
    // One deadline for the whole exchange: connect, request, response header.
    stream_.expires_after(ToChrono(options_.timeout));
    stream_.async_connect(
        tcp::endpoint(asio::ip::address_v4::loopback(), options_.app_port),
        [self = shared_from_this()](beast::error_code ec) { self->OnConnect(ec); });
  }

 private:
  void OnConnect(beast::error_code ec) {
    if (ec) return Finish(Failure("connect", ec));
    if (options_.path.empty()) return Finish(absl::OkStatus());
    request_ = {http::verb::get, options_.path, 11};
    request_.set(http::field::host, absl::StrCat("127.0.0.1:", options_.app_port));
    request_.set(http::field::user_agent, "zeroscale-sidecar");
    request_.set(http::field::connection, "close");
    http::async_write(stream_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) return Finish(Failure("send request", ec));
    // The status line is the verdict; the body is of no interest and may be endless.
    http::async_read_header(
        stream_, buffer_, parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return Finish(Failure("read response", ec));
    const unsigned status = parser_.get().result_int();
    if (status >= 200 && status < 300) return Finish(absl::OkStatus());
    Finish(absl::UnavailableError(absl::StrCat("GET ", options_.path, " answered ", status)));
  }

  absl::Status Failure(absl::string_view step, beast::error_code ec) const {
    if (ec == beast::error::timeout) {
      return absl::UnavailableError(absl::StrCat(step, " to 127.0.0.1:", options_.app_port,
                                                 " timed out after ",
                                                 absl::FormatDuration(options_.timeout)));
    }
    return absl::UnavailableError(
        absl::StrCat(step, " to 127.0.0.1:", options_.app_port, ": ", ec.message()));
  }

  void Finish(absl::Status status) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    Done done = std::move(done_);
    done(std::move(status));
  }

  const ReadinessOptions options_;
  beast::tcp_stream stream_;
  http::request<http::empty_body> request_;
  beast::flat_buffer buffer_;
  http::response_parser<http::empty_body> parser_;
  Done done_;
};

}  // namespace

absl::Status ProbeReadiness(const ReadinessOptions& options) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  asio::io_context ioc;
  absl::Status result;
  std::make_shared<Probe>(ioc, options, [&result](absl::Status s) {
    result = std::move(s);
  })->Run();
  ioc.run();
  return result;
}

class ReadinessProber::Impl {
 public:
  Impl(ReadinessOptions options, OnChange on_change)
      : options_(std::move(options)), on_change_(std::move(on_change)), timer_(ioc_) {}

  ~Impl() { Stop(); }

  absl::Status Start() {
    if (absl::Status s = Validate(options_); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return absl::FailedPreconditionError("readiness prober already started");
    started_ = true;
    asio::post(ioc_, [this] { ProbeNow(); });
    thread_ = std::thread([this] { ioc_.run(); });
    return absl::OkStatus();
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    // Pending handlers (and the probe they own) are dropped unrun; the socket closes
    // when the io_context is destroyed.
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  bool ready() const { return ready_.load(); }

 private:
  // Runs on thread_, as do all handlers.
  void ProbeNow() {
    std::make_shared<Probe>(ioc_, options_, [this](absl::Status s) {
      OnResult(std::move(s));
    })->Run();
  }

  void OnResult(absl::Status status) {
    const bool now_ready = status.ok();
    if (now_ready != ready_.load()) {
      ready_ = now_ready;
      if (now_ready) {
        ZS_LOG(kInfo, "app is ready", {"port", absl::StrCat(options_.app_port)},
               {"check", options_.path.empty() ? "tcp" : options_.path});
      } else {
        ZS_LOG(kWarning, "app is not ready", {"port", absl::StrCat(options_.app_port)},
               {"reason", std::string(status.message())});
      }
      if (on_change_) on_change_(now_ready);
    }
    timer_.expires_after(ToChrono(now_ready ? options_.interval : options_.not_ready_interval));
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec) ProbeNow();
    });
  }

  const ReadinessOptions options_;
  const OnChange on_change_;
  std::mutex mu_;  // serialises Start and Stop
  // Declared before everything that uses it, so it is destroyed last.
  asio::io_context ioc_;
  asio::steady_timer timer_;
  std::atomic<bool> ready_{false};
  bool started_ = false;
  std::thread thread_;
};

ReadinessProber::ReadinessProber(ReadinessOptions options, OnChange on_change)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(on_change))) {}

ReadinessProber::~ReadinessProber() = default;

absl::Status ReadinessProber::Start() { return impl_->Start(); }

void ReadinessProber::Stop() { impl_->Stop(); }

bool ReadinessProber::ready() const { return impl_->ready(); }

}  // namespace zeroscale::sidecar
