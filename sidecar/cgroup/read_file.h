// Reads a whole small file (cgroup and /proc files) into a caller-owned buffer with one
// open/read/close and no allocation, for samplers that run every second.
//
// Thread-safety: a pure function of its arguments; callers must not share `buffer`.
#ifndef ZEROSCALE_SIDECAR_CGROUP_READ_FILE_H_
#define ZEROSCALE_SIDECAR_CGROUP_READ_FILE_H_

#include <cstddef>
#include <optional>

#include "absl/strings/string_view.h"

namespace zeroscale::sidecar::internal {

// The content of `path` (relative to the directory `dir_fd`, or AT_FDCWD) as a view of
// `buffer`; nullopt when it cannot be opened or read, or does not fit in `capacity`
// (a truncated file would parse as something it is not).
std::optional<absl::string_view> ReadFileAt(int dir_fd, const char* path, char* buffer,
                                            size_t capacity);

}  // namespace zeroscale::sidecar::internal

#endif  // ZEROSCALE_SIDECAR_CGROUP_READ_FILE_H_
