// The balancer's data path over real 127.0.0.1 sockets: the proxy engine with the
// Dispatcher as picker and observer, the gRPC ScalerClient talking to an in-test
// ActivationService, and recording backends as pods.
#include <atomic>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "balancer/activation/scaler_client.h"
#include "balancer/dispatch/dispatcher.h"
#include "common/metrics/exposition.h"
#include "common/proxy/proxy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/balancer/fake_scaler.h"
#include "tests/balancer/recording_backend.h"
#include "tests/common/proxy/test_backend.h"
#include "tests/testing/child_process.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::balancer {
namespace {

using ::testing::HasSubstr;
using zeroscale::testing::FakeEndpoint;
using zeroscale::testing::FakeScaler;
using zeroscale::testing::RecordingBackend;
using zeroscale::testing::TestClient;
using zeroscale::testing::WaitFor;

constexpr char kWorkload[] = "ml/Deployment/model";
constexpr char kHost[] = "model.local";

class Balancer {
 public:
  struct Options {
    absl::Duration activation_timeout = absl::Seconds(20);
    int threads = 1;
    Settings settings;
    uint16_t scaler_port = 0;  // 0: the fake scaler's
  };

  Balancer(FakeScaler* scaler, Options o) : registry_(), metrics_(&registry_) {
    Route r;
    r.workload = kWorkload;
    r.host = kHost;
    r.path_prefix = "/model";
    r.activation_timeout = o.activation_timeout;
    routes_ = *RouteTable::Create({r});
    ScalerClientOptions so;
    so.target = absl::StrCat("127.0.0.1:", o.scaler_port ? o.scaler_port : scaler->port());
    so.report_interval = absl::Milliseconds(100);
    so.max_backoff = absl::Milliseconds(300);
    client_ = std::make_unique<ScalerClient>(so);
    DispatcherOptions d;
    d.activate_backoff_max = absl::Milliseconds(200);
    dispatcher_ =
        std::make_unique<Dispatcher>(routes_, client_.get(), &metrics_, RealClock::Get(), d);
    dispatcher_->SetSettings(o.settings);
    dispatcher_->Start();
    EXPECT_TRUE(client_
                    ->Start([this](const WorkloadState& s) { dispatcher_->OnWorkloadState(s); },
                            nullptr, [this] { return dispatcher_->TakeTraffic(); })
                    .ok());
    proxy::ProxyOptions po;
    po.listen = {"127.0.0.1", 0};
    po.threads = o.threads;
    proxy_ = std::make_unique<proxy::Proxy>(po, dispatcher_.get(), dispatcher_.get());
    EXPECT_TRUE(proxy_->Start().ok());
  }

  ~Balancer() {
    dispatcher_->Shutdown();
    proxy_->Stop();
    client_->Stop();
  }

  uint16_t port() const { return proxy_->port(); }
  Dispatcher& dispatcher() { return *dispatcher_; }
  WorkloadStatus status() { return dispatcher_->Status(kWorkload); }
  bool WaitForHeld(size_t n) {
    return WaitFor([&] { return status().held == n; }, absl::Seconds(10));
  }
  std::string Metrics() { return metrics::Serialize(registry_); }
  double Counter(const std::string& name) {
    const std::string text = Metrics();
    const std::string key = absl::StrCat(name, "{workload=\"", kWorkload, "\"} ");
    const size_t at = text.find(key);
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + key.size()));
  }

 private:
  prometheus::Registry registry_;
  BalancerMetrics metrics_;
  RouteTable routes_;
  std::unique_ptr<ScalerClient> client_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<proxy::Proxy> proxy_;
};

// Requests route by path prefix: TestClient sends its own Host header.
testing::SimpleResponse Get(uint16_t port, const std::string& target) {
  TestClient c(port);
  return c.Send("GET", target);
}

Settings WithPolicy(Policy p) {
  Settings s;
  s.policy = p;
  return s;
}

class DispatchTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(scaler_.Start().ok()); }
  FakeScaler scaler_;
};

