// The workloads file: the spec's example verbatim, its JSON form, and errors that name
// the file, the workload and the field.
#include "common/workloads/workloads.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::workloads {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// SPEC.md section 9, verbatim.
constexpr char kSpecExample[] = R"(workloads:
  - name: demo-model            # workload id becomes local/Deployment/demo-model
    command: ["python3", "demo/model_server.py", "--port", "{port}"]
    port: 0                     # 0: pick a free port per replica
    minReplicas: 0
    maxReplicas: 4
    idleTimeoutSeconds: 30
    route: {host: demo-model.local, pathPrefix: /demo-model}
    rules:                      # ScalingRules, JSON field names of section 3
      - id: busy
        action: INCREASE_INSTANCES
        thresholds: [{metricType: IN_FLIGHT_REQUESTS, operator: GREATER_THAN, value: 4}]
)";

// One valid workload in YAML, with `extra` lines appended to its mapping.
std::string OneWorkload(const std::string& extra, const std::string& name = "m") {
  return absl::StrCat("workloads:\n  - name: ", name, "\n    command: [app, --port, '{port}']\n",
                      extra);
}

absl::Status ParseError(const std::string& text) {
  absl::StatusOr<std::vector<Workload>> w = ParseWorkloads(text, "workloads.yaml");
  EXPECT_FALSE(w.ok()) << text;
  return w.ok() ? absl::OkStatus() : w.status();
}

TEST(WorkloadsTest, ParsesTheSpecExample) {
  absl::StatusOr<std::vector<Workload>> w = ParseWorkloads(kSpecExample, "workloads.yaml");
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->size(), 1u);
  const Workload& d = (*w)[0];
  EXPECT_EQ(d.name, "demo-model");
  EXPECT_EQ(d.id, "local/Deployment/demo-model");
  EXPECT_THAT(d.command, ElementsAre("python3", "demo/model_server.py", "--port", "{port}"));
  EXPECT_EQ(d.port, 0);
  EXPECT_EQ(d.min_replicas, 0);
  EXPECT_EQ(d.max_replicas, 4);
  EXPECT_EQ(d.idle_timeout, absl::Seconds(30));
  ASSERT_TRUE(d.route.has_value());
  EXPECT_EQ(d.route->host, "demo-model.local");
  EXPECT_EQ(d.route->path_prefix, "/demo-model");
  ASSERT_EQ(d.rules.size(), 1u);
  const ScalingRule& r = d.rules[0];
  EXPECT_EQ(r.id, "busy");
  EXPECT_EQ(r.action, Action::kIncreaseInstances);
  EXPECT_EQ(r.target, "local/Deployment/demo-model");  // defaulted to the workload
  EXPECT_EQ(r.window_seconds, 60u);
  ASSERT_EQ(r.thresholds.size(), 1u);
  EXPECT_EQ(r.thresholds[0].metric_type, MetricType::kInFlightRequests);
  EXPECT_EQ(r.thresholds[0].op, Operator::kGreaterThan);
  EXPECT_EQ(r.thresholds[0].value, 4);
  // Optional fields stay unset.
  EXPECT_TRUE(d.readiness_path.empty());
  EXPECT_FALSE(d.activation_timeout.has_value());
  EXPECT_FALSE(d.stop_grace.has_value());
  EXPECT_TRUE(d.env.empty());
  EXPECT_TRUE(d.working_dir.empty());
}

TEST(WorkloadsTest, JsonFormReadsTheSame) {
  constexpr char kJson[] = R"({"workloads": [{
    "name": "demo-model",
    "command": ["python3", "demo/model_server.py", "--port", "{port}"],
    "port": 0, "minReplicas": 0, "maxReplicas": 4, "idleTimeoutSeconds": 30,
    "route": {"host": "demo-model.local", "pathPrefix": "/demo-model"},
    "rules": [{"id": "busy", "action": "INCREASE_INSTANCES",
               "thresholds": [{"metricType": "IN_FLIGHT_REQUESTS", "operator": "GREATER_THAN",
                               "value": 4}]}]}]})";
  absl::StatusOr<std::vector<Workload>> json = ParseWorkloads(kJson, "workloads.json");
  absl::StatusOr<std::vector<Workload>> yaml = ParseWorkloads(kSpecExample, "workloads.yaml");
  ASSERT_TRUE(json.ok()) << json.status();
  ASSERT_TRUE(yaml.ok());
  const Workload& a = (*json)[0];
  const Workload& b = (*yaml)[0];
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.command, b.command);
  EXPECT_EQ(a.max_replicas, b.max_replicas);
  EXPECT_EQ(a.idle_timeout, b.idle_timeout);
  EXPECT_EQ(a.route, b.route);
  EXPECT_EQ(a.rules, b.rules);
}

