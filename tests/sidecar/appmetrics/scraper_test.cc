// The app-metrics scraper against a real HTTP server on 127.0.0.1 serving real vLLM, TGI
// and Triton expositions, garbage, errors, an oversized body and a listener that never
// answers; time moves only through a fake clock.
#include "sidecar/appmetrics/scraper.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file/read_file.h"
#include "common/http/http_server.h"
#include "common/prom/presets.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::sidecar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::zeroscale::testing::FakeClock;
using ::zeroscale::testing::FreePort;

std::string Testdata(const std::string& name) {
  absl::StatusOr<std::string> text =
      ReadFileToString(absl::StrCat(ZS_PROM_TESTDATA, "/", name), "test exposition");
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

// The value of a counter in `registry`, by name and label value ("" when unlabelled).
double CounterValue(prometheus::Registry& registry, const std::string& name,
                    const std::string& label_value = "") {
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (f.name != name) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      if (label_value.empty() ? m.label.empty()
                              : (!m.label.empty() && m.label[0].value == label_value)) {
        return m.counter.value;
      }
    }
  }
  return 0;
}

// A TCP listener that never answers: the kernel completes handshakes by itself.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0 && ::listen(fd_, 64) == 0 &&
          ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  bool ok() const { return ok_; }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
  uint16_t port_ = 0;
};

class ScraperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"vllm", "vllm_v1", "tgi", "triton"}) {
      const std::string text = Testdata(absl::StrCat(name, ".txt"));
      router_.HandleSync("GET", absl::StrCat("/", name),
                         [text](const http::Request&) { return http::Response::Text(200, text); });
    }
    router_.HandleSync("GET", "/garbage", [](const http::Request&) {
      return http::Response::Text(200, "<html><body>It works!</body></html>\n");
    });
    router_.HandleSync("GET", "/big", [](const http::Request&) {
      return http::Response::Text(200, std::string(100000, '#'));
    });
    router_.HandleSync("GET", "/broken", [](const http::Request&) {
      return http::Response::Text(500, "internal error\n");
    });
    http::ServerOptions o;
    o.listen = {"127.0.0.1", 0};
    server_ = std::make_unique<http::Server>(o, router_.AsHandler());
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override { server_->Stop(); }

  std::unique_ptr<AppMetricsScraper> Scraper(const std::string& path, const std::string& preset,
                                             uint16_t port = 0) {
    AppMetricsOptions o;
    o.port = port != 0 ? port : server_->port();
    o.path = path;
    absl::StatusOr<std::vector<std::string>> series = prom::SeriesToForward(preset, "", 64);
    EXPECT_TRUE(series.ok());
    o.series = *series;
    o.interval = absl::Seconds(1);
    o.max_body_bytes = 50000;
    o.registry = &registry_;
    absl::StatusOr<std::unique_ptr<AppMetricsScraper>> s =
        AppMetricsScraper::Create(std::move(o), &clock_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  double Errors(const std::string& reason) {
    return CounterValue(registry_, "zeroscale_sidecar_app_metrics_scrape_errors_total", reason);
  }

  FakeClock clock_;
  prometheus::Registry registry_;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(ScraperTest, ScrapesVllmPresetSeries) {
  auto scraper = Scraper("/vllm", "vllm");
  absl::StatusOr<std::map<std::string, double>> got = scraper->ScrapeOnce();
  ASSERT_TRUE(got.ok()) << got.status();
  // The old KV-cache name only: this server predates kv_cache_usage_perc.
  EXPECT_THAT(*got, ElementsAre(Pair("vllm:gpu_cache_usage_perc", 0.4172),
                                Pair("vllm:num_requests_running", 7),
                                Pair("vllm:num_requests_waiting", 3)));
  EXPECT_EQ(scraper->Latest(), *got);
  EXPECT_EQ(CounterValue(registry_, "zeroscale_sidecar_app_metrics_scrapes_total"), 1);
}

TEST_F(ScraperTest, SumsSeveralLabelSets) {
  auto scraper = Scraper("/vllm_v1", "vllm");
  absl::StatusOr<std::map<std::string, double>> got = scraper->ScrapeOnce();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, ElementsAre(Pair("vllm:kv_cache_usage_perc", 0.75),
                                Pair("vllm:num_requests_running", 5),
                                Pair("vllm:num_requests_waiting", 5)));
}

TEST_F(ScraperTest, ScrapesTgiAndTriton) {
  absl::StatusOr<std::map<std::string, double>> tgi = Scraper("/tgi", "tgi")->ScrapeOnce();
  ASSERT_TRUE(tgi.ok()) << tgi.status();
  EXPECT_THAT(*tgi, ElementsAre(Pair("tgi_batch_current_size", 32), Pair("tgi_queue_size", 6)));
  absl::StatusOr<std::map<std::string, double>> triton = Scraper("/triton", "triton")->ScrapeOnce();
  ASSERT_TRUE(triton.ok()) << triton.status();
  EXPECT_THAT(*triton, ElementsAre(Pair("nv_gpu_utilization", 0.83),
                                   Pair("nv_inference_pending_request_count", 7)));
}

// A path alone forwards the gauges the endpoint declares, summed over label sets; counters
// and histograms are not thresholds.
TEST_F(ScraperTest, WithoutPresetOrSeriesEveryGaugeIsForwarded) {
  auto scraper = Scraper("/vllm", "");
  absl::StatusOr<std::map<std::string, double>> got = scraper->ScrapeOnce();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->count("vllm:num_requests_waiting"), 1u);
  EXPECT_EQ(got->count("vllm:gpu_cache_usage_perc"), 1u);
  EXPECT_EQ(got->count("process_resident_memory_bytes"), 1u);
  EXPECT_EQ(got->count("vllm:prompt_tokens_total"), 0u);
  EXPECT_EQ(got->count("python_gc_objects_collected_total"), 0u);
  for (const auto& [name, value] : *got) {
    EXPECT_FALSE(absl::StrContains(name, "_seconds")) << name;  // no histogram parts
  }
  // At most max_series of them, the first exposed.
  absl::StatusOr<std::map<std::string, double>> two =
      SumSeries(Testdata("vllm.txt"), {}, prom::ParseLimits{}, 2);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_THAT(*two, ElementsAre(Pair("process_resident_memory_bytes", ::testing::_),
                                Pair("vllm:cache_config_info", ::testing::_)));
}

