// Writes a kubeconfig file pointing at a (fake) API server, as the real binaries read
// it with --kubeconfig: one cluster, one token user, one current context.
// Thread-safety: a pure function over its arguments and the file system.
#ifndef ZEROSCALE_TESTS_TESTING_KUBECONFIG_H_
#define ZEROSCALE_TESTS_TESTING_KUBECONFIG_H_

#include <fstream>
#include <string>

namespace zeroscale::testing {

// `ns` is the context's namespace (where the scaler keeps its Lease). False when the
// file cannot be written.
inline bool WriteKubeconfig(const std::string& path, const std::string& server_url,
                            const std::string& token, const std::string& ns) {
  std::ofstream out(path);
  out << "apiVersion: v1\n"
         "kind: Config\n"
         "clusters:\n"
         "- name: fake\n"
         "  cluster:\n"
         "    server: "
      << server_url
      << "\n"
         "users:\n"
         "- name: user\n"
         "  user:\n"
         "    token: "
      << token
      << "\n"
         "contexts:\n"
         "- name: fake\n"
         "  context:\n"
         "    cluster: fake\n"
         "    user: user\n"
         "    namespace: "
      << ns
      << "\n"
         "current-context: fake\n";
  out.close();
  return static_cast<bool>(out);
}

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_KUBECONFIG_H_
