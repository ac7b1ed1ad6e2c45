// HTTPS against a real TLS server: `openssl s_server -WWW` with a self-signed
// certificate for 127.0.0.1, so that CA trust, host verification and
// insecure-skip-tls-verify are exercised on the production code path.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "common/kube/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::kube {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl";
    char tmpl[] = "/tmp/zs-kube-tls-XXXXXX";
    dir_ = mkdtemp(tmpl);
    const std::string gen = absl::StrCat(
        "cd ", dir_,
        " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=zeroscale-test "
        "-addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem >/dev/null 2>&1");
    ASSERT_EQ(system(gen.c_str()), 0);
    std::ofstream(dir_ + "/scale.json") << R"({"spec":{},"status":{"selector":"app=x"}})";
    // A free port: bind 0, note it, release it for s_server.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(
        ioc, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    port_ = a.local_endpoint().port();
    a.close();
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      if (chdir(dir_.c_str()) != 0) _exit(127);
      const std::string accept = absl::StrCat("127.0.0.1:", port_);
      execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept.c_str(), "-cert",
             "cert.pem", "-key", "key.pem", "-WWW", static_cast<char*>(nullptr));
      _exit(127);
    }
    // s_server is another process: the only readiness signal is that it accepts.
    for (int i = 0; i < 500; ++i) {
      boost::asio::ip::tcp::socket s(ioc);
      boost::system::error_code ec;
      s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
      if (!ec) return;
      usleep(10000);
    }
    FAIL() << "openssl s_server did not start";
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }

  ClusterConfig Config() {
    ClusterConfig c;
    c.server = absl::StrCat("https://127.0.0.1:", port_);
    return c;
  }

  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(TlsTest, TrustsTheClusterCa) {
  ClusterConfig c = Config();
  c.ca_pem = ReadAll(dir_ + "/cert.pem");
  auto client = KubeClient::Create(c);
  ASSERT_TRUE(client.ok()) << client.status();
  auto body = (*client)->Call("GET", "/scale.json");
  ASSERT_TRUE(body.ok()) << body.status();
  auto scale = ScaleFromJson(*body);
  ASSERT_TRUE(scale.ok()) << scale.status();
  EXPECT_EQ(scale->spec_replicas, 0);
  EXPECT_EQ(scale->selector, "app=x");
}

TEST_F(TlsTest, RefusesAnUntrustedServer) {
  ClusterConfig c = Config();  // no CA: the system roots do not know this certificate
  auto client = KubeClient::Create(c);
  ASSERT_TRUE(client.ok()) << client.status();
  auto body = (*client)->Call("GET", "/scale.json");
  EXPECT_EQ(body.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(body.status().message(), HasSubstr("TLS handshake"));
}

TEST_F(TlsTest, RefusesAHostNameTheCertificateDoesNotName) {
  ClusterConfig c = Config();
  c.server = absl::StrCat("https://localhost:", port_);  // the certificate names 127.0.0.1
  c.ca_pem = ReadAll(dir_ + "/cert.pem");
  auto client = KubeClient::Create(c);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->Call("GET", "/scale.json").status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, InsecureSkipsVerification) {
  ClusterConfig c = Config();
  c.insecure_skip_tls_verify = true;
  auto client = KubeClient::Create(c);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->Call("GET", "/scale.json").ok());
}

}  // namespace
}  // namespace zeroscale::kube
