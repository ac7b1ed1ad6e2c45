#include "tests/testing/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "hiredis/hiredis.h"

namespace zeroscale::testing {

const char kShippedRedisConf[] = ZS_REDIS_CONF;

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

RedisServer::RedisServer(bool persistent) : port_(FreePort()) {
  if (persistent) {
    char tmpl[] = "/tmp/zs-redis-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
  }
}

RedisServer::~RedisServer() {
  Kill();
  if (!dir_.empty()) {
    const std::string cmd = absl::StrCat("rm -rf '", dir_, "'");
    (void)!::system(cmd.c_str());
  }
}

std::string RedisServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

absl::Status RedisServer::Start() {
  // The port was free when the constructor picked it, but another server of the test may
  // have been handed it since (the kernel reuses freed ephemeral ports): on the first
  // start, a redis-server that cannot bind is retried on a fresh port. A restart keeps
  // its port, which the tests rely on.
  const int attempts = started_ ? 1 : 5;
  absl::Status s;
  for (int i = 0; i < attempts; ++i) {
    if (i > 0) port_ = FreePort();
    s = StartOnce();
    if (s.ok()) {
      started_ = true;
      return s;
    }
    if (s.code() != absl::StatusCode::kAborted) return s;
  }
  return s;
}

absl::Status RedisServer::StartOnce() {
  const std::string port = absl::StrCat(port_);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
    if (dir_.empty()) {
      ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", static_cast<char*>(nullptr));
    } else {
      ::execlp("redis-server", "redis-server", kShippedRedisConf, "--port", port.c_str(), "--bind",
               "127.0.0.1", "--dir", dir_.c_str(), static_cast<char*>(nullptr));
    }
    ::_exit(127);
  }
  // Wait for PING to answer: the server is ready exactly then.
  for (int i = 0; i < 500; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        return absl::InternalError("redis-server could not be started (is it installed?)");
      }
      return absl::AbortedError(
          absl::StrCat("redis-server exited at start (port ", port_, " taken?)"));
    }
    timeval tv{0, 100000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (c != nullptr && c->err == 0) {
      auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
      const bool ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
      if (reply != nullptr) freeReplyObject(reply);
      redisFree(c);
      // Ours only if it is still running: a PONG may come from someone else's server on
      // the port ours failed to bind.
      if (ok && ::waitpid(pid_, &status, WNOHANG) == 0) return absl::OkStatus();
    } else if (c != nullptr) {
      redisFree(c);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return absl::DeadlineExceededError("redis-server did not answer PING in 5 s");
}

void RedisServer::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string RedisServer::Cli(const std::string& args) const {
  const std::string cmd = absl::StrCat("redis-cli -p ", port_, " ", args, " 2>&1");
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

}  // namespace zeroscale::testing
