// The checks RFC 9110 and 9112 ask of a server or proxy on a request head beyond the
// syntax Boost.Beast's parser enforces (Beast parses; this only looks at what it parsed):
// the message framing a proxy must agree on with the next hop, since disagreement is
// how requests are smuggled, and the Host field.
//   - Transfer-Encoding: only "chunked" is implemented: any other coding ("xchunked",
//     "identity, chunked", "chunked, gzip") is a 501; chunked twice, an empty list, or
//     any Transfer-Encoding in an HTTP/1.0 request (whose framing is then faulty) a 400;
//   - Content-Length: Beast refuses differing values; equal repeats ("5, 5", or the field
//     twice) are noted so that the proxy forwards one value;
//   - Host: an HTTP/1.1 request without one, with two, or with a value that is no
//     host[:port] is a 400;
//   - obsolete line folding (a field line starting with a space) is a 400: Beast would
//     join it, and the next hop might not.
// Shared by the HTTP server (common/http) and the proxy engine (common/proxy), whose
// data path runs it per request: one pass over the fields and one over the head's bytes.
//
// Thread-safety: a RequestHeadCheck is used by one thread.
#ifndef ZEROSCALE_COMMON_HTTP_HEAD_CHECKS_H_
#define ZEROSCALE_COMMON_HTTP_HEAD_CHECKS_H_

#include <string>

#include "absl/strings/string_view.h"

namespace zeroscale::http {

class RequestHeadCheck {
 public:
  // `version`: 10 for HTTP/1.0, 11 for HTTP/1.1, as Beast reports it.
  explicit RequestHeadCheck(unsigned version) : version_(version) {}

  // Each field of the head, in order.
  void Field(absl::string_view name, absl::string_view value);

  // 0 when the request may be served; else the status to answer with (400 or 501) and,
  // in `why`, what is wrong (quoting at most a few bytes of the request). `raw_head` is
  // the head as received: the request line and the field lines.
  int Verdict(absl::string_view raw_head, std::string* why) const;

  // The request carried Content-Length more than once (all equal, or Beast would have
  // refused it): forward a single value.
  bool repeated_content_length() const { return content_lengths_ > 1 || cl_list_; }

 private:
  const unsigned version_;
  int hosts_ = 0;
  int content_lengths_ = 0;
  bool cl_list_ = false;
  bool bad_host_ = false;
  std::string transfer_encoding_;  // the values of every Transfer-Encoding field, joined
  bool has_transfer_encoding_ = false;
};

}  // namespace zeroscale::http

#endif  // ZEROSCALE_COMMON_HTTP_HEAD_CHECKS_H_