TEST_F(DispatchTest, RoundRobinGoesInOrder) {
  RecordingBackend a("a"), b("b"), c("c");
  Balancer bal(&scaler_, {});
  scaler_.Push(kWorkload, {{"p-a", a.address()}, {"p-b", b.address()}, {"p-c", c.address()}});
  ASSERT_TRUE(WaitFor([&] { return bal.status().ready == 3; }, absl::Seconds(10)));
  std::vector<std::string> order;
  TestClient client(bal.port());
  for (int i = 0; i < 9; ++i) {
    auto r = client.Send("GET", absl::StrCat("/model/r", i));
    ASSERT_EQ(r.status, 200);
    order.push_back(r.body.substr(0, 1));
  }
  EXPECT_THAT(order, ::testing::ElementsAre("a", "b", "c", "a", "b", "c", "a", "b", "c"));
}

TEST_F(DispatchTest, LeastConnectionsFavoursTheFastBackend) {
  RecordingBackend slow("slow", absl::Milliseconds(150)), fast("fast");
  Balancer::Options o;
  o.settings = WithPolicy(Policy::kLeastConnections);
  o.threads = 2;
  Balancer bal(&scaler_, o);
  scaler_.Push(kWorkload, {{"p-slow", slow.address()}, {"p-fast", fast.address()}});
  ASSERT_TRUE(WaitFor([&] { return bal.status().ready == 2; }, absl::Seconds(10)));
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      TestClient c(bal.port());
      for (int i = 0; i < 15; ++i) {
        if (c.Send("GET", absl::StrCat("/model/c", t, "/", i)).status == 200) ok++;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 60);
  // A slow pod holds each request for 150 ms, so least-connections sends it one only when
  // it is no busier than the fast pod, which takes the rest (round robin would split 30/30).
  EXPECT_GT(fast.count(), 3 * slow.count()) << "slow " << slow.count() << " fast " << fast.count();
}

TEST_F(DispatchTest, RandomIsRoughlyUniform) {
  RecordingBackend a("a"), b("b"), c("c");
  Balancer::Options o;
  o.settings = WithPolicy(Policy::kRandom);
  Balancer bal(&scaler_, o);
  scaler_.Push(kWorkload, {{"p-a", a.address()}, {"p-b", b.address()}, {"p-c", c.address()}});
  ASSERT_TRUE(WaitFor([&] { return bal.status().ready == 3; }, absl::Seconds(10)));
  TestClient client(bal.port());
  for (int i = 0; i < 600; ++i) ASSERT_EQ(client.Send("GET", "/model/x").status, 200);
  for (const RecordingBackend* be : {&a, &b, &c}) {
    // Expected 200 each; 140..260 is more than 5 standard deviations wide.
    EXPECT_GT(be->count(), 140u) << be->name();
    EXPECT_LT(be->count(), 260u) << be->name();
  }
  EXPECT_EQ(a.count() + b.count() + c.count(), 600u);
}

TEST_F(DispatchTest, PolicySwitchUnderLoadFailsNoRequest) {
  RecordingBackend a("a", absl::Milliseconds(2)), b("b");
  Balancer::Options o;
  o.threads = 2;
  Balancer bal(&scaler_, o);
  scaler_.Push(kWorkload, {{"p-a", a.address()}, {"p-b", b.address()}});
  ASSERT_TRUE(WaitFor([&] { return bal.status().ready == 2; }, absl::Seconds(10)));
  std::atomic<int> ok{0}, failed{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&] {
      TestClient c(bal.port());
      for (int i = 0; i < 60; ++i) {
        (c.Send("GET", "/model/load").status == 200 ? ok : failed)++;
      }
    });
  }
  std::thread switcher([&] {
    const Policy policies[] = {Policy::kLeastConnections, Policy::kRandom, Policy::kRoundRobin};
    for (int i = 0; !done.load(); ++i) {
      Settings s = WithPolicy(policies[i % 3]);
      s.max_connections = 1 + i % 4;  // shrinking and growing the limit as well
      bal.dispatcher().SetSettings(s);
      std::this_thread::yield();
    }
  });
  for (auto& t : clients) t.join();
  done = true;
  switcher.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(ok.load(), 360);
  EXPECT_EQ(a.count() + b.count(), 360u);
}

