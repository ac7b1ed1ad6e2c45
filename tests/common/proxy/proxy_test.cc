// End-to-end tests of the proxy engine over real 127.0.0.1 sockets.
#include "common/proxy/proxy.h"

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/proxy/test_backend.h"
#include "tests/testing/child_process.h"
#include "tests/testing/fd_exhaustion.h"
#include "tests/testing/request_head_cases.h"

namespace zeroscale::proxy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using zeroscale::testing::TestBackend;
using zeroscale::testing::TestClient;

// Records every finished request; lets tests await them.
class RecordingObserver : public ProxyObserver {
 public:
  struct Done {
    std::string target;
    int status;
    Outcome outcome;
    absl::Duration latency;
    uint64_t response_bytes;
  };
  void OnRequestStart(const RequestHead&) override {
    std::lock_guard<std::mutex> lock(mu_);
    started_++;
  }
  void OnRequestDone(const RequestResult& r) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back({r.head->target, r.status, r.outcome, r.latency, r.response_body_bytes});
    }
    cv_.notify_all();
  }
  bool WaitForDone(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [&] { return done_.size() >= n; });
  }
  std::vector<Done> done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }
  int started() {
    std::lock_guard<std::mutex> lock(mu_);
    return started_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Done> done_;
  int started_ = 0;
};

ProxyOptions LocalOptions() {
  ProxyOptions o;
  o.listen = {"127.0.0.1", 0};
  return o;
}

class ProxyTest : public ::testing::Test {
 protected:
  void StartProxy(ProxyOptions o = LocalOptions(), uint16_t upstream_port = 0) {
    picker_ = std::make_unique<FixedUpstreamPicker>(
        Upstream{"127.0.0.1", upstream_port ? upstream_port : backend_.port()});
    proxy_ = std::make_unique<Proxy>(o, picker_.get(), &observer_);
    ASSERT_TRUE(proxy_->Start().ok());
  }

  TestBackend backend_;
  RecordingObserver observer_;
  std::unique_ptr<FixedUpstreamPicker> picker_;
  std::unique_ptr<Proxy> proxy_;
};

TEST_F(ProxyTest, PassesMethodTargetHeadersAndBodyExactly) {
  StartProxy();
  TestClient client(proxy_->port());
  auto r = client.Send("POST", "/echo/a/b?x=1&y=%20z&x=2",
                       {{"X-Custom", "v1"},
                        {"X-Multi", "first"},
                        {"X-Multi", "second"},
                        {"Connection", "keep-alive, X-Hop"},
                        {"X-Hop", "secret"},
                        {"X-Forwarded-For", "10.0.0.1"},
                        {"Content-Type", "application/octet-stream"}},
                       std::string("hello\0world", 11));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("X-Backend"), "test");
  EXPECT_THAT(r.body, HasSubstr("POST /echo/a/b?x=1&y=%20z&x=2\n"));
  EXPECT_THAT(r.body, HasSubstr("X-Custom: v1\n"));
  EXPECT_THAT(r.body, HasSubstr("X-Multi: first\nX-Multi: second\n"));
  EXPECT_THAT(r.body, HasSubstr("Host: backend.test\n"));
  EXPECT_THAT(r.body, HasSubstr("X-Forwarded-For: 10.0.0.1, 127.0.0.1\n"));
  EXPECT_THAT(r.body, HasSubstr("Content-Length: 11\n"));
  EXPECT_THAT(r.body, Not(HasSubstr("X-Hop")));
  EXPECT_THAT(r.body, Not(HasSubstr("Connection:")));
  EXPECT_TRUE(absl::EndsWith(r.body, std::string("\n\nhello\0world", 13)));

  // Same client connection: statuses, bodiless responses, HEAD.
  r = client.Send("GET", "/status/418");
  EXPECT_EQ(r.status, 418);
  EXPECT_EQ(r.body, "status 418");
  r = client.Send("DELETE", "/status/204");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
  r = client.Send("GET", "/status/304");
  EXPECT_EQ(r.status, 304);
  r = client.Send("HEAD", "/big/1000");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Content-Length"), "1000");
  EXPECT_EQ(r.body, "");
  r = client.Send("PUT", "/echo", {}, "");
  EXPECT_THAT(r.body, HasSubstr("PUT /echo\n"));
  r = client.Send("GET", "/missing");
  EXPECT_EQ(r.status, 404);

  ASSERT_TRUE(observer_.WaitForDone(7));
  EXPECT_EQ(observer_.started(), 7);
  EXPECT_EQ(observer_.done()[1].status, 418);
  EXPECT_EQ(observer_.done()[0].outcome, Outcome::kOk);
}