TEST(WorkloadsTest, OptionalFields) {
  absl::StatusOr<std::vector<Workload>> w = ParseWorkloads(
      OneWorkload("    readinessPath: /ready\n"
                  "    activationTimeoutSeconds: 45\n"
                  "    stopGraceSeconds: 0.5\n"
                  "    workingDir: /tmp\n"
                  "    env: {MODEL: tiny, THREADS: 4, LISTEN: '127.0.0.1:{port}'}\n"
                  "    rules:\n"
                  "      - {id: idle, action: DECREASE_INSTANCES_TO_ZERO, windowSeconds: 30,\n"
                  "         target: local/Deployment/m, cooldownSeconds: 5, step: 2,\n"
                  "         thresholds: [{metricType: REQUEST_RATE, operator: EQUAL_TO, "
                  "value: 0}]}\n"),
      "w.yaml");
  ASSERT_TRUE(w.ok()) << w.status();
  const Workload& m = (*w)[0];
  EXPECT_EQ(m.readiness_path, "/ready");
  EXPECT_EQ(m.activation_timeout, absl::Seconds(45));
  EXPECT_EQ(m.stop_grace, absl::Milliseconds(500));
  EXPECT_EQ(m.working_dir, "/tmp");
  EXPECT_EQ(m.env.at("MODEL"), "tiny");
  EXPECT_EQ(m.env.at("THREADS"), "4");
  EXPECT_EQ(m.env.at("LISTEN"), "127.0.0.1:{port}");
  EXPECT_FALSE(m.route.has_value());
  ASSERT_EQ(m.rules.size(), 1u);
  EXPECT_EQ(m.rules[0].window_seconds, 30u);
  EXPECT_EQ(m.rules[0].cooldown_seconds, 5u);
  EXPECT_EQ(m.rules[0].step, 2u);
  EXPECT_EQ(m.rules[0].action, Action::kDecreaseInstancesToZero);
  // Defaults.
  EXPECT_EQ(m.min_replicas, 0);
  EXPECT_EQ(m.max_replicas, 1);
  EXPECT_EQ(m.idle_timeout, absl::ZeroDuration());
}

