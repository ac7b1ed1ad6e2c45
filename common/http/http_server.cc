#include "common/http/http_server.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/http/server_core.h"
#include "common/log/log.h"
#include "nlohmann/json.hpp"

namespace zeroscale::http {
namespace beast = boost::beast;
using tcp = boost::asio::ip::tcp;

std::string UrlDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) &&
               absl::ascii_isxdigit(s[i + 2])) {
      auto hex = [](char c) { return absl::ascii_isdigit(c) ? c - '0' : (c | 0x20) - 'a' + 10; };
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string Request::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

bool Request::HasQueryParam(absl::string_view name) const {
  for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const absl::string_view k = kv.substr(0, kv.find('='));
    if (UrlDecode(k) == name) return true;
  }
  return false;
}

std::string Request::QueryParam(absl::string_view name) const {
  for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = kv.find('=');
    if (UrlDecode(kv.substr(0, eq)) == name) {
      return eq == absl::string_view::npos ? "" : UrlDecode(kv.substr(eq + 1));
    }
  }
  return "";
}

Response Response::Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

Response Response::Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::Error(int status, absl::string_view message) {
  nlohmann::ordered_json j;
  j["error"] = std::string(message);
  return Json(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void Router::Handle(std::string method, std::string path, Handler handler) {
  routes_.push_back({std::move(method), std::move(path), std::move(handler)});
}

void Router::HandleSync(std::string method, std::string path, SyncHandler handler) {
  Handle(
      std::move(method), std::move(path),
      [handler = std::move(handler)](Request&& req, Responder respond) { respond(handler(req)); });
}

Handler Router::AsHandler() const {
  return [this](Request&& req, Responder respond) { Dispatch(std::move(req), std::move(respond)); };
}

void Router::Dispatch(Request&& req, Responder respond) const {
  bool path_known = false;
  for (const Route& r : routes_) {
    if (r.path != req.path) continue;
    path_known = true;
    if (r.method == req.method || (req.method == "HEAD" && r.method == "GET")) {
      r.handler(std::move(req), std::move(respond));
      return;
    }
  }
  if (path_known) {
    respond(
        Response::Error(405, absl::StrCat("method ", req.method, " not allowed on ", req.path)));
  } else {
    respond(Response::Error(404, absl::StrCat("no such endpoint: ", req.path)));
  }
}

namespace internal {

template <>
struct Transport<beast::tcp_stream> {
  static void Handshake(beast::tcp_stream&, const std::function<void(beast::error_code)>& done) {
    done({});
  }
  static void Shutdown(beast::tcp_stream& stream, const std::shared_ptr<void>&) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }
  static bool Truncated(const beast::error_code&) { return false; }
};

}  // namespace internal

namespace {

class PlainTransport : public Server::Transport {
 public:
  PlainTransport(ServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        listener_(options_, [this](tcp::socket s, net::ConnectionSlot slot) {
          std::make_shared<internal::Session<beast::tcp_stream>>(options_, handler_, nullptr,
                                                                 std::move(slot), std::move(s))
              ->Start();
        }) {}

  absl::Status Start() override { return listener_.Start(); }
  void Stop() override { listener_.Stop(); }
  uint16_t port() const override { return listener_.port(); }
  net::ListenerStats stats() const override { return listener_.stats(); }

 private:
  const ServerOptions options_;
  const Handler handler_;
  internal::Listener listener_;  // last: its sessions refer to the members above
};

}  // namespace

Server::Server(ServerOptions options, Handler handler)
    : impl_(std::make_unique<PlainTransport>(std::move(options), std::move(handler))) {}
Server::Server(std::unique_ptr<Transport> transport) : impl_(std::move(transport)) {}
Server::~Server() { impl_->Stop(); }
absl::Status Server::Start() { return impl_->Start(); }
void Server::Stop() { impl_->Stop(); }
uint16_t Server::port() const { return impl_->port(); }
net::ListenerStats Server::stats() const { return impl_->stats(); }

}  // namespace zeroscale::http
