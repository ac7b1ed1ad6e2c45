#include "tests/balancer/recording_backend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace zeroscale::testing {

class RecordingBackend::Impl {
 public:
  Impl(std::string name, absl::Duration latency) : name_(std::move(name)), latency_(latency) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 1024);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      released_ = true;
      for (int c : conns_) shutdown(c, SHUT_RDWR);
    }
    cv_.notify_all();
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    acceptor_.join();
    for (auto& t : workers_) t.join();
  }

  void AcceptLoop() {
    while (true) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        close(c);
        return;
      }
      int one = 1;
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      conns_.push_back(c);
      workers_.emplace_back([this, c] { Serve(c); });
    }
  }

  void Serve(int c) {
    std::string buf;
    char tmp[8192];
    while (true) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = read(c, tmp, sizeof(tmp));
        if (n <= 0) return Close(c);
        buf.append(tmp, static_cast<size_t>(n));
      }
      const std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      size_t body_len = 0;
      for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
        if (absl::StartsWithIgnoreCase(line, "content-length:")) {
          absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(15)), &body_len);
        }
      }
      while (buf.size() < body_len) {
        const ssize_t n = read(c, tmp, sizeof(tmp));
        if (n <= 0) return Close(c);
        buf.append(tmp, static_cast<size_t>(n));
      }
      buf.erase(0, body_len);
      const std::vector<std::string> first = absl::StrSplit(head.substr(0, head.find("\r\n")), ' ');
      const std::string target = first.size() > 1 ? first[1] : "";
      {
        std::unique_lock<std::mutex> lock(mu_);
        targets_.push_back(target);
        current_++;
        max_concurrent_ = std::max(max_concurrent_, current_);
        cv_.notify_all();
        if (absl::StrContains(target, "/gate")) cv_.wait(lock, [this] { return released_; });
      }
      if (latency_ > absl::ZeroDuration()) {
        std::this_thread::sleep_for(absl::ToChronoNanoseconds(latency_));  // the slow pod
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        current_--;
      }
      const std::string body = absl::StrCat(name_, " ", target);
      const std::string resp = absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(),
                                            "\r\nContent-Type: text/plain\r\n\r\n", body);
      // MSG_NOSIGNAL: the proxy may already have closed the connection (an upstream timeout
      // a test provokes), and a SIGPIPE would kill the whole test binary.
      if (send(c, resp.data(), resp.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(resp.size())) {
        return Close(c);
      }
    }
  }

  void Close(int c) {
    std::lock_guard<std::mutex> lock(mu_);
    conns_.erase(std::find(conns_.begin(), conns_.end(), c));
    close(c);
  }

  const std::string name_;
  const absl::Duration latency_;
  int fd_ = -1;
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;
  bool released_ = false;
  std::vector<int> conns_;
  std::vector<std::string> targets_;
  int current_ = 0;
  int max_concurrent_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

RecordingBackend::RecordingBackend(std::string name, absl::Duration latency)
    : impl_(std::make_unique<Impl>(std::move(name), latency)) {}
RecordingBackend::~RecordingBackend() = default;
uint16_t RecordingBackend::port() const { return impl_->port_; }
std::string RecordingBackend::address() const { return absl::StrCat("127.0.0.1:", port()); }
const std::string& RecordingBackend::name() const { return impl_->name_; }
std::vector<std::string> RecordingBackend::targets() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->targets_;
}
size_t RecordingBackend::count() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->targets_.size();
}
int RecordingBackend::max_concurrent() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->max_concurrent_;
}
bool RecordingBackend::WaitForCount(size_t n, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mu_);
  return impl_->cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                             [&] { return impl_->targets_.size() >= n; });
}
void RecordingBackend::Release() {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->released_ = true;
  impl_->cv_.notify_all();
}

}  // namespace zeroscale::testing
