// The admin HTTP server over real loopback sockets, driven with curl as a client.
#include "common/http/http_server.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace zeroscale::http {
namespace {

using ::testing::HasSubstr;
using zeroscale::testing::Shell;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.HandleSync("GET", "/hello", [](const Request& r) {
      return Response::Text(200, absl::StrCat("hi ", r.QueryParam("name"), " from ", r.remote_ip,
                                              " ua=", r.Header("user-agent").substr(0, 4)));
    });
    router_.HandleSync("POST", "/echo",
                       [](const Request& r) { return Response::Json(201, r.body); });
    // Answers from another thread, later, as ingest does after Redis stores a sample.
    router_.Handle("GET", "/later", [](Request&&, Responder respond) {
      std::thread([respond] { respond(Response::Text(202, "done")); }).detach();
    });
    ServerOptions o;
    o.listen = {"127.0.0.1", 0};
    o.max_body_bytes = 1024;
    server_ = std::make_unique<Server>(
        o, [this](Request&& req, Responder r) { router_.Dispatch(std::move(req), std::move(r)); });
    ASSERT_TRUE(server_->Start().ok());
    base_ = absl::StrCat("http://127.0.0.1:", server_->port());
  }
  Router router_;
  std::unique_ptr<Server> server_;
  std::string base_;
};

TEST_F(HttpServerTest, RoutesAndDecodesQuery) {
  EXPECT_EQ(Shell(absl::StrCat("curl -s '", base_, "/hello?name=a%20b'")),
            "hi a b from 127.0.0.1 ua=curl");
}

TEST_F(HttpServerTest, EchoesBodies) {
  EXPECT_EQ(Shell(absl::StrCat("curl -s -w ' %{http_code}' -d '{\"x\":1}' ", base_, "/echo")),
            "{\"x\":1} 201");
}

TEST_F(HttpServerTest, AnswersFromAnotherThread) {
  EXPECT_EQ(Shell(absl::StrCat("curl -s -w ' %{http_code}' ", base_, "/later")), "done 202");
}

TEST_F(HttpServerTest, UnknownPathAndWrongMethod) {
  EXPECT_EQ(Shell(absl::StrCat("curl -s -o /dev/null -w '%{http_code}' ", base_, "/nope")), "404");
  EXPECT_THAT(Shell(absl::StrCat("curl -s -w ' %{http_code}' -X DELETE ", base_, "/echo")),
              HasSubstr("not allowed on /echo\"}\n 405"));
}

TEST_F(HttpServerTest, OversizedBodyIs413) {
  EXPECT_THAT(Shell(absl::StrCat("head -c 5000 /dev/zero | curl -s -w ' %{http_code}' "
                                 "--data-binary @- ",
                                 base_, "/echo")),
              HasSubstr("413"));
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  const std::string out =
      Shell(absl::StrCat("curl -sv ", base_, "/hello ", base_, "/hello ", base_, "/hello"));
  EXPECT_THAT(out, HasSubstr("Re-using existing connection"));
}

TEST(HttpServer, BusyPortIsAFailedPreconditionNamingTheAddress) {
  ServerOptions o;
  o.listen = {"127.0.0.1", 0};
  Server a(o, [](Request&&, Responder r) { r(Response::Text(200, "")); });
  ASSERT_TRUE(a.Start().ok());
  o.listen.port = a.port();
  Server b(o, [](Request&&, Responder r) { r(Response::Text(200, "")); });
  absl::Status s = b.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr(absl::StrCat("127.0.0.1:", a.port())));
}

}  // namespace
}  // namespace zeroscale::http
