// Request heads that RFC 9112 says a server or proxy must refuse (request smuggling,
// Host), with the answer expected, for the tests of the HTTP server and of the proxy
// engine, which apply the same rules (common/http/head_checks.h). Constants only.
#ifndef ZEROSCALE_TESTS_TESTING_REQUEST_HEAD_CASES_H_
#define ZEROSCALE_TESTS_TESTING_REQUEST_HEAD_CASES_H_

#include <string>
#include <vector>

namespace zeroscale::testing {

struct RefusedHead {
  std::string head;    // request line and fields, without the empty line
  std::string status;  // "400", "501"
  std::string why;     // part of the answer's body (no quotes: a JSON body escapes them)
};

// Each head is for `path`, with "Host: x" where a Host belongs.
inline std::vector<RefusedHead> RefusedHeads(const std::string& path) {
  const std::string post = "POST " + path + " HTTP/1.1\r\nHost: x\r\n";
  const std::string get = "GET " + path + " HTTP/1.1\r\n";
  return {
      {post + "Transfer-Encoding: xchunked\r\n", "501", "xchunked"},
      {post + "Transfer-Encoding: identity, chunked\r\n", "501", "identity"},
      {post + "Transfer-Encoding: chunked, gzip\r\n", "501", "gzip"},
      {post + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "501", "gzip"},
      {"POST " + path + " HTTP/1.0\r\nTransfer-Encoding: chunked\r\n", "400", "HTTP/1.0"},
      {post + "Content-Length: 5, 6\r\n", "400", "Content-Length"},
      {post + "Content-Length: 5\r\nContent-Length: 6\r\n", "400", "Content-Length"},
      {get, "400", "needs a Host field"},
      {get + "Host: a\r\nHost: b\r\n", "400", "more than one Host"},
      {get + "Host: a b\r\n", "400", "not a host[:port]"},
      {get + "Host: x\r\nX-A: 1\r\n folded\r\n", "400", "obsolete line folding"},
      {get + "Host: x\r\nX-A: 1\r\n\tfolded\r\n", "400", "obsolete line folding"},
  };
}

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_REQUEST_HEAD_CASES_H_
