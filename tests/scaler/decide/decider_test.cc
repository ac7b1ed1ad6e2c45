// The thread-safe front: calls are posted and run only on the scheduler's thread; a real
// EventLoop runs tasks and timers.
#include "scaler/decide/decider.h"

#include <future>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/scaler/decide/test_util.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::decide {
namespace {

using ::testing::ElementsAre;
using testing::FakeSetter;
using testing::kWorkload;
using testing::RecordingSink;

WorkloadSpec Spec() {
  WorkloadSpec s;
  s.workload = kWorkload;
  s.min_replicas = 0;
  s.max_replicas = 3;
  s.rules = {testing::Rule("busy", Action::kIncreaseInstances, MetricType::kInFlightRequests,
                           Operator::kGreaterThan, 4)};
  return s;
}

TEST(DeciderTest, CallsRunOnlyWhenTheLoopRuns) {
  zeroscale::testing::FakeClock clock;
  ManualScheduler scheduler(&clock);
  FakeSetter setter;
  RecordingSink sink;
  Decider decider(&clock, &scheduler, &setter, &sink);
  absl::Status upserted = absl::UnknownError("not run");
  // From another thread, as ingest or gRPC handlers would.
  std::thread caller([&] {
    decider.Upsert(Spec(), 1, [&](absl::Status s) { upserted = s; });
    Podmetric m = testing::Sample("p0", clock.Now());
    m.in_flight = 9;
    decider.OnSamples({m});
  });
  caller.join();
  EXPECT_TRUE(sink.decisions.empty());
  EXPECT_EQ(scheduler.RunPending(), 2u);
  EXPECT_TRUE(upserted.ok());
  EXPECT_THAT(setter.history, ElementsAre(2));

  absl::StatusOr<WorkloadStatus> status;
  decider.GetStatus(kWorkload, [&](absl::StatusOr<WorkloadStatus> s) { status = s; });
  scheduler.RunPending();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->desired, 2);
  EXPECT_TRUE(status->actuation_in_flight);

  // The completion may come from any thread: it is posted to the loop too.
  std::thread backend([&] { setter.CompleteSet(); });
  backend.join();
  EXPECT_EQ(decider.engine().GetStatus(kWorkload)->replicas, 1) << "not yet run";
  scheduler.RunPending();
  EXPECT_EQ(decider.engine().GetStatus(kWorkload)->replicas, 2);

  decider.GetStatus("ml/Deployment/none", [&](absl::StatusOr<WorkloadStatus> s) { status = s; });
  scheduler.RunPending();
  EXPECT_EQ(status.status().code(), absl::StatusCode::kNotFound);
}

TEST(DeciderTest, ManualSchedulerFiresTimersWhenDue) {
  zeroscale::testing::FakeClock clock;
  ManualScheduler scheduler(&clock);
  std::vector<int> ran;
  scheduler.RunAt(clock.Now() + absl::Seconds(2), [&] { ran.push_back(2); });
  scheduler.RunAt(clock.Now() + absl::Seconds(1), [&] { ran.push_back(1); });
  scheduler.RunPending();
  EXPECT_TRUE(ran.empty());
  EXPECT_EQ(*scheduler.NextTimer(), clock.Now() + absl::Seconds(1));
  clock.Advance(absl::Seconds(5));
  scheduler.RunPending();
  EXPECT_THAT(ran, ElementsAre(1, 2));
}

TEST(DeciderTest, EventLoopRunsTasksAndTimers) {
  EventLoop loop;
  loop.Start();
  std::promise<std::thread::id> task;
  loop.Post([&] { task.set_value(std::this_thread::get_id()); });
  EXPECT_NE(task.get_future().get(), std::this_thread::get_id());
  std::promise<void> timer;
  loop.RunAt(absl::Now() + absl::Milliseconds(5), [&] { timer.set_value(); });
  timer.get_future().get();
  loop.Stop();
  loop.Stop();  // idempotent
}

TEST(DeciderTest, WakeOverARealLoop) {
  EventLoop loop;
  FakeSetter setter;  // completed from this thread below
  RecordingSink sink;
  Decider decider(RealClock::Get(), &loop, &setter, &sink);
  loop.Start();
  std::promise<absl::Status> ready;
  decider.Upsert(Spec(), 0);
  decider.Activate(kWorkload, [&](absl::Status s) { ready.set_value(s); });
  // Wait for the wake to reach the setter (posted, then run on the loop).
  std::promise<void> synced;
  loop.Post([&] { synced.set_value(); });
  synced.get_future().get();
  std::promise<void> completed;
  loop.Post([&] {
    setter.CompleteSet();
    completed.set_value();
  });
  completed.get_future().get();
  decider.OnPodReady(kWorkload, "ml/p0");
  EXPECT_TRUE(ready.get_future().get().ok());
  loop.Stop();
  EXPECT_THAT(setter.history, ElementsAre(1));
}

}  // namespace
}  // namespace zeroscale::decide
