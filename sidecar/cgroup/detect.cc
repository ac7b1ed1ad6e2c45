#include "sidecar/cgroup/detect.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/cgroup/parse.h"

namespace zeroscale::sidecar {
namespace {

using internal::CgroupMembership;
using internal::CgroupMount;

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Start-up only, so an owning string is fine here.
std::optional<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string StripTrailingSlash(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

std::string Join(absl::string_view base, absl::string_view rel) {
  if (rel.empty() || rel == "/") return std::string(base);
  if (base == "/") return std::string(rel);
  return absl::StrCat(base, rel);
}

absl::string_view Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

bool HasController(const std::vector<std::string>& list, absl::string_view controller) {
  for (const std::string& c : list) {
    if (c == controller) return true;
  }
  return false;
}

// The process's cgroup `path` relative to the mounted `mount_root`, or nullopt when it
// lies outside the mount (a cgroup namespace shows such paths as "/..").
std::optional<std::string> RelativeToMount(const std::string& path, const std::string& mount_root) {
  if (path.empty() || path[0] != '/' || absl::StrContains(path, "/..")) return std::nullopt;
  if (mount_root.empty() || mount_root == "/") return path;
  if (path == mount_root) return std::string("/");
  if (absl::StartsWith(path, mount_root) && path[mount_root.size()] == '/') {
    return path.substr(mount_root.size());
  }
  return std::nullopt;
}

// `base` + the process's cgroup path inside it, or `base` when that does not exist.
std::string ResolveOwnCgroup(const std::string& base, const CgroupMembership* membership,
                             const CgroupMount* mount) {
  if (membership == nullptr) return base;
  std::optional<std::string> rel =
      RelativeToMount(membership->path, mount != nullptr ? mount->root : std::string("/"));
  if (!rel) return base;
  std::string candidate = Join(base, *rel);
  return IsDir(candidate) ? candidate : base;
}

const CgroupMount* FindMount(const std::vector<CgroupMount>& mounts, bool v2,
                             absl::string_view controller, const std::string& expected_dir) {
  const CgroupMount* first = nullptr;
  for (const CgroupMount& m : mounts) {
    if (m.v2 != v2 || (!v2 && !HasController(m.controllers, controller))) continue;
    if (m.mount_point == expected_dir) return &m;
    if (first == nullptr) first = &m;
  }
  return first;
}

const CgroupMembership* FindMembership(const std::vector<CgroupMembership>& entries, bool v2,
                                       absl::string_view controller) {
  for (const CgroupMembership& e : entries) {
    if (v2 ? e.v2 : HasController(e.controllers, controller)) return &e;
  }
  return nullptr;
}

// The v1 controller's directory under the root ("" when not mounted): the name the
// mount uses ("cpu,cpuacct" on most distributions), else the controller's own name.
std::string FindV1ControllerDir(const std::string& root, absl::string_view controller,
                                const std::vector<CgroupMount>& mounts) {
  std::vector<std::string> candidates;
  for (const CgroupMount& m : mounts) {
    if (!m.v2 && HasController(m.controllers, controller)) {
      candidates.emplace_back(Basename(m.mount_point));
    }
  }
  candidates.emplace_back(controller);
  if (controller == "cpu" || controller == "cpuacct") {
    candidates.emplace_back("cpu,cpuacct");
    candidates.emplace_back("cpuacct,cpu");
  }
  for (const std::string& name : candidates) {
    std::string dir = Join(root, absl::StrCat("/", name));
    if (!name.empty() && IsDir(dir)) return dir;
  }
  return "";
}

}  // namespace

absl::string_view CgroupVersionName(CgroupVersion version) {
  switch (version) {
    case CgroupVersion::kV2:
      return "cgroup2";
    case CgroupVersion::kV1:
      return "cgroup1";
    case CgroupVersion::kNone:
      break;
  }
  return "none";
}

absl::StatusOr<CgroupLayout> DetectCgroupLayout(absl::string_view cgroup_root_in,
                                                absl::string_view proc_root_in) {
  CgroupLayout layout;
  if (cgroup_root_in.empty()) return layout;
  const std::string root = StripTrailingSlash(cgroup_root_in);
  const std::string proc_root = StripTrailingSlash(proc_root_in);
  if (!IsDir(root)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cgroup root ", root,
                     " does not exist or is not a directory (set --cgroup-root to the cgroup "
                     "mount, or to an empty value to read /proc only)"));
  }
  // Unreadable /proc files leave the root itself as the process's cgroup, which is what
  // a container with a private cgroup namespace sees anyway.
  std::vector<CgroupMount> mounts =
      internal::ParseCgroupMounts(ReadWholeFile(proc_root + "/self/mountinfo").value_or(""));
  std::vector<CgroupMembership> memberships =
      internal::ParseProcSelfCgroup(ReadWholeFile(proc_root + "/self/cgroup").value_or(""));

  if (Exists(root + "/cgroup.controllers")) {
    layout.version = CgroupVersion::kV2;
    std::string dir = ResolveOwnCgroup(root, FindMembership(memberships, true, ""),
                                       FindMount(mounts, true, "", root));
    layout.cpu_dir = layout.cpuacct_dir = layout.memory_dir = layout.io_dir = dir;
    return layout;
  }

  auto v1_dir = [&](absl::string_view controller) -> std::string {
    std::string base = FindV1ControllerDir(root, controller, mounts);
    if (base.empty()) return base;
    return ResolveOwnCgroup(base, FindMembership(memberships, false, controller),
                            FindMount(mounts, false, controller, base));
  };
  layout.cpu_dir = v1_dir("cpu");
  layout.cpuacct_dir = v1_dir("cpuacct");
  layout.memory_dir = v1_dir("memory");
  layout.io_dir = v1_dir("blkio");
  if (!layout.cpuacct_dir.empty() || !layout.memory_dir.empty()) {
    layout.version = CgroupVersion::kV1;
  } else {
    layout = CgroupLayout{};
  }
  return layout;
}

}  // namespace zeroscale::sidecar
