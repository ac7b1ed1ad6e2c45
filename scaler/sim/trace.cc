#include "scaler/sim/trace.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file/read_file.h"
#include "common/time/clock.h"

namespace zeroscale::sim {
namespace {

// Up to a year of trace: later times are mistakes (and would overflow nothing, but a
// replay that long is not what anyone meant).
constexpr double kMaxSeconds = 366.0 * 86400;

// One CSV row split into fields (the trace formats have no quoting), remembering where
// each field starts so errors can name the column.
struct Row {
  size_t line = 0;
  std::vector<absl::string_view> fields;
  std::vector<size_t> columns;  // 1-based character column of each field
};

class Reader {
 public:
  Reader(absl::string_view text, absl::string_view source) : text_(text), source_(source) {}

  // The next non-empty row; false at the end.
  bool Next(Row* row) {
    while (pos_ < text_.size()) {
      size_t end = text_.find('\n', pos_);
      if (end == absl::string_view::npos) end = text_.size();
      absl::string_view line = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
      ++line_;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      row->line = line_;
      row->fields.clear();
      row->columns.clear();
      size_t start = 0;
      for (;;) {
        const size_t comma = line.find(',', start);
        row->fields.push_back(line.substr(
            start, comma == absl::string_view::npos ? absl::string_view::npos : comma - start));
        row->columns.push_back(start + 1);
        if (comma == absl::string_view::npos) break;
        start = comma + 1;
      }
      return true;
    }
    return false;
  }

  absl::Status Error(const Row& row, size_t field, absl::string_view what) const {
    const size_t column = field < row.columns.size() ? row.columns[field] : 1;
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ":", row.line, ":", column, ": ", what));
  }

 private:
  absl::string_view text_;
  std::string source_;
  size_t pos_ = 0;
  size_t line_ = 0;
};

std::string Quote(absl::string_view s) {
  return absl::StrCat("'", s.substr(0, 40), s.size() > 40 ? "..." : "", "'");
}

