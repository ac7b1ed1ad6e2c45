// The simulator: a tiny trace whose cold starts and idle time are computed by hand, the
// trace readers on good and malformed input (errors name line and column), policy and
// cold-start parsing, and the synthetic population's reproducibility.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scaler/sim/simulator.h"
#include "scaler/sim/synthetic.h"
#include "scaler/sim/trace.h"

namespace zeroscale::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

AppTrace App(std::vector<int> seconds) {
  AppTrace a;
  a.name = "tiny";
  for (int s : seconds) a.requests.push_back(Request{absl::Seconds(s), absl::ZeroDuration()});
  return a;
}

WorkloadModel Model() {
  WorkloadModel m;
  m.cold_start_min = m.cold_start_max = absl::Seconds(100);
  m.service = absl::Seconds(10);
  m.capacity = 1;
  return m;
}

TEST(SimulatorTest, TinyTraceByHand) {
  // Requests at 0s, 60s and 1000s; cold start 100s, 10s each, one at a time, fixed 300s.
  //   0s     request 1 finds zero replicas: cold start 1, held; the wake starts loading
  //   60s    request 2 arrives while loading: held, same cold start
  //   100s   ready: request 1 served 100-110, request 2 queued, served 110-120
  //   120s   idle until the keep-alive ends at 420s: 300s idle, then zero replicas
  //   1000s  request 3: cold start 2, held until 1100s, served 1100-1110
  //   1110s  idle until 1410s: 300s, then zero until the end (3000s)
  absl::StatusOr<Policy> policy = ParsePolicy("fixed:300s", absl::Seconds(100));
  ASSERT_TRUE(policy.ok()) << policy.status();
  AppResult r = SimulateApp(App({0, 60, 1000}), absl::Seconds(3000), *policy, Model(), 0);
  EXPECT_EQ(r.requests, 3);
  EXPECT_EQ(r.cold_starts, 2);
  EXPECT_EQ(r.held, 3);
  EXPECT_THAT(r.added_latency, ElementsAre(100, 40, 100));
  EXPECT_NEAR(r.idle_replica_seconds, 600, 1e-6);
  EXPECT_NEAR(r.up_replica_seconds, 420 + 410, 1e-6);
  EXPECT_EQ(r.prewarms, 0);

  // With a keep-alive of 1000s the third request finds the replica warm, and it idles
  // from 120s to the third request (880s) and from 1010s to 2010s.
  policy = ParsePolicy("fixed:1000s", absl::Seconds(100));
  r = SimulateApp(App({0, 60, 1000}), absl::Seconds(3000), *policy, Model(), 0);
  EXPECT_EQ(r.cold_starts, 1);
  EXPECT_EQ(r.held, 2);
  EXPECT_NEAR(r.idle_replica_seconds, 880 + 1000, 1e-6);
}

TEST(SimulatorTest, AdaptivePreWarmsATimer) {
  // A request every 30 minutes for two days: fixed 10m cold-starts every one; adaptive
  // learns the period and pre-warms, for less idle time.
  std::vector<int> at;
  for (int i = 0; i < 96; ++i) at.push_back(i * 1800 + (i % 3) * 7);
  const absl::Duration length = absl::Hours(48);
  AppResult fixed =
      SimulateApp(App(at), length, *ParsePolicy("fixed:10m", absl::Seconds(100)), Model(), 0);
  AppResult adaptive =
      SimulateApp(App(at), length, *ParsePolicy("adaptive", absl::Seconds(100)), Model(), 0);
  EXPECT_EQ(fixed.cold_starts, 96);
  EXPECT_LT(adaptive.cold_starts, 20);  // the first 10 gaps are learned with fixed 10m
  EXPECT_GT(adaptive.prewarms, 70);
  EXPECT_LT(adaptive.idle_replica_seconds, fixed.idle_replica_seconds);
}

TEST(SimulatorTest, SummaryTakesThePercentileOverApps) {
  std::vector<AppResult> rs(4);
  for (int i = 0; i < 4; ++i) {
    rs[i].requests = 10;
    rs[i].cold_starts = i + 1;  // rates 0.1 .. 0.4
    rs[i].idle_replica_seconds = 5;
  }
  rs.push_back(AppResult{});  // no requests: counted for idle time only
  rs.back().idle_replica_seconds = 1;
  Summary s = Summarize(rs);
  EXPECT_EQ(s.apps, 4);
  EXPECT_EQ(s.requests, 40);
  EXPECT_EQ(s.cold_starts, 10);
  EXPECT_DOUBLE_EQ(s.cold_start_rate_p75, 0.3);
  EXPECT_DOUBLE_EQ(s.idle_replica_seconds, 21);
}

