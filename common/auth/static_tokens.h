// Bearer tokens from a file, for running outside a cluster (--auth-tokens=FILE), and
// per-pod credentials a program registers at run time (the local backend's replicas).
//
// The file has one token per line, `token,name,group[,group...]` (blank lines and lines
// starting with # are skipped). The groups grant:
//   zeroscale:operators  every action
//   zeroscale:balancers  workloads/activation create and watch, workloads/traffic
//                        create, workloads/endpoints list (what a balancer does)
//   zeroscale:viewers    get and list of every resource (read-only)
//   zeroscale:pods       no action; the name is the pod NAMESPACE/NAME whose samples the
//                        token may send
// A token is at least 16 characters of RFC 6750's token68; an unknown group, a repeated
// token or a malformed line is an error naming the line.
//
// Thread-safety: all methods may be called concurrently.
#ifndef ZEROSCALE_COMMON_AUTH_STATIC_TOKENS_H_
#define ZEROSCALE_COMMON_AUTH_STATIC_TOKENS_H_

#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "common/auth/auth.h"

namespace zeroscale::auth {

inline constexpr absl::string_view kOperatorsGroup = "zeroscale:operators";
inline constexpr absl::string_view kBalancersGroup = "zeroscale:balancers";
inline constexpr absl::string_view kViewersGroup = "zeroscale:viewers";
inline constexpr absl::string_view kPodsGroup = "zeroscale:pods";

// Whether the static groups of `who` grant `action` (see above).
bool GroupsAllow(const std::vector<std::string>& groups, const Action& action);

class StaticTokens : public Authenticator, public Authorizer {
 public:
  // Parses the file's text; `source` names it in errors ("FILE:3: ...").
  static absl::StatusOr<std::unique_ptr<StaticTokens>> Parse(absl::string_view text,
                                                             absl::string_view source);
  static absl::StatusOr<std::unique_ptr<StaticTokens>> LoadFile(const std::string& path);
  StaticTokens() = default;

  // Registers a credential for one pod (and the workload it belongs to); replaces one
  // with the same token.
  void AddPodCredential(const std::string& token, const std::string& pod,
                        const std::string& workload);
  // Registers a token with a name and groups, as a line of the file would.
  void Add(const std::string& token, const std::string& name, std::vector<std::string> groups);
  void Remove(const std::string& token);
  size_t size() const;

  // kNotFound when the token is not one of these (another authenticator may know it).
  absl::StatusOr<Identity> Authenticate(absl::string_view token) override;
  absl::Status Authorize(const Identity& who, const Action& action) override;

 private:
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, Identity> tokens_;
};

// A fresh random token (32 bytes from the system's CSPRNG, base64url): 43 characters.
absl::StatusOr<std::string> GenerateToken();

}  // namespace zeroscale::auth

#endif  // ZEROSCALE_COMMON_AUTH_STATIC_TOKENS_H_
