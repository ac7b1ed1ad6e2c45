#include "common/http/head_checks.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status/quote.h"

namespace zeroscale::http {
namespace {

// host = uri-host [ ":" port ] (RFC 9110 7.2): reg-name, IPv4 or an IP literal in
// brackets, so letters, digits and "-._~!$&'()*+,;=%:[]"; never empty.
bool ValidHost(absl::string_view v) {
  if (v.empty()) return false;
  for (const char c : v) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) continue;
    switch (c) {
      case '-':
      case '.':
      case '_':
      case '~':
      case '!':
      case '$':
      case '&':
      case '\'':
      case '(':
      case ')':
      case '*':
      case '+':
      case ',':
      case ';':
      case '=':
      case '%':
      case ':':
      case '[':
      case ']':
        continue;
      default:
        return false;
    }
  }
  return true;
}

}  // namespace

void RequestHeadCheck::Field(absl::string_view name, absl::string_view value) {
  // By length first: this runs for every field of every proxied request.
  switch (name.size()) {
    case 4:
      if (absl::EqualsIgnoreCase(name, "host")) {
        ++hosts_;
        bad_host_ = bad_host_ || !ValidHost(value);
      }
      return;
    case 14:
      if (absl::EqualsIgnoreCase(name, "content-length")) {
        ++content_lengths_;
        cl_list_ = cl_list_ || value.find(',') != absl::string_view::npos;
      }
      return;
    case 17:
      if (absl::EqualsIgnoreCase(name, "transfer-encoding")) {
        if (has_transfer_encoding_) transfer_encoding_.push_back(',');
        transfer_encoding_.append(value.data(), value.size());
        has_transfer_encoding_ = true;
      }
      return;
    default:
      return;
  }
}

int RequestHeadCheck::Verdict(absl::string_view raw_head, std::string* why) const {
  // A field line that starts with a space or tab continues the previous one.
  for (size_t nl = raw_head.find('\n'); nl != absl::string_view::npos && nl + 1 < raw_head.size();
       nl = raw_head.find('\n', nl + 1)) {
    if (raw_head[nl + 1] == ' ' || raw_head[nl + 1] == '\t') {
      *why = "obsolete line folding (a field line starting with whitespace) is not accepted";
      return 400;
    }
  }
  if (version_ >= 11 && hosts_ == 0) {
    *why = "an HTTP/1.1 request needs a Host field";
    return 400;
  }
  if (hosts_ > 1) {
    *why = "more than one Host field";
    return 400;
  }
  if (bad_host_) {
    *why = "the Host field is not a host[:port]";
    return 400;
  }
  if (!has_transfer_encoding_) return 0;
  if (version_ < 11) {
    *why = "Transfer-Encoding in an HTTP/1.0 request";
    return 400;
  }
  std::vector<absl::string_view> codings;
  for (absl::string_view c : absl::StrSplit(transfer_encoding_, ',')) {
    c = absl::StripAsciiWhitespace(c);
    if (!c.empty()) codings.push_back(c);  // a list may hold empty elements
  }
  if (codings.empty()) {
    *why = "Transfer-Encoding names no coding";
    return 400;
  }
  int chunked = 0;
  for (absl::string_view c : codings) {
    if (!absl::EqualsIgnoreCase(c, "chunked")) {
      *why = absl::StrCat("transfer coding ", Quote(c), " is not implemented; only chunked is");
      return 501;
    }
    ++chunked;
  }
  if (chunked > 1) {
    *why = "Transfer-Encoding applies chunked more than once";
    return 400;
  }
  return 0;
}

}  // namespace zeroscale::http
