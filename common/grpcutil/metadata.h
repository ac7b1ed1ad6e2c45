// The "authorization" metadata of a gRPC call, for the servers' access checks (the
// clients add it per call with ClientContext::AddMetadata, which, unlike
// CallCredentials, also travels on channels without TLS). Pure functions.
#ifndef ZEROSCALE_COMMON_GRPCUTIL_METADATA_H_
#define ZEROSCALE_COMMON_GRPCUTIL_METADATA_H_

#include <string>

#include "grpcpp/server_context.h"

namespace zeroscale {

// "" when the call carries none.
inline std::string AuthorizationOf(const grpc::ServerContextBase& context) {
  const auto& md = context.client_metadata();
  auto it = md.find("authorization");
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

}  // namespace zeroscale

#endif  // ZEROSCALE_COMMON_GRPCUTIL_METADATA_H_