TEST(WorkloadsTest, ErrorsNameFileWorkloadAndField) {
  EXPECT_THAT(
      ParseError(OneWorkload("    minReplicas: 3\n    maxReplicas: 2\n", "demo-model")).message(),
      HasSubstr("workloads.yaml: workloads[0] (demo-model): maxReplicas must be >= "
                "minReplicas"));
  struct Case {
    std::string extra;
    std::string expected;
  };
  const Case cases[] = {
      {"    minReplicas: -1\n", "workloads[0] (m): minReplicas must be between 0 and"},
      {"    minReplicas: two\n", "workloads[0] (m): minReplicas must be an integer"},
      {"    maxReplicas: 0\n", "maxReplicas must be between 1 and"},
      {"    port: 70000\n", "port must be between 0 and 65535"},
      {"    port: 8000\n    maxReplicas: 2\n", "port is fixed, so only one replica"},
      {"    idleTimeoutSeconds: -5\n", "idleTimeoutSeconds must not be negative"},
      {"    idleTimeoutSeconds: soon\n", "idleTimeoutSeconds must be a number of seconds"},
      {"    activationTimeoutSeconds: 0\n", "activationTimeoutSeconds must be positive"},
      {"    stopGraceSeconds: [1]\n", "stopGraceSeconds must be a number of seconds"},
      {"    route: {}\n", "route needs a host, a pathPrefix or both"},
      {"    route: {pathPrefix: demo}\n", "route.pathPrefix must start with '/'"},
      {"    route: {host: a/b}\n", "route.host must be a host name"},
      {"    route: {hosst: a}\n", "route.hosst is not a known field"},
      {"    readinessPath: ready\n", "readinessPath must start with '/'"},
      {"    metrics: {path: metrics, preset: vllm}\n", "metrics.path must be an HTTP path"},
      {"    metrics: {preset: vlm}\n", "metrics.preset unknown app metrics preset \"vlm\""},
      {"    metrics: {series: \"a,b-c\"}\n", "metrics.series app metrics series \"b-c\""},
      {"    metrics: {preset: vllm, port: 1}\n", "metrics.port is not a known field"},
      {"    env: {1BAD: x}\n", "env has an invalid variable name '1BAD'"},
      {"    env: {A: [x]}\n", "env.A must be a string"},
      {"    workingDir: [a]\n", "workingDir must be a string"},
      {"    rules: {id: x}\n", "rules must be a list"},
      {"    rules: [{id: r, action: GROW, thresholds: [{metricType: CPU_USAGE, operator: "
       "LESS_THAN, value: 1}]}]\n",
       "workloads[0] (m): rules[0].action: unknown action \"GROW\""},
      {"    rules: [{id: r, action: INCREASE_INSTANCES, thresholds: [{metricType: CPU, "
       "operator: LESS_THAN, value: 1}]}]\n",
       "rules[0].thresholds[0].metricType: unknown metric type \"CPU\""},
      {"    rules: [{id: r, action: INCREASE_INSTANCES, thresholds: [{metricType: CPU_USAGE, "
       "operator: LESS_THAN, value: high}]}]\n",
       "rules[0].thresholds[0].value: must be a number"},
      {"    rules: [{id: r, action: INCREASE_INSTANCES, thresholds: [{metricType: CPU_USAGE, "
       "operator: LESS_THAN, valu: 1}]}]\n",
       "rules[0].thresholds[0].valu is not a known field"},
      {"    rules: [{id: r, action: INCREASE_INSTANCES, windowSecs: 5, thresholds: "
       "[{metricType: CPU_USAGE, operator: LESS_THAN, value: 1}]}]\n",
       "rules[0].windowSecs is not a known field"},
      {"    rules: [{id: r, action: INCREASE_INSTANCES, thresholds: []}]\n", "rules[0].thresholds"},
      {"    rules: [{id: r, action: INCREASE_INSTANCES, target: local/Deployment/other, "
       "thresholds: [{metricType: CPU_USAGE, operator: LESS_THAN, value: 1}]}]\n",
       "rules[0].target must be local/Deployment/m (the workload itself) or omitted"},
  };
  for (const Case& c : cases) {
    const absl::Status s = ParseError(OneWorkload(c.extra));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.extra;
    EXPECT_THAT(s.message(), HasSubstr("workloads.yaml: workloads[0] (m): ")) << c.extra;
    EXPECT_THAT(s.message(), HasSubstr(c.expected)) << c.extra;
  }
}

TEST(WorkloadsTest, AppMetrics) {
  absl::StatusOr<std::vector<Workload>> w =
      ParseWorkloads(OneWorkload("    metrics: {preset: vllm, series: \"my_queue\"}\n"), "w");
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)[0].metrics.has_value());
  EXPECT_EQ((*w)[0].metrics->path, "/metrics");
  EXPECT_EQ((*w)[0].metrics->preset, "vllm");
  EXPECT_EQ((*w)[0].metrics->series, "my_queue");
  w = ParseWorkloads(OneWorkload(""), "w");
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE((*w)[0].metrics.has_value());
}

