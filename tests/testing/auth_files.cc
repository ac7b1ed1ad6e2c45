#include "tests/testing/auth_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"

namespace zeroscale::testing {

std::string PodToken(const std::string& pod) {
  std::string t = "test-pod-token-" + pod;
  for (char& c : t) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) c = '_';
  }
  return t;
}

std::string WriteTokenFile(const std::string& path, const std::string& token) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, token.data(), token.size()) != static_cast<ssize_t>(token.size())) {
    std::cerr << "cannot write " << path << "\n";
    std::abort();
  }
  ::close(fd);
  return path;
}

std::string WriteTestTokens(const std::string& dir, const std::vector<std::string>& pods) {
  ::mkdir(dir.c_str(), 0700);  // may exist
  std::string text =
      absl::StrCat(kOperatorToken, ",operator,zeroscale:operators\n", kBalancerToken,
                   ",balancer,zeroscale:balancers\n", kViewerToken, ",viewer,zeroscale:viewers\n");
  for (const std::string& p : pods)
    absl::StrAppend(&text, PodToken(p), ",", p, ",zeroscale:pods\n");
  return WriteTokenFile(dir + "/tokens.csv", text);
}

}  // namespace zeroscale::testing
