#include "common/workqueue/work_queue.h"

#include <future>
#include <mutex>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale {
namespace {

using ::testing::ElementsAre;
using Priority = WorkQueue::Priority;

// Delays are timed on the clock: nothing delayed runs until the test moves it.
TEST(WorkQueueTest, UrgentOvertakesNormalAndDelaysWaitForTheClock) {
  testing::FakeClock clock;
  const absl::Time start = clock.Now();
  WorkQueue q(&clock);
  std::mutex mu;
  std::vector<int> order;
  auto add = [&](int n) {
    return [&, n] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(n);
    };
  };
  auto ran = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return order;
  };
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  // Holds the worker so that what follows queues up behind it.
  q.Post(Priority::kNormal, [open] { open.wait(); });
  q.Post(Priority::kNormal, add(1));
  q.Post(Priority::kNormal, add(2));
  q.Post(Priority::kUrgent, add(3));
  q.PostAfter(absl::Milliseconds(150), Priority::kUrgent, add(4));
  q.PostAfter(absl::Milliseconds(200), Priority::kNormal, add(5));
  q.Start();
  gate.set_value();
  // The worker waits for the first delayed task once the rest has run.
  ASSERT_EQ(clock.AwaitWaiter(start, start + absl::Hours(1)), start + absl::Milliseconds(150));
  EXPECT_THAT(ran(), ElementsAre(3, 1, 2));
  clock.Advance(absl::Milliseconds(150));
  ASSERT_EQ(clock.AwaitWaiter(start, start + absl::Hours(1)), start + absl::Milliseconds(200));
  EXPECT_THAT(ran(), ElementsAre(3, 1, 2, 4));
  clock.Advance(absl::Milliseconds(50));
  ASSERT_EQ(clock.AwaitWaiter(absl::InfiniteFuture(), absl::InfiniteFuture()),
            absl::InfiniteFuture());
  EXPECT_THAT(ran(), ElementsAre(3, 1, 2, 4, 5));
}

TEST(WorkQueueTest, StopDropsWhatIsLeft) {
  WorkQueue q;
  q.Start();
  bool ran = false;
  q.PostAfter(absl::Seconds(30), Priority::kNormal, [&] { ran = true; });
  EXPECT_EQ(q.pending(), 1u);
  q.Stop();
  EXPECT_EQ(q.pending(), 0u);
  q.Post(Priority::kNormal, [&] { ran = true; });
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace zeroscale
