#include "common/auth/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/bounded_json.h"
#include "nlohmann/json.hpp"

namespace zeroscale::auth {
namespace {

constexpr size_t kMaxTokenBytes = 16 << 10;

// RFC 6750 b64token: ALPHA DIGIT "-" "." "_" "~" "+" "/" then "=" padding.
bool IsToken68(absl::string_view t) {
  size_t i = 0;
  for (; i < t.size(); ++i) {
    const char c = t[i];
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
          c == '~' || c == '+' || c == '/')) {
      break;
    }
  }
  if (i == 0) return false;
  for (; i < t.size(); ++i) {
    if (t[i] != '=') return false;
  }
  return true;
}

}  // namespace

std::string Action::ToString() const {
  return subresource.empty() ? absl::StrCat(resource, " ", verb)
                             : absl::StrCat(resource, "/", subresource, " ", verb);
}

absl::StatusOr<std::string> BearerToken(absl::string_view authorization) {
  authorization = absl::StripAsciiWhitespace(authorization);
  if (authorization.empty()) {
    return absl::UnauthenticatedError("no credential: send \"authorization: Bearer <token>\"");
  }
  const size_t space = authorization.find(' ');
  if (space == absl::string_view::npos ||
      !absl::EqualsIgnoreCase(authorization.substr(0, space), "bearer")) {
    return absl::UnauthenticatedError(
        "authorization: only the Bearer scheme is accepted (\"Bearer <token>\")");
  }
  absl::string_view token = absl::StripLeadingAsciiWhitespace(authorization.substr(space + 1));
  if (token.size() > kMaxTokenBytes) {
    return absl::UnauthenticatedError(absl::StrCat("authorization: a token of ", token.size(),
                                                   " bytes; at most ", kMaxTokenBytes,
                                                   " are accepted"));
  }
  if (!IsToken68(token)) {
    return absl::UnauthenticatedError(
        "authorization: the bearer token is empty or holds characters a token may not");
  }
  return std::string(token);
}

absl::StatusOr<int64_t> JwtExpiry(absl::string_view token) {
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return absl::InvalidArgumentError("not a JWT (three dot-separated parts)");
  std::string payload;
  if (!absl::WebSafeBase64Unescape(parts[1], &payload)) {
    return absl::InvalidArgumentError("JWT payload: not base64url");
  }
  nlohmann::json claims;
  if (absl::Status s = json::ParseJson(payload, json::kSmallDocument, &claims, "JWT payload");
      !s.ok()) {
    return s;
  }
  if (!claims.is_object() || !claims.contains("exp") || !claims["exp"].is_number()) {
    return absl::InvalidArgumentError("JWT payload: no numeric exp claim");
  }
  const double exp = claims["exp"].get<double>();
  if (!(exp > 0 && exp < 1e12)) return absl::InvalidArgumentError("JWT payload: exp out of range");
  return static_cast<int64_t>(exp);
}

}  // namespace zeroscale::auth
