// Settings and request logs against a real redis-server, and the admin API over HTTP.
#include <thread>

#include "absl/strings/str_cat.h"
#include "balancer/admin/admin_api.h"
#include "balancer/logs/request_log.h"
#include "balancer/policy/settings_store.h"
#include "common/auth/access_control.h"
#include "common/auth/static_tokens.h"
#include "common/http/http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/proxy/test_backend.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::balancer {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using zeroscale::testing::RedisServer;
using zeroscale::testing::TestClient;

std::unique_ptr<Redis> Connect(uint16_t port) {
  RedisOptions o;
  o.port = port;
  o.connect_timeout = absl::Milliseconds(300);
  o.backoff_initial = absl::Milliseconds(10);
  o.backoff_max = absl::Milliseconds(50);
  return std::make_unique<HiredisClient>(o, RealClock::Get());
}

LogEntry Entry(absl::Time t, std::string url, int status = 200) {
  LogEntry e;
  e.timestamp = t;
  e.client_ip = "127.0.0.1";
  e.target_url = std::move(url);
  e.http_method = "GET";
  e.response_status = status;
  e.latency_ms = 3;
  return e;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start().ok()); }
  RedisServer redis_;
};

TEST_F(StoreTest, SettingsDefaultThenStoredAndSeenByListener) {
  SettingsStore store(Connect(redis_.port()), RealClock::Get(), "default");
  ASSERT_TRUE(store.Load().ok());
  std::vector<Settings> heard;
  store.SetListener([&](const Settings& s) { heard.push_back(s); });
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].policy, Policy::kRoundRobin);
  EXPECT_EQ(heard[0].max_connections, 1000);
  EXPECT_EQ(heard[0].timeout_seconds, 60);

  Settings s = store.Serving();
  s.policy = Policy::kLeastConnections;
  s.max_connections = 10;
  auto stored = store.Put(s);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[1].policy, Policy::kLeastConnections);
  EXPECT_THAT(redis_.Cli("HGET zeroscale:balancer:settings:default policy"),
              HasSubstr("least_connections"));
  EXPECT_THAT(redis_.Cli("HGET zeroscale:balancer:settings:default updated_at"), HasSubstr("Z"));

  // Another replica's store sees it on load; a change made elsewhere arrives on refresh.
  SettingsStore other(Connect(redis_.port()), RealClock::Get(), "default");
  ASSERT_TRUE(other.Load().ok());
  EXPECT_EQ(other.Serving().max_connections, 10);
  redis_.Cli("HSET zeroscale:balancer:settings:default max_connections 77");
  ASSERT_TRUE(store.Refresh().ok());
  EXPECT_EQ(heard.back().max_connections, 77);
}

TEST_F(StoreTest, SettingsPutFailsClearlyWhenRedisIsDown) {
  SettingsStore store(Connect(redis_.port()), RealClock::Get(), "default");
  redis_.Kill();
  Settings s;
  s.policy = Policy::kRandom;
  auto r = store.Put(s);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Serving().policy, Policy::kRoundRobin);  // cache unchanged
}