TEST_F(ProxyTest, ChunkedAndCloseDelimitedResponsesAreReframed) {
  StartProxy();
  TestClient client(proxy_->port());
  auto r = client.Send("GET", "/big/100000?chunked=1");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.body.size(), 100000u);
  for (size_t i = 0; i < r.body.size(); ++i) {
    ASSERT_EQ(r.body[i], zeroscale::testing::PatternByte(i)) << i;
  }
  EXPECT_EQ(r.Header("Transfer-Encoding"), "chunked");
  // A close-delimited upstream body is re-chunked, so the client connection survives.
  r = client.Send("GET", "/close");
  EXPECT_EQ(r.body, "close-delimited");
  r = client.Send("GET", "/status/200");
  EXPECT_EQ(r.status, 200);
}

TEST_F(ProxyTest, ReusesUpstreamConnections) {
  StartProxy();
  {
    TestClient client(proxy_->port());
    for (int i = 0; i < 200; ++i) {
      ASSERT_EQ(client.Send("GET", absl::StrCat("/status/200?i=", i)).status, 200);
    }
  }
  for (int i = 0; i < 50; ++i) {
    TestClient client(proxy_->port());
    ASSERT_EQ(client.Send("GET", "/status/200").status, 200);
  }
  EXPECT_LE(backend_.connections_accepted(), 2);
  const ProxyStats s = proxy_->stats();
  EXPECT_EQ(s.requests, 250u);
  EXPECT_GE(s.upstream_reuses, 248u);
  EXPECT_EQ(s.connections_accepted, 51u);
}

