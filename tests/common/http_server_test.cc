// The admin HTTP server over real loopback sockets, driven with curl as a client.
#include "common/http/http_server.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/fd_exhaustion.h"
#include "tests/testing/request_head_cases.h"

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

// RFC 9112's rules for a request head (common/http/head_checks.h), as the proxy applies
// them: a request the next hop could frame differently is refused.
TEST_F(HttpServerTest, RequestHeadsAreCheckedBeyondTheirSyntax) {
  const std::vector<testing::RefusedHead> cases = testing::RefusedHeads("/echo");
  for (const testing::RefusedHead& c : cases) {
    testing::RawClient client;
    ASSERT_TRUE(client.Connect(server_->port()));
    ASSERT_TRUE(client.Write(c.head + "\r\n0\r\n\r\n"));
    const std::string reply = client.ReadUntil("\x01never");
    // An HTTP/1.0 request is answered in HTTP/1.0.
    EXPECT_THAT(reply, ::testing::ContainsRegex("^HTTP/1\\.[01] " + c.status)) << c.head;
    EXPECT_THAT(reply, HasSubstr(c.why)) << c.head;
  }
  // Equal repeated lengths are one length.
  testing::RawClient client;
  ASSERT_TRUE(client.Connect(server_->port()));
  ASSERT_TRUE(client.Write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nhi"));
  EXPECT_THAT(client.ReadUntil("hi"), ::testing::StartsWith("HTTP/1.1 201"));
}

// Issue 10: out of file descriptors, the accept loop spun a core and logged 20 MB/s.
// Now it backs off (10 ms doubling to 1 s), logs once per interval, and recovers.
TEST(HttpServerLimits, OutOfFileDescriptorsBacksOffAndRecovers) {
  Router router;
  router.HandleSync("GET", "/hello", [](const Request&) { return Response::Text(200, "hi"); });
  ServerOptions o;
  o.listen = {"127.0.0.1", 0};
  Server server(o, router.AsHandler());
  ASSERT_TRUE(server.Start().ok());
  testing::RawClient client;  // its socket exists before the descriptors run out
  testing::FdExhaustion exhausted;
  ASSERT_GT(exhausted.used(), 0u);
  const absl::Duration cpu_before = testing::ProcessCpuTime();
  ASSERT_TRUE(client.Connect(server.port()));  // into the backlog; accept fails (EMFILE)
  absl::SleepFor(absl::Seconds(2));
  const absl::Duration cpu = testing::ProcessCpuTime() - cpu_before;
  const net::ListenerStats during = server.stats();
  exhausted.Free();
  // A spinning loop uses the whole 2 s; a backing-off one a few accept calls.
  EXPECT_LT(cpu, absl::Milliseconds(300));
  EXPECT_GE(during.accept_errors, 1u);
  EXPECT_LE(during.accept_errors, 12u);
  EXPECT_EQ(during.log_lines, 1u);
  ASSERT_TRUE(client.Write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_THAT(client.ReadUntil("hi"), ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(server.stats().accepted, 1u);
}

TEST(HttpServerLimits, BeyondMaxConnectionsNewOnesWaitUntilOneCloses) {
  Router router;
  router.HandleSync("GET", "/hello", [](const Request&) { return Response::Text(200, "hi"); });
  ServerOptions o;
  o.listen = {"127.0.0.1", 0};
  o.max_connections = 2;
  Server server(o, router.AsHandler());
  ASSERT_TRUE(server.Start().ok());
  auto first = std::make_unique<testing::RawClient>();
  testing::RawClient second, third;
  ASSERT_TRUE(first->Connect(server.port()));
  ASSERT_TRUE(second.Connect(server.port()));
  ASSERT_TRUE(testing::WaitFor([&] { return server.stats().open == 2; }, absl::Seconds(10)));
  ASSERT_TRUE(third.Connect(server.port()));  // completes into the backlog
  ASSERT_TRUE(third.Write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_GE(server.stats().at_capacity, 1u);
  EXPECT_EQ(server.stats().accepted, 2u);
  first.reset();  // frees a slot: the third is accepted and answered
  EXPECT_THAT(third.ReadUntil("hi"), ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(server.stats().accepted, 3u);
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
