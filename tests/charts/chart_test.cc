// Checks the Helm chart without a helm binary: Chart.yaml and values.yaml parse and say
// what Helm requires; every `.Values.…` a template reads exists in values.yaml (a typo
// renders as an empty string, silently) and every value is read by a template; every
// `--flag` a template passes to a program is one the built program accepts (its --help
// lists it); template actions balance. chart_helm_test renders it with the real helm.
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "yaml-cpp/yaml.h"

namespace zeroscale {
namespace {

const std::string kChart = ZS_SOURCE_DIR "/charts/zeroscale";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Templates() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(kChart + "/templates")) {
    const std::string ext = e.path().extension();
    if (ext == ".yaml" || ext == ".tpl" || ext == ".txt") out.push_back(e.path());
  }
  return out;
}

TEST(ChartTest, ChartAndValuesParse) {
  YAML::Node chart = YAML::LoadFile(kChart + "/Chart.yaml");
  EXPECT_EQ(chart["apiVersion"].as<std::string>(), "v2");
  EXPECT_EQ(chart["name"].as<std::string>(), "zeroscale");
  EXPECT_FALSE(chart["version"].as<std::string>().empty());
  EXPECT_FALSE(chart["appVersion"].as<std::string>().empty());
  YAML::Node values = YAML::LoadFile(kChart + "/values.yaml");
  EXPECT_EQ(values["webhook"]["failurePolicy"].as<std::string>(), "Ignore");
  EXPECT_TRUE(values["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  EXPECT_TRUE(values["podSecurityContext"]["runAsNonRoot"].as<bool>());
  // The CRD ships in crds/, which Helm installs before the templates.
  EXPECT_TRUE(std::filesystem::exists(kChart + "/crds/customautoscalers.yaml"));
  EXPECT_TRUE(std::filesystem::exists(kChart + "/crds/allocationpolicies.yaml"));
}

TEST(ChartTest, EveryValueATemplateReadsExists) {
  const YAML::Node values = YAML::LoadFile(kChart + "/values.yaml");
  const std::regex ref(R"(\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+))");
  int refs = 0;
  for (const std::string& path : Templates()) {
    const std::string text = ReadFile(path);
    for (std::sregex_iterator it(text.begin(), text.end(), ref), end; it != end; ++it) {
      ++refs;
      const std::string dotted = (*it)[1].str().substr(1);
      YAML::Node node = YAML::Clone(values);
      for (absl::string_view key : absl::StrSplit(dotted, '.')) {
        ASSERT_TRUE(node.IsMap() && node[std::string(key)])
            << path << ": .Values." << dotted << " is not in values.yaml";
        node = node[std::string(key)];
      }
    }
  }
  EXPECT_GT(refs, 30);
}

// Leaf keys of values.yaml, dotted ("scaler.resources.requests.cpu").
void CollectLeaves(const YAML::Node& node, const std::string& prefix,
                   std::vector<std::string>* out) {
  if (!node.IsMap() || node.size() == 0) {
    out->push_back(prefix);
    return;
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    CollectLeaves(kv.second, prefix.empty() ? key : prefix + "." + key, out);
  }
}

// The other direction: a value no template reads is a setting that silently does nothing
// (metrics.serviceMonitor once was one). A key counts as read when a template names it or
// a map above it (passed whole, as toYaml .Values.scaler.resources does).
TEST(ChartTest, EveryValueIsReadByATemplate) {
  const std::regex ref(R"(\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+))");
  std::set<std::string> read;
  for (const std::string& path : Templates()) {
    const std::string text = ReadFile(path);
    for (std::sregex_iterator it(text.begin(), text.end(), ref), end; it != end; ++it) {
      read.insert((*it)[1].str().substr(1));
    }
  }
  std::vector<std::string> leaves;
  CollectLeaves(YAML::LoadFile(kChart + "/values.yaml"), "", &leaves);
  EXPECT_GT(leaves.size(), 40u);
  for (const std::string& leaf : leaves) {
    bool found = false;
    for (std::string prefix = leaf; !prefix.empty() && !found;) {
      found = read.count(prefix) > 0;
      const size_t dot = prefix.rfind('.');
      prefix = dot == std::string::npos ? "" : prefix.substr(0, dot);
    }
    EXPECT_TRUE(found) << "values.yaml: " << leaf << " is read by no template";
  }
}

TEST(ChartTest, EveryFlagATemplatePassesIsAccepted) {
  const std::map<std::string, std::string> programs = {{"scaler.yaml", ZS_SCALER_BIN},
                                                       {"balancer.yaml", ZS_BALANCER_BIN}};
  const std::regex flag(R"(^\s*- --([a-z0-9-]+)=)", std::regex::multiline);
  for (const auto& [file, binary] : programs) {
    const std::string help = testing::Shell(binary + " --help");
    ASSERT_THAT(help, ::testing::HasSubstr("Flags:")) << binary;
    const std::string text = ReadFile(kChart + "/templates/" + file);
    int flags = 0;
    for (std::sregex_iterator it(text.begin(), text.end(), flag), end; it != end; ++it) {
      ++flags;
      EXPECT_TRUE(absl::StrContains(help, "--" + (*it)[1].str() + " "))
          << file << " passes --" << (*it)[1] << ", which " << binary << " does not accept";
    }
    EXPECT_GT(flags, 5) << file;
  }
}

TEST(ChartTest, TemplateActionsBalance) {
  const std::regex open(R"(\{\{-?\s*(if|with|range|define)\b)");
  const std::regex close(R"(\{\{-?\s*end\s*-?\}\})");
  for (const std::string& path : Templates()) {
    const std::string text = ReadFile(path);
    const auto count = [&text](const std::regex& re) {
      return std::distance(std::sregex_iterator(text.begin(), text.end(), re),
                           std::sregex_iterator());
    };
    EXPECT_EQ(count(open), count(close)) << path;
    EXPECT_EQ(std::count(text.begin(), text.end(), '{'), std::count(text.begin(), text.end(), '}'))
        << path;
  }
}

}  // namespace
}  // namespace zeroscale
