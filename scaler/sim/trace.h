// Invocation traces for the decision simulator: what arrives when, per application, read
// from the public trace formats or generated (synthetic.h).
//
// Formats (--format):
// - azure2019: Azure Functions 2019 invocation counts, "HashOwner,HashApp,HashFunction,
//   Trigger,1,...,1440" (one column per minute of a day); the functions of one HashApp
//   form one application; a minute's count is spread evenly over the minute.
// - azure2021: Azure Functions 2021 per invocation, "app,func,end_timestamp,duration"
//   (seconds from the trace start); arrival = end_timestamp - duration.
// - timestamps: one request per row, first column a timestamp ("2023-11-16 18:17:03.97",
//   RFC 3339, or seconds), e.g. the Azure LLM inference traces "TIMESTAMP,ContextTokens,
//   GeneratedTokens"; one application named after the file. A header row is skipped.
// Malformed input is refused with "FILE:LINE:COLUMN: what is wrong". Sizes are bounded
// (kMaxTraceBytes, kMaxRequests) so no file can exhaust memory.
//
// Thread-safety: plain data and pure functions.
#ifndef ZEROSCALE_SCALER_SIM_TRACE_H_
#define ZEROSCALE_SCALER_SIM_TRACE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace zeroscale::sim {

struct Request {
  absl::Duration at;       // arrival, from the trace's start
  absl::Duration service;  // how long serving it takes once a replica has it (0: default)
};

struct AppTrace {
  std::string name;
  std::string kind;               // synthetic class ("rare", "periodic", ...) or ""
  std::vector<Request> requests;  // sorted by arrival
};

struct Trace {
  std::vector<AppTrace> apps;
  absl::Duration length;  // the span replayed: idle time counts up to its end
};

inline constexpr size_t kMaxTraceBytes = size_t{1} << 30;
inline constexpr size_t kMaxRequests = 50'000'000;

enum class TraceFormat { kAzure2019, kAzure2021, kTimestamps };

// Parses `text` (the file's contents; `source` names it in errors).
absl::StatusOr<Trace> ParseTrace(absl::string_view text, TraceFormat format,
                                 absl::string_view source);
// Reads and parses a file.
absl::StatusOr<Trace> ReadTrace(const std::string& path, TraceFormat format);

}  // namespace zeroscale::sim

#endif  // ZEROSCALE_SCALER_SIM_TRACE_H_
