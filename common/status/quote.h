// Quoting untrusted input inside error messages and logs: an error must name what is
// wrong without echoing a megabyte that a client sent (or a control character that
// breaks a log line). Pure functions; thread-safe.
#ifndef ZEROSCALE_COMMON_STATUS_QUOTE_H_
#define ZEROSCALE_COMMON_STATUS_QUOTE_H_

#include <cstddef>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace zeroscale {

// Enough to recognise a value in an error, short enough for any log line.
inline constexpr size_t kQuoteMaxBytes = 64;

namespace quote_internal {
// Appends `shown` with control characters escaped C-style, and '"' and '\' when `quoted`.
inline void AppendEscaped(std::string* out, absl::string_view shown, bool quoted) {
  static const char kHex[] = "0123456789abcdef";
  for (const char c : shown) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (quoted && (c == '"' || c == '\\')) {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      out->append("\\x");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 0xf]);
    } else {
      out->push_back(c);
    }
  }
}
inline void AppendCut(std::string* out, absl::string_view value, size_t max) {
  if (value.size() > max) absl::StrAppend(out, "... (", value.size(), " bytes)");
}
}  // namespace quote_internal

// `value` with control characters escaped; input longer than `max` bytes is cut there
// and followed by `... (N bytes)` so the reader knows. For messages of other parsers
// that may quote the input.
inline std::string Shorten(absl::string_view value, size_t max = kQuoteMaxBytes) {
  std::string out;
  quote_internal::AppendEscaped(&out, value.substr(0, max), /*quoted=*/false);
  quote_internal::AppendCut(&out, value, max);
  return out;
}

// `"value"` for an error message, cut as Shorten() does (`"abc"... (N bytes)`), with '"'
// and '\' escaped too.
inline std::string Quote(absl::string_view value, size_t max = kQuoteMaxBytes) {
  std::string out = "\"";
  quote_internal::AppendEscaped(&out, value.substr(0, max), /*quoted=*/true);
  out.push_back('"');
  quote_internal::AppendCut(&out, value, max);
  return out;
}

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_STATUS_QUOTE_H_
