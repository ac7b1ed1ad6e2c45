// The model servers' presets and the names a workload adds to them.
#include "common/prom/presets.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::prom {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(PresetsTest, PresetsAndExtraSeries) {
  absl::StatusOr<std::vector<std::string>> s =
      SeriesToForward("vllm", "vllm:num_requests_waiting, my_queue_depth", 64);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(
      *s, ElementsAre("vllm:num_requests_waiting", "vllm:num_requests_running",
                      "vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc", "my_queue_depth"));
  EXPECT_THAT(SeriesToForward("vlm", "", 64).status().message(),
              HasSubstr("unknown app metrics preset \"vlm\" (one of vllm, tgi, triton)"));
  EXPECT_THAT(SeriesToForward("", "ok,bad-name", 64).status().message(),
              HasSubstr("app metrics series \"bad-name\": not a Prometheus metric name"));
  EXPECT_THAT(SeriesToForward("tgi", "a,b", 3).status().message(),
              HasSubstr("4 app metrics series: at most 3"));
  EXPECT_THAT(*SeriesToForward("", "", 64), IsEmpty());
}

}  // namespace
}  // namespace zeroscale::prom
