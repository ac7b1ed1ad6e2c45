#include "scaler/report/leader_gauge.h"

#include <atomic>

#include "common/metrics/exposition.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::report {
namespace {

using ::testing::HasSubstr;

// The gauge says what `leading` says at the last Refresh (which the /metrics handler runs
// before each scrape), and the exposition carries it.
TEST(LeaderGaugeTest, FollowsLeadershipOnEachScrape) {
  prometheus::Registry registry;
  std::atomic<bool> leading{false};
  LeaderGauge gauge(&registry, [&leading] { return leading.load(); });
  http::SyncHandler scrape = metrics::ExpositionHandler(&registry, [&gauge] { gauge.Refresh(); });
  http::Request req;
  EXPECT_THAT(scrape(req).body, HasSubstr("\nzeroscale_scaler_leader 0\n"));
  leading = true;
  EXPECT_THAT(scrape(req).body, HasSubstr("\nzeroscale_scaler_leader 1\n"));
  leading = false;  // the Lease is lost
  EXPECT_THAT(scrape(req).body, HasSubstr("\nzeroscale_scaler_leader 0\n"));
}

}  // namespace
}  // namespace zeroscale::report