TEST_F(DispatchTest, HeldRequestsGoOutInArrivalOrderOnce) {
  RecordingBackend pod("pod");
  // One connection slot: each held request reaches the pod only after the previous one
  // is answered, so the pod sees exactly the order in which they are released.
  Balancer::Options o;
  o.settings.max_connections = 1;
  Balancer bal(&scaler_, o);
  std::vector<std::thread> clients;
  std::vector<int> statuses(10, 0);
  for (int i = 0; i < 10; ++i) {
    clients.emplace_back(
        [&, i] { statuses[i] = Get(bal.port(), absl::StrCat("/model/r", i)).status; });
    ASSERT_TRUE(bal.WaitForHeld(i + 1));  // one at a time, so arrival order is known
  }
  EXPECT_EQ(pod.count(), 0u);
  scaler_.Push(kWorkload, {{"p-1", pod.address()}});
  for (auto& t : clients) t.join();
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(absl::StrCat("/model/r", i));
  EXPECT_EQ(pod.targets(), expected);
  for (int s : statuses) EXPECT_EQ(s, 200);
  EXPECT_EQ(bal.status().held, 0u);
  EXPECT_THAT(
      bal.Metrics(),
      HasSubstr(
          "zeroscale_balancer_hold_duration_seconds_count{workload=\"ml/Deployment/model\"} 10"));
}

TEST_F(DispatchTest, OneActivateForManyHeldRequests) {
  RecordingBackend pod("pod");
  Balancer::Options o;
  o.threads = 2;
  Balancer bal(&scaler_, o);
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    clients.emplace_back([&, i] {
      if (Get(bal.port(), absl::StrCat("/model/", i)).status == 200) ok++;
    });
  }
  ASSERT_TRUE(bal.WaitForHeld(50));
  ASSERT_TRUE(WaitFor([&] { return !scaler_.activate_calls().empty(); }, absl::Seconds(10)));
  scaler_.Push(kWorkload, {{"p-1", pod.address()}});
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 50);
  ASSERT_EQ(scaler_.activate_calls().size(), 1u);
  EXPECT_EQ(scaler_.activate_calls()[0].workload, kWorkload);
  EXPECT_GE(scaler_.activate_calls()[0].held_requests, 1u);
  // Every request reached the pod exactly once.
  std::map<std::string, int> seen;
  for (const auto& t : pod.targets()) seen[t]++;
  EXPECT_EQ(seen.size(), 50u);
  for (const auto& [t, n] : seen) EXPECT_EQ(n, 1) << t;
  EXPECT_EQ(bal.Counter("zeroscale_balancer_activations_total"), 1);
  // The scaler heard about the traffic (so the workload is never judged idle).
  EXPECT_TRUE(scaler_.WaitForTraffic(
      [](const auto& recs) {
        uint64_t n = 0;
        for (const auto& r : recs) n += r.workload == kWorkload ? r.requests : 0;
        return n >= 50;
      },
      absl::Seconds(10)));
}

TEST_F(DispatchTest, HoldTimeoutAnswers503WithRetryAfter) {
  Balancer::Options o;
  o.activation_timeout = absl::Milliseconds(300);
  Balancer bal(&scaler_, o);
  const absl::Time start = absl::Now();
  auto r = Get(bal.port(), "/model/slow-to-wake");
  EXPECT_EQ(r.status, 503);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_FALSE(r.Header("Retry-After").empty());
  EXPECT_THAT(r.body, HasSubstr("no ready pod"));
  EXPECT_EQ(bal.Counter("zeroscale_balancer_hold_timeouts_total"), 1);
  EXPECT_EQ(bal.status().held, 0u);
}

TEST_F(DispatchTest, ClientCancelWhileHeldIsCountedAndNeverForwarded) {
  RecordingBackend pod("pod");
  Balancer bal(&scaler_, {});
  {
    TestClient gone(bal.port());
    gone.WriteRaw("GET /model/cancelled HTTP/1.1\r\nHost: model.local\r\n\r\n");
    ASSERT_TRUE(bal.WaitForHeld(1));
    gone.Close();
  }
  ASSERT_TRUE(bal.WaitForHeld(0));
  EXPECT_EQ(bal.Counter("zeroscale_balancer_cancelled_while_held_total"), 1);
  scaler_.Push(kWorkload, {{"p-1", pod.address()}});
  ASSERT_TRUE(WaitFor([&] { return bal.status().ready == 1; }, absl::Seconds(10)));
  EXPECT_EQ(Get(bal.port(), "/model/after").status, 200);
  EXPECT_EQ(pod.targets(), std::vector<std::string>{"/model/after"});
}

