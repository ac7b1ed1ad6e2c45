#include "common/prom/text_parser.h"

#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/charconv.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace zeroscale::prom {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsNameStart(char c) { return absl::ascii_isalpha(c) || c == '_' || c == ':'; }
bool IsNameChar(char c) { return IsNameStart(c) || absl::ascii_isdigit(c); }
bool IsLabelStart(char c) { return absl::ascii_isalpha(c) || c == '_'; }
bool IsLabelChar(char c) { return IsLabelStart(c) || absl::ascii_isdigit(c); }

// Shown in messages: bounded, with control characters escaped.
std::string Quote(absl::string_view s) {
  constexpr size_t kMax = 40;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > kMax) out += "...";
  return out + "\"";
}

// Go's strconv.ParseFloat as Prometheus uses it, for decimal text: an optional sign, then
// digits with an optional fraction and exponent, or Inf/Infinity/NaN in any case.
bool ParseValue(absl::string_view token, double* out) {
  if (token.empty()) return false;
  bool negative = false;
  if (token[0] == '+' || token[0] == '-') {
    negative = token[0] == '-';
    token.remove_prefix(1);
  }
  if (token.empty() || token[0] == '+' || token[0] == '-') return false;
  if (absl::EqualsIgnoreCase(token, "inf") || absl::EqualsIgnoreCase(token, "infinity")) {
    *out = negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
    return true;
  }
  if (absl::EqualsIgnoreCase(token, "nan")) {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  // from_chars would take "nan(...)" and hex digits with the hex format only; keep to
  // plain decimals.
  for (char c : token) {
    if (!absl::ascii_isdigit(c) && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-') {
      return false;
    }
  }
  double v = 0;
  const absl::from_chars_result r = absl::from_chars(token.data(), token.data() + token.size(), v);
  if (r.ptr != token.data() + token.size()) return false;
  if (r.ec == std::errc::result_out_of_range) {
    // Overflow (1e999) is +Inf and underflow (1e-999) 0, as Go parses them.
    v = std::fabs(v) >= 1 ? std::numeric_limits<double>::infinity() : 0;
  } else if (r.ec != std::errc()) {
    return false;
  }
  *out = negative ? -v : v;
  return true;
}

class LineParser {
 public:
  LineParser(absl::string_view line, size_t line_no, const ParseLimits& limits)
      : s_(line), line_no_(line_no), limits_(limits) {}

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("line ", line_no_, ": ", what));
  }

  void SkipBlanks() {
    while (pos_ < s_.size() && IsBlank(s_[pos_])) ++pos_;
  }
  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[pos_]; }

  // The run of characters up to the next blank.
  absl::string_view Token() {
    const size_t start = pos_;
    while (pos_ < s_.size() && !IsBlank(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }

  absl::string_view MetricName() {
    const size_t start = pos_;
    if (pos_ < s_.size() && IsNameStart(s_[pos_])) {
      ++pos_;
      while (pos_ < s_.size() && IsNameChar(s_[pos_])) ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }

  absl::Status Comment(const std::function<void(Metadata&&)>& on_metadata, size_t* metadata) {
    ++pos_;  // '#'
    SkipBlanks();
    const absl::string_view keyword = Token();
    if (keyword != "HELP" && keyword != "TYPE") return absl::OkStatus();  // a plain comment
    if (AtEnd()) return absl::OkStatus();  // "# HELP" alone: a comment, as Prometheus reads it
    SkipBlanks();
    Metadata md;
    md.kind = keyword == "HELP" ? Metadata::Kind::kHelp : Metadata::Kind::kType;
    const absl::string_view name = MetricName();
    if (name.empty() || (!AtEnd() && !IsBlank(Peek()))) {
      return Error(absl::StrCat("# ", keyword, ": invalid metric name ", Quote(Token())));
    }
    if (++*metadata > limits_.max_metadata) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "line ", line_no_, ": more than ", limits_.max_metadata, " # HELP and # TYPE lines"));
    }
    md.name = std::string(name);
    if (md.kind == Metadata::Kind::kType) {
      SkipBlanks();
      const absl::string_view type = Token();
      SkipBlanks();
      if (!AtEnd()) return Error(absl::StrCat("# TYPE ", name, ": text after the type"));
      if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
          type != "untyped") {
        return Error(absl::StrCat("# TYPE ", name, ": unknown type ", Quote(type)));
      }
      md.text = std::string(type);
    } else {
      SkipBlanks();
      // Help text escapes \\ and \n; any other backslash stays as written.
      for (; pos_ < s_.size(); ++pos_) {
        const char c = s_[pos_];
        if (c == '\\' && pos_ + 1 < s_.size() && (s_[pos_ + 1] == '\\' || s_[pos_ + 1] == 'n')) {
          md.text.push_back(s_[pos_ + 1] == 'n' ? '\n' : '\\');
          ++pos_;
        } else {
          md.text.push_back(c);
        }
      }
    }
    if (on_metadata) on_metadata(std::move(md));
    return absl::OkStatus();
  }

  absl::Status SampleLine(Sample* out) {
    const absl::string_view name = MetricName();
    if (name.empty()) return Error(absl::StrCat("invalid metric name at ", Quote(s_.substr(pos_))));
    out->name = std::string(name);
    if (Peek() == '{') {
      ++pos_;
      if (absl::Status st = Labels(out); !st.ok()) return st;
    } else if (!AtEnd() && !IsBlank(Peek())) {
      return Error(
          absl::StrCat(name, ": unexpected ", Quote(s_.substr(pos_, 1)), " after the metric name"));
    }
    SkipBlanks();
    const absl::string_view value = Token();
    if (value.empty()) return Error(absl::StrCat(name, ": no value"));
    if (!ParseValue(value, &out->value)) {
      return Error(absl::StrCat(name, ": invalid value ", Quote(value)));
    }
    SkipBlanks();
    if (!AtEnd()) {
      const absl::string_view ts = Token();
      int64_t t = 0;
      if (!absl::SimpleAtoi(ts, &t) || ts[0] == '+') {
        return Error(absl::StrCat(name, ": invalid timestamp ", Quote(ts)));
      }
      out->timestamp_ms = t;
      SkipBlanks();
      if (!AtEnd()) {
        return Error(absl::StrCat(name, ": text after the timestamp: ", Quote(s_.substr(pos_))));
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Labels(Sample* out) {
    for (;;) {
      SkipBlanks();
      if (Peek() == '}') {
        ++pos_;
        return absl::OkStatus();
      }
      const size_t start = pos_;
      if (!AtEnd() && IsLabelStart(Peek())) {
        ++pos_;
        while (!AtEnd() && IsLabelChar(Peek())) ++pos_;
      }
      const absl::string_view label = s_.substr(start, pos_ - start);
      if (label.empty()) {
        return Error(absl::StrCat(out->name, ": invalid label name at ", Quote(s_.substr(pos_))));
      }
      if (out->labels.size() >= limits_.max_labels) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "line ", line_no_, ": ", out->name, ": more than ", limits_.max_labels, " labels"));
      }
      for (const auto& [n, v] : out->labels) {
        if (n == label) return Error(absl::StrCat(out->name, ": label ", label, " repeated"));
      }
      SkipBlanks();
      if (Peek() != '=') return Error(absl::StrCat(out->name, ": label ", label, ": no '='"));
      ++pos_;
      SkipBlanks();
      if (Peek() != '"') {
        return Error(absl::StrCat(out->name, ": label ", label, ": value not quoted"));
      }
      ++pos_;
      std::string value;
      bool closed = false;
      while (!AtEnd()) {
        const char c = s_[pos_++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c != '\\') {
          value.push_back(c);
          continue;
        }
        const char e = Peek();
        if (e == '\\' || e == '"') {
          value.push_back(e);
        } else if (e == 'n') {
          value.push_back('\n');
        } else {
          return Error(absl::StrCat(out->name, ": label ", label, ": invalid escape ",
                                    Quote(s_.substr(pos_ - 1, 2))));
        }
        ++pos_;
      }
      if (!closed) {
        return Error(absl::StrCat(out->name, ": label ", label, ": unterminated value"));
      }
      out->labels.emplace_back(std::string(label), std::move(value));
      SkipBlanks();
      if (Peek() == ',') {
        ++pos_;
      } else if (Peek() != '}') {
        return Error(absl::StrCat(out->name, ": expected ',' or '}' after label ", label));
      }
    }
  }

  const absl::string_view s_;
  size_t pos_ = 0;
  const size_t line_no_;
  const ParseLimits& limits_;
};

}  // namespace

