#include "common/auth/static_tokens.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file/read_file.h"
#include "common/status/quote.h"

namespace zeroscale::auth {
namespace {

constexpr size_t kMinTokenBytes = 16;

bool Has(const std::vector<std::string>& groups, absl::string_view g) {
  return std::find(groups.begin(), groups.end(), g) != groups.end();
}

bool KnownGroup(absl::string_view g) {
  return g == kOperatorsGroup || g == kBalancersGroup || g == kViewersGroup || g == kPodsGroup;
}

// NAMESPACE/NAME with both parts non-empty and no further slash.
bool IsPodName(absl::string_view s) {
  const size_t slash = s.find('/');
  return slash != absl::string_view::npos && slash > 0 && slash + 1 < s.size() &&
         s.find('/', slash + 1) == absl::string_view::npos;
}

}  // namespace

bool GroupsAllow(const std::vector<std::string>& groups, const Action& action) {
  if (Has(groups, kOperatorsGroup)) return true;
  if (Has(groups, kBalancersGroup) && action.resource == "workloads" &&
      ((action.subresource == "activation" &&
        (action.verb == "create" || action.verb == "watch")) ||
       (action.subresource == "traffic" && action.verb == "create") ||
       (action.subresource == "endpoints" && action.verb == "list"))) {
    return true;
  }
  if (Has(groups, kViewersGroup) && (action.verb == "get" || action.verb == "list")) return true;
  return false;
}

absl::StatusOr<std::unique_ptr<StaticTokens>> StaticTokens::Parse(absl::string_view text,
                                                                  absl::string_view source) {
  auto tokens = std::make_unique<StaticTokens>();
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_no, ": ", what));
    };
    std::vector<std::string> cols = absl::StrSplit(line, ',');
    for (std::string& c : cols) c = std::string(absl::StripAsciiWhitespace(c));
    if (cols.size() < 3) return error("expected token,name,group[,group...]");
    absl::StatusOr<std::string> token = BearerToken(absl::StrCat("Bearer ", cols[0]));
    if (!token.ok() || token->size() < kMinTokenBytes) {
      return error(absl::StrCat("the token must be at least ", kMinTokenBytes,
                                " characters of letters, digits and -._~+/ (then = padding)"));
    }
    if (cols[1].empty()) return error("the name is empty");
    Identity id;
    id.user = cols[1];
    for (size_t i = 2; i < cols.size(); ++i) {
      if (!KnownGroup(cols[i])) {
        return error(absl::StrCat("unknown group ", Quote(cols[i]), "; known: ", kOperatorsGroup,
                                  ", ", kBalancersGroup, ", ", kViewersGroup, ", ", kPodsGroup));
      }
      id.groups.push_back(cols[i]);
    }
    if (Has(id.groups, kPodsGroup)) {
      if (!IsPodName(id.user)) {
        return error(absl::StrCat("a ", kPodsGroup,
                                  " token's name must be the pod's NAMESPACE/NAME, got ",
                                  Quote(id.user)));
      }
      id.pod = id.user;
    }
    if (tokens->tokens_.contains(*token)) return error("this token is already on an earlier line");
    tokens->tokens_.emplace(*std::move(token), std::move(id));
  }
  return tokens;
}

absl::StatusOr<std::unique_ptr<StaticTokens>> StaticTokens::LoadFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path, "the token file (--auth-tokens)");
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

void StaticTokens::AddPodCredential(const std::string& token, const std::string& pod,
                                    const std::string& workload) {
  Identity id;
  id.user = pod;
  id.groups = {std::string(kPodsGroup)};
  id.pod = pod;
  id.workload = workload;
  std::lock_guard<std::mutex> lock(mu_);
  tokens_[token] = std::move(id);
}

void StaticTokens::Add(const std::string& token, const std::string& name,
                       std::vector<std::string> groups) {
  Identity id;
  id.user = name;
  id.groups = std::move(groups);
  std::lock_guard<std::mutex> lock(mu_);
  tokens_[token] = std::move(id);
}

void StaticTokens::Remove(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  tokens_.erase(token);
}

size_t StaticTokens::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_.size();
}

absl::StatusOr<Identity> StaticTokens::Authenticate(absl::string_view token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return absl::NotFoundError("not a configured token");
  return it->second;
}

absl::Status StaticTokens::Authorize(const Identity& who, const Action& action) {
  if (GroupsAllow(who.groups, action)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(Quote(who.user), " may not ", action.ToString(), ": its token's groups (",
                   absl::StrJoin(who.groups, ", "), ") do not grant it; ", kOperatorsGroup,
                   " may do everything, ", kBalancersGroup,
                   " activate, watch, report traffic and list "
                   "endpoints, ",
                   kViewersGroup, " get and list"));
}

absl::StatusOr<std::string> GenerateToken() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("getrandom: ", std::strerror(errno)));
    }
    got += static_cast<size_t>(n);
  }
  std::string out;
  absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)),
                            &out);
  return out;
}

}  // namespace zeroscale::auth