TEST_F(StoreTest, LogEntriesAreStreamFieldsAndForeignEntriesAreSkipped) {
  LogWriter writer(Connect(redis_.port()), {});
  writer.Start();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  writer.Append(Entry(t0, "http://a.local/first"));
  writer.Flush();
  // Readable with plain Redis tools: the table's columns are the stream's fields.
  const std::string raw = redis_.Cli("XRANGE zeroscale:balancer:logs - +");
  EXPECT_THAT(raw, HasSubstr("target_url"));
  EXPECT_THAT(raw, HasSubstr("http://a.local/first"));
  EXPECT_THAT(raw, HasSubstr("response_status"));
  // Something else wrote to the stream: neither entry breaks reading.
  redis_.Cli("XADD zeroscale:balancer:logs * foo bar");
  redis_.Cli("XADD zeroscale:balancer:logs * timestamp yesterday target_url http://x/");
  writer.Append(Entry(t0 + absl::Seconds(1), "http://a.local/second"));
  writer.Flush();
  LogReader reader(Connect(redis_.port()));
  auto page = reader.Query(LogFilter{});
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->entries.size(), 2u);
  EXPECT_EQ(page->entries[0].target_url, "http://a.local/second");
  EXPECT_EQ(page->entries[1].target_url, "http://a.local/first");

  RedisReply bad;
  bad.type = RedisReply::Type::kArray;
  for (const char* v : {"timestamp", "2026-11-25T06:00:00Z", "response_status", "two hundred"}) {
    RedisReply r;
    r.type = RedisReply::Type::kString;
    r.str = v;
    bad.elements.push_back(r);
  }
  EXPECT_THAT(LogEntryFromFields(bad).status().message(), HasSubstr("response_status"));
}

TEST_F(StoreTest, LogsFilterByTimeAndTargetAndPage) {
  LogWriter writer(Connect(redis_.port()), {});
  writer.Start();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  for (int i = 0; i < 30; ++i) {
    writer.Append(Entry(t0 + absl::Seconds(i),
                        absl::StrCat("http://", i % 2 ? "a.local" : "b.local", "/p/", i)));
  }
  writer.Flush();
  EXPECT_EQ(writer.written(), 30u);
  LogReader reader(Connect(redis_.port()));

  LogFilter all;
  all.limit = 1000;
  auto page = reader.Query(all);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->entries.size(), 30u);
  EXPECT_EQ(page->entries[0].target_url, "http://a.local/p/29");  // newest first
  EXPECT_TRUE(page->next_cursor.empty());

  LogFilter f;
  f.from = t0 + absl::Seconds(10);
  f.to = t0 + absl::Seconds(19);
  f.target = "a.local";
  f.limit = 2;
  std::vector<std::string> urls;
  for (int pages = 0; pages < 10; ++pages) {
    auto p = reader.Query(f);
    ASSERT_TRUE(p.ok());
    for (const auto& e : p->entries) urls.push_back(e.target_url);
    if (p->next_cursor.empty()) break;
    f.cursor = p->next_cursor;
  }
  EXPECT_THAT(urls, ::testing::ElementsAre("http://a.local/p/19", "http://a.local/p/17",
                                           "http://a.local/p/15", "http://a.local/p/13",
                                           "http://a.local/p/11"));
  LogFilter off;
  off.offset = 28;
  auto tail = reader.Query(off);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->entries.size(), 2u);
  EXPECT_EQ(tail->entries[1].target_url, "http://b.local/p/0");
  LogFilter bad;
  bad.cursor = "nope";
  EXPECT_EQ(reader.Query(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, LogsAreCappedByLength) {
  LogWriterOptions o;
  o.max_entries = 100;
  LogWriter writer(Connect(redis_.port()), o);
  writer.Start();
  for (int i = 0; i < 5000; ++i) writer.Append(Entry(absl::Now(), "http://x/"));
  writer.Flush();
  const int len = std::stoi(redis_.Cli("XLEN zeroscale:balancer:logs"));
  EXPECT_LT(len, 500);  // MAXLEN ~ trims whole macro nodes
  EXPECT_GE(len, 100);
}

TEST_F(StoreTest, RedisDownDropsAndCountsLogsWithoutBlocking) {
  uint64_t dropped_seen = 0;
  LogWriter writer(Connect(redis_.port()), {}, nullptr, [&](uint64_t n) { dropped_seen += n; });
  writer.Start();
  redis_.Kill();
  const absl::Time start = absl::Now();
  for (int i = 0; i < 1000; ++i) writer.Append(Entry(absl::Now(), "http://x/"));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(200));  // Append never waits on Redis
  writer.Flush();
  EXPECT_EQ(writer.dropped(), 1000u);
  EXPECT_EQ(dropped_seen, 1000u);
  // Redis is back: logs flow again.
  ASSERT_TRUE(redis_.Start().ok());
  bool written = false;
  for (int i = 0; i < 100 && !written; ++i) {
    writer.Append(Entry(absl::Now(), "http://x/again"));
    writer.Flush();
    written = writer.written() > 0;
    if (!written) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // reconnect backoff
  }
  EXPECT_TRUE(written);
}

class AdminTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    store_ = std::make_unique<SettingsStore>(Connect(redis_.port()), RealClock::Get(), "default");
    reader_ = std::make_unique<LogReader>(Connect(redis_.port()));
    tokens_ = *auth::StaticTokens::Parse(
        absl::StrCat(kOperator, ",alice,zeroscale:operators\n", kViewer, ",bob,zeroscale:viewers\n",
                     kBalancer, ",lb,zeroscale:balancers\n"),
        "tokens");
    auth::AccessControlOptions ao;
    ao.tokens = tokens_.get();
    access_ = std::make_unique<auth::AccessControl>(ao);
    AdminApiDeps deps;
    deps.settings = store_.get();
    deps.logs = reader_.get();
    deps.registry = &registry_;
    deps.access = access_.get();
    RegisterAdminRoutes(deps, &router_);
    http::ServerOptions o;
    o.listen = {"127.0.0.1", 0};
    server_ = std::make_unique<http::Server>(
        o, [this](http::Request&& r, http::Responder d) { router_.Dispatch(std::move(r), d); });
    ASSERT_TRUE(server_->Start().ok());
  }
  testing::SimpleResponse Put(const std::string& body,
                              const std::string& target = "/loadbalancer/settings",
                              const std::string& token = kOperator) {
    TestClient c(server_->port());
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Type", "application/json"}};
    if (!token.empty()) headers.push_back({"Authorization", "Bearer " + token});
    return c.Send("PUT", target, headers, body);
  }
  testing::SimpleResponse Get(const std::string& target, const std::string& token = kOperator) {
    TestClient c(server_->port());
    if (token.empty()) return c.Send("GET", target);
    return c.Send("GET", target, {{"Authorization", "Bearer " + token}});
  }

  static constexpr char kOperator[] = "operator-token-0123456789";
  static constexpr char kViewer[] = "viewer-token-0123456789";
  static constexpr char kBalancer[] = "balancer-token-0123456789";
  std::unique_ptr<auth::StaticTokens> tokens_;
  std::unique_ptr<auth::AccessControl> access_;
  prometheus::Registry registry_;
  std::unique_ptr<SettingsStore> store_;
  std::unique_ptr<LogReader> reader_;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(AdminTest, SettingsGetPutAndValidation) {
  auto r = Get("/loadbalancer/settings");
  ASSERT_EQ(r.status, 200);
  json j = json::parse(r.body);
  EXPECT_EQ(j["policy"], "round_robin");
  EXPECT_EQ(j["max_connections"], 1000);
  EXPECT_EQ(j["timeout_seconds"], 60);
  EXPECT_EQ(j["environment"], "default");

  r = Put(
      R"({"environment":"default","policy":"least_connections","max_connections":100,"timeout_seconds":30})");
  ASSERT_EQ(r.status, 200) << r.body;
  j = json::parse(r.body);
  EXPECT_EQ(j["policy"], "least_connections");
  EXPECT_TRUE(ParseRfc3339(j["updated_at"].get<std::string>()).ok());
  EXPECT_EQ(json::parse(Get("/loadbalancer/settings").body)["max_connections"], 100);

  struct Bad {
    std::string body, field;
  } bad[] = {{R"({"policy":"bogus"})", "policy"},
             {R"({"max_connections":-1})", "max_connections"},
             {R"({"max_connections":0})", "max_connections"},
             {R"({"timeout_seconds":-3})", "timeout_seconds"},
             {R"({"timeout_seconds":0})", "timeout_seconds"}};
  for (const Bad& b : bad) {
    r = Put(b.body);
    EXPECT_EQ(r.status, 400) << b.body;
    EXPECT_THAT(r.body, HasSubstr(b.field)) << b.body;
  }
  EXPECT_EQ(json::parse(Get("/loadbalancer/settings").body)["policy"], "least_connections");

  // Per environment.
  r = Put(R"({"policy":"random"})", "/loadbalancer/settings?environment=staging");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(Get("/loadbalancer/settings?environment=staging").body)["policy"],
            "random");
  EXPECT_EQ(json::parse(Get("/loadbalancer/settings").body)["policy"], "least_connections");
  EXPECT_EQ(Get("/loadbalancer/settings?environment=a%20b").status, 400);
}