TEST(WorkloadsTest, KeepAlive) {
  absl::StatusOr<std::vector<Workload>> w = ParseWorkloads(
      OneWorkload("    keepAlive: {policy: adaptive, coldStartSeconds: 180, prewarm: false}\n"),
      "workloads.yaml");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)[0].keep_alive.policy, KeepAlivePolicy::kAdaptive);
  EXPECT_TRUE((*w)[0].keep_alive.policy_set);
  EXPECT_EQ((*w)[0].keep_alive.cold_start, absl::Minutes(3));
  EXPECT_FALSE((*w)[0].keep_alive.prewarm);
  w = ParseWorkloads(OneWorkload(""), "workloads.yaml");
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE((*w)[0].keep_alive.policy_set);  // the default policy

  const std::pair<std::string, std::string> cases[] = {
      {"    keepAlive: adaptive\n", "keepAlive must be a mapping (line 4)"},
      {"    keepAlive: {policy: lru}\n", "keepAlive.policy must be fixed, knative or adaptive"},
      {"    keepAlive: {polcy: fixed}\n", "keepAlive has no field 'polcy'"},
      {"    keepAlive: {policy: [fixed]}\n", "keepAlive must map field names to plain values"},
      {"    keepAlive: {policy: fixed, policy: knative}\n", "is given twice"},
      {"    keepAlive: {headPercentile: 99, tailPercentile: 50}\n",
       "keepAlive.headPercentile must be below tailPercentile"},
      {"    keepAlive: {minSamples: 0}\n", "keepAlive.minSamples must be a whole number from 1"},
  };
  for (const auto& [extra, expected] : cases) {
    const absl::Status s = ParseError(OneWorkload(extra));
    EXPECT_THAT(s.message(), HasSubstr("workloads.yaml: workloads[0] (m): ")) << extra;
    EXPECT_THAT(s.message(), HasSubstr(expected)) << extra;
  }
}

// Found by fuzzing (fuzz/corpus/workloads_yaml/repro_rule_not_utf8): a rule whose text
// was not UTF-8 ended the program with an uncaught nlohmann::type_error.
TEST(WorkloadsTest, ARuleThatIsNotUtf8IsAnErrorNotACrash) {
  const std::string bad =
      "workloads:\n  - name: m\n    command: [x]\n    maxReplicas: 1\n    rules:\n"
      "      - {id: r\xaa, action: INCREASE_INSTANCES, thresholds: [{metricType: "
      "CPU_USAGE, operator: LESS_THAN, value: 1}]}\n";
  absl::StatusOr<std::vector<Workload>> w = ParseWorkloads(bad, "w.yaml");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()),
              HasSubstr("rules[0] holds text that is not valid UTF-8"));
}

TEST(WorkloadsTest, CommandErrors) {
  EXPECT_THAT(ParseError("workloads:\n  - name: m\n").message(),
              HasSubstr("workloads[0] (m): command is required"));
  EXPECT_THAT(ParseError("workloads:\n  - name: m\n    command: []\n").message(),
              HasSubstr("command must be a non-empty list"));
  EXPECT_THAT(ParseError("workloads:\n  - name: m\n    command: app --port {port}\n").message(),
              HasSubstr("command must be a non-empty list"));
  EXPECT_THAT(ParseError("workloads:\n  - name: m\n    command: [app, [x]]\n").message(),
              HasSubstr("command[1] must be a string"));
  // A port per replica the app could never learn: almost always a typo.
  EXPECT_THAT(ParseError("workloads:\n  - name: m\n    command: [app, '{prot}']\n").message(),
              HasSubstr("command must pass {port} to the app"));
  // ...but a fixed port needs no placeholder, and the env may carry it.
  EXPECT_TRUE(ParseWorkloads("workloads:\n  - {name: m, command: [app], port: 9000}\n", "w").ok());
  EXPECT_TRUE(
      ParseWorkloads("workloads:\n  - {name: m, command: [app], env: {PORT: '{port}'}}\n", "w")
          .ok());
}

TEST(WorkloadsTest, NamesAndUnknownKeys) {
  EXPECT_THAT(ParseError("workloads:\n  - command: [a, '{port}']\n").message(),
              HasSubstr("workloads.yaml: workloads[0]: name is required"));
  EXPECT_THAT(ParseError(OneWorkload("", "Demo_Model")).message(),
              HasSubstr("workloads[0] (Demo_Model): name must be a DNS label"));
  const absl::Status typo = ParseError(OneWorkload("    maxReplica: 3\n"));
  EXPECT_THAT(typo.message(),
              HasSubstr("workloads.yaml: workloads[0] (m): maxReplica is not a known field"));
  EXPECT_THAT(typo.message(), HasSubstr("maxReplicas"));  // lists what was meant
  EXPECT_THAT(typo.message(), HasSubstr("(line 4)"));
  EXPECT_THAT(ParseError(OneWorkload("    port: 0\n    port: 0\n")).message(),
              HasSubstr("port is given twice"));
  EXPECT_THAT(ParseError("workload:\n  - name: m\n").message(),
              HasSubstr("workloads.yaml: workload is not a known field"));
  EXPECT_THAT(ParseError("workloads: []\n").message(),
              HasSubstr("workloads.yaml: workloads must be a non-empty list"));
  EXPECT_THAT(ParseError("").message(), HasSubstr("workloads.yaml: must be a mapping"));
  EXPECT_THAT(ParseError("workloads: [\n").message(), HasSubstr("workloads.yaml:2:"));
  EXPECT_THAT(ParseError("workloads: [\n").message(), HasSubstr("not valid YAML"));
}

