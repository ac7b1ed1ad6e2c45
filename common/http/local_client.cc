#include "common/http/local_client.h"

#include <chrono>
#include <functional>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/address_v4.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/error.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/empty_body.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "boost/beast/http/write.hpp"

namespace zeroscale::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// One exchange; owned by its completion handlers, run to completion on the caller's
// io_context.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(asio::io_context& ioc, const LocalGetOptions& options,
           absl::StatusOr<LocalGetResponse>* result)
      : options_(options), stream_(ioc), result_(result) {
    parser_.body_limit(options_.max_body_bytes);
    parser_.header_limit(16 << 10);
  }

  void Run() {
    // One deadline for everything: connect, request, header and body.
    stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        absl::ToChronoNanoseconds(options_.timeout)));
    stream_.async_connect(
        tcp::endpoint(asio::ip::address_v4::loopback(), options_.port),
        [self = shared_from_this()](beast::error_code ec) { self->OnConnect(ec); });
  }

 private:
  void OnConnect(beast::error_code ec) {
    if (ec) return Fail("connect", ec);
    request_ = {bhttp::verb::get, options_.path, 11};
    request_.set(bhttp::field::host, absl::StrCat("127.0.0.1:", options_.port));
    request_.set(bhttp::field::user_agent, "zeroscale-sidecar");
    request_.set(bhttp::field::accept, "text/plain");
    request_.set(bhttp::field::connection, "close");
    bhttp::async_write(stream_, request_,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Fail("send request", ec);
                         self->Read();
                       });
  }

  void Read() {
    bhttp::async_read(
        stream_, buffer_, parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Fail("read response", ec);
    if (parser_.get().body().size() > options_.max_body_bytes) {
      return Fail("read response", bhttp::error::body_limit);
    }
    LocalGetResponse r;
    r.status = static_cast<int>(parser_.get().result_int());
    r.content_type = std::string(parser_.get()[bhttp::field::content_type]);
    r.body = std::move(parser_.get().body());
    *result_ = std::move(r);
    Close();
  }

  void Fail(absl::string_view step, beast::error_code ec) {
    const std::string where = absl::StrCat("GET http://127.0.0.1:", options_.port, options_.path);
    if (ec == beast::error::timeout) {
      *result_ = absl::DeadlineExceededError(absl::StrCat(where, ": ", step, ": no answer within ",
                                                          absl::FormatDuration(options_.timeout)));
    } else if (ec == bhttp::error::body_limit) {
      *result_ = absl::ResourceExhaustedError(
          absl::StrCat(where, ": body over ", options_.max_body_bytes, " bytes"));
    } else if (ec == bhttp::error::header_limit) {
      *result_ = absl::ResourceExhaustedError(absl::StrCat(where, ": header over 16 KiB"));
    } else {
      *result_ = absl::UnavailableError(absl::StrCat(where, ": ", step, ": ", ec.message()));
    }
    Close();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  const LocalGetOptions& options_;
  beast::tcp_stream stream_;
  bhttp::request<bhttp::empty_body> request_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
  absl::StatusOr<LocalGetResponse>* const result_;
};

}  // namespace

absl::Status ValidateLocalPath(absl::string_view path) {
  if (path.empty() || path.front() != '/') {
    return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" must start with '/'"));
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", absl::CHexEscape(path), "\" contains whitespace or control characters"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LocalGetResponse> LocalGet(const LocalGetOptions& options) {
  if (options.port == 0) return absl::InvalidArgumentError("port: must be set (1-65535)");
  if (absl::Status s = ValidateLocalPath(options.path); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("path: ", s.message()));
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout: must be positive");
  }
  asio::io_context ioc;
  absl::StatusOr<LocalGetResponse> result = absl::InternalError("exchange did not finish");
  std::make_shared<Exchange>(ioc, options, &result)->Run();
  ioc.run();
  return result;
}

}  // namespace zeroscale::http
