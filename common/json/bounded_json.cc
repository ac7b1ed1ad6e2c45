#include "common/json/bounded_json.h"

#include "absl/strings/str_cat.h"
#include "common/status/quote.h"
#include "nlohmann/json.hpp"

namespace zeroscale::json {

absl::Status ParseJson(absl::string_view text, const JsonLimits& limits, nlohmann::json* out,
                       absl::string_view what) {
  using nlohmann::json;
  if (text.size() > limits.max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": ", text.size(), " bytes, more than the limit of ", limits.max_bytes));
  }
  // The parser calls back with the number of enclosing containers; refusing a container
  // discards it, so nothing deeper is ever built (the parser itself keeps an explicit
  // stack and does not recurse).
  bool too_deep = false;
  const json::parser_callback_t check = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= limits.max_depth) {
      too_deep = true;
    }
    return !too_deep;
  };
  *out = json::parse(text.begin(), text.end(), check, /*allow_exceptions=*/false);
  if (too_deep) {
    *out = nullptr;
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": nested deeper than ", limits.max_depth, " levels (the limit)"));
  }
  if (!out->is_discarded()) return absl::OkStatus();
  *out = nullptr;
  // Parsed again with exceptions on this error path only, for the position message. The
  // message quotes the last token read, which may be most of the input: cut it short.
  try {
    (void)json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not valid JSON: ", Shorten(e.what(), 200)));
  }
  return absl::InvalidArgumentError(absl::StrCat(what, ": not valid JSON"));
}

}  // namespace zeroscale::json
