#include "sidecar/cgroup/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <optional>

#include "absl/strings/string_view.h"

namespace zeroscale::sidecar::internal {

std::optional<absl::string_view> ReadFileAt(int dir_fd, const char* path, char* buffer,
                                            size_t capacity) {
  int fd = ::openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  size_t size = 0;
  bool ok = true;
  for (;;) {
    if (size == capacity) {
      ok = false;  // too large to parse safely
      break;
    }
    ssize_t n = ::read(fd, buffer + size, capacity - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = false;
      break;
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  ::close(fd);
  if (!ok) return std::nullopt;
  return absl::string_view(buffer, size);
}

}  // namespace zeroscale::sidecar::internal