// Secure by default: settings and logs need a credential that grants them; Prometheus
// and health stay open.
TEST_F(AdminTest, EachEndpointRefusedWithoutCredentialsAndAllowedWithTheRightOnes) {
  struct Case {
    std::string method, target, body;
  } cases[] = {{"GET", "/loadbalancer/settings", ""},
               {"PUT", "/loadbalancer/settings", R"({"policy":"random"})"},
               {"GET", "/proxy/logs", ""}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method + " " + c.target);
    auto send = [&](const std::string& token) {
      return c.method == "PUT" ? Put(c.body, c.target, token) : Get(c.target, token);
    };
    testing::SimpleResponse r = send("");
    EXPECT_EQ(r.status, 401);
    EXPECT_THAT(r.body, HasSubstr("--auth-tokens"));
    EXPECT_EQ(send("not-a-known-token-0000").status, 401);
    EXPECT_EQ(send(kBalancer).status, 403);  // balancers may not touch the admin API
    EXPECT_EQ(send(kViewer).status, c.method == "PUT" ? 403 : 200);
    EXPECT_EQ(send(kOperator).status, 200);
  }
  EXPECT_THAT(Put(R"({"policy":"random"})", "/loadbalancer/settings", kViewer).body,
              HasSubstr("may not balancersettings update"));
  EXPECT_EQ(Get("/metrics", "").status, 200);
  EXPECT_EQ(Get("/healthz", "").status, 200);
}

TEST_F(AdminTest, LogsEndpointFiltersAndPages) {
  LogWriter writer(Connect(redis_.port()), {});
  writer.Start();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  for (int i = 0; i < 10; ++i) {
    writer.Append(Entry(t0 + absl::Seconds(i), absl::StrCat("http://m.local/model/", i)));
  }
  writer.Flush();
  auto r = Get("/proxy/logs?limit=3&target=/model/&from=2023-11-14T22:13:22Z");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  ASSERT_EQ(j["entries"].size(), 3u);
  for (const char* field :
       {"timestamp", "client_ip", "target_url", "http_method", "response_status", "latency_ms"}) {
    EXPECT_TRUE(j["entries"][0].contains(field)) << field;
  }
  EXPECT_EQ(j["entries"][0]["target_url"], "http://m.local/model/9");
  ASSERT_TRUE(j["next_cursor"].is_string());
  r = Get(absl::StrCat("/proxy/logs?limit=100&from=2023-11-14T22:13:22Z&cursor=",
                       j["next_cursor"].get<std::string>()));
  j = json::parse(r.body);
  ASSERT_EQ(j["entries"].size(), 5u);  // t0+2 .. t0+6
  EXPECT_EQ(j["entries"][4]["target_url"], "http://m.local/model/2");
  EXPECT_TRUE(j["next_cursor"].is_null());
  EXPECT_EQ(Get("/proxy/logs?limit=0").status, 400);
  EXPECT_THAT(Get("/proxy/logs?limit=5000").body, HasSubstr("limit"));
  EXPECT_THAT(Get("/proxy/logs?from=yesterday").body, HasSubstr("from"));
  EXPECT_EQ(Get("/healthz").status, 200);
}

}  // namespace
}  // namespace zeroscale::balancer
