#include "tests/common/proxy/test_backend.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <limits>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"

namespace zeroscale::testing {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

class TestBackend::Impl {
 public:
  Impl() : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~Impl() { Stop(); }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::set<int> fds_;
  bool sse_released_ = false;
  bool stopping_ = false;

 private:
  void AcceptLoop() {
    for (;;) {
      beast::error_code ec;
      tcp::socket s(ioc_);
      acceptor_.accept(s, ec);
      std::lock_guard<std::mutex> lock(mu_);
      if (ec || stopping_) return;
      accepted_++;
      fds_.insert(s.native_handle());
      threads_.emplace_back([this, s = std::move(s)]() mutable { Serve(std::move(s)); });
    }
  }

  void Serve(tcp::socket s) {
    const int fd = s.native_handle();
    beast::error_code ec;
    try {
      ServeRequests(s);
    } catch (const std::exception&) {
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      fds_.erase(fd);
    }
    cv_.notify_all();
    s.shutdown(tcp::socket::shutdown_both, ec);
    s.close(ec);
  }

  void ServeRequests(tcp::socket& s) {
    beast::flat_buffer buf;
    std::vector<char> tmp(1 << 16);
    for (;;) {
      beast::error_code ec;
      bhttp::request_parser<bhttp::buffer_body> p;
      p.body_limit(std::numeric_limits<std::uint64_t>::max());
      bhttp::read_header(s, buf, p, ec);
      if (ec) return;
      std::string body;
      uint64_t total = 0, sum = 0;
      while (!p.is_done()) {
        p.get().body().data = tmp.data();
        p.get().body().size = tmp.size();
        bhttp::read(s, buf, p, ec);
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) return;
        const size_t n = tmp.size() - p.get().body().size;
        for (size_t i = 0; i < n; ++i) sum += static_cast<unsigned char>(tmp[i]);
        total += n;
        if (body.size() < (1 << 20)) body.append(tmp.data(), n);
      }
      const auto& req = p.get();
      const std::string target(req.target());
      const std::string path = target.substr(0, target.find('?'));
      const bool keep = req.keep_alive();
      const bool head = req.method() == bhttp::verb::head;

      if (absl::StartsWith(path, "/big/")) {
        uint64_t n = 0;
        if (!absl::SimpleAtoi(path.substr(5), &n)) n = 0;
        SendBig(s, n, absl::StrContains(target, "chunked=1"), head, keep);
      } else if (path == "/sse") {
        SendSse(s);
      } else if (path == "/hang") {
        // Never answers; ends when the peer closes or the backend stops.
        for (;;) {
          pollfd pfd{s.native_handle(), POLLIN | POLLRDHUP, 0};
          if (::poll(&pfd, 1, 20) != 0) return;
          std::lock_guard<std::mutex> lock(mu_);
          if (stopping_) return;
        }
      } else if (path == "/drop") {
        // Claims keep-alive, then closes: an upstream that drops an idle connection.
        const std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ndropped";
        asio::write(s, asio::buffer(raw));
        return;
      } else if (path == "/close") {
        const std::string raw = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nclose-delimited";
        asio::write(s, asio::buffer(raw));
        return;
      } else {
        bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
        res.set("X-Backend", "test");
        res.set(bhttp::field::content_type, "text/plain");
        if (absl::StartsWith(path, "/echo")) {
          std::string out = absl::StrCat(std::string(req.method_string()), " ", target, "\n");
          for (const auto& h : req) {
            absl::StrAppend(&out, std::string(h.name_string()), ": ", std::string(h.value()), "\n");
          }
          absl::StrAppend(&out, "\n", body);
          res.body() = std::move(out);
        } else if (absl::StartsWith(path, "/status/")) {
          int code = 200;
          if (!absl::SimpleAtoi(path.substr(8), &code)) code = 500;
          res.result(static_cast<unsigned>(code));
          if (code != 204 && code != 304) res.body() = absl::StrCat("status ", code);
        } else if (absl::StartsWith(path, "/sleep/")) {
          int ms = 0;
          if (!absl::SimpleAtoi(path.substr(7), &ms)) ms = 0;
          std::this_thread::sleep_for(std::chrono::milliseconds(ms));
          res.body() = "slept";
        } else if (path == "/upload") {
          res.body() = absl::StrCat("bytes=", total, " sum=", sum);
        } else {
          res.result(bhttp::status::not_found);
          res.body() = "not found";
        }
        const int code = res.result_int();
        if (code == 204 || code == 304) {
          res.chunked(false);
        } else {
          res.prepare_payload();
        }
        res.keep_alive(keep);
        if (head) {
          bhttp::response_serializer<bhttp::string_body> sr{res};
          bhttp::write_header(s, sr);
        } else {
          bhttp::write(s, res);
        }
      }
      if (!keep) return;
    }
  }

