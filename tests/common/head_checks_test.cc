// RFC 9112's rules for request heads, on the fields and bytes Beast parsed.
#include "common/http/head_checks.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::http {
namespace {

using ::testing::HasSubstr;
using Fields = std::vector<std::pair<std::string, std::string>>;

std::pair<int, std::string> Check(unsigned version, const Fields& fields,
                                  const std::string& raw = "GET / HTTP/1.1\r\n") {
  RequestHeadCheck check(version);
  for (const auto& [name, value] : fields) check.Field(name, value);
  std::string why;
  const int status = check.Verdict(raw, &why);
  return {status, why};
}

TEST(RequestHeadCheckTest, OrdinaryHeadsPass) {
  EXPECT_EQ(Check(11, {{"Host", "example.com:8080"}, {"Content-Length", "5"}}).first, 0);
  EXPECT_EQ(Check(11, {{"host", "[::1]:80"}, {"Transfer-Encoding", "Chunked"}}).first, 0);
  EXPECT_EQ(Check(10, {}).first, 0);  // HTTP/1.0 needs no Host
}

TEST(RequestHeadCheckTest, TransferCodingsOtherThanChunkedAre501) {
  EXPECT_EQ(Check(11, {{"Host", "x"}, {"Transfer-Encoding", "xchunked"}}).first, 501);
  EXPECT_EQ(Check(11, {{"Host", "x"}, {"Transfer-Encoding", "identity, chunked"}}).first, 501);
  EXPECT_EQ(
      Check(11, {{"Host", "x"}, {"Transfer-Encoding", "gzip"}, {"Transfer-Encoding", "chunked"}})
          .first,
      501);
  EXPECT_EQ(Check(11, {{"Host", "x"}, {"Transfer-Encoding", "chunked, chunked"}}).first, 400);
  EXPECT_EQ(Check(11, {{"Host", "x"}, {"Transfer-Encoding", " , "}}).first, 400);
  EXPECT_EQ(Check(10, {{"Transfer-Encoding", "chunked"}}).first, 400);
  // Never quotes more than a few bytes of what was sent.
  const auto [status, why] =
      Check(11, {{"Host", "x"}, {"Transfer-Encoding", std::string(100000, 'z')}});
  EXPECT_EQ(status, 501);
  EXPECT_LT(why.size(), 200u);
}

TEST(RequestHeadCheckTest, HostMustBeThereOnceAndValid) {
  EXPECT_THAT(Check(11, {}).second, HasSubstr("needs a Host field"));
  EXPECT_THAT(Check(11, {{"Host", "a"}, {"Host", "a"}}).second, HasSubstr("more than one Host"));
  EXPECT_EQ(Check(11, {{"Host", "a b"}}).first, 400);
  EXPECT_EQ(Check(11, {{"Host", "a/b"}}).first, 400);
  EXPECT_EQ(Check(11, {{"Host", ""}}).first, 400);
}

TEST(RequestHeadCheckTest, ObsoleteLineFoldingIsRefused) {
  EXPECT_EQ(Check(11, {{"Host", "x"}}, "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n b\r\n\r\n").first,
            400);
  EXPECT_EQ(Check(11, {{"Host", "x"}}, "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n\tb\r\n\r\n").first,
            400);
  EXPECT_EQ(Check(11, {{"Host", "x"}}, "GET / HTTP/1.1\r\nHost: x\r\nA: 1 b\r\n\r\n").first, 0);
}

TEST(RequestHeadCheckTest, RepeatedContentLengthsAreNoted) {
  RequestHeadCheck list(11);
  list.Field("Content-Length", "5, 5");
  EXPECT_TRUE(list.repeated_content_length());
  RequestHeadCheck twice(11);
  twice.Field("Content-Length", "5");
  twice.Field("content-length", "5");
  EXPECT_TRUE(twice.repeated_content_length());
  RequestHeadCheck once(11);
  once.Field("Content-Length", "5");
  EXPECT_FALSE(once.repeated_content_length());
}

}  // namespace
}  // namespace zeroscale::http
