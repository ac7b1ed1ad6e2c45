#include "common/kube/config.h"

#include <cstdio>
#include <fstream>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/kube/transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::kube {
namespace {

using ::testing::HasSubstr;

config::EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

InClusterPaths FixturePaths() {
  const std::string dir = ZS_KUBE_FIXTURES "/incluster";
  return InClusterPaths{dir + "/token", dir + "/ca.crt", dir + "/namespace"};
}

std::string TempDir() {
  char tmpl[] = "/tmp/zs-kube-config-XXXXXX";
  return mkdtemp(tmpl);
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(InClusterConfigTest, ReadsServiceAccountFixture) {
  auto c = LoadInClusterConfig(FixturePaths(), Env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                                    {"KUBERNETES_SERVICE_PORT", "443"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token_file, FixturePaths().token);  // re-read as it rotates
  EXPECT_THAT(c->ca_pem, HasSubstr("fixture-ca"));
  EXPECT_EQ(c->namespace_, "ml");
  EXPECT_EQ(c->source, "in-cluster");
}

TEST(InClusterConfigTest, BracketsIpv6Hosts) {
  auto c = LoadInClusterConfig(FixturePaths(), Env({{"KUBERNETES_SERVICE_HOST", "fd00::1"},
                                                    {"KUBERNETES_SERVICE_PORT", "6443"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://[fd00::1]:6443");
}

TEST(InClusterConfigTest, NeedsServiceEnvironmentAndToken) {
  auto no_env = LoadInClusterConfig(FixturePaths(), Env({}));
  EXPECT_EQ(no_env.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_env.status().message(), HasSubstr("KUBERNETES_SERVICE_HOST"));

  InClusterPaths paths = FixturePaths();
  paths.token = "/nonexistent/token";
  auto no_token = LoadInClusterConfig(
      paths, Env({{"KUBERNETES_SERVICE_HOST", "10.0.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  EXPECT_EQ(no_token.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_token.status().message(), HasSubstr("/nonexistent/token"));

  paths = FixturePaths();
  paths.ca = "/nonexistent/ca.crt";
  auto no_ca = LoadInClusterConfig(
      paths, Env({{"KUBERNETES_SERVICE_HOST", "10.0.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  EXPECT_EQ(no_ca.status().code(), absl::StatusCode::kFailedPrecondition);
}

constexpr char kKubeconfig[] = R"(
apiVersion: v1
kind: Config
current-context: prod
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user}
- name: prod
  context: {cluster: prod-cluster, user: prod-user, namespace: ml}
clusters:
- name: dev-cluster
  cluster:
    server: http://127.0.0.1:8001/
    insecure-skip-tls-verify: true
- name: prod-cluster
  cluster:
    server: https://k8s.example.com:6443
    certificate-authority-data: CA_DATA
users:
- name: dev-user
  user:
    client-certificate: certs/client.crt
    client-key: certs/client.key
- name: prod-user
  user:
    token: sekret-token
)";

std::string KubeconfigText() {
  std::string text = kKubeconfig;
  const std::string ca = absl::Base64Escape("-----BEGIN CERTIFICATE-----\nprod-ca\n");
  text.replace(text.find("CA_DATA"), 7, ca);
  return text;
}

TEST(KubeconfigTest, CurrentContextWithTokenAndCaData) {
  auto c = ParseKubeconfig(KubeconfigText(), "/tmp");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://k8s.example.com:6443");
  EXPECT_EQ(c->token, "sekret-token");
  EXPECT_EQ(c->ca_pem, "-----BEGIN CERTIFICATE-----\nprod-ca\n");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->namespace_, "ml");
}

TEST(KubeconfigTest, NamedContextInsecureWithRelativeCertificateFiles) {
  const std::string dir = TempDir();
  ASSERT_EQ(system(("mkdir -p " + dir + "/certs").c_str()), 0);
  WriteFile(dir + "/certs/client.crt", "CERT PEM");
  WriteFile(dir + "/certs/client.key", "KEY PEM");
  WriteFile(dir + "/config", KubeconfigText());
  auto c = LoadKubeconfig(dir + "/config", "dev");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "http://127.0.0.1:8001");
  EXPECT_TRUE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->client_cert_pem, "CERT PEM");
  EXPECT_EQ(c->client_key_pem, "KEY PEM");
  EXPECT_THAT(c->source, HasSubstr(dir + "/config"));
}

TEST(KubeconfigTest, ErrorsNameWhatIsMissing) {
  auto no_ctx = ParseKubeconfig(KubeconfigText(), "/tmp", "staging");
  EXPECT_EQ(no_ctx.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_ctx.status().message(), HasSubstr("staging"));

  auto bad_yaml = ParseKubeconfig("clusters: [", "/tmp");
  EXPECT_EQ(bad_yaml.status().code(), absl::StatusCode::kFailedPrecondition);

  auto exec = ParseKubeconfig(R"(
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://x:6443"}}]
users: [{name: u, user: {exec: {command: aws}}}]
)",
                              "/tmp");
  EXPECT_EQ(exec.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(exec.status().message(), HasSubstr("exec"));

  auto missing_file = LoadKubeconfig("/nonexistent/kubeconfig");
  EXPECT_EQ(missing_file.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(DefaultConfigTest, LookupOrder) {
  const std::string dir = TempDir();
  WriteFile(dir + "/config", KubeconfigText());
  // An explicit flag wins even inside a cluster.
  auto flag = LoadDefaultConfig(
      dir + "/config",
      Env({{"KUBERNETES_SERVICE_HOST", "10.0.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}),
      FixturePaths());
  ASSERT_TRUE(flag.ok()) << flag.status();
  EXPECT_EQ(flag->token, "sekret-token");

  auto in_cluster = LoadDefaultConfig("",
                                      Env({{"KUBERNETES_SERVICE_HOST", "10.0.0.1"},
                                           {"KUBERNETES_SERVICE_PORT", "443"},
                                           {"KUBECONFIG", dir + "/config"}}),
                                      FixturePaths());
  ASSERT_TRUE(in_cluster.ok()) << in_cluster.status();
  EXPECT_EQ(in_cluster->source, "in-cluster");

  auto env = LoadDefaultConfig("", Env({{"KUBECONFIG", "/nonexistent:" + dir + "/config"}}),
                               FixturePaths());
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->server, "https://k8s.example.com:6443");

  auto none = LoadDefaultConfig("", Env({{"HOME", "/nonexistent"}}), FixturePaths());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TransportTest, RefusesUnusableConfiguration) {
  ClusterConfig bad_ca;
  bad_ca.server = "https://127.0.0.1:6443";
  bad_ca.ca_pem = "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n";
  auto t = Transport::Create(bad_ca, RealClock::Get());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(t.status().message(), HasSubstr("CA"));

  ClusterConfig bad_url;
  bad_url.server = "ftp://example.com";
  EXPECT_EQ(Transport::Create(bad_url, RealClock::Get()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace zeroscale::kube