TEST(WorkloadsTest, DuplicatesAreErrors) {
  const std::string two_named_a =
      "workloads:\n"
      "  - {name: a, command: [x, '{port}']}\n"
      "  - {name: a, command: [y, '{port}']}\n";
  EXPECT_THAT(ParseError(two_named_a).message(),
              HasSubstr("workloads.yaml: workloads[1] (a): name duplicates workloads[0]"));
  const std::string same_host =
      "workloads:\n"
      "  - {name: a, command: [x, '{port}'], route: {host: m.local}}\n"
      "  - {name: b, command: [y, '{port}'], route: {host: M.local, pathPrefix: /b}}\n";
  EXPECT_THAT(ParseError(same_host).message(),
              HasSubstr("workloads[1] (b): route.host 'm.local' is already the route of "
                        "workloads[0]"));
  const std::string same_prefix =
      "workloads:\n"
      "  - {name: a, command: [x, '{port}'], route: {pathPrefix: /m}}\n"
      "  - {name: b, command: [y, '{port}'], route: {pathPrefix: /m/}}\n";
  EXPECT_THAT(ParseError(same_prefix).message(),
              HasSubstr("workloads[1] (b): route.pathPrefix '/m' is already the route of "
                        "workloads[0]"));
  const std::string same_rule =
      "workloads:\n"
      "  - {name: a, command: [x, '{port}'], rules: [{id: busy, action: INCREASE_INSTANCES, "
      "thresholds: [{metricType: CPU_USAGE, operator: GREATER_THAN, value: 80}]}]}\n"
      "  - {name: b, command: [y, '{port}'], rules: [{id: busy, action: INCREASE_INSTANCES, "
      "thresholds: [{metricType: CPU_USAGE, operator: GREATER_THAN, value: 80}]}]}\n";
  EXPECT_THAT(ParseError(same_rule).message(),
              HasSubstr("workloads[1] (b): rules[0].id 'busy' is already a rule of workloads[0]"));
  // Different hosts and prefixes are fine.
  EXPECT_TRUE(ParseWorkloads("workloads:\n"
                             "  - {name: a, command: [x, '{port}'], route: {host: a.local}}\n"
                             "  - {name: b, command: [y, '{port}'], route: {host: b.local}}\n",
                             "w")
                  .ok());
}

TEST(WorkloadsTest, QuotedScalarsStayStrings) {
  // A quoted number is a string to the rule mapping, which then names the field.
  EXPECT_THAT(ParseError(OneWorkload("    rules: [{id: r, action: INCREASE_INSTANCES, "
                                     "thresholds: [{metricType: CPU_USAGE, operator: "
                                     "LESS_THAN, value: '1'}]}]\n"))
                  .message(),
              HasSubstr("rules[0].thresholds[0].value: must be a number"));
}

TEST(WorkloadsTest, LoadsFilesAndFindsWorkloads) {
  const std::string path = ::testing::TempDir() + "/workloads_test.yaml";
  {
    std::ofstream out(path);
    out << kSpecExample;
  }
  absl::StatusOr<std::vector<Workload>> w = LoadWorkloadsFile(path);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_NE(FindWorkload(*w, "demo-model"), nullptr);
  EXPECT_NE(FindWorkload(*w, "local/Deployment/demo-model"), nullptr);
  EXPECT_EQ(FindWorkload(*w, "other"), nullptr);
  std::remove(path.c_str());

  absl::StatusOr<std::vector<Workload>> missing = LoadWorkloadsFile(path);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr(path));

  {
    std::ofstream out(path);
    out << OneWorkload("    minReplicas: 5\n    maxReplicas: 2\n");
  }
  absl::StatusOr<std::vector<Workload>> bad = LoadWorkloadsFile(path);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr(path + ": workloads[0] (m): maxReplicas"));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace zeroscale::workloads
