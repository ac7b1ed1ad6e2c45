// The HTTP server over TLS on real loopback sockets, with curl as a client that verifies
// the certificate: serving, bad files at start, and a certificate replaced in place.
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/http/tls_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/tls_testing.h"
#include "tests/testing/child_process.h"

namespace zeroscale::http {
namespace {

using ::testing::HasSubstr;
using zeroscale::testing::CertFiles;
using zeroscale::testing::HttpsPost;

class TlsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = zeroscale::testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    absl::StatusOr<CertFiles> first =
        zeroscale::testing::WriteSelfSignedCert(dir_, "first", "first");
    ASSERT_TRUE(first.ok()) << first.status();
    first_ = *first;
    router_.HandleSync("POST", "/echo", [](const Request& r) {
      return Response::Json(200, absl::StrCat(r.body, " from ", r.remote_ip));
    });
  }
  void TearDown() override { std::system(absl::StrCat("rm -rf '", dir_, "'").c_str()); }

  // A server on the certificate `first_` as copied to serving.crt/.key.
  std::unique_ptr<Server> Serve(absl::Duration reload_check = absl::Seconds(5)) {
    Copy(first_.cert, Serving().cert);
    Copy(first_.key, Serving().key);
    return Make(Serving(), reload_check);
  }
  std::unique_ptr<Server> Make(const CertFiles& files, absl::Duration reload_check) {
    ServerOptions o;
    o.listen = {"127.0.0.1", 0};
    TlsOptions tls;
    tls.cert_file = files.cert;
    tls.key_file = files.key;
    tls.reload_check = reload_check;
    return NewTlsServer(o, tls, router_.AsHandler());
  }
  CertFiles Serving() const { return {dir_ + "/serving.crt", dir_ + "/serving.key"}; }
  static void Copy(const std::string& from, const std::string& to) {
    std::ofstream(to, std::ios::binary | std::ios::trunc)
        << std::ifstream(from, std::ios::binary).rdbuf();
  }

  std::string dir_;
  CertFiles first_;
  Router router_;
};

TEST_F(TlsServerTest, ServesOverVerifiedTls12AndLater) {
  std::unique_ptr<Server> server = Serve();
  ASSERT_TRUE(server->Start().ok());
  auto reply = HttpsPost(server->port(), "/echo", "{\"x\":1}", first_.cert);
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.body, "{\"x\":1} from 127.0.0.1");
  reply = HttpsPost(server->port(), "/echo", "{}", first_.cert, "--tlsv1.2 --tls-max 1.2");
  EXPECT_EQ(reply.status, 200) << reply.body;
  reply = HttpsPost(server->port(), "/nope", "{}", first_.cert);
  EXPECT_EQ(reply.status, 404);
}

TEST_F(TlsServerTest, PlainHttpToTheTlsPortFailsAndTheServerGoesOn) {
  std::unique_ptr<Server> server = Serve();
  ASSERT_TRUE(server->Start().ok());
  const std::string out = absl::StrCat("curl -s --max-time 10 -o /dev/null -w '%{http_code}' ",
                                       "http://127.0.0.1:", server->port(), "/echo");
  EXPECT_EQ(zeroscale::testing::Shell(out), "000");
  EXPECT_EQ(HttpsPost(server->port(), "/echo", "{}", first_.cert).status, 200);
}

TEST_F(TlsServerTest, BadFilesAtStartNameTheFile) {
  absl::StatusOr<CertFiles> other = zeroscale::testing::WriteSelfSignedCert(dir_, "other", "o");
  ASSERT_TRUE(other.ok());
  const std::string missing = dir_ + "/missing.crt";
  absl::Status s = Make({missing, first_.key}, absl::Seconds(5))->Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(missing));

  const std::string garbage = dir_ + "/garbage.crt";
  std::ofstream(garbage) << "not a certificate\n";
  s = Make({garbage, first_.key}, absl::Seconds(5))->Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(garbage));

  s = Make({first_.cert, garbage}, absl::Seconds(5))->Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(garbage));

  // A key of another certificate.
  s = Make({first_.cert, other->key}, absl::Seconds(5))->Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(other->key));
}

TEST_F(TlsServerTest, ACertificateReplacedInPlaceIsServedToNewConnections) {
  std::unique_ptr<Server> server = Serve(/*reload_check=*/absl::ZeroDuration());
  ASSERT_TRUE(server->Start().ok());
  ASSERT_EQ(HttpsPost(server->port(), "/echo", "{}", first_.cert).status, 200);

  absl::StatusOr<CertFiles> second = zeroscale::testing::WriteSelfSignedCert(dir_, "second", "2");
  ASSERT_TRUE(second.ok());
  // As a Secret volume does: the new pair appears under the same names at once.
  ASSERT_EQ(std::rename(second->cert.c_str(), Serving().cert.c_str()), 0);
  ASSERT_EQ(std::rename(second->key.c_str(), Serving().key.c_str()), 0);
  EXPECT_EQ(HttpsPost(server->port(), "/echo", "{}", Serving().cert).status, 200);
  EXPECT_EQ(HttpsPost(server->port(), "/echo", "{}", first_.cert).status, 0);
}

TEST_F(TlsServerTest, AReplacementThatDoesNotLoadKeepsThePreviousCertificate) {
  std::unique_ptr<Server> server = Serve(/*reload_check=*/absl::ZeroDuration());
  ASSERT_TRUE(server->Start().ok());
  // cert-manager writing the certificate before its key: a pair that does not match.
  absl::StatusOr<CertFiles> second = zeroscale::testing::WriteSelfSignedCert(dir_, "second", "2");
  ASSERT_TRUE(second.ok());
  Copy(second->cert, Serving().cert);
  EXPECT_EQ(HttpsPost(server->port(), "/echo", "{}", first_.cert).status, 200);
  // Then the key lands, and the new pair is served.
  Copy(second->key, Serving().key);
  EXPECT_EQ(HttpsPost(server->port(), "/echo", "{}", second->cert).status, 200);
}

}  // namespace
}  // namespace zeroscale::http
