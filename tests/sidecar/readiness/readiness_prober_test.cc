// ReadinessProber against real servers on 127.0.0.1: a Python HTTP app whose /ready
// follows a flag file, and plain listening sockets for the TCP check.
#include "sidecar/readiness/readiness_prober.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::sidecar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::zeroscale::testing::ChildProcess;
using ::zeroscale::testing::FreePort;
using ::zeroscale::testing::WaitForTcpPort;

// Records readiness flips and lets the test wait for the next one.
class Recorder {
 public:
  ReadinessProber::OnChange Callback() {
    return [this](bool ready) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(ready);
      cv_.notify_all();
    };
  }
  // Waits until `n` flips were seen; returns how long that took.
  absl::Duration WaitFor(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time start = absl::Now();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return events_.size() >= n; });
    return absl::Now() - start;
  }
  std::vector<bool> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<bool> events_;
};

// A TCP listener that never answers: the kernel completes handshakes by itself.
class Listener {
 public:
  explicit Listener(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          ::listen(fd_, 64) == 0;
  }
  ~Listener() { ::close(fd_); }
  bool ok() const { return ok_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

class HttpReadinessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    flag_ = absl::StrCat(::testing::TempDir(), "/ready-flag-", ::getpid(), "-", port_);
    std::remove(flag_.c_str());
    server_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"python3", ZS_READY_SERVER_PY, absl::StrCat(port_), flag_});
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_TRUE(WaitForTcpPort(port_, absl::Seconds(20)).ok());
  }
  void TearDown() override { std::remove(flag_.c_str()); }

  void SetReady(bool ready) {
    if (ready) {
      std::ofstream(flag_) << "1";
    } else {
      std::remove(flag_.c_str());
    }
  }

  ReadinessOptions Options(const std::string& path = "/ready") {
    ReadinessOptions o;
    o.app_port = port_;
    o.path = path;
    return o;
  }

  uint16_t port_ = FreePort();
  std::string flag_;
  std::unique_ptr<ChildProcess> server_;
};

TEST_F(HttpReadinessTest, FlipsAreReportedPromptly) {
  ReadinessOptions options = Options();
  // A slow steady interval, so noticing readiness fast proves the not-ready interval.
  options.interval = absl::Seconds(3);
  options.not_ready_interval = absl::Milliseconds(100);
  Recorder recorder;
  ReadinessProber prober(options, recorder.Callback());
  ASSERT_TRUE(prober.Start().ok());
  EXPECT_FALSE(prober.ready());
  // A not-ready app answers the first probes with 503: that is the initial state, no flip.
  ASSERT_FALSE(ProbeReadiness(options).ok());

  SetReady(true);
  EXPECT_LT(recorder.WaitFor(1), absl::Seconds(1));
  EXPECT_TRUE(prober.ready());

  SetReady(false);
  EXPECT_LT(recorder.WaitFor(2), absl::Seconds(3) + absl::Seconds(2));
  EXPECT_FALSE(prober.ready());

  SetReady(true);
  EXPECT_LT(recorder.WaitFor(3), absl::Seconds(1));
  prober.Stop();
  EXPECT_THAT(recorder.events(), ElementsAre(true, false, true));
}

TEST_F(HttpReadinessTest, OnlySuccessStatusesCountAsReady) {
  absl::Status s = ProbeReadiness(Options());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("503"));
  s = ProbeReadiness(Options("/elsewhere"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("404"));
  SetReady(true);
  EXPECT_TRUE(ProbeReadiness(Options()).ok());
}

TEST_F(HttpReadinessTest, AppDyingMakesItNotReady) {
  SetReady(true);
  ReadinessOptions options = Options();
  options.interval = absl::Milliseconds(200);
  Recorder recorder;
  ReadinessProber prober(options, recorder.Callback());
  ASSERT_TRUE(prober.Start().ok());
  recorder.WaitFor(1);
  server_->Kill();
  EXPECT_LT(recorder.WaitFor(2), absl::Seconds(2));
  EXPECT_THAT(recorder.events(), ElementsAre(true, false));
}

TEST(TcpReadinessTest, NoPathMeansThePortAcceptsConnections) {
  const uint16_t port = FreePort();
  ReadinessOptions options;
  options.app_port = port;
  options.interval = absl::Milliseconds(200);
  Recorder recorder;
  ReadinessProber prober(options, recorder.Callback());
  ASSERT_TRUE(prober.Start().ok());
  EXPECT_EQ(ProbeReadiness(options).code(), absl::StatusCode::kUnavailable);
  {
    Listener listener(port);
    ASSERT_TRUE(listener.ok());
    EXPECT_LT(recorder.WaitFor(1), absl::Seconds(1));
    EXPECT_TRUE(prober.ready());
  }
  EXPECT_LT(recorder.WaitFor(2), absl::Seconds(2));
  EXPECT_FALSE(prober.ready());
  EXPECT_THAT(recorder.events(), ElementsAre(true, false));
}

TEST(TcpReadinessTest, SilentAppTimesOut) {
  const uint16_t port = FreePort();
  Listener listener(port);
  ASSERT_TRUE(listener.ok());
  ReadinessOptions options;
  options.app_port = port;
  options.path = "/ready";
  options.timeout = absl::Milliseconds(200);
  const absl::Time start = absl::Now();
  const absl::Status s = ProbeReadiness(options);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("timed out"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(TcpReadinessTest, StopInterruptsAHangingProbe) {
  const uint16_t port = FreePort();
  Listener listener(port);
  ASSERT_TRUE(listener.ok());
  ReadinessOptions options;
  options.app_port = port;
  options.path = "/ready";
  options.timeout = absl::Seconds(30);
  ReadinessProber prober(options, nullptr);
  ASSERT_TRUE(prober.Start().ok());
  const absl::Time start = absl::Now();
  prober.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  prober.Stop();  // idempotent
}

TEST(ReadinessOptionsTest, BadOptionsAreRefused) {
  ReadinessOptions options;
  EXPECT_EQ(ReadinessProber(options, nullptr).Start().code(), absl::StatusCode::kInvalidArgument);
  options.app_port = 8080;
  options.path = "ready";
  absl::Status s = ReadinessProber(options, nullptr).Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("readiness path"));
  options.path = "/re ady";
  EXPECT_EQ(ProbeReadiness(options).code(), absl::StatusCode::kInvalidArgument);
  options.path = "/ready";
  options.interval = absl::ZeroDuration();
  EXPECT_EQ(ReadinessProber(options, nullptr).Start().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zeroscale::sidecar