bool IsMetricName(absl::string_view name) {
  if (name.empty() || !IsNameStart(name[0])) return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

absl::Status ParseText(absl::string_view text, const ParseLimits& limits,
                       const std::function<void(Sample&&)>& on_sample,
                       const std::function<void(Metadata&&)>& on_metadata) {
  if (text.size() > limits.max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("exposition of ", text.size(), " bytes: more than ", limits.max_bytes));
  }
  size_t samples = 0, metadata = 0, line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    absl::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == absl::string_view::npos ? text.size() : nl + 1);
    if (line.size() > limits.max_line_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "line ", line_no, ": ", line.size(), " bytes: more than ", limits.max_line_bytes));
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    LineParser p(line, line_no, limits);
    p.SkipBlanks();
    if (p.AtEnd()) continue;
    if (p.Peek() == '#') {
      if (absl::Status st = p.Comment(on_metadata, &metadata); !st.ok()) return st;
      continue;
    }
    if (++samples > limits.max_samples) {
      return absl::ResourceExhaustedError(
          absl::StrCat("line ", line_no, ": more than ", limits.max_samples, " samples"));
    }
    Sample sample;
    if (absl::Status st = p.SampleLine(&sample); !st.ok()) return st;
    if (on_sample) on_sample(std::move(sample));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Sample>> ParseSamples(absl::string_view text,
                                                 const ParseLimits& limits) {
  std::vector<Sample> out;
  absl::Status st = ParseText(text, limits, [&out](Sample&& s) { out.push_back(std::move(s)); });
  if (!st.ok()) return st;
  return out;
}

}  // namespace zeroscale::prom
