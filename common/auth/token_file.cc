#include "common/auth/token_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace zeroscale::auth {
namespace {

constexpr off_t kMaxTokenFileBytes = 16 << 10;

}  // namespace

absl::StatusOr<std::string> TokenFile::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) {
    if (!token_.empty()) return token_;
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the token file ", path_, ": ", std::strerror(errno)));
  }
  const int64_t mtime_ns =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (!token_.empty() && st.st_ino == inode_ && st.st_size == size_ && mtime_ns == mtime_ns_) {
    return token_;
  }
  if (st.st_size > kMaxTokenFileBytes) {
    return absl::FailedPreconditionError(absl::StrCat("the token file ", path_, " holds ",
                                                      st.st_size, " bytes; a token is at most ",
                                                      kMaxTokenFileBytes));
  }
  std::ifstream in(path_, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    if (!token_.empty()) return token_;
    return absl::FailedPreconditionError(absl::StrCat("cannot read the token file ", path_));
  }
  std::string token(absl::StripAsciiWhitespace(text.str()));
  if (token.empty()) {
    if (!token_.empty()) return token_;
    return absl::FailedPreconditionError(absl::StrCat("the token file ", path_, " is empty"));
  }
  token_ = std::move(token);
  inode_ = st.st_ino;
  size_ = st.st_size;
  mtime_ns_ = mtime_ns;
  return token_;
}

std::string TokenFile::AuthorizationValue() {
  absl::StatusOr<std::string> t = Get();
  return t.ok() ? absl::StrCat("Bearer ", *t) : "";
}

}  // namespace zeroscale::auth
