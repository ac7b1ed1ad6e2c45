#include "sidecar/cgroup/process_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/log/log.h"
#include "sidecar/cgroup/parse.h"
#include "sidecar/cgroup/read_file.h"

namespace zeroscale::sidecar {
namespace {

// /proc/<pid>/status is about 1.5 KiB; stat and io are smaller.
constexpr size_t kBufferSize = 16 * 1024;
// About 700 /proc entries per getdents call; more take more calls, not more memory.
constexpr size_t kDirentsSize = 32 * 1024;

// The pid a /proc entry stands for, or 0 for the other entries (self, meminfo, ...).
int PidOf(const char* name) {
  int pid = 0;
  for (const char* c = name; *c != '\0'; ++c) {
    if (*c < '0' || *c > '9' || pid > 100000000) return 0;
    pid = pid * 10 + (*c - '0');
  }
  return pid;
}

// "<pid>/<file>" into `out`, which holds any pid and file name used here.
const char* PidPath(char (&out)[48], int pid, const char* file) {
  std::snprintf(out, sizeof(out), "%d/%s", pid, file);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProcessScanner>> ProcessScanner::Create(const std::string& proc_root,
                                                                       int self_pid) {
  const int fd = ::open(proc_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list ", proc_root, " to measure processes: ", std::strerror(errno)));
  }
  char buffer[64];
  if (self_pid == 0) {
    // The pid of this process as that /proc numbers it, which differs from getpid() when
    // the /proc belongs to another pid namespace.
    const ssize_t n = ::readlinkat(fd, "self", buffer, sizeof(buffer) - 1);
    if (n <= 0 || !absl::SimpleAtoi(absl::string_view(buffer, n), &self_pid)) {
      self_pid = static_cast<int>(::getpid());
    }
  }
  std::optional<absl::string_view> comm =
      internal::ReadFileAt(fd, "1/comm", buffer, sizeof(buffer));
  const bool pause = comm && (*comm == "pause\n" || *comm == "pause");
  return std::unique_ptr<ProcessScanner>(new ProcessScanner(proc_root, fd, self_pid, pause));
}

ProcessScanner::ProcessScanner(std::string proc_root, int dir_fd, int self_pid, bool skip_pid1)
    : proc_root_(std::move(proc_root)),
      dir_fd_(dir_fd),
      self_pid_(self_pid),
      skip_pid1_(skip_pid1),
      dirents_(new char[kDirentsSize]),
      buffer_(new char[kBufferSize]) {
  ZS_LOG(kInfo, "measuring processes", {"proc", proc_root_}, {"self_pid", absl::StrCat(self_pid)},
         {"pid1", skip_pid1 ? "pause (left out)" : "measured"});
}

ProcessScanner::~ProcessScanner() { ::close(dir_fd_); }

const ProcessScanner::Process* ProcessScanner::Previous(int pid) const {
  auto it = std::lower_bound(last_.begin(), last_.end(), pid,
                             [](const Process& p, int pid) { return p.pid < pid; });
  return it != last_.end() && it->pid == pid ? &*it : nullptr;
}

void ProcessScanner::MeasureProcess(int pid) {
  char path[48];
  std::optional<absl::string_view> text =
      internal::ReadFileAt(dir_fd_, PidPath(path, pid, "stat"), buffer_.get(), kBufferSize);
  std::optional<internal::ProcStatTimes> stat =
      text ? internal::ParseProcStat(*text) : std::nullopt;
  if (!stat) return;  // it exited since the directory was listed
  Process now;
  now.pid = pid;
  now.start_time = stat->start_time;
  now.cpu_ticks = stat->own_ticks;
  // Reaped children's time (cutime) is left out: the children were measured as
  // processes of their own while they ran.
  const Process* before = Previous(pid);
  if (before != nullptr && before->start_time != now.start_time) before = nullptr;  // reused
  if (before != nullptr && now.cpu_ticks > before->cpu_ticks) {
    totals_.cpu_ticks += now.cpu_ticks - before->cpu_ticks;
  }

  if ((text = internal::ReadFileAt(dir_fd_, PidPath(path, pid, "status"), buffer_.get(),
                                   kBufferSize))) {
    const uint64_t kb = internal::FindKeyedValue(*text, "RssAnon:").value_or(0) +
                        internal::FindKeyedValue(*text, "RssShmem:").value_or(0);
    totals_.memory_bytes += kb * 1024;
  }

  // An io file that was unreadable stays so for the process's life (its owner and
  // dumpability do not change in practice): not retried, which saves a failing open per
  // process per sample when the app runs as another user.
  if (before == nullptr || before->io_readable) {
    if ((text =
             internal::ReadFileAt(dir_fd_, PidPath(path, pid, "io"), buffer_.get(), kBufferSize))) {
      std::optional<uint64_t> r = internal::FindKeyedValue(*text, "read_bytes:");
      std::optional<uint64_t> w = internal::FindKeyedValue(*text, "write_bytes:");
      if (r && w) {
        now.io_readable = true;
        now.read_bytes = *r;
        now.write_bytes = *w;
      }
    }
  }
  if (now.io_readable) {
    totals_.io_known = true;
    if (before != nullptr && before->io_readable) {
      if (now.read_bytes > before->read_bytes) {
        totals_.read_bytes += now.read_bytes - before->read_bytes;
      }
      if (now.write_bytes > before->write_bytes) {
        totals_.write_bytes += now.write_bytes - before->write_bytes;
      }
    }
  } else if (!io_denied_logged_) {
    io_denied_logged_ = true;
    ZS_LOG(kInfo, "a process's I/O counters cannot be read; disk rates leave it out",
           {"file", absl::StrCat(proc_root_, "/", pid, "/io")},
           {"why", "reading another user's /proc/<pid>/io needs ptrace access"});
  }
  ++totals_.processes;
  next_.push_back(now);
}

void ProcessScanner::Pids(std::vector<int>* out) const {
  out->clear();
  for (const Process& p : last_) out->push_back(p.pid);
}

std::optional<ProcessTotals> ProcessScanner::Scan() {
  if (::lseek(dir_fd_, 0, SEEK_SET) < 0) return std::nullopt;
  next_.clear();
  totals_.memory_bytes = 0;
  totals_.io_known = false;
  totals_.processes = 0;
  for (;;) {
    const ssize_t n = ::getdents64(dir_fd_, dirents_.get(), kDirentsSize);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    for (ssize_t offset = 0; offset < n;) {
      const auto* entry = reinterpret_cast<const struct dirent64*>(dirents_.get() + offset);
      offset += entry->d_reclen;
      const int pid = PidOf(entry->d_name);
      if (pid == 0 || pid == self_pid_ || (pid == 1 && skip_pid1_)) continue;
      MeasureProcess(pid);
    }
  }
  // /proc lists pids in order; other trees (test fixtures) may not.
  auto by_pid = [](const Process& a, const Process& b) { return a.pid < b.pid; };
  if (!std::is_sorted(next_.begin(), next_.end(), by_pid)) {
    std::sort(next_.begin(), next_.end(), by_pid);
  }
  last_.swap(next_);
  return totals_;
}

}  // namespace zeroscale::sidecar
