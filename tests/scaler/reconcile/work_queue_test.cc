#include "scaler/reconcile/work_queue.h"

#include <future>
#include <mutex>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale::reconcile {
namespace {

using ::testing::ElementsAre;
using Priority = WorkQueue::Priority;

TEST(WorkQueueTest, UrgentOvertakesNormalAndDelaysWait) {
  WorkQueue q;
  std::mutex mu;
  std::vector<int> order;
  auto add = [&](int n) {
    return [&, n] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(n);
    };
  };
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  // Holds the worker so that what follows queues up behind it.
  q.Post(Priority::kNormal, [open] { open.wait(); });
  q.Post(Priority::kNormal, add(1));
  q.Post(Priority::kNormal, add(2));
  q.Post(Priority::kUrgent, add(3));
  q.PostAfter(absl::Milliseconds(150), Priority::kUrgent, add(4));
  std::promise<void> done;
  q.PostAfter(absl::Milliseconds(200), Priority::kNormal, [&] { done.set_value(); });
  q.Start();
  gate.set_value();
  ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_THAT(order, ElementsAre(3, 1, 2, 4));
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
}  // namespace zeroscale::reconcile
