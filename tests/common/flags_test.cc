#include "common/config/flags.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::config {
namespace {

using ::testing::HasSubstr;

struct Parsed {
  std::string backend;
  HostPort redis;
  absl::Duration retention;
  int64_t batch = 0;
  bool dry_run = false;
};

absl::Status ParseWith(std::vector<const char*> args, std::map<std::string, std::string> env,
                       Parsed* out, FlagSet** keep = nullptr) {
  static FlagSet* fs = nullptr;
  delete fs;
  fs = new FlagSet("prog", "test program");
  fs->Enum("backend", &out->backend, "auto", {"auto", "local", "none"}, "backend");
  fs->Address("redis", &out->redis, "127.0.0.1:6379", "redis");
  fs->Duration("retention", &out->retention, absl::Minutes(15), "retention");
  fs->Int("ingest-batch", &out->batch, 4096, "batch", 1, 100000);
  fs->Bool("dry-run", &out->dry_run, false, "dry run");
  args.insert(args.begin(), "prog");
  if (keep) *keep = fs;
  return fs->Parse(static_cast<int>(args.size()), args.data(),
                   [env](const std::string& name) -> std::optional<std::string> {
                     auto it = env.find(name);
                     if (it == env.end()) return std::nullopt;
                     return it->second;
                   });
}

TEST(Flags, Defaults) {
  Parsed p;
  ASSERT_TRUE(ParseWith({}, {}, &p).ok());
  EXPECT_EQ(p.backend, "auto");
  EXPECT_EQ(p.redis.host, "127.0.0.1");
  EXPECT_EQ(p.redis.port, 6379);
  EXPECT_EQ(p.retention, absl::Minutes(15));
  EXPECT_EQ(p.batch, 4096);
  EXPECT_FALSE(p.dry_run);
}

TEST(Flags, EnvironmentThenCommandLineWins) {
  Parsed p;
  ASSERT_TRUE(ParseWith({"--retention=1h"},
                        {{"ZEROSCALE_RETENTION", "5m"}, {"ZEROSCALE_INGEST_BATCH", "10"},
                         {"ZEROSCALE_DRY_RUN", "true"}},
                        &p)
                  .ok());
  EXPECT_EQ(p.retention, absl::Hours(1));
  EXPECT_EQ(p.batch, 10);
  EXPECT_TRUE(p.dry_run);
}

TEST(Flags, SpaceSeparatedValuesAndBareBooleans) {
  Parsed p;
  ASSERT_TRUE(ParseWith({"--redis", "10.0.0.1:7000", "--dry-run", "--backend", "local"}, {}, &p)
                  .ok());
  EXPECT_EQ(p.redis.ToString(), "10.0.0.1:7000");
  EXPECT_TRUE(p.dry_run);
  EXPECT_EQ(p.backend, "local");
}

TEST(Flags, BadValuesNameTheFlagTheValueAndTheSource) {
  Parsed p;
  absl::Status s = ParseWith({"--retention=soon"}, {}, &p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'soon'"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("--retention"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("command line"));

  s = ParseWith({}, {{"ZEROSCALE_REDIS", "nohost"}}, &p);
  EXPECT_THAT(std::string(s.message()), HasSubstr("ZEROSCALE_REDIS"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("HOST:PORT"));

  s = ParseWith({"--ingest-batch=0"}, {}, &p);
  EXPECT_THAT(std::string(s.message()), HasSubstr("1..100000"));

  s = ParseWith({"--backend=kubernetes"}, {}, &p);
  EXPECT_THAT(std::string(s.message()), HasSubstr("one of auto, local, none"));

  s = ParseWith({"--redis=127.0.0.1:99999"}, {}, &p);
  EXPECT_THAT(std::string(s.message()), HasSubstr("0..65535"));
}

TEST(Flags, UnknownFlagAndStrayArguments) {
  Parsed p;
  EXPECT_THAT(std::string(ParseWith({"--no-such=1"}, {}, &p).message()), HasSubstr("unknown flag --no-such"));
  EXPECT_THAT(std::string(ParseWith({"stray"}, {}, &p).message()), HasSubstr("unexpected argument 'stray'"));
  EXPECT_THAT(std::string(ParseWith({"--retention"}, {}, &p).message()), HasSubstr("needs a value"));
}

TEST(Flags, HelpListsEveryFlagWithItsEnvironmentVariable) {
  Parsed p;
  FlagSet* fs = nullptr;
  ASSERT_TRUE(ParseWith({"--help"}, {}, &p, &fs).ok());
  EXPECT_TRUE(fs->help_requested());
  const std::string usage = fs->Usage();
  EXPECT_THAT(usage, HasSubstr("--ingest-batch"));
  EXPECT_THAT(usage, HasSubstr("ZEROSCALE_INGEST_BATCH"));
  EXPECT_THAT(usage, HasSubstr("default '15m'"));
}

TEST(Parsers, Durations) {
  EXPECT_EQ(*ParseDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_FALSE(ParseDuration("-1s").ok());
  EXPECT_FALSE(ParseDuration("10").ok());
  EXPECT_FALSE(ParseDuration("inf").ok());
}

TEST(Parsers, HostPort) {
  EXPECT_EQ(ParseHostPort(":9090")->host, "0.0.0.0");
  EXPECT_EQ(ParseHostPort("[::1]:80")->host, "::1");
  EXPECT_FALSE(ParseHostPort("localhost").ok());
  EXPECT_FALSE(ParseHostPort("localhost:http").ok());
}

}  // namespace
}  // namespace zeroscale::config
