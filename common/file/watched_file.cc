#include "common/file/watched_file.h"

#include <sys/stat.h>

#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/file/read_file.h"
#include "common/log/log.h"

namespace zeroscale {

bool FileStamp::operator==(const FileStamp& o) const {
  return std::tie(dev, ino, size, mtime_ns) == std::tie(o.dev, o.ino, o.size, o.mtime_ns);
}

FileStamp StampOf(const std::string& path) {
  struct stat st;
  FileStamp s;
  if (::stat(path.c_str(), &st) != 0) return s;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  return s;
}

WatchedFile::WatchedFile(std::string path, std::string what, absl::Duration check_every,
                         Validate validate)
    : path_(std::move(path)),
      what_(std::move(what)),
      check_every_(check_every),
      validate_(std::move(validate)) {}

absl::StatusOr<std::string> WatchedFile::ReadValid() const {
  absl::StatusOr<std::string> content = ReadFileToString(path_, what_);
  if (!content.ok()) return content.status();
  if (validate_) {
    if (absl::Status s = validate_(*content); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(what_, " ", path_, ": ", s.message()));
    }
  }
  return content;
}

absl::Status WatchedFile::Load() {
  const FileStamp stamp = StampOf(path_);
  absl::StatusOr<std::string> content = ReadValid();
  if (!content.ok()) return content.status();
  std::lock_guard<std::mutex> lock(mu_);
  content_ = *std::move(content);
  stamp_ = stamp;
  last_check_ = absl::Now();
  return absl::OkStatus();
}

std::string WatchedFile::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = absl::Now();
  if (now - last_check_ < check_every_) return content_;
  last_check_ = now;
  const FileStamp stamp = StampOf(path_);
  if (stamp == stamp_) return content_;
  stamp_ = stamp;  // tried once per version
  absl::StatusOr<std::string> content = ReadValid();
  if (!content.ok()) {
    ZS_LOG(kWarning, "file changed but cannot be used; keeping the previous version",
           {"error", std::string(content.status().message())});
    return content_;
  }
  content_ = *std::move(content);
  ZS_LOG(kInfo, "file reloaded", {"what", what_}, {"path", path_});
  return content_;
}

}  // namespace zeroscale
