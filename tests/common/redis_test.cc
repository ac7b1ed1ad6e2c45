// HiredisClient against a real redis-server started on a free loopback port.
#include "common/redis/redis.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/redis_server.h"

namespace zeroscale {
namespace {

using ::testing::HasSubstr;

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    RedisOptions o;
    o.port = server_.port();
    o.backoff_initial = absl::Seconds(1);
    o.backoff_max = absl::Seconds(4);
    client_ = std::make_unique<HiredisClient>(o, &clock_);
  }
  testing::RedisServer server_;
  testing::FakeClock clock_;
  std::unique_ptr<HiredisClient> client_;
};

TEST_F(RedisTest, PipelineAnswersInOrder) {
  auto replies = client_->Pipeline({{"SET", "k", "v w"}, {"GET", "k"}, {"INCR", "n"},
                                    {"LPUSH", "k", "x"}, {"GET", "missing"},
                                    {"ZADD", "z", "1", "a"}, {"ZRANGE", "z", "0", "-1"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 7u);
  EXPECT_EQ((*replies)[0].type, RedisReply::Type::kStatus);
  EXPECT_EQ((*replies)[1].str, "v w");
  EXPECT_EQ((*replies)[2].integer, 1);
  EXPECT_TRUE((*replies)[3].is_error());  // WRONGTYPE: an error reply, not a failure
  EXPECT_TRUE((*replies)[4].is_nil());
  ASSERT_EQ((*replies)[6].elements.size(), 1u);
  EXPECT_EQ((*replies)[6].elements[0].str, "a");
}

TEST_F(RedisTest, CommandTurnsErrorRepliesIntoStatuses) {
  ASSERT_TRUE(client_->Command({"SET", "k", "v"}).ok());
  absl::StatusOr<RedisReply> r = client_->Command({"LPUSH", "k", "x"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("LPUSH"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("WRONGTYPE"));
}

TEST_F(RedisTest, BinarySafeValues) {
  const std::string value("a\0b\r\nc", 6);
  ASSERT_TRUE(client_->Command({"SET", "bin", value}).ok());
  EXPECT_EQ(client_->Command({"GET", "bin"})->str, value);
}

TEST_F(RedisTest, RestartIsUnavailableThenReconnectsWithBackoff) {
  ASSERT_TRUE(client_->Command({"PING"}).ok());
  server_.Kill();
  absl::StatusOr<RedisReply> r = client_->Command({"PING"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  // The first reconnect after a working connection broke is attempted at once...
  r = client_->Command({"PING"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("cannot connect"));
  // ...then the client backs off without touching the network.
  r = client_->Command({"PING"});
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("next attempt in"));
  ASSERT_TRUE(server_.Start().ok());
  r = client_->Command({"PING"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);  // still backing off
  clock_.Advance(absl::Seconds(1));
  r = client_->Command({"PING"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "PONG");
}

TEST_F(RedisTest, BackoffDoublesUpToTheMaximum) {
  server_.Kill();
  (void)client_->Command({"PING"});
  const absl::Time t0 = clock_.Now();
  EXPECT_EQ(client_->next_attempt(), t0 + absl::Seconds(1));
  clock_.Advance(absl::Seconds(1));
  (void)client_->Command({"PING"});
  EXPECT_EQ(client_->next_attempt(), clock_.Now() + absl::Seconds(2));
  clock_.Advance(absl::Seconds(2));
  (void)client_->Command({"PING"});
  EXPECT_EQ(client_->next_attempt(), clock_.Now() + absl::Seconds(4));
  clock_.Advance(absl::Seconds(4));
  (void)client_->Command({"PING"});
  EXPECT_EQ(client_->next_attempt(), clock_.Now() + absl::Seconds(4));
}

TEST(RedisConnect, NothingListeningIsUnavailableNamingTheAddress) {
  testing::FakeClock clock;
  RedisOptions o;
  o.port = testing::FreePort();
  HiredisClient client(o, &clock);
  absl::StatusOr<RedisReply> r = client.Command({"PING"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(absl::StrCat("127.0.0.1:", o.port)));
}

}  // namespace
}  // namespace zeroscale
