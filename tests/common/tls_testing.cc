#include "tests/common/tls_testing.h"

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace zeroscale::testing {
namespace {

// Runs `cmd` through the shell with its output (both streams) in `out_file`; the exit
// status of the shell.
int RunToFile(const std::string& cmd, const std::string& out_file) {
  return std::system(absl::StrCat("(", cmd, ") >'", out_file, "' 2>&1").c_str());
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What curl wrote (the status code last, after its error if any), then removes `dir`.
HttpsReply Reply(const std::string& dir, const std::string& status_file,
                 const std::string& response_file) {
  HttpsReply reply;
  const std::string out = Slurp(status_file);
  if (out.size() >= 3 && absl::SimpleAtoi(out.substr(out.size() - 3), &reply.status) &&
      reply.status != 0) {
    reply.body = Slurp(response_file);
  } else {
    reply.status = 0;
    reply.body = out;
  }
  std::system(absl::StrCat("rm -rf '", dir, "'").c_str());
  return reply;
}

}  // namespace

std::string MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/zs-tls-XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

absl::StatusOr<CertFiles> WriteSelfSignedCert(const std::string& dir, const std::string& name,
                                              const std::string& common_name,
                                              const std::string& san) {
  CertFiles f{absl::StrCat(dir, "/", name, ".crt"), absl::StrCat(dir, "/", name, ".key")};
  const std::string log = absl::StrCat(dir, "/", name, ".openssl.log");
  const int rc = RunToFile(
      absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                   "-days 1 -subj '/CN=",
                   common_name, "' -addext 'subjectAltName=", san, "' -keyout '",
                   f.key, "' -out '", f.cert, "'"),
      log);
  if (rc != 0) return absl::InternalError(absl::StrCat("openssl req failed: ", Slurp(log)));
  return f;
}

bool RotateInto(const CertFiles& from, const CertFiles& to) {
  return std::rename(from.key.c_str(), to.key.c_str()) == 0 &&
         std::rename(from.cert.c_str(), to.cert.c_str()) == 0;
}

HttpsReply HttpsGet(uint16_t port, const std::string& path, const std::string& ca_file) {
  const std::string dir = MakeTempDir();
  const std::string response = dir + "/response", status = dir + "/status";
  RunToFile(absl::StrCat("curl -sS --max-time 20 --cacert '", ca_file, "' --resolve localhost:",
                         port, ":127.0.0.1 -o '", response, "' -w '%{http_code}' https://localhost:",
                         port, path),
            status);
  return Reply(dir, status, response);
}

HttpsReply HttpsPost(uint16_t port, const std::string& path, const std::string& body,
                     const std::string& ca_file, const std::string& curl_args) {
  const std::string dir = MakeTempDir();
  const std::string request = dir + "/request.json", response = dir + "/response",
                    status = dir + "/status";
  std::ofstream(request, std::ios::binary) << body;
  RunToFile(absl::StrCat("curl -sS --max-time 20 --cacert '", ca_file, "' --resolve localhost:",
                         port, ":127.0.0.1 -H 'Content-Type: application/json' --data-binary @'",
                         request, "' -o '", response, "' -w '%{http_code}' ", curl_args,
                         " https://localhost:", port, path),
            status);
  return Reply(dir, status, response);
}

}  // namespace zeroscale::testing