TEST(SimulatorTest, PoliciesAndColdStartsParse) {
  EXPECT_EQ(ParsePolicy("fixed:10m", absl::ZeroDuration())->idle_timeout, absl::Minutes(10));
  EXPECT_EQ(ParsePolicy("knative", absl::ZeroDuration())->keep_alive.policy,
            KeepAlivePolicy::kKnative);
  EXPECT_EQ(ParsePolicy("adaptive:20m", absl::ZeroDuration())->idle_timeout, absl::Minutes(20));
  for (const char* bad : {"fixed", "fixed:", "fixed:soon", "fixed:-1m", "knative:5m", "lru", ""}) {
    EXPECT_FALSE(ParsePolicy(bad, absl::ZeroDuration()).ok()) << bad;
  }
  WorkloadModel m;
  ASSERT_TRUE(ParseColdStart("1m..5m", &m).ok());
  EXPECT_EQ(m.cold_start_min, absl::Minutes(1));
  EXPECT_EQ(m.cold_start_max, absl::Minutes(5));
  EXPECT_THAT(ParseColdStart("5m..1m", &m).message(), HasSubstr("ends before it starts"));
  EXPECT_THAT(ParseColdStart("fast", &m).message(), HasSubstr("'fast' is not a duration"));
}

TEST(SimulatorTest, SyntheticPopulationIsReproducible) {
  SyntheticOptions o;
  o.seed = 42;
  o.apps = 30;
  o.length = absl::Hours(24);
  Trace a = Synthesize(o), b = Synthesize(o);
  ASSERT_EQ(a.apps.size(), 30u);
  for (size_t i = 0; i < a.apps.size(); ++i) {
    ASSERT_EQ(a.apps[i].requests.size(), b.apps[i].requests.size());
    for (size_t k = 0; k < a.apps[i].requests.size(); ++k) {
      ASSERT_EQ(a.apps[i].requests[k].at, b.apps[i].requests[k].at);
    }
  }
  o.seed = 43;
  Trace c = Synthesize(o);
  size_t same = 0;
  for (size_t i = 0; i < a.apps.size(); ++i) {
    same += a.apps[i].requests.size() == c.apps[i].requests.size();
  }
  EXPECT_LT(same, a.apps.size());
}

std::string Azure2019Header(int minutes) {
  std::string h = "HashOwner,HashApp,HashFunction,Trigger";
  for (int i = 1; i <= minutes; ++i) h += "," + std::to_string(i);
  return h + "\n";
}