TEST_F(DispatchTest, ScalerUnavailableAtZeroGivesClear503ThenRecovers) {
  RecordingBackend pod("pod");
  const uint16_t port = zeroscale::testing::FreePort();
  FakeScaler later(port);  // not started: the scaler is down
  Balancer::Options o;
  o.activation_timeout = absl::Milliseconds(800);
  o.scaler_port = port;
  Balancer bal(&scaler_, o);
  auto r = Get(bal.port(), "/model/first");
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(r.Header("Retry-After").empty());
  EXPECT_THAT(r.body, HasSubstr("scaler is unreachable"));
  EXPECT_GE(bal.Counter("zeroscale_balancer_activation_failures_total"), 1);

  // The scaler comes back; waking the workload makes a pod ready.
  later.OnActivate([&](const auto&) { later.Push(kWorkload, {{"p-1", pod.address()}}); });
  ASSERT_TRUE(later.Start().ok());
  auto r2 = Get(bal.port(), "/model/second");
  EXPECT_EQ(r2.status, 200) << r2.body;
  EXPECT_EQ(pod.targets(), std::vector<std::string>{"/model/second"});

  // The scaler goes away again: known-ready pods keep taking traffic.
  later.Stop();
  EXPECT_EQ(Get(bal.port(), "/model/third").status, 200);
}

TEST_F(DispatchTest, MaxConnectionsQueuesExcessRequests) {
  RecordingBackend pod("pod", absl::Milliseconds(30));
  Settings s;
  s.max_connections = 2;
  Balancer::Options o;
  o.threads = 2;
  o.settings = s;
  Balancer bal(&scaler_, o);
  scaler_.Push(kWorkload, {{"p-1", pod.address()}});
  ASSERT_TRUE(WaitFor([&] { return bal.status().ready == 1; }, absl::Seconds(10)));
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      if (Get(bal.port(), "/model/q").status == 200) ok++;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_LE(pod.max_concurrent(), 2);
}

TEST_F(DispatchTest, TimeoutSecondsChangedAtRunTimeAppliesToTheNextRequest) {
  RecordingBackend pod("pod");
  Settings s;
  s.timeout_seconds = 1;
  Balancer::Options o;
  o.settings = s;
  Balancer bal(&scaler_, o);
  scaler_.Push(kWorkload, {{"p-1", pod.address()}});
  ASSERT_TRUE(WaitFor([&] { return bal.status().ready == 1; }, absl::Seconds(10)));
  // The engine's own upstream timeout is 60 s: only the setting can make this 504.
  EXPECT_EQ(Get(bal.port(), "/model/gate").status, 504);

  s.timeout_seconds = 30;
  bal.dispatcher().SetSettings(s);
  std::thread release([&] {
    // Past the old 1 s limit, well within the new one.
    absl::SleepFor(absl::Milliseconds(1500));
    pod.Release();
  });
  EXPECT_EQ(Get(bal.port(), "/model/gate").status, 200);
  release.join();
}

ListedPod Listed(const std::string& pod, const RecordingBackend& backend, ListedState state) {
  ListedPod p;
  p.pod = pod;
  p.ip = "127.0.0.1";
  p.address = backend.address();
  p.state = state;
  return p;
}

TEST_F(DispatchTest, KubernetesListedPodsDecideWhichAnnouncedPodsTakeTraffic) {
  RecordingBackend a("a"), b("b");
  Balancer bal(&scaler_, {});
  // At zero, a request is held until a pod is ready: here Kubernetes lists a ready one
  // that no sidecar announces.
  std::thread held([&] { EXPECT_EQ(Get(bal.port(), "/model/held").status, 200); });
  ASSERT_TRUE(bal.WaitForHeld(1));
  bal.dispatcher().OnListedPods(kWorkload,
                                std::vector<ListedPod>{Listed("ml/p-a", a, ListedState::kReady)});
  held.join();
  EXPECT_EQ(a.count(), 1u);

  // b's sidecar reports ready before Kubernetes does (b listed, not ready yet): b takes
  // traffic at once, the fast path of a wake.
  bal.dispatcher().OnListedPods(
      kWorkload, std::vector<ListedPod>{Listed("ml/p-a", a, ListedState::kReady),
                                        Listed("ml/p-b", b, ListedState::kStarting)});
  EXPECT_EQ(bal.status().ready, 1u);
  scaler_.Push(kWorkload, {{"ml/p-b", b.address()}});
  ASSERT_TRUE(WaitFor([&] { return bal.status().ready == 2; }, absl::Seconds(10)));

  // Kubernetes withdraws b (terminating) while the scaler still announces it: no more
  // traffic to b.
  bal.dispatcher().OnListedPods(
      kWorkload, std::vector<ListedPod>{Listed("ml/p-a", a, ListedState::kReady),
                                        Listed("ml/p-b", b, ListedState::kWithdrawn)});
  EXPECT_EQ(bal.status().ready, 1u);
  const size_t b_before = b.count();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Get(bal.port(), "/model/after").status, 200);
  EXPECT_EQ(b.count(), b_before);
  EXPECT_EQ(a.count(), 5u);

  // The workload no longer listed by Kubernetes (its CustomAutoscaler deleted): the
  // scaler's announcements alone decide again, and b is announced.
  bal.dispatcher().OnListedPods(kWorkload, std::nullopt);
  EXPECT_EQ(bal.status().ready, 1u);
  EXPECT_EQ(Get(bal.port(), "/model/last").status, 200);
  EXPECT_EQ(b.count(), b_before + 1);
}

