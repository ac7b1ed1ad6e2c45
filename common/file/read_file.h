// Reads a whole (configuration-sized) file into a string, with an error that names what
// the file is for and why it could not be read, so every caller reports bad paths the
// same way.
//
// Thread-safety: a pure function of the file system; thread-safe.
#ifndef ZEROSCALE_COMMON_FILE_READ_FILE_H_
#define ZEROSCALE_COMMON_FILE_READ_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zeroscale {

// The file's bytes, or kFailedPrecondition "cannot read <what> <path>: <reason>" (the
// caller's configuration points at something unusable).
absl::StatusOr<std::string> ReadFileToString(const std::string& path, absl::string_view what);

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_FILE_READ_FILE_H_
