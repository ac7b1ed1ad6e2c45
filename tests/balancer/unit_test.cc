// Pure logic of the balancer: route matching and the routes file, endpoint selection per
// policy, settings validation.
#include <map>

#include "balancer/policy/policy.h"
#include "balancer/policy/settings.h"
#include "balancer/routing/routes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::balancer {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

Route R(std::string workload, std::string host, std::string prefix) {
  Route r;
  r.workload = std::move(workload);
  r.host = std::move(host);
  r.path_prefix = std::move(prefix);
  return r;
}

TEST(RoutesTest, HostWinsThenLongestPrefixOnSegmentBoundary) {
  auto t = RouteTable::Create({R("a/Deployment/a", "A.local", "/a"),
                               R("b/Deployment/b", "", "/a/b"), R("c/Deployment/c", "", "/")});
  ASSERT_TRUE(t.ok()) << t.status();
  auto match = [&](std::string host, std::string target) {
    const Route* r = t->Match(host, target);
    return r ? r->workload : std::string("none");
  };
  EXPECT_EQ(match("a.local:8000", "/zzz"), "a/Deployment/a");  // case and port ignored
  EXPECT_EQ(match("x", "/a/b/c"), "b/Deployment/b");
  EXPECT_EQ(match("x", "/a/b?q=1"), "b/Deployment/b");
  EXPECT_EQ(match("x", "/a/bc"), "a/Deployment/a");
  EXPECT_EQ(match("x", "/a"), "a/Deployment/a");
  EXPECT_EQ(match("x", "/ab"), "c/Deployment/c");
  auto no_root = RouteTable::Create({R("a/Deployment/a", "", "/a")});
  EXPECT_EQ(no_root->Match("x", "/ab"), nullptr);
}

TEST(RoutesTest, RejectsConflictsAndBadPrefixes) {
  auto dup = RouteTable::Create({R("a/D/a", "h", ""), R("b/D/b", "H", "")});
  EXPECT_THAT(dup.status().message(), HasSubstr("already routed"));
  EXPECT_FALSE(RouteTable::Create({R("a/D/a", "", "nope")}).ok());
  EXPECT_FALSE(RouteTable::Create({R("a/D/a", "", "")}).ok());
}

TEST(RoutesTest, ReadsTheWorkloadsFile) {
  auto routes = ParseRoutes(R"(
workloads:
  - name: demo-model
    command: ["python3", "-m", "http.server", "{port}"]
    minReplicas: 0
    maxReplicas: 2
    activationTimeoutSeconds: 90
    route: {host: demo-model.local, pathPrefix: /demo-model}
  - name: no-route
    command: ["sleep", "{port}"]
    maxReplicas: 1
)",
                            "test.yaml");
  ASSERT_TRUE(routes.ok()) << routes.status();
  ASSERT_EQ(routes->size(), 1u);
  EXPECT_EQ((*routes)[0].workload, "local/Deployment/demo-model");
  EXPECT_EQ((*routes)[0].host, "demo-model.local");
  EXPECT_EQ((*routes)[0].path_prefix, "/demo-model");
  EXPECT_EQ((*routes)[0].activation_timeout, absl::Seconds(90));
}

TEST(PolicyTest, RoundRobinCyclesInOrder) {
  SelectorState st;
  std::vector<size_t> got;
  for (int i = 0; i < 6; ++i) got.push_back(SelectEndpoint(Policy::kRoundRobin, {0, 0, 0}, &st));
  EXPECT_THAT(got, ::testing::ElementsAre(0, 1, 2, 0, 1, 2));
}

TEST(PolicyTest, LeastConnectionsPicksTheLeastBusyAndRotatesTies) {
  SelectorState st;
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(SelectEndpoint(Policy::kLeastConnections, {3, 1, 2}, &st), 1u);
  std::map<size_t, int> ties;
  for (int i = 0; i < 6; ++i) ties[SelectEndpoint(Policy::kLeastConnections, {0, 0, 5}, &st)]++;
  EXPECT_EQ(ties[0], 3);
  EXPECT_EQ(ties[1], 3);
  EXPECT_EQ(ties.count(2), 0u);
}

