#include "common/file/read_file.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale {
namespace {

using ::testing::HasSubstr;

TEST(ReadFileTest, ReadsEveryByte) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/zs-read-file-", ::getpid());
  const std::string bytes("line one\n\0binary\n", 17);
  std::ofstream(path, std::ios::binary) << bytes;
  absl::StatusOr<std::string> got = ReadFileToString(path, "test file");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, bytes);
  ::unlink(path.c_str());
}

TEST(ReadFileTest, AnUnreadablePathIsNamedWithWhatItIsForAndWhy) {
  absl::StatusOr<std::string> got = ReadFileToString("/nonexistent/zs.pem", "TLS certificate");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(got.status().message(),
              HasSubstr("cannot read TLS certificate /nonexistent/zs.pem: No such file"));
  // A directory opens but cannot be read as a file.
  got = ReadFileToString("/", "kubeconfig");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(got.status().message(), HasSubstr("cannot read kubeconfig /"));
}

}  // namespace
}  // namespace zeroscale
