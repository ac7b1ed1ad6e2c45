// Credentials for tests of the real binaries: a static token file (--auth-tokens) and
// single-token files (--token-file), written 0600 as an operator would.
// Thread-safety: pure functions of the file system.
#ifndef ZEROSCALE_TESTS_TESTING_AUTH_FILES_H_
#define ZEROSCALE_TESTS_TESTING_AUTH_FILES_H_

#include <string>
#include <vector>

namespace zeroscale::testing {

// Tokens every test may use, one per group, for `WriteTestTokens`.
inline constexpr char kOperatorToken[] = "test-operator-token-0123456789";
inline constexpr char kBalancerToken[] = "test-balancer-token-0123456789";
inline constexpr char kViewerToken[] = "test-viewer-token-0123456789";

// A token for pod NAMESPACE/NAME ("test-pod-token-<namespace>-<name>", made token-safe).
std::string PodToken(const std::string& pod);

// Writes `dir`/tokens.csv (making `dir` if missing): the three tokens above (names operator,
// balancer, viewer) and one zeroscale:pods line per pod of `pods`. Returns the path.
std::string WriteTestTokens(const std::string& dir, const std::vector<std::string>& pods = {});
// Writes `token` to `path` (0600); returns the path.
std::string WriteTokenFile(const std::string& path, const std::string& token);
// "authorization" metadata value / header value for `token`.
inline std::string Bearer(const std::string& token) { return "Bearer " + token; }

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_AUTH_FILES_H_
