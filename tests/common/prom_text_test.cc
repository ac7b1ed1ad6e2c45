// The Prometheus text parser on real model-server expositions (vLLM, TGI, Triton) and on
// every kind of malformed or oversized input.
#include <cmath>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/file/read_file.h"
#include "common/prom/text_parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::prom {
namespace {

using ::testing::HasSubstr;

std::string Testdata(const std::string& name) {
  absl::StatusOr<std::string> text =
      ReadFileToString(absl::StrCat(ZS_PROM_TESTDATA, "/", name), "test exposition");
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

// name -> sum over its label sets.
std::map<std::string, double> Sums(const std::vector<Sample>& samples) {
  std::map<std::string, double> out;
  for (const Sample& s : samples) out[s.name] += s.value;
  return out;
}

TEST(PromTextTest, ParsesVllm) {
  absl::StatusOr<std::vector<Sample>> s = ParseSamples(Testdata("vllm.txt"));
  ASSERT_TRUE(s.ok()) << s.status();
  std::map<std::string, double> sums = Sums(*s);
  EXPECT_EQ(sums["vllm:num_requests_waiting"], 3);
  EXPECT_EQ(sums["vllm:num_requests_running"], 7);
  EXPECT_DOUBLE_EQ(sums["vllm:gpu_cache_usage_perc"], 0.4172);
  EXPECT_DOUBLE_EQ(sums["process_resident_memory_bytes"], 2.183725056e+09);
  const Sample* waiting = nullptr;
  for (const Sample& x : *s) {
    if (x.name == "vllm:num_requests_waiting") waiting = &x;
  }
  ASSERT_NE(waiting, nullptr);
  ASSERT_EQ(waiting->labels.size(), 1u);
  EXPECT_EQ(waiting->labels[0].first, "model_name");
  EXPECT_EQ(waiting->labels[0].second, "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_FALSE(waiting->timestamp_ms.has_value());
}

TEST(PromTextTest, ParsesVllmV1WithSeveralEngines) {
  absl::StatusOr<std::vector<Sample>> s = ParseSamples(Testdata("vllm_v1.txt"));
  ASSERT_TRUE(s.ok()) << s.status();
  std::map<std::string, double> sums = Sums(*s);
  EXPECT_EQ(sums["vllm:num_requests_waiting"], 5);
  EXPECT_DOUBLE_EQ(sums["vllm:kv_cache_usage_perc"], 0.75);
}

TEST(PromTextTest, ParsesTgi) {
  absl::StatusOr<std::vector<Sample>> s = ParseSamples(Testdata("tgi.txt"));
  ASSERT_TRUE(s.ok()) << s.status();
  std::map<std::string, double> sums = Sums(*s);
  EXPECT_EQ(sums["tgi_queue_size"], 6);
  EXPECT_EQ(sums["tgi_batch_current_size"], 32);
}

TEST(PromTextTest, ParsesTritonAndReportsMetadata) {
  std::map<std::string, std::string> types, help;
  int samples = 0;
  absl::Status st = ParseText(
      Testdata("triton.txt"), {}, [&](Sample&&) { ++samples; },
      [&](Metadata&& m) { (m.kind == Metadata::Kind::kType ? types : help)[m.name] = m.text; });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(types["nv_inference_pending_request_count"], "gauge");
  EXPECT_EQ(types["nv_inference_queue_duration_us"], "counter");
  EXPECT_EQ(help["nv_gpu_utilization"], "GPU utilization rate [0.0 - 1.0)");
  EXPECT_EQ(samples, 14);
  absl::StatusOr<std::vector<Sample>> s = ParseSamples(Testdata("triton.txt"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(Sums(*s)["nv_inference_pending_request_count"], 7);
}

TEST(PromTextTest, SpecialValuesTimestampsEscapesAndBlanks) {
  absl::StatusOr<std::vector<Sample>> s = ParseSamples(
      "  a NaN\n"
      "b{x=\"1\"} +Inf 1700000000000\n"
      "c -Inf -5\r\n"
      "\n"
      "d{ p = \"q\\\\r\\\"s\\nt\" , u=\"\", } \t 1.5e3\n"
      "# a comment\n"
      "#\n"
      "e 0x10\n");
  // "0x10" is not a decimal.
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("line 8: e: invalid value \"0x10\""));

  s = ParseSamples(
      "  a NaN\n"
      "b{x=\"1\"} +Inf 1700000000000\n"
      "c -Inf -5\r\n"
      "\n"
      "d{ p = \"q\\\\r\\\"s\\nt\" , u=\"\", } \t 1.5e3\n"
      "# a comment\n"
      "#\n"
      "e{} 1e999");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 5u);
  EXPECT_TRUE(std::isnan((*s)[0].value));
  EXPECT_EQ((*s)[1].value, INFINITY);
  EXPECT_EQ((*s)[1].timestamp_ms, 1700000000000);
  EXPECT_EQ((*s)[2].value, -INFINITY);
  EXPECT_EQ((*s)[2].timestamp_ms, -5);
  ASSERT_EQ((*s)[3].labels.size(), 2u);
  EXPECT_EQ((*s)[3].labels[0].second, "q\\r\"s\nt");
  EXPECT_EQ((*s)[3].labels[1].second, "");
  EXPECT_EQ((*s)[3].value, 1500);
  EXPECT_EQ((*s)[4].value, INFINITY);
}

TEST(PromTextTest, SyntaxErrorsNameTheLine) {
  struct Case {
    std::string text, error;
  } cases[] = {
      {"ok 1\n9bad 1\n", "line 2: invalid metric name"},
      {"a\n", "line 1: a: no value"},
      {"a{b=\"c\"\n", "expected ',' or '}' after label b"},
      {"a{b=\"c} 1\n", "unterminated value"},
      {"a{b=c} 1\n", "value not quoted"},
      {"a{b} 1\n", "no '='"},
      {"a{=\"x\"} 1\n", "invalid label name"},
      {"a{b=\"x\"c=\"y\"} 1\n", "expected ',' or '}'"},
      {"a{b=\"x\",b=\"y\"} 1\n", "label b repeated"},
      {"a{b=\"\\t\"} 1\n", "invalid escape"},
      {"a 1 2 3\n", "text after the timestamp"},
      {"a 1 2.5\n", "invalid timestamp"},
      {"a one\n", "invalid value \"one\""},
      {"a --1\n", "invalid value"},
      {"a; 1\n", "unexpected"},
      {"# TYPE a gauges\n", "unknown type \"gauges\""},
      {"# TYPE a gauge extra\n", "text after the type"},
      {"# HELP 1a x\n", "invalid metric name"},
      {"a{b=\"\x01\"} \x7f\n", "invalid value \"\\x7f\""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<Sample>> s = ParseSamples(c.text);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(s.status().message(), HasSubstr(c.error)) << c.text;
  }
}

TEST(PromTextTest, BoundsAreResourceExhausted) {
  ParseLimits limits;
  limits.max_bytes = 100;
  limits.max_line_bytes = 20;
  limits.max_samples = 2;
  limits.max_labels = 2;
  limits.max_metadata = 1;
  struct Case {
    std::string text, error;
  } cases[] = {
      {std::string(101, '\n'), "101 bytes: more than 100"},
      {"a 1\nb_is_a_long_name_here 1\n", "line 2: 23 bytes: more than 20"},
      {"a 1\nb 1\nc 1\n", "line 3: more than 2 samples"},
      {"a{x=\"\",y=\"\",z=\"\"} 1", "more than 2 labels"},
      {"# TYPE a gauge\n# HELP a b\n", "line 2: more than 1 # HELP"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<Sample>> s = ParseSamples(c.text, limits);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kResourceExhausted) << c.text;
    EXPECT_THAT(s.status().message(), HasSubstr(c.error)) << c.text;
  }
  // Comments and blank lines are not samples.
  EXPECT_TRUE(ParseSamples("# x\n\n# y\na 1\nb 2\n", limits).ok());
}

TEST(PromTextTest, MetricNames) {
  EXPECT_TRUE(IsMetricName("vllm:num_requests_waiting"));
  EXPECT_TRUE(IsMetricName("_a1"));
  EXPECT_FALSE(IsMetricName(""));
  EXPECT_FALSE(IsMetricName("1a"));
  EXPECT_FALSE(IsMetricName("a-b"));
}

}  // namespace
}  // namespace zeroscale::prom
