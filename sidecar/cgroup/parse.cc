#include "sidecar/cgroup/parse.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace zeroscale::sidecar::internal {
namespace {

// Calls `fn(line)` for each line without copying; stops early when fn returns false.
template <typename Fn>
void ForEachLine(absl::string_view text, Fn fn) {
  while (!text.empty()) {
    size_t end = text.find('\n');
    absl::string_view line = text.substr(0, end);
    if (!fn(line)) return;
    if (end == absl::string_view::npos) return;
    text.remove_prefix(end + 1);
  }
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// Splits off the next whitespace-separated token of `*rest`; empty when none is left.
absl::string_view NextToken(absl::string_view* rest) {
  size_t i = 0;
  while (i < rest->size() && IsSpace((*rest)[i])) ++i;
  size_t j = i;
  while (j < rest->size() && !IsSpace((*rest)[j])) ++j;
  absl::string_view token = rest->substr(i, j - i);
  rest->remove_prefix(j);
  return token;
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo octal.
std::string UnescapeMountPath(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 3 < in.size() && in[i + 1] >= '0' && in[i + 1] <= '3' &&
        in[i + 2] >= '0' && in[i + 2] <= '7' && in[i + 3] >= '0' && in[i + 3] <= '7') {
      out.push_back(
          static_cast<char>((in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 + (in[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

}  // namespace

std::optional<uint64_t> ParseUint(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text.empty() || text[0] == '-' || text[0] == '+') return std::nullopt;
  uint64_t value;
  if (!absl::SimpleAtoi(text, &value)) return std::nullopt;
  return value;
}

std::optional<uint64_t> FindKeyedValue(absl::string_view text, absl::string_view key) {
  std::optional<uint64_t> result;
  ForEachLine(text, [&](absl::string_view line) {
    if (line.size() > key.size() && IsSpace(line[key.size()]) && absl::StartsWith(line, key)) {
      line.remove_prefix(key.size());
      result = ParseUint(NextToken(&line));
      return false;
    }
    return true;
  });
  return result;
}

std::optional<double> ParseCpuMaxCores(absl::string_view text) {
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  absl::string_view quota = NextToken(&rest);
  absl::string_view period_text = NextToken(&rest);
  if (quota.empty()) return std::nullopt;
  if (quota == "max") return 0.0;
  std::optional<uint64_t> q = ParseUint(quota);
  // The kernel always prints the period, but it defaults to 100 ms when written alone.
  std::optional<uint64_t> p = period_text.empty() ? 100000 : ParseUint(period_text);
  if (!q || !p || *p == 0) return std::nullopt;
  return static_cast<double>(*q) / static_cast<double>(*p);
}

std::optional<double> ParseCfsQuotaCores(absl::string_view quota, absl::string_view period) {
  int64_t q;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(quota), &q)) return std::nullopt;
  if (q <= 0) return 0.0;  // -1: no limit
  std::optional<uint64_t> p = ParseUint(period);
  if (!p || *p == 0) return std::nullopt;
  return static_cast<double>(q) / static_cast<double>(*p);
}

std::optional<uint64_t> ParseMemoryLimit(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text == "max") return 0;
  std::optional<uint64_t> v = ParseUint(text);
  if (!v) return std::nullopt;
  if (*v >= kUnlimitedBytes) return 0;
  return v;
}

std::optional<IoBytes> SumIoStat(absl::string_view text) {
  IoBytes sum;
  bool ok = true;
  ForEachLine(text, [&](absl::string_view line) {
    absl::string_view rest = line;
    if (NextToken(&rest).empty()) return true;  // blank line
    for (absl::string_view kv = NextToken(&rest); !kv.empty(); kv = NextToken(&rest)) {
      uint64_t* target = nullptr;
      if (absl::StartsWith(kv, "rbytes=")) {
        target = &sum.read;
      } else if (absl::StartsWith(kv, "wbytes=")) {
        target = &sum.write;
      } else {
        continue;
      }
      std::optional<uint64_t> v = ParseUint(kv.substr(7));
      if (!v) {
        ok = false;
        return false;
      }
      *target += *v;
    }
    return true;
  });
  if (!ok) return std::nullopt;
  return sum;
}

std::optional<IoBytes> SumBlkioServiceBytes(absl::string_view text) {
  IoBytes sum;
  bool ok = true;
  ForEachLine(text, [&](absl::string_view line) {
    absl::string_view rest = line;
    absl::string_view device = NextToken(&rest);
    absl::string_view op = NextToken(&rest);
    absl::string_view value = NextToken(&rest);
    // "Total N" (the grand total line) has no device; per-device "Total" lines would
    // double count Read + Write.
    if (device.empty() || value.empty()) return true;
    uint64_t* target = op == "Read" ? &sum.read : op == "Write" ? &sum.write : nullptr;
    if (target == nullptr) return true;
    std::optional<uint64_t> v = ParseUint(value);
    if (!v) {
      ok = false;
      return false;
    }
    *target += *v;
    return true;
  });
  if (!ok) return std::nullopt;
  return sum;
}

std::optional<ProcStatTimes> ParseProcStat(absl::string_view text) {
  size_t paren = text.rfind(')');
  if (paren == absl::string_view::npos) return std::nullopt;
  absl::string_view rest = text.substr(paren + 1);
  // Tokens after ')' start at field 3 (state); utime..cstime are fields 14..17 and
  // starttime is field 22.
  ProcStatTimes times;
  for (int field = 3; field <= 22; ++field) {
    absl::string_view token = NextToken(&rest);
    // Every kernel prints all 52 fields; a line cut after the CPU times still has them.
    if (token.empty()) return field > 17 ? std::optional<ProcStatTimes>(times) : std::nullopt;
    if (field < 14 || (field > 17 && field < 22)) continue;
    int64_t v;
    if (!absl::SimpleAtoi(token, &v)) return std::nullopt;
    const uint64_t ticks = v > 0 ? static_cast<uint64_t>(v) : 0;
    if (field <= 15) {
      times.own_ticks += ticks;
    } else if (field <= 17) {
      times.children_ticks += ticks;
    } else {
      times.start_time = ticks;
    }
  }
  return times;
}

std::optional<uint64_t> ParseProcStatCpuTicks(absl::string_view text) {
  std::optional<ProcStatTimes> times = ParseProcStat(text);
  if (!times) return std::nullopt;
  return times->own_ticks + times->children_ticks;
}

std::optional<uint64_t> ParseStatmResidentPages(absl::string_view text) {
  absl::string_view rest = text;
  if (NextToken(&rest).empty()) return std::nullopt;
  return ParseUint(NextToken(&rest));
}

std::vector<CgroupMount> ParseCgroupMounts(absl::string_view mountinfo) {
  std::vector<CgroupMount> mounts;
  ForEachLine(mountinfo, [&](absl::string_view line) {
    // "id parent maj:min root mount-point options [optional...] - fstype source super".
    size_t sep = line.find(" - ");
    if (sep == absl::string_view::npos) return true;
    absl::string_view head = line.substr(0, sep);
    absl::string_view tail = line.substr(sep + 3);
    absl::string_view fstype = NextToken(&tail);
    if (fstype != "cgroup" && fstype != "cgroup2") return true;
    NextToken(&tail);  // source
    absl::string_view super_options = NextToken(&tail);
    for (int i = 0; i < 3; ++i) NextToken(&head);  // id, parent, maj:min
    absl::string_view root = NextToken(&head);
    absl::string_view mount_point = NextToken(&head);
    if (root.empty() || mount_point.empty()) return true;
    CgroupMount mount;
    mount.v2 = fstype == "cgroup2";
    mount.root = UnescapeMountPath(root);
    mount.mount_point = UnescapeMountPath(mount_point);
    if (!mount.v2) {
      for (absl::string_view opt : absl::StrSplit(super_options, ',')) {
        if (opt == "rw" || opt == "ro" || opt.empty()) continue;
        mount.controllers.emplace_back(opt);
      }
    }
    mounts.push_back(std::move(mount));
    return true;
  });
  return mounts;
}

std::vector<CgroupMembership> ParseProcSelfCgroup(absl::string_view text) {
  std::vector<CgroupMembership> entries;
  ForEachLine(text, [&](absl::string_view line) {
    size_t first = line.find(':');
    if (first == absl::string_view::npos) return true;
    size_t second = line.find(':', first + 1);
    if (second == absl::string_view::npos) return true;
    absl::string_view id = line.substr(0, first);
    absl::string_view controllers = line.substr(first + 1, second - first - 1);
    CgroupMembership entry;
    entry.path = std::string(line.substr(second + 1));
    entry.v2 = id == "0" && controllers.empty();
    if (!entry.v2) {
      for (absl::string_view c : absl::StrSplit(controllers, ',', absl::SkipEmpty())) {
        entry.controllers.emplace_back(c);
      }
    }
    entries.push_back(std::move(entry));
    return true;
  });
  return entries;
}

}  // namespace zeroscale::sidecar::internal