// After a scale to zero Kubernetes has deleted every pod, but the scaler still announces
// one (it had not heard the pod go): the request must wait for a wake, not be sent to
// the dead pod's address (which answered "502 upstream unavailable" within milliseconds).
TEST_F(DispatchTest, AStaleAnnouncementOfADeletedPodHoldsAndWakesInsteadOf502) {
  Balancer bal(&scaler_, {});
  uint16_t dead_port = 0;
  {
    RecordingBackend gone("gone");
    dead_port = gone.port();
    scaler_.Push(kWorkload, {{"ml/p-gone", gone.address()}});
    bal.dispatcher().OnListedPods(
        kWorkload, std::vector<ListedPod>{Listed("ml/p-gone", gone, ListedState::kReady)});
    ASSERT_TRUE(WaitFor([&] { return bal.status().ready == 1; }, absl::Seconds(10)));
    EXPECT_EQ(Get(bal.port(), "/model/before").status, 200);
  }
  // The pod is gone from the slices; the announcement stays.
  bal.dispatcher().OnListedPods(kWorkload, std::vector<ListedPod>{});
  EXPECT_EQ(bal.status().ready, 0u);

  RecordingBackend fresh("fresh");
  scaler_.OnActivate([&](const auto&) {
    // The woken pod: listed by Kubernetes (not ready yet) and announced ready.
    bal.dispatcher().OnListedPods(
        kWorkload, std::vector<ListedPod>{Listed("ml/p-fresh", fresh, ListedState::kStarting)});
    scaler_.Push(kWorkload, {{"ml/p-gone", absl::StrCat("127.0.0.1:", dead_port)},
                             {"ml/p-fresh", fresh.address()}});
  });
  testing::SimpleResponse r = Get(bal.port(), "/model/after");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "fresh /model/after");
  ASSERT_EQ(scaler_.activate_calls().size(), 1u);
  EXPECT_EQ(scaler_.activate_calls()[0].workload, kWorkload);
}

TEST_F(DispatchTest, AChangeOfScalerAsksTheNewOneToWakeHeldWorkloads) {
  RecordingBackend pod("pod");
  Balancer bal(&scaler_, {});
  std::thread held([&] { EXPECT_EQ(Get(bal.port(), "/model/held").status, 200); });
  ASSERT_TRUE(bal.WaitForHeld(1));
  // The (old) scaler accepted the wake; then it is replaced before the pod comes up.
  ASSERT_TRUE(WaitFor([&] { return scaler_.activate_calls().size() == 1; }, absl::Seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return bal.status().activating; }, absl::Seconds(10)));
  bal.dispatcher().OnScalerChanged();
  ASSERT_TRUE(WaitFor([&] { return scaler_.activate_calls().size() == 2; }, absl::Seconds(10)));
  scaler_.Push(kWorkload, {{"ml/p-1", pod.address()}});
  held.join();
  // A workload with a ready pod (or nothing held) asks nothing.
  bal.dispatcher().OnScalerChanged();
  EXPECT_EQ(Get(bal.port(), "/model/after").status, 200);
  EXPECT_EQ(scaler_.activate_calls().size(), 2u);
}

