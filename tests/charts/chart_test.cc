// Checks the Helm chart without a helm binary: Chart.yaml and values.yaml parse and say
// what Helm requires; every `.Values.…` a template reads exists in values.yaml (a typo
// renders as an empty string, silently); every `--flag` a template passes to a program
// is one the built program accepts (its --help lists it); template actions balance.
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