TEST_F(ScraperTest, MissingSeriesAreLeftOut) {
  // A vLLM preset on a TGI server: the scrape works, there is just nothing to forward.
  auto scraper = Scraper("/tgi", "vllm");
  absl::StatusOr<std::map<std::string, double>> got = scraper->ScrapeOnce();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, IsEmpty());
  EXPECT_EQ(Errors("parse"), 0);
}

TEST_F(ScraperTest, GarbageIsAParseErrorAndNoData) {
  auto garbage = Scraper("/garbage", "vllm");
  absl::StatusOr<std::map<std::string, double>> got = garbage->ScrapeOnce();
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(got.status().message(), HasSubstr("line 1"));
  EXPECT_EQ(Errors("parse"), 1);
  EXPECT_THAT(garbage->Latest(), IsEmpty());
}

TEST_F(ScraperTest, ErrorsAreCountedByReason) {
  EXPECT_FALSE(Scraper("/broken", "vllm")->ScrapeOnce().ok());
  EXPECT_EQ(Errors("status"), 1);
  absl::StatusOr<std::map<std::string, double>> big = Scraper("/big", "vllm")->ScrapeOnce();
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted) << big.status();
  EXPECT_THAT(big.status().message(), HasSubstr("body over 50000 bytes"));
  EXPECT_EQ(Errors("too_large"), 1);
  EXPECT_FALSE(Scraper("/nothing-here", "vllm")->ScrapeOnce().ok());  // 404
  EXPECT_EQ(Errors("status"), 2);
  const uint16_t closed = static_cast<uint16_t>(FreePort());
  absl::StatusOr<std::map<std::string, double>> refused =
      Scraper("/metrics", "vllm", closed)->ScrapeOnce();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_EQ(Errors("connect"), 1);
}

TEST_F(ScraperTest, SlowEndpointTimesOutAndLatestNeverWaits) {
  SilentListener silent;
  ASSERT_TRUE(silent.ok());
  auto scraper = Scraper("/metrics", "vllm", silent.port());
  // The scrape thread is stuck on the silent app (for its timeout) while the sample loop
  // asks: it gets no series, at once.
  scraper->Start();
  EXPECT_THAT(scraper->Latest(), IsEmpty());
  absl::StatusOr<std::map<std::string, double>> got = scraper->ScrapeOnce();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("no answer within 500ms"));
  scraper->Stop();
  EXPECT_GE(Errors("timeout"), 1);
}

TEST_F(ScraperTest, LatestAgesOutAndTheThreadScrapesEachInterval) {
  auto scraper = Scraper("/tgi", "tgi");
  const absl::Time start = clock_.Now();
  scraper->Start();
  // The first scrape is at once; then the thread waits for the next interval.
  ASSERT_TRUE(clock_.AwaitWaiter(start + absl::Seconds(1), start + absl::Seconds(1)));
  EXPECT_EQ(scraper->Latest().size(), 2u);
  EXPECT_EQ(CounterValue(registry_, "zeroscale_sidecar_app_metrics_scrapes_total"), 1);
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(clock_.AwaitWaiter(start + absl::Seconds(2), start + absl::Seconds(2)));
  EXPECT_EQ(CounterValue(registry_, "zeroscale_sidecar_app_metrics_scrapes_total"), 2);
  scraper->Stop();
  // Interval 1s + timeout 0.5s after the last scrape, its values are no longer current.
  clock_.Advance(absl::Milliseconds(1500));
  EXPECT_EQ(scraper->Latest().size(), 2u);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_THAT(scraper->Latest(), IsEmpty());
}

TEST(ScraperOptionsTest, RefusesWhatCannotWork) {
  FakeClock clock;
  AppMetricsOptions o;
  o.port = 8000;
  o.path = "metrics";
  o.series = {"a"};
  EXPECT_THAT(AppMetricsScraper::Create(o, &clock).status().message(),
              HasSubstr("--app-metrics-path: \"metrics\" must start with '/'"));
  o.path = "/metrics";
  o.timeout = absl::Seconds(1);
  EXPECT_THAT(AppMetricsScraper::Create(o, &clock).status().message(),
              HasSubstr("must be positive and under the interval"));
  o.timeout = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<AppMetricsScraper>> s = AppMetricsScraper::Create(o, &clock);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->timeout(), absl::Milliseconds(500));
}

}  // namespace
}  // namespace zeroscale::sidecar