TEST(TraceTest, Azure2019CountsSpreadOverTheMinute) {
  const std::string text = Azure2019Header(3) +
                           "o,app1,f1,http,2,0,1\r\no,app1,f2,timer,0,0,1\n"
                           "o,app2,f3,queue,0,1,0\n";
  absl::StatusOr<Trace> t = ParseTrace(text, TraceFormat::kAzure2019, "t.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->length, absl::Minutes(3));
  ASSERT_EQ(t->apps.size(), 2u);
  EXPECT_EQ(t->apps[0].name, "app1");
  ASSERT_EQ(t->apps[0].requests.size(), 4u);
  EXPECT_EQ(t->apps[0].requests[0].at, absl::Seconds(15));
  EXPECT_EQ(t->apps[0].requests[1].at, absl::Seconds(45));
  EXPECT_EQ(t->apps[0].requests[2].at, absl::Seconds(150));
  EXPECT_EQ(t->apps[1].requests[0].at, absl::Seconds(90));
}

TEST(TraceTest, Azure2021ArrivesAtEndMinusDuration) {
  absl::StatusOr<Trace> t =
      ParseTrace("app,func,end_timestamp,duration\na,f,10.5,0.5\nb,g,3,1\na,f,2,2\n",
                 TraceFormat::kAzure2021, "t.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->apps.size(), 2u);
  ASSERT_EQ(t->apps[0].requests.size(), 2u);
  EXPECT_EQ(t->apps[0].requests[0].at, absl::ZeroDuration());
  EXPECT_EQ(t->apps[0].requests[1].at, absl::Seconds(10));
  EXPECT_EQ(t->apps[0].requests[1].service, absl::Seconds(0.5));
  EXPECT_EQ(t->length, absl::Seconds(10.5));
}

TEST(TraceTest, TimestampsFromTheLlmTraces) {
  absl::StatusOr<Trace> t = ParseTrace(
      "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n"
      "2023-11-16 18:17:04.0319600,3180,8\n2023-11-16T18:20:03Z,1,1\n",
      TraceFormat::kTimestamps, "dir/llm.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->apps.size(), 1u);
  EXPECT_EQ(t->apps[0].name, "llm.csv");
  ASSERT_EQ(t->apps[0].requests.size(), 3u);
  EXPECT_EQ(t->apps[0].requests[1].at, absl::Microseconds(52000));
  EXPECT_NEAR(absl::ToDoubleSeconds(t->length), 179.02, 0.001);
}

TEST(TraceTest, MalformedFilesNameLineAndColumn) {
  struct Case {
    std::string text;
    TraceFormat format;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"", TraceFormat::kAzure2019, "t.csv: empty file"},
      {"app,func\n", TraceFormat::kAzure2019,
       "t.csv:1:1: expected the Azure Functions 2019 header"},
      {"HashOwner,HashApp,HashFunction,Trigger,1,3\n", TraceFormat::kAzure2019,
       "t.csv:1:42: expected minute column 2, not '3'"},
      {Azure2019Header(3) + "o,a,f,http,1,x,0\n", TraceFormat::kAzure2019,
       "t.csv:2:14: minute 2: invocation count must be a whole number"},
      {Azure2019Header(3) + "o,a,f,http,1,-4,0\n", TraceFormat::kAzure2019, "t.csv:2:14: minute 2"},
      {Azure2019Header(3) + "\n\no,a,f,http,1\n", TraceFormat::kAzure2019,
       "t.csv:4:12: expected 7 fields, found 5"},
      {Azure2019Header(2) + "o,,f,http,1,1\n", TraceFormat::kAzure2019,
       "t.csv:2:3: HashApp is empty"},
      {"app,func,end_timestamp,duration\na,f,1e999,1\n", TraceFormat::kAzure2021,
       "t.csv:2:5: end_timestamp must be a number of seconds"},
      {"app,func,end_timestamp,duration\na,f,10,abc\n", TraceFormat::kAzure2021,
       "t.csv:2:8: duration must be a number of seconds from 0"},
      {"app,func,end_timestamp,duration\na,f,1,5\n", TraceFormat::kAzure2021,
       "t.csv:2:7: duration 5s is longer than end_timestamp 1s"},
      {"app,func,end_timestamp,duration\na,f,1\n", TraceFormat::kAzure2021,
       "t.csv:2:5: expected 4 fields, found 3"},
      {"TIMESTAMP\n2023-11-16 18:17:03\nyesterday,5\n", TraceFormat::kTimestamps,
       "t.csv:3:1: expected a timestamp"},
      {"TIMESTAMP\n", TraceFormat::kTimestamps, "t.csv: no requests"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Trace> t = ParseTrace(c.text, c.format, "t.csv");
    ASSERT_FALSE(t.ok()) << c.text;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(t.status().message(), HasSubstr(c.error)) << c.text;
  }
}

TEST(TraceTest, ShippedSamplesParse) {
  absl::StatusOr<Trace> t =
      ReadTrace(std::string(ZS_TRACES) + "/invocations.csv", TraceFormat::kAzure2019);
  ASSERT_TRUE(t.ok()) << t.status();
  size_t n = 0;
  for (const AppTrace& a : t->apps) n += a.requests.size();
  EXPECT_EQ(n, 4525u);
  EXPECT_EQ(t->length, absl::Hours(24));
  t = ReadTrace(std::string(ZS_TRACES) + "/Azure2021_200.csv", TraceFormat::kAzure2021);
  ASSERT_TRUE(t.ok()) << t.status();
  t = ReadTrace(std::string(ZS_TRACES) + "/AzureLLMInferenceTrace_code.csv",
                TraceFormat::kTimestamps);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->apps[0].requests.size(), 8819u);
  EXPECT_FALSE(ReadTrace("/nonexistent/trace.csv", TraceFormat::kAzure2019).ok());
}

}  // namespace
}  // namespace zeroscale::sim
