#include "tests/testing/fd_exhaustion.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/time/clock.h"

namespace zeroscale::testing {

FdExhaustion::FdExhaustion(rlim_t limit) {
  getrlimit(RLIMIT_NOFILE, &old_);
  struct rlimit lowered = old_;
  lowered.rlim_cur = std::min(old_.rlim_cur, limit);
  setrlimit(RLIMIT_NOFILE, &lowered);
  for (int fd; (fd = ::dup(2)) >= 0;) fds_.push_back(fd);
}

FdExhaustion::~FdExhaustion() { Free(); }

void FdExhaustion::Free() {
  for (int fd : fds_) ::close(fd);
  if (!fds_.empty()) setrlimit(RLIMIT_NOFILE, &old_);
  fds_.clear();
}

RawClient::RawClient() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {}
RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::Connect(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
}

bool RawClient::Write(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + off, bytes.size() - off);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string RawClient::ReadUntil(const std::string& until, absl::Duration timeout) {
  std::string got;
  const absl::Time deadline = absl::Now() + timeout;
  while (got.find(until) == std::string::npos) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) break;
    char buf[4096];
    const ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

absl::Duration ProcessCpuTime() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return absl::DurationFromTimeval(u.ru_utime) + absl::DurationFromTimeval(u.ru_stime);
}

}  // namespace zeroscale::testing
