// AcceptControl's decisions with a fake clock: backoff, rate-limited logging, the cap.
#include "common/net/accept_control.h"

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace zeroscale::net {
namespace {

class CountingObserver : public ListenerObserver {
 public:
  void OnAccepted(absl::string_view) override { ++accepted; }
  void OnClosed(absl::string_view) override { ++closed; }
  void OnAcceptError(absl::string_view) override { ++errors; }
  void OnAtCapacity(absl::string_view) override { ++at_capacity; }
  int accepted = 0, closed = 0, errors = 0, at_capacity = 0;
};

TEST(AcceptControlTest, FailedAcceptsBackOffDoublingToTheMaximumAndResetOnSuccess) {
  testing::FakeClock clock;
  CountingObserver observer;
  AcceptControl control("test", ListenerLimits(), &clock, &observer);
  std::vector<absl::Duration> waits;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(control.MayAccept([] {}));
    waits.push_back(control.OnAcceptError("Too many open files"));
  }
  EXPECT_EQ(waits[0], absl::Milliseconds(10));
  EXPECT_EQ(waits[1], absl::Milliseconds(20));
  EXPECT_EQ(waits[6], absl::Milliseconds(640));
  EXPECT_EQ(waits[7], absl::Seconds(1));
  EXPECT_EQ(waits[9], absl::Seconds(1));
  ASSERT_TRUE(control.MayAccept([] {}));
  control.OnAccepted();
  ASSERT_TRUE(control.MayAccept([] {}));
  EXPECT_EQ(control.OnAcceptError("again"), absl::Milliseconds(10));
  EXPECT_EQ(observer.errors, 11);
  EXPECT_EQ(observer.accepted, 1);
}

TEST(AcceptControlTest, AtMostOneLogLinePerInterval) {
  testing::FakeClock clock;
  AcceptControl control("test", ListenerLimits(), &clock);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(control.MayAccept([] {}));
    control.OnAcceptError("Too many open files");
  }
  EXPECT_EQ(control.stats().log_lines, 1u);
  EXPECT_EQ(control.stats().accept_errors, 1000u);
  clock.Advance(absl::Seconds(10));
  ASSERT_TRUE(control.MayAccept([] {}));
  control.OnAcceptError("Too many open files");
  EXPECT_EQ(control.stats().log_lines, 2u);
}

TEST(AcceptControlTest, TheCapPausesAcceptingUntilAConnectionCloses) {
  testing::FakeClock clock;
  CountingObserver observer;
  ListenerLimits limits;
  limits.max_connections = 2;
  AcceptControl control("test", limits, &clock, &observer);
  int resumed = 0;
  ASSERT_TRUE(control.MayAccept([&] { ++resumed; }));
  control.OnAccepted();
  auto first = std::make_unique<ConnectionSlot>(&control);
  ASSERT_TRUE(control.MayAccept([&] { ++resumed; }));
  control.OnAccepted();
  ConnectionSlot second(&control);
  EXPECT_FALSE(control.MayAccept([&] { ++resumed; }));
  EXPECT_EQ(observer.at_capacity, 1);
  EXPECT_EQ(control.stats().open, 2u);
  first.reset();  // a connection closes: the listener is resumed once, and may reserve
  EXPECT_EQ(resumed, 1);
  EXPECT_TRUE(control.MayAccept([&] { ++resumed; }));
  EXPECT_EQ(control.stats().open, 1u);
  EXPECT_EQ(observer.closed, 1);
}

TEST(AcceptControlTest, AClosedControlResumesNoListener) {
  testing::FakeClock clock;
  ListenerLimits limits;
  limits.max_connections = 1;
  AcceptControl control("test", limits, &clock);
  int resumed = 0;
  ASSERT_TRUE(control.MayAccept([] {}));
  control.OnAccepted();
  auto slot = std::make_unique<ConnectionSlot>(&control);
  EXPECT_FALSE(control.MayAccept([&] { ++resumed; }));
  control.Close();
  slot.reset();
  EXPECT_EQ(resumed, 0);
}

}  // namespace
}  // namespace zeroscale::net
