// Test helpers for TLS endpoints: a throwaway self-signed certificate made with the
// openssl CLI, and HTTPS requests made with curl, which verifies the server's certificate
// against the file the test names (so a test sees which certificate was served).
// Not thread-safe: each call runs a child process and waits for it.
#ifndef ZEROSCALE_TESTS_COMMON_TLS_TESTING_H_
#define ZEROSCALE_TESTS_COMMON_TLS_TESTING_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace zeroscale::testing {

// A new empty directory under $TMPDIR (or /tmp).
std::string MakeTempDir();

struct CertFiles {
  std::string cert;  // PEM certificate for localhost and 127.0.0.1, self-signed
  std::string key;   // its PEM private key
};

// Writes <dir>/<name>.crt and <dir>/<name>.key; `common_name` tells certificates apart,
// `san` is the subjectAltName (openssl's syntax).
absl::StatusOr<CertFiles> WriteSelfSignedCert(
    const std::string& dir, const std::string& name, const std::string& common_name,
    const std::string& san = "DNS:localhost,IP:127.0.0.1");

// Replaces `to`'s certificate and key with `from`'s as a Secret volume update does: each
// file renamed into place (a new inode), the key first. `from`'s files are gone after.
bool RotateInto(const CertFiles& from, const CertFiles& to);

struct HttpsReply {
  int status = 0;    // 0 when no HTTP answer came (TLS or connection failure)
  std::string body;  // the response body, or curl's error when status is 0
};

// POSTs `body` (JSON) to https://localhost:<port><path>, trusting only `ca_file`.
// `curl_args` go to curl as they are (e.g. "--tls-max 1.2").
HttpsReply HttpsPost(uint16_t port, const std::string& path, const std::string& body,
                     const std::string& ca_file, const std::string& curl_args = "");

// GETs https://localhost:<port><path>, trusting only `ca_file`.
HttpsReply HttpsGet(uint16_t port, const std::string& path, const std::string& ca_file);

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_COMMON_TLS_TESTING_H_
