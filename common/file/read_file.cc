#include "common/file/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace zeroscale {

absl::StatusOr<std::string> ReadFileToString(const std::string& path, absl::string_view what) {
  auto failed = [&](int err) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", what, " ", path, ": ", std::strerror(err)));
  };
  // Plain read(2) rather than a stream: a directory opens fine and only the read says
  // EISDIR, which stream extraction would swallow into an empty "file".
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failed(errno);
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      const int err = errno;
      ::close(fd);
      return failed(err);
    }
  }
  ::close(fd);
  return out;
}

}  // namespace zeroscale
