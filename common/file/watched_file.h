// Noticing that a file was replaced, without reading it: what certificate and CA files
// need, because a Kubernetes Secret or ConfigMap volume swaps them under the same name
// (a symlink swap: the inode changes) and cert-manager or an operator may rewrite them in
// place (the size or the mtime changes). FileStamp is the one check of "did it change",
// used by the TLS servers' certificate reload and by WatchedFile.
//
// Thread-safety: FileStamp and StampOf are values and a pure function of the file
// system; a WatchedFile may be used from any thread.
#ifndef ZEROSCALE_COMMON_FILE_WATCHED_FILE_H_
#define ZEROSCALE_COMMON_FILE_WATCHED_FILE_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace zeroscale {

// What identifies one version of a file without reading it; all zero (size -1) when the
// file cannot be looked at.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp& o) const;
  bool operator!=(const FileStamp& o) const { return !(*this == o); }
};

FileStamp StampOf(const std::string& path);

// A small file's content, read again when its stamp changes, looked at (stat) at most
// once per `check_every`. A new version that `validate` refuses is logged and the last
// good content stays in use, so a half-written file never replaces a good one.
class WatchedFile {
 public:
  using Validate = std::function<absl::Status(const std::string& content)>;
  // `what` names the file in errors ("scaler CA bundle").
  WatchedFile(std::string path, std::string what, absl::Duration check_every,
              Validate validate = nullptr);

  // Reads the file now; kFailedPrecondition names the file when it cannot be read or
  // `validate` refuses it.
  absl::Status Load();
  // The content of the newest good version (Load first).
  std::string Current();
  const std::string& path() const { return path_; }

 private:
  absl::StatusOr<std::string> ReadValid() const;

  const std::string path_;
  const std::string what_;
  const absl::Duration check_every_;
  const Validate validate_;
  std::mutex mu_;
  std::string content_;
  FileStamp stamp_;
  absl::Time last_check_;
};

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_FILE_WATCHED_FILE_H_