TEST_F(DispatchTest, RoutesReplacedAtRunTime) {
  RecordingBackend pod("pod");
  Balancer bal(&scaler_, {});
  scaler_.Push(kWorkload, {{"p-1", pod.address()}});
  ASSERT_TRUE(WaitFor([&] { return bal.status().ready == 1; }, absl::Seconds(10)));
  EXPECT_EQ(Get(bal.port(), "/model/x").status, 200);
  EXPECT_EQ(Get(bal.port(), "/renamed/x").status, 404);

  Route r;
  r.workload = kWorkload;
  r.path_prefix = "/renamed";
  bal.dispatcher().SetRoutes(*RouteTable::Create({r}));
  EXPECT_EQ(Get(bal.port(), "/renamed/x").status, 200);
  EXPECT_EQ(Get(bal.port(), "/model/x").status, 404);
  EXPECT_THAT(pod.targets(), ::testing::ElementsAre("/model/x", "/renamed/x"));
}

TEST_F(DispatchTest, UnroutedRequestIs404) {
  Balancer bal(&scaler_, {});
  TestClient c(bal.port());
  auto r = c.Send("GET", "/elsewhere");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("no route"));
}

// An Activator that keeps every call unanswered: the workload stays at zero.
class SilentActivator : public Activator {
 public:
  void Activate(const std::string&, uint32_t, ActivateDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(done));
  }

 private:
  std::mutex mu_;
  std::vector<ActivateDone> pending_;
};

// Records whether a pick was answered (not while it is held).
class RecordingSink : public proxy::internal::PickSink {
 public:
  void DeliverPick(proxy::PickResult) override { answered = true; }
  bool answered = false;
};

// `name{workload="<kWorkload>"}`'s value in `text`, or -1 when absent.
double GaugeOf(const std::string& text, const std::string& name) {
  const std::string key = absl::StrCat(name, "{workload=\"", kWorkload, "\"} ");
  const size_t at = text.find(key);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + key.size()));
}

// The age of the oldest held request follows the clock (through the Clock seam, refreshed
// as a scrape does), skips to the next oldest when the oldest leaves, and is 0 when none is
// held; the activation timeout gauge follows the route.
TEST(DispatchMetricsTest, OldestHeldRequestAgeAndActivationTimeout) {
  zeroscale::testing::FakeClock clock;
  SilentActivator activator;
  prometheus::Registry registry;
  BalancerMetrics metrics(&registry);
  Route r;
  r.workload = kWorkload;
  r.host = kHost;
  r.path_prefix = "/model";
  r.activation_timeout = absl::Seconds(120);
  DispatcherOptions options;
  options.default_activation_timeout = absl::Seconds(300);
  Dispatcher d(*RouteTable::Create({r}), &activator, &metrics, &clock, options);
  const auto gauges = [&] {
    d.RefreshHeldAges();
    const std::string text = metrics::Serialize(registry);
    return std::make_pair(GaugeOf(text, "zeroscale_balancer_oldest_held_request_age_seconds"),
                          GaugeOf(text, "zeroscale_balancer_activation_timeout_seconds"));
  };
  EXPECT_EQ(gauges(), std::make_pair(0.0, 120.0));

  std::vector<std::unique_ptr<proxy::RequestHead>> heads;
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  const auto pick = [&](uint64_t id) {
    auto head = std::make_unique<proxy::RequestHead>();
    head->id = id;
    head->method = "GET";
    head->host = kHost;
    head->target = "/model/x";
    sinks.push_back(std::make_shared<RecordingSink>());
    d.Pick(*head, proxy::PickDone(sinks.back()));
    heads.push_back(std::move(head));
  };
  pick(1);
  clock.Advance(absl::Seconds(10));
  pick(2);
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(d.Status(kWorkload).held, 2u);
  EXPECT_FALSE(sinks[0]->answered);
  EXPECT_EQ(gauges().first, 15.0);
  clock.Advance(absl::Milliseconds(500));
  EXPECT_EQ(gauges().first, 15.5);

  d.Cancel(*heads[0]);  // the oldest leaves: the next one's age
  EXPECT_EQ(gauges().first, 5.5);
  d.Cancel(*heads[1]);
  EXPECT_EQ(d.Status(kWorkload).held, 0u);
  EXPECT_EQ(gauges().first, 0.0);

  // A route without its own timeout: the default.
  Route plain = r;
  plain.activation_timeout.reset();
  d.SetRoutes(*RouteTable::Create({plain}));
  EXPECT_EQ(gauges().second, 300.0);
  d.Shutdown();
}

}  // namespace
}  // namespace zeroscale::balancer
