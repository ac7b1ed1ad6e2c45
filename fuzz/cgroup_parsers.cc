// The sidecar's readers of cgroup v1/v2 and /proc files: every parser takes any bytes
// without crashing (a file may be cut short, or a kernel may change its format).
#include <cstdint>

#include "sidecar/cgroup/parse.h"

namespace internal = zeroscale::sidecar::internal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 12) {
    case 0:
      (void)internal::ParseUint(text);
      break;
    case 1:
      (void)internal::FindKeyedValue(text, "RssAnon:");
      break;
    case 2:
      (void)internal::ParseCpuMaxCores(text);
      break;
    case 3: {
      const size_t half = text.size() / 2;
      (void)internal::ParseCfsQuotaCores(text.substr(0, half), text.substr(half));
      break;
    }
    case 4:
      (void)internal::ParseMemoryLimit(text);
      break;
    case 5:
      (void)internal::SumIoStat(text);
      break;
    case 6:
      (void)internal::SumBlkioServiceBytes(text);
      break;
    case 7:
      (void)internal::ParseProcStat(text);
      break;
    case 8:
      (void)internal::ParseProcStatCpuTicks(text);
      break;
    case 9:
      (void)internal::ParseStatmResidentPages(text);
      break;
    case 10:
      (void)internal::ParseCgroupMounts(text);
      break;
    default:
      (void)internal::ParseProcSelfCgroup(text);
      break;
  }
  return 0;
}
