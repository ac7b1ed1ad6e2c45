#include "common/log/log.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace zeroscale::log {
namespace {

TEST(Log, OneJsonObjectPerLine) {
  SetComponent("test");
  const std::string line = Format(Level::kWarning, "redis \"down\"", {{"pod", "a/b"}, {"n", "3"}});
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  const nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["component"], "test");
  EXPECT_EQ(j["msg"], "redis \"down\"");
  EXPECT_EQ(j["pod"], "a/b");
  EXPECT_TRUE(j.contains("ts"));
}

TEST(Log, InvalidUtf8DoesNotThrow) {
  const std::string line = Format(Level::kInfo, "bad \xff byte", {});
  EXPECT_TRUE(nlohmann::json::accept(line));
}

TEST(Log, LevelsFilter) {
  SetLevel(Level::kWarning);
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kError));
  SetLevel(Level::kInfo);
  EXPECT_TRUE(Enabled(Level::kInfo));
}

}  // namespace
}  // namespace zeroscale::log
