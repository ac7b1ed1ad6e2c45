// A bearer token kept in a file that changes under a running process: the kubelet
// rotates projected service-account tokens (an atomic swap of a symlinked directory),
// and the local backend writes each replica's. Get() stats the file on every call and
// reads it again only when its inode, size or modification time changed, so callers
// may ask per call. Kept apart from zs_auth (no OpenSSL) for the statically linked
// sidecar.
//
// Thread-safety: Get may be called concurrently.
#ifndef ZEROSCALE_COMMON_AUTH_TOKEN_FILE_H_
#define ZEROSCALE_COMMON_AUTH_TOKEN_FILE_H_

#include <sys/types.h>

#include <mutex>
#include <string>

#include "absl/status/statusor.h"

namespace zeroscale::auth {

class TokenFile {
 public:
  explicit TokenFile(std::string path) : path_(std::move(path)) {}

  // The token (surrounding whitespace removed); kFailedPrecondition naming the file when
  // it cannot be read or is empty, or holds more than 16 KiB. A file that became
  // unreadable after a good read keeps giving the last token read, since the kubelet's
  // swap may briefly leave no file.
  absl::StatusOr<std::string> Get();
  // "Bearer <token>", or "" when there is no token to send.
  std::string AuthorizationValue();
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  std::mutex mu_;
  std::string token_;
  ino_t inode_ = 0;
  off_t size_ = -1;
  int64_t mtime_ns_ = -1;
};

}  // namespace zeroscale::auth

#endif  // ZEROSCALE_COMMON_AUTH_TOKEN_FILE_H_