TEST_F(ProxyTest, LargeBodiesStreamWithFlatMemory) {
  StartProxy();
  constexpr uint64_t kSize = 200ull << 20;
  const int64_t rss_before = zeroscale::testing::CurrentRssBytes();
  int64_t rss_peak = rss_before;
  TestClient client(proxy_->port());
  client.WriteRaw(absl::StrCat("GET /big/", kSize, " HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos) {
    const std::string piece = client.ReadSome(1);
    ASSERT_FALSE(piece.empty());
    head += piece;
  }
  ASSERT_THAT(head, HasSubstr(absl::StrCat("Content-Length: ", kSize)));
  uint64_t got = 0;
  while (got < kSize) {
    const std::string piece = client.ReadSome(1 << 16);
    ASSERT_FALSE(piece.empty()) << "EOF after " << got;
    for (size_t i = 0; i < piece.size(); i += 4093) {
      ASSERT_EQ(piece[i], zeroscale::testing::PatternByte(got + i)) << got + i;
    }
    got += piece.size();
    if ((got & ((8 << 20) - 1)) < piece.size()) {
      rss_peak = std::max(rss_peak, zeroscale::testing::CurrentRssBytes());
    }
  }
  EXPECT_EQ(got, kSize);

  // Upload, chunked: the backend counts bytes and sums them.
  client.WriteRaw("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string chunk(1 << 16, '\0');
  uint64_t sum = 0;
  for (uint64_t sent = 0; sent < kSize; sent += chunk.size()) {
    for (size_t i = 0; i < chunk.size(); ++i) {
      chunk[i] = zeroscale::testing::PatternByte(sent + i);
      sum += static_cast<unsigned char>(chunk[i]);
    }
    client.WriteRaw(absl::StrCat(absl::Hex(chunk.size()), "\r\n", chunk, "\r\n"));
    if ((sent & ((8 << 20) - 1)) == 0) {
      rss_peak = std::max(rss_peak, zeroscale::testing::CurrentRssBytes());
    }
  }
  client.WriteRaw("0\r\n\r\n");
  std::string rest;
  const std::string want = absl::StrCat("bytes=", kSize, " sum=", sum);
  while (rest.find(want) == std::string::npos) {
    const std::string piece = client.ReadSome();
    ASSERT_FALSE(piece.empty()) << rest;
    rest += piece;
  }
  EXPECT_THAT(rest, HasSubstr("HTTP/1.1 200"));
  std::printf("RSS growth during 2 x 200 MiB: %.1f MiB\n", (rss_peak - rss_before) / 1048576.0);
  EXPECT_LT(rss_peak - rss_before, 32 << 20)
      << "RSS grew from " << rss_before << " to " << rss_peak;
}

TEST_F(ProxyTest, ServerSentEventsFlowBeforeTheResponseEnds) {
  StartProxy();
  TestClient client(proxy_->port());
  client.WriteRaw("GET /sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
  std::string got;
  while (got.find("data: one\n\n") == std::string::npos) {
    const std::string piece = client.ReadSome();
    ASSERT_FALSE(piece.empty()) << got;
    got += piece;
  }
  // The backend is still holding the response open: the first event came through alone.
  EXPECT_THAT(got, HasSubstr("Content-Type: text/event-stream"));
  EXPECT_THAT(got, HasSubstr("Transfer-Encoding: chunked"));
  EXPECT_THAT(got, Not(HasSubstr("data: two")));
  backend_.ReleaseSse();
  while (got.find("\r\n0\r\n\r\n") == std::string::npos) {
    const std::string piece = client.ReadSome();
    ASSERT_FALSE(piece.empty()) << got;
    got += piece;
  }
  EXPECT_THAT(got, HasSubstr("data: two\n\n"));
}

// Reads from client until `last` has arrived (or EOF).
std::string ReadUntil(TestClient& client, const std::string& last) {
  std::string got;
  while (got.find(last) == std::string::npos) {
    const std::string piece = client.ReadSome();
    if (piece.empty()) break;
    got += piece;
  }
  return got;
}

// Sends `raw` on a new connection and reads until the proxy closes it.
std::string ExchangeAndClose(uint16_t port, const std::string& raw) {
  TestClient client(port);
  client.WriteRaw(raw);
  return ReadUntil(client, "\x01never");
}

// Request smuggling and Host rules (RFC 9112): refused by the proxy, never forwarded.
TEST_F(ProxyTest, RequestHeadsTheNextHopCouldReadDifferentlyAreRefused) {
  StartProxy();
  const std::vector<testing::RefusedHead> cases = testing::RefusedHeads("/echo");
  for (const testing::RefusedHead& c : cases) {
    const std::string reply = ExchangeAndClose(proxy_->port(), c.head + "\r\n0\r\n\r\n");
    EXPECT_THAT(reply, StartsWith("HTTP/1.1 " + c.status)) << c.head;
    EXPECT_THAT(reply, HasSubstr(c.why)) << c.head;
    EXPECT_THAT(reply, Not(HasSubstr("X-Backend"))) << c.head;  // never reached the backend
  }
  EXPECT_EQ(observer_.started(), 0);
  EXPECT_EQ(proxy_->stats().bad_request, cases.size());
}

TEST_F(ProxyTest, RepeatedEqualContentLengthsAreForwardedAsOne) {
  StartProxy();
  for (const std::string& cl : {std::string("Content-Length: 5, 5\r\n"),
                                std::string("Content-Length: 5\r\nContent-Length: 5\r\n")}) {
    TestClient client(proxy_->port());
    client.WriteRaw("POST /echo HTTP/1.1\r\nHost: x\r\n" + cl + "\r\nhello");
    const std::string reply = ReadUntil(client, "hello");
    EXPECT_THAT(reply, StartsWith("HTTP/1.1 200"));
    EXPECT_THAT(reply, HasSubstr("Content-Length: 5\n"));
    EXPECT_THAT(reply, Not(HasSubstr("5, 5")));
    size_t count = 0;
    for (size_t at = reply.find("Content-Length: 5\n"); at != std::string::npos;
         at = reply.find("Content-Length: 5\n", at + 1)) {
      ++count;
    }
    EXPECT_EQ(count, 1u) << reply;
  }
}

// Issue 10: out of file descriptors, the accept loops of the balancer and the sidecar
// spun a core and logged 20 MB/s. Now they back off, log once, and recover.
TEST_F(ProxyTest, OutOfFileDescriptorsBacksOffAndRecovers) {
  ProxyOptions o = LocalOptions();
  o.threads = 2;
  // An upstream that refuses: the proxy answers 502 itself, so recovery is the proxy's
  // alone (the test backend's thread-per-connection accept loop gives up on EMFILE).
  StartProxy(o, testing::UnusedPort());
  testing::RawClient client;  // its socket exists before the descriptors run out
  testing::FdExhaustion exhausted;
  ASSERT_GT(exhausted.used(), 0u);
  const absl::Duration cpu_before = testing::ProcessCpuTime();
  ASSERT_TRUE(client.Connect(proxy_->port()));  // into the backlog; accept fails (EMFILE)
  absl::SleepFor(absl::Seconds(2));
  const absl::Duration cpu = testing::ProcessCpuTime() - cpu_before;
  const net::ListenerStats during = proxy_->stats().listener;
  exhausted.Free();
  EXPECT_LT(cpu, absl::Milliseconds(300));  // a spinning loop uses the whole 2 s
  EXPECT_GE(during.accept_errors, 1u);
  EXPECT_LE(during.accept_errors, 24u);  // two workers, each backing off
  EXPECT_EQ(during.log_lines, 1u);
  EXPECT_EQ(during.accepted, 0u);
  ASSERT_TRUE(client.Write("GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_THAT(client.ReadUntil("upstream unavailable"), StartsWith("HTTP/1.1 502"));
  EXPECT_EQ(proxy_->stats().listener.accepted, 1u);
}

TEST_F(ProxyTest, BeyondMaxConnectionsNewOnesWaitUntilOneCloses) {
  ProxyOptions o = LocalOptions();
  o.threads = 1;  // with several workers the cap may be passed by one per further worker
  o.max_connections = 2;
  StartProxy(o);
  auto first = std::make_unique<testing::RawClient>();
  testing::RawClient second, third;
  ASSERT_TRUE(first->Connect(proxy_->port()));
  ASSERT_TRUE(second.Connect(proxy_->port()));
  ASSERT_TRUE(
      testing::WaitFor([&] { return proxy_->stats().listener.open == 2; }, absl::Seconds(10)));
  ASSERT_TRUE(third.Connect(proxy_->port()));
  ASSERT_TRUE(third.Write("GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_GE(proxy_->stats().listener.at_capacity, 1u);
  EXPECT_EQ(proxy_->stats().listener.accepted, 2u);
  first.reset();
  EXPECT_THAT(third.ReadUntil("status 200"), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(proxy_->stats().listener.accepted, 3u);
}

TEST_F(ProxyTest, PipelinedRequestsAreAnsweredInOrder) {
  StartProxy();
  TestClient client(proxy_->port());
  client.WriteRaw(
      "GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /status/202 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /status/203 HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string got = ReadUntil(client, "status 203");
  const size_t a = got.find("status 201"), b = got.find("status 202"), c = got.find("status 203");
  ASSERT_NE(a, std::string::npos) << got;
  ASSERT_NE(b, std::string::npos) << got;
  ASSERT_NE(c, std::string::npos) << got;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(client.Send("GET", "/status/204").status, 204);
}

TEST_F(ProxyTest, HeaderSplitAcrossReads) {
  StartProxy();
  TestClient client(proxy_->port());
  client.WriteRaw("GET /status/203 HTTP/1.1\r\nHo");
  absl::SleepFor(absl::Milliseconds(30));
  client.WriteRaw("st: x\r\nContent-Length: 5\r\n\r\nab");
  absl::SleepFor(absl::Milliseconds(30));
  client.WriteRaw("cde");
  EXPECT_THAT(ReadUntil(client, "status 203"), HasSubstr("HTTP/1.1 203"));
  EXPECT_EQ(client.Send("POST", "/echo", {}, "12345").body.substr(0, 11), "POST /echo\n");
}

TEST_F(ProxyTest, Http10ClientsGetTheirConnectionSemantics) {
  StartProxy();
  {
    TestClient client(proxy_->port());
    client.WriteRaw("GET /status/200 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const std::string got = ReadUntil(client, "status 200");
    EXPECT_THAT(got, HasSubstr("HTTP/1.0 200"));
    EXPECT_THAT(got, HasSubstr("Connection: keep-alive"));
    client.WriteRaw("GET /big/10?chunked=1 HTTP/1.0\r\n\r\n");
    std::string rest;
    for (std::string piece = client.ReadSome(); !piece.empty(); piece = client.ReadSome()) {
      rest += piece;
    }
    // Chunked upstream body, whole in one read: relayed with a length, then closed.
    EXPECT_THAT(rest, HasSubstr("HTTP/1.0 200"));
    EXPECT_THAT(rest, Not(HasSubstr("chunked")));
    EXPECT_THAT(rest, Not(HasSubstr("Connection: keep-alive")));
  }
  TestClient client(proxy_->port());
  auto r = client.Send("GET", "/status/200", {{"Connection", "close"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Connection"), "close");
}

TEST_F(ProxyTest, UpstreamClosingAPooledConnectionIsRetriedOnce) {
  StartProxy();
  TestClient client(proxy_->port());
  for (int i = 0; i < 50; ++i) {
    auto r = client.Send("GET", "/drop");
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.body, "dropped");
    // At once (the pooled connection is taken on trust) and after a while (checked).
    if (i % 2 == 1) absl::SleepFor(absl::Milliseconds(10));
    r = client.Send("GET", "/status/200");
    ASSERT_EQ(r.status, 200) << i;
  }
  const ProxyStats s = proxy_->stats();
  EXPECT_EQ(s.bad_gateway, 0u);
  EXPECT_EQ(s.requests, 100u);
  EXPECT_GE(s.upstream_retries, 1u);  // the trusted reuses found the connection closed
}

TEST_F(ProxyTest, UpstreamDownGives502) {
  StartProxy(LocalOptions(), zeroscale::testing::UnusedPort());
  TestClient client(proxy_->port());
  auto r = client.Send("GET", "/anything");
  EXPECT_EQ(r.status, 502);
  // The client connection survives a refused upstream.
  r = client.Send("GET", "/again");
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(proxy_->stats().bad_gateway, 2u);
  ASSERT_TRUE(observer_.WaitForDone(2));
  EXPECT_EQ(observer_.done()[0].outcome, Outcome::kBadGateway);
  EXPECT_EQ(observer_.done()[0].status, 502);
}

TEST_F(ProxyTest, UpstreamTimeoutGives504) {
  ProxyOptions o = LocalOptions();
  o.upstream_timeout = absl::Milliseconds(300);
  o.timer_tick = absl::Milliseconds(20);
  StartProxy(o);
  TestClient client(proxy_->port());
  const absl::Time start = absl::Now();
  auto r = client.Send("GET", "/hang");
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.status, 504);
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Seconds(3));
  EXPECT_EQ(proxy_->stats().gateway_timeout, 1u);
  ASSERT_TRUE(observer_.WaitForDone(1));
  EXPECT_EQ(observer_.done()[0].outcome, Outcome::kGatewayTimeout);
  // The hung upstream connection was closed, not pooled.
  EXPECT_TRUE(backend_.WaitForOpenConnectionsAtMost(0, absl::Seconds(5)));
  TestClient again(proxy_->port());
  EXPECT_EQ(again.Send("GET", "/status/200").status, 200);
}

// A picker that sets each request's upstream timeout, as the balancer does from its
// run-time timeout_seconds.
class TimeoutPicker : public UpstreamPicker {
 public:
  TimeoutPicker(uint16_t port, absl::Duration timeout) : port_(port), timeout_(timeout) {}
  void Pick(const RequestHead&, PickDone done) override {
    PickResult r = PickResult::Forward(Upstream{"127.0.0.1", port_});
    r.upstream_timeout = timeout_;
    done(std::move(r));
  }

 private:
  const uint16_t port_;
  const absl::Duration timeout_;
};

TEST_F(ProxyTest, PickedUpstreamTimeoutOverridesTheEngineDefault) {
  ProxyOptions o = LocalOptions();
  o.upstream_timeout = absl::Seconds(60);
  o.timer_tick = absl::Milliseconds(20);
  TimeoutPicker picker(backend_.port(), absl::Milliseconds(200));
  Proxy proxy(o, &picker, &observer_);
  ASSERT_TRUE(proxy.Start().ok());
  TestClient client(proxy.port());
  const absl::Time start = absl::Now();
  auto r = client.Send("GET", "/hang");
  EXPECT_EQ(r.status, 504);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));  // far below the engine's 60 s
  EXPECT_EQ(proxy.stats().gateway_timeout, 1u);
}

TEST_F(ProxyTest, ClientDisconnectMidResponseClosesTheUpstream) {
  StartProxy();
  {
    TestClient client(proxy_->port());
    client.WriteRaw("GET /big/1073741824 HTTP/1.1\r\nHost: x\r\n\r\n");
    size_t got = 0;
    while (got < (1 << 20)) {
      const std::string piece = client.ReadSome();
      ASSERT_FALSE(piece.empty());
      got += piece.size();
    }
    client.Close();
  }
  ASSERT_TRUE(observer_.WaitForDone(1));
  EXPECT_EQ(observer_.done()[0].outcome, Outcome::kClientGone);
  EXPECT_EQ(observer_.done()[0].status, 200);
  EXPECT_LT(observer_.done()[0].response_bytes, 1ull << 30);
  EXPECT_TRUE(backend_.WaitForOpenConnectionsAtMost(0, absl::Seconds(5)));
  EXPECT_EQ(proxy_->stats().client_gone, 1u);
  EXPECT_EQ(proxy_->stats().in_flight, 0u);
  TestClient again(proxy_->port());
  EXPECT_EQ(again.Send("GET", "/status/200").status, 200);
}

TEST_F(ProxyTest, ClientDisconnectWhileWaitingForTheUpstream) {
  StartProxy();
  {
    TestClient client(proxy_->port());
    client.WriteRaw("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
    // Wait until the upstream has the request before leaving.
    ASSERT_TRUE(backend_.WaitForOpenConnectionsAtMost(1, absl::Seconds(1)));
    while (backend_.connections_accepted() < 1) std::this_thread::yield();
    client.Close();
  }
  ASSERT_TRUE(observer_.WaitForDone(1));
  EXPECT_EQ(observer_.done()[0].outcome, Outcome::kClientGone);
  EXPECT_EQ(observer_.done()[0].status, 499);
}

// Routes by path: /reject answers 503 with Retry-After, /hold waits for the test.
class HoldingPicker : public UpstreamPicker {
 public:
  explicit HoldingPicker(uint16_t port) : port_(port) {}
  void Pick(const RequestHead& head, PickDone done) override {
    if (absl::StartsWith(head.target, "/reject")) {
      return done(PickResult::Reject(503, "asleep\n", {{"Retry-After", "5"}}));
    }
    if (absl::StartsWith(head.target, "/hold")) {
      std::lock_guard<std::mutex> lock(mu_);
      held_.push_back(std::move(done));
      held_ids_.push_back(head.id);
      EXPECT_EQ(head.Header("x-tag"), "held");
      cv_.notify_all();
      return;
    }
    done(PickResult::Forward({"127.0.0.1", port_}));
  }
  void Cancel(const RequestHead& head) override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_.push_back(head.id);
    cv_.notify_all();
  }
  bool WaitHeld(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return held_.size() >= n; });
  }
  bool WaitCancelled(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return cancelled_.size() >= n; });
  }
  // Forwards every held request to the backend, from the calling thread.
  void ReleaseAll() {
    std::vector<PickDone> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      held.swap(held_);
    }
    for (auto& d : held) d(PickResult::Forward({"127.0.0.1", port_}));
  }

 private:
  const uint16_t port_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PickDone> held_;
  std::vector<uint64_t> held_ids_;
  std::vector<uint64_t> cancelled_;
};

TEST(ProxyPickerTest, RejectsHoldsAndReleasesFromAnotherThread) {
  TestBackend backend;
  HoldingPicker picker(backend.port());
  RecordingObserver observer;
  Proxy proxy(LocalOptions(), &picker, &observer);
  ASSERT_TRUE(proxy.Start().ok());

  TestClient client(proxy.port());
  auto r = client.Send("GET", "/reject");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Header("Retry-After"), "5");
  EXPECT_EQ(r.body, "asleep\n");
  EXPECT_EQ(client.Send("GET", "/echo/after-reject").status, 200);

  std::thread releaser([&] {
    ASSERT_TRUE(picker.WaitHeld(1));
    picker.ReleaseAll();
  });
  r = client.Send("GET", "/hold/echo", {{"X-Tag", "held"}});
  releaser.join();
  EXPECT_EQ(r.status, 404);  // the backend has no /hold route: what matters is it got there
  EXPECT_EQ(proxy.stats().rejected, 1u);
}

TEST(ProxyPickerTest, ClientLeavingWhileHeldCancelsThePick) {
  TestBackend backend;
  HoldingPicker picker(backend.port());
  RecordingObserver observer;
  Proxy proxy(LocalOptions(), &picker, &observer);
  ASSERT_TRUE(proxy.Start().ok());
  {
    TestClient client(proxy.port());
    client.WriteRaw("GET /hold HTTP/1.1\r\nHost: x\r\nX-Tag: held\r\n\r\n");
    ASSERT_TRUE(picker.WaitHeld(1));
    client.Close();
  }
  ASSERT_TRUE(picker.WaitCancelled(1));
  ASSERT_TRUE(observer.WaitForDone(1));
  EXPECT_EQ(observer.done()[0].outcome, Outcome::kClientGone);
  picker.ReleaseAll();  // ignored: the client is gone
  EXPECT_EQ(backend.connections_accepted(), 0);
  EXPECT_EQ(proxy.stats().in_flight, 0u);
}

}  // namespace
}  // namespace zeroscale::proxy