absl::Status Seconds(const Reader& r, const Row& row, size_t i, absl::string_view what,
                     double* out) {
  double v = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(row.fields[i]), &v) || !std::isfinite(v) ||
      v < 0 || v > kMaxSeconds) {
    return r.Error(row, i,
                   absl::StrCat(what, " must be a number of seconds from 0 to ",
                                static_cast<int64_t>(kMaxSeconds), ", not ", Quote(row.fields[i])));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status TooMany(size_t n) {
  return absl::ResourceExhaustedError(
      absl::StrCat("more than ", kMaxRequests, " requests (", n, "): replay a smaller trace"));
}

void Finish(Trace* t) {
  absl::Duration end = absl::ZeroDuration();
  for (AppTrace& a : t->apps) {
    std::stable_sort(a.requests.begin(), a.requests.end(),
                     [](const Request& x, const Request& y) { return x.at < y.at; });
    if (!a.requests.empty()) end = std::max(end, a.requests.back().at);
  }
  if (t->length < end) t->length = end;
}

absl::StatusOr<Trace> ParseAzure2019(absl::string_view text, absl::string_view source) {
  Reader r(text, source);
  Row row;
  if (!r.Next(&row)) return absl::InvalidArgumentError(absl::StrCat(source, ": empty file"));
  if (row.fields.size() < 5 || row.fields[0] != "HashOwner" || row.fields[1] != "HashApp" ||
      row.fields[2] != "HashFunction" || row.fields[3] != "Trigger") {
    return r.Error(row, 0,
                   "expected the Azure Functions 2019 header HashOwner,HashApp,HashFunction,"
                   "Trigger,1,2,...,1440");
  }
  const size_t minutes = row.fields.size() - 4;
  for (size_t i = 4; i < row.fields.size(); ++i) {
    if (row.fields[i] != absl::StrCat(i - 3)) {
      return r.Error(
          row, i, absl::StrCat("expected minute column ", i - 3, ", not ", Quote(row.fields[i])));
    }
  }
  std::map<std::string, size_t> index;
  Trace t;
  t.length = absl::Minutes(static_cast<int64_t>(minutes));
  size_t total = 0;
  while (r.Next(&row)) {
    if (row.fields.size() != minutes + 4) {
      return r.Error(row, std::min(row.fields.size(), minutes + 4) - 1,
                     absl::StrCat("expected ", minutes + 4, " fields, found ", row.fields.size()));
    }
    if (row.fields[1].empty()) return r.Error(row, 1, "HashApp is empty");
    auto [it, added] = index.emplace(std::string(row.fields[1]), t.apps.size());
    if (added) t.apps.push_back(AppTrace{std::string(row.fields[1]), "", {}});
    AppTrace& app = t.apps[it->second];
    for (size_t m = 0; m < minutes; ++m) {
      const absl::string_view f = row.fields[m + 4];
      int64_t n = 0;
      if (!absl::SimpleAtoi(f, &n) || n < 0 || n > 1'000'000) {
        return r.Error(row, m + 4,
                       absl::StrCat("minute ", m + 1,
                                    ": invocation count must be a whole number from 0 to "
                                    "1000000, not ",
                                    Quote(f)));
      }
      total += static_cast<size_t>(n);
      if (total > kMaxRequests) return TooMany(total);
      for (int64_t k = 0; k < n; ++k) {
        app.requests.push_back(
            Request{absl::Minutes(static_cast<int64_t>(m)) + absl::Seconds(60.0 * (k + 0.5) / n),
                    absl::ZeroDuration()});
      }
    }
  }
  Finish(&t);
  return t;
}

absl::StatusOr<Trace> ParseAzure2021(absl::string_view text, absl::string_view source) {
  Reader r(text, source);
  Row row;
  if (!r.Next(&row)) return absl::InvalidArgumentError(absl::StrCat(source, ": empty file"));
  if (row.fields.size() != 4 || row.fields[0] != "app" || row.fields[1] != "func" ||
      row.fields[2] != "end_timestamp" || row.fields[3] != "duration") {
    return r.Error(row, 0,
                   "expected the Azure Functions 2021 header app,func,end_timestamp,duration");
  }
  std::map<std::string, size_t> index;
  Trace t;
  t.length = absl::ZeroDuration();
  size_t total = 0;
  while (r.Next(&row)) {
    if (row.fields.size() != 4) {
      return r.Error(row, std::min<size_t>(row.fields.size(), 4) - 1,
                     absl::StrCat("expected 4 fields, found ", row.fields.size()));
    }
    if (row.fields[0].empty()) return r.Error(row, 0, "app is empty");
    double end = 0, duration = 0;
    if (absl::Status s = Seconds(r, row, 2, "end_timestamp", &end); !s.ok()) return s;
    if (absl::Status s = Seconds(r, row, 3, "duration", &duration); !s.ok()) return s;
    if (duration > end + 1e-3) {
      return r.Error(row, 3,
                     absl::StrCat("duration ", duration, "s is longer than end_timestamp ", end,
                                  "s: the invocation would start before the trace"));
    }
    if (++total > kMaxRequests) return TooMany(total);
    auto [it, added] = index.emplace(std::string(row.fields[0]), t.apps.size());
    if (added) t.apps.push_back(AppTrace{std::string(row.fields[0]), "", {}});
    t.apps[it->second].requests.push_back(
        Request{absl::Seconds(std::max(0.0, end - duration)), absl::Seconds(duration)});
    t.length = std::max(t.length, absl::Seconds(end));
  }
  Finish(&t);
  return t;
}

// "2023-11-16 18:17:03.9799600", RFC 3339, or seconds.
bool ParseTimestamp(absl::string_view f, absl::Time* out) {
  f = absl::StripAsciiWhitespace(f);
  double secs = 0;
  if (absl::SimpleAtod(f, &secs)) {
    if (!std::isfinite(secs) || secs < 0 || secs > 4e9) return false;
    *out = absl::UnixEpoch() + absl::Seconds(secs);
    return true;
  }
  std::string err;
  if (absl::ParseTime("%Y-%m-%d %H:%M:%E*S", std::string(f), absl::UTCTimeZone(), out, &err)) {
    return true;
  }
  absl::StatusOr<absl::Time> t = ParseRfc3339(f);
  if (!t.ok()) return false;
  *out = *t;
  return true;
}

absl::StatusOr<Trace> ParseTimestamps(absl::string_view text, absl::string_view source) {
  Reader r(text, source);
  Row row;
  std::vector<absl::Time> times;
  bool first = true;
  while (r.Next(&row)) {
    absl::Time at;
    if (!ParseTimestamp(row.fields[0], &at)) {
      if (first) {  // a header
        first = false;
        continue;
      }
      return r.Error(row, 0,
                     absl::StrCat("expected a timestamp (2023-11-16 18:17:03.97, RFC 3339 or "
                                  "seconds), not ",
                                  Quote(row.fields[0])));
    }
    first = false;
    if (times.size() >= kMaxRequests) return TooMany(times.size() + 1);
    times.push_back(at);
  }
  if (times.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no requests"));
  const absl::Time start = *std::min_element(times.begin(), times.end());
  const absl::Time end = *std::max_element(times.begin(), times.end());
  if (end - start > absl::Seconds(kMaxSeconds)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": the timestamps span more than a year"));
  }
  std::string name(source);
  if (size_t slash = name.rfind('/'); slash != std::string::npos) name = name.substr(slash + 1);
  Trace t;
  t.apps.push_back(AppTrace{name, "", {}});
  t.apps[0].requests.reserve(times.size());
  for (absl::Time at : times)
    t.apps[0].requests.push_back(Request{at - start, absl::ZeroDuration()});
  t.length = end - start;
  Finish(&t);
  return t;
}

}  // namespace

absl::StatusOr<Trace> ParseTrace(absl::string_view text, TraceFormat format,
                                 absl::string_view source) {
  if (text.size() > kMaxTraceBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(source, ": ", text.size(), " bytes, more than the limit of ", kMaxTraceBytes));
  }
  switch (format) {
    case TraceFormat::kAzure2019:
      return ParseAzure2019(text, source);
    case TraceFormat::kAzure2021:
      return ParseAzure2021(text, source);
    case TraceFormat::kTimestamps:
      return ParseTimestamps(text, source);
  }
  return absl::InvalidArgumentError("unknown trace format");
}

absl::StatusOr<Trace> ReadTrace(const std::string& path, TraceFormat format) {
  absl::StatusOr<std::string> text = ReadFileToString(path, "trace");
  if (!text.ok()) return text.status();
  return ParseTrace(*text, format, path);
}

}  // namespace zeroscale::sim