TEST(PolicyTest, RandomIsRoughlyUniform) {
  SelectorState st;
  std::vector<int> n(4, 0);
  for (int i = 0; i < 40000; ++i) n[SelectEndpoint(Policy::kRandom, {0, 0, 0, 0}, &st)]++;
  for (int c : n) {
    EXPECT_GT(c, 9400);
    EXPECT_LT(c, 10600);
  }
}

TEST(PolicyTest, NamesRoundTrip) {
  for (Policy p : {Policy::kRoundRobin, Policy::kLeastConnections, Policy::kRandom}) {
    EXPECT_EQ(ParsePolicy(PolicyName(p)), p);
  }
  EXPECT_FALSE(ParsePolicy("bogus").has_value());
}

TEST(SettingsTest, ValidationNamesTheField) {
  const Settings cur;
  auto msg = [&](const std::string& body) {
    return std::string(ApplySettingsJson(body, cur).status().message());
  };
  EXPECT_THAT(msg(R"({"policy":"bogus"})"), StartsWith("policy:"));
  EXPECT_THAT(msg(R"({"policy":3})"), StartsWith("policy:"));
  EXPECT_THAT(msg(R"({"max_connections":-1})"), StartsWith("max_connections:"));
  EXPECT_THAT(msg(R"({"max_connections":0})"), StartsWith("max_connections:"));
  EXPECT_THAT(msg(R"({"max_connections":1.5})"), StartsWith("max_connections:"));
  EXPECT_THAT(msg(R"({"max_connections":"10"})"), StartsWith("max_connections:"));
  EXPECT_THAT(msg(R"({"timeout_seconds":-5})"), StartsWith("timeout_seconds:"));
  EXPECT_THAT(msg(R"({"timeout_seconds":0})"), StartsWith("timeout_seconds:"));
  EXPECT_THAT(msg(R"({"timeout_seconds":99999999})"), StartsWith("timeout_seconds:"));
  EXPECT_THAT(msg(R"({"environment":"a b"})"), StartsWith("environment:"));
  EXPECT_THAT(msg(R"({"maxConnections":5})"), StartsWith("maxConnections:"));
  EXPECT_THAT(msg("not json"), StartsWith("body:"));
  EXPECT_THAT(msg("[1]"), StartsWith("body:"));
}

// Reproducer of a remote crash (issue 10): the value was rendered back into the error
// with a recursive dump(), and 100,000 levels overflowed the stack.
TEST(SettingsTest, ADeeplyNestedValueIsRefusedWithoutRecursion) {
  const std::string body =
      R"({"max_connections": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  absl::StatusOr<Settings> s = ApplySettingsJson(body, Settings());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()),
              StartsWith("body: nested deeper than 8 levels (the limit)"));
  // Within the limit: named by type, not rendered.
  s = ApplySettingsJson(R"({"max_connections": [[[[1]]]]})", Settings());
  EXPECT_EQ(s.status().message(),
            "max_connections: must be a positive integer up to 1000000, got a JSON array");
}

TEST(SettingsTest, ErrorsNeverEchoALongValue) {
  const std::string huge(1 << 20, 'x');
  for (const std::string& body : {R"({"policy":")" + huge + R"("})", R"({")" + huge + R"(":1})",
                                  R"({"environment":")" + huge + R"("})"}) {
    absl::StatusOr<Settings> s = ApplySettingsJson(body, Settings());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_LT(s.status().message().size(), 300u) << s.status().message().substr(0, 300);
  }
  EXPECT_EQ(ApplySettingsJson(std::string(5 << 20, ' '), Settings()).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(SettingsTest, PartialBodiesKeepOtherFields) {
  Settings cur;
  cur.max_connections = 7;
  auto s = ApplySettingsJson(R"({"policy":"random","updated_at":"whatever"})", cur);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->policy, Policy::kRandom);
  EXPECT_EQ(s->max_connections, 7);
  EXPECT_EQ(s->timeout_seconds, 60);
  auto full = ApplySettingsJson(
      R"({"environment":"prod","policy":"least_connections","max_connections":100,"timeout_seconds":30})",
      cur);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->environment, "prod");
  EXPECT_EQ(full->max_connections, 100);
  EXPECT_EQ(full->timeout_seconds, 30);
}

}  // namespace
}  // namespace zeroscale::balancer