  void SendBig(tcp::socket& s, uint64_t n, bool chunked, bool head, bool keep) {
    bhttp::response<bhttp::buffer_body> res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "application/octet-stream");
    if (chunked) {
      res.chunked(true);
    } else {
      res.content_length(n);
    }
    res.keep_alive(keep);
    bhttp::response_serializer<bhttp::buffer_body> sr{res};
    beast::error_code ec;
    if (head) {
      res.body().data = nullptr;
      res.body().more = false;
      bhttp::write_header(s, sr);
      return;
    }
    std::vector<char> chunk(1 << 16);
    uint64_t sent = 0;
    while (sent < n) {
      const size_t len = static_cast<size_t>(std::min<uint64_t>(chunk.size(), n - sent));
      for (size_t i = 0; i < len; ++i) chunk[i] = PatternByte(sent + i);
      sent += len;
      res.body().data = chunk.data();
      res.body().size = len;
      res.body().more = true;
      bhttp::write(s, sr, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) throw beast::system_error(ec);
    }
    res.body().data = nullptr;
    res.body().size = 0;
    res.body().more = false;
    bhttp::write(s, sr, ec);
    if (ec && ec != bhttp::error::need_buffer) throw beast::system_error(ec);
  }

  void SendSse(tcp::socket& s) {
    bhttp::response<bhttp::buffer_body> res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "text/event-stream");
    res.set(bhttp::field::cache_control, "no-cache");
    res.chunked(true);
    bhttp::response_serializer<bhttp::buffer_body> sr{res};
    beast::error_code ec;
    auto send = [&](const std::string& text, bool more) {
      res.body().data = text.empty() ? nullptr : const_cast<char*>(text.data());
      res.body().size = text.size();
      res.body().more = more;
      bhttp::write(s, sr, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) throw beast::system_error(ec);
    };
    send("data: one\n\n", true);
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(10), [this] { return sse_released_ || stopping_; });
    }
    send("data: two\n\n", true);
    send("", false);
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread accept_thread_;
  std::vector<std::thread> threads_;
};

TestBackend::TestBackend() : impl_(std::make_unique<Impl>()) {}
TestBackend::~TestBackend() { impl_->Stop(); }
uint16_t TestBackend::port() const { return impl_->port_; }
int TestBackend::connections_accepted() const { return impl_->accepted_.load(); }
int TestBackend::connections_open() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return static_cast<int>(impl_->fds_.size());
}
bool TestBackend::WaitForOpenConnectionsAtMost(int n, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mu_);
  return impl_->cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                             [&] { return static_cast<int>(impl_->fds_.size()) <= n; });
}
void TestBackend::ReleaseSse() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    impl_->sse_released_ = true;
  }
  impl_->cv_.notify_all();
}
void TestBackend::Stop() { impl_->Stop(); }

std::string SimpleResponse::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

bool SimpleResponse::HasHeader(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return true;
  }
  return false;
}

class TestClient::Impl {
 public:
  explicit Impl(uint16_t port) : socket(ioc) {
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{10, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
  asio::io_context ioc;
  tcp::socket socket;
  beast::flat_buffer buffer;
};

TestClient::TestClient(uint16_t port) : impl_(std::make_unique<Impl>(port)) {}
TestClient::~TestClient() = default;

SimpleResponse TestClient::Send(const std::string& method, const std::string& target,
                                const std::vector<std::pair<std::string, std::string>>& headers,
                                const std::string& body) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, "backend.test");
  for (const auto& [k, v] : headers) req.insert(k, v);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.body() = body;
    req.prepare_payload();
  }
  bhttp::write(impl_->socket, req);
  bhttp::response_parser<bhttp::string_body> p;
  p.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (method == "HEAD") p.skip(true);
  bhttp::read(impl_->socket, impl_->buffer, p);
  SimpleResponse r;
  r.status = static_cast<int>(p.get().result_int());
  for (const auto& h : p.get()) {
    r.headers.emplace_back(std::string(h.name_string()), std::string(h.value()));
  }
  r.body = std::move(p.get().body());
  return r;
}

void TestClient::WriteRaw(const std::string& bytes) {
  asio::write(impl_->socket, asio::buffer(bytes));
}

std::string TestClient::ReadSome(size_t max) {
  std::string out(max, '\0');
  beast::error_code ec;
  if (impl_->buffer.size() > 0) {
    const size_t n = asio::buffer_copy(asio::buffer(out), impl_->buffer.data());
    impl_->buffer.consume(n);
    out.resize(n);
    return out;
  }
  const size_t n = impl_->socket.read_some(asio::buffer(out), ec);
  if (ec == asio::error::eof) return "";
  if (ec) throw beast::system_error(ec);
  out.resize(n);
  return out;
}

void TestClient::Close() {
  beast::error_code ec;
  impl_->socket.close(ec);
}

bool TestClient::connected() const { return impl_->socket.is_open(); }

uint16_t UnusedPort() {
  asio::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = a.local_endpoint().port();
  a.close();
  return port;
}

int64_t CurrentRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      int64_t kb = 0;
      std::string num;
      for (char c : line) {
        if (absl::ascii_isdigit(c)) num.push_back(c);
      }
      if (absl::SimpleAtoi(num, &kb)) return kb * 1024;
    }
  }
  return 0;
}

}  // namespace zeroscale::testing
