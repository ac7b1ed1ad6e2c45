#include "common/model/quantity.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace zeroscale {
namespace {

using int128 = __int128;

constexpr int kMaxDigits = 18;
constexpr int kMaxExponent = 30;
constexpr size_t kMaxText = 64;

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("'", text.substr(0, kMaxText), "' is not a quantity: ", why));
}

}  // namespace

absl::StatusOr<int64_t> ParseQuantityMilli(absl::string_view text) {
  if (text.empty()) return Bad(text, "empty");
  if (text.size() > kMaxText) return Bad(text, "too long");
  size_t i = 0;
  if (text[i] == '+') {
    ++i;
  } else if (text[i] == '-') {
    return Bad(text, "must not be negative");
  }
  // The number: digits, an optional point, digits; kept as an integer `digits` times
  // 10^exp10.
  int128 digits = 0;
  int significant = 0;
  int exp10 = 0;
  bool any_digit = false, point = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.') {
      if (point) return Bad(text, "two decimal points");
      point = true;
      continue;
    }
    if (!absl::ascii_isdigit(c)) break;
    any_digit = true;
    if (digits == 0 && c == '0') {
      if (point) --exp10;  // a leading zero after the point: 0.05
      continue;
    }
    if (++significant > kMaxDigits) return Bad(text, "too many digits");
    digits = digits * 10 + (c - '0');
    if (point) --exp10;
  }
  if (!any_digit) return Bad(text, "no digits");
  // The suffix: binary SI, decimal SI or a decimal exponent.
  const absl::string_view suffix = text.substr(i);
  int exp2 = 0;
  if (suffix.empty()) {
  } else if (suffix == "Ki" || suffix == "Mi" || suffix == "Gi" || suffix == "Ti" ||
             suffix == "Pi" || suffix == "Ei") {
    static constexpr char kBinary[] = "KMGTPE";
    exp2 = 10 * static_cast<int>(1 + absl::string_view(kBinary).find(suffix[0]));
  } else if (suffix == "n") {
    exp10 -= 9;
  } else if (suffix == "u") {
    exp10 -= 6;
  } else if (suffix == "m") {
    exp10 -= 3;
  } else if (suffix == "k") {
    exp10 += 3;
  } else if (suffix == "M") {
    exp10 += 6;
  } else if (suffix == "G") {
    exp10 += 9;
  } else if (suffix == "T") {
    exp10 += 12;
  } else if (suffix == "P") {
    exp10 += 15;
  } else if (suffix == "E") {
    exp10 += 18;
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    absl::string_view e = suffix.substr(1);
    bool negative = false;
    if (!e.empty() && (e[0] == '+' || e[0] == '-')) {
      negative = e[0] == '-';
      e.remove_prefix(1);
    }
    if (e.empty() || e.size() > 3 || !std::all_of(e.begin(), e.end(), absl::ascii_isdigit)) {
      return Bad(text, "the exponent must be an integer");
    }
    int exponent = 0;
    for (char c : e) exponent = exponent * 10 + (c - '0');
    if (exponent > kMaxExponent) return Bad(text, "exponent out of range");
    exp10 += negative ? -exponent : exponent;
  } else {
    return Bad(text, absl::StrCat("unknown suffix '", suffix.substr(0, 8),
                                  "' (use n, u, m, k, M, G, T, P, E, Ki..Ei or e<n>)"));
  }
  exp10 += 3;  // milli-units
  // digits < 10^18 < 2^60, so times 2^60 stays below 2^120.
  int128 value = digits << exp2;
  const int128 limit = kMaxQuantityMilli;
  auto too_large = [&] {
    return Bad(text, absl::StrCat("too large (at most ", kMaxQuantityMilli / 1000, " units)"));
  };
  for (; exp10 > 0; --exp10) {
    value *= 10;
    if (value > limit) return too_large();
  }
  if (exp10 < 0) {
    int128 divisor = 1;
    // A divisor beyond the value rounds any non-zero value up to 1 milli-unit.
    for (; exp10 < 0 && divisor <= value; ++exp10) divisor *= 10;
    value = exp10 < 0 ? (value > 0 ? 1 : 0) : (value + divisor - 1) / divisor;
  }
  if (value > limit) return too_large();
  return static_cast<int64_t>(value);
}

std::string FormatQuantityMilli(absl::string_view resource, int64_t milli) {
  if (milli % 1000 != 0) {
    if (milli < 1000) return absl::StrCat(milli, "m");
    std::string s = absl::StrCat(milli / 1000, ".", absl::StrFormat("%03d", milli % 1000));
    while (s.back() == '0') s.pop_back();
    return s;
  }
  int64_t units = milli / 1000;
  if (resource == "memory" || absl::StartsWith(resource, "hugepages-") ||
      resource == "ephemeral-storage") {
    static constexpr const char* kSuffix[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    int k = 0;
    while (units != 0 && units % 1024 == 0 && k < 6) {
      units /= 1024;
      ++k;
    }
    return absl::StrCat(units, kSuffix[k]);
  }
  return absl::StrCat(units);
}

bool IsExtendedResource(absl::string_view name) {
  const size_t slash = name.find('/');
  if (slash == absl::string_view::npos || slash == 0 || slash + 1 >= name.size()) return false;
  const absl::string_view domain = name.substr(0, slash);
  return domain != "kubernetes.io" && !absl::EndsWith(domain, ".kubernetes.io") &&
         domain != "requests";
}

}  // namespace zeroscale
