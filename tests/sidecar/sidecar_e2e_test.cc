// End-to-end tests of the real zeroscale-sidecar binary: a Python backend behind its
// proxy port, the real zeroscale-scaler receiving its stream, a real redis-server
// holding what the scaler stored. Everything runs on loopback ports picked per test.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/auth_files.h"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::sidecar {
namespace {

using ::testing::HasSubstr;
using ::zeroscale::testing::ChildProcess;
using ::zeroscale::testing::FreePort;
using ::zeroscale::testing::HttpGetStatus;
using ::zeroscale::testing::RedisServer;
using ::zeroscale::testing::WaitFor;
using json = nlohmann::json;

constexpr absl::Duration kStartTimeout = absl::Seconds(20);

struct HttpResponse {
  int status = -1;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// Reads until `n` bytes are buffered in `buf`; false on EOF or timeout first.
bool Fill(int fd, std::string* buf, size_t n) {
  char chunk[65536];
  while (buf->size() < n) {
    const ssize_t got = ::read(fd, chunk, sizeof(chunk));
    if (got <= 0) return false;
    buf->append(chunk, static_cast<size_t>(got));
  }
  return true;
}

// One GET on a fresh connection. The body is framed by Content-Length or chunked
// encoding, so the test never depends on who closes the connection.
std::optional<HttpResponse> HttpGet(uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string req =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string buf;
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (!Fill(fd, &buf, buf.size() + 1)) {
      ::close(fd);
      return std::nullopt;
    }
  }
  HttpResponse resp;
  std::vector<std::string> lines = absl::StrSplit(buf.substr(0, end), "\r\n");
  std::vector<std::string> status_line = absl::StrSplit(lines[0], ' ');
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &resp.status)) {
    ::close(fd);
    return std::nullopt;
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    resp.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  std::string rest = buf.substr(end + 4);
  bool ok = true;
  if (auto it = resp.headers.find("content-length"); it != resp.headers.end()) {
    size_t length = 0;
    ok = absl::SimpleAtoi(it->second, &length) && Fill(fd, &rest, length);
    resp.body = rest.substr(0, length);
  } else if (resp.headers["transfer-encoding"] == "chunked") {
    for (;;) {
      size_t eol;
      while ((eol = rest.find("\r\n")) == std::string::npos) {
        if (!(ok = Fill(fd, &rest, rest.size() + 1))) break;
      }
      if (!ok) break;
      size_t size = 0;
      if (!(ok = absl::SimpleHexAtoi(rest.substr(0, rest.find_first_of(";\r")), &size))) break;
      if (size == 0) break;
      if (!(ok = Fill(fd, &rest, eol + 2 + size + 2))) break;
      resp.body.append(rest, eol + 2, size);
      rest.erase(0, eol + 2 + size + 2);
    }
  } else {
    while (Fill(fd, &rest, rest.size() + 1)) {
    }
    resp.body = rest;
  }
  ::close(fd);
  if (!ok) return std::nullopt;
  return resp;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i)
    absl::StrAppend(&hex, absl::Hex(digest[i], absl::kZeroPad2));
  return hex;
}

// The value of an unlabelled series in a Prometheus exposition; nullopt when absent.
std::optional<double> MetricValue(const std::string& exposition, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (!absl::ConsumePrefix(&line, name) || !absl::ConsumePrefix(&line, " ")) continue;
    double v = 0;
    if (absl::SimpleAtod(line, &v)) return v;
  }
  return std::nullopt;
}

// A directory under /tmp removed with the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/zs-sidecar-e2e-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { (void)!std::system(absl::StrCat("rm -rf '", path_, "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class SidecarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    scaler_grpc_ = FreePort();
    scaler_http_ = FreePort();
    scaler_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        ZS_SCALER_BIN, absl::StrCat("--redis=", redis_.address()),
        absl::StrCat("--grpc-listen=127.0.0.1:", scaler_grpc_),
        absl::StrCat("--http-listen=127.0.0.1:", scaler_http_),
        absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()), "--backend=none",
        // Each sidecar streams with its pod's credential (StartSidecar).
        "--auth-tokens=" + testing::WriteTestTokens(dir_, kPods)});
    StartScaler();
    app_port_ = FreePort();
    proxy_port_ = FreePort();
    admin_port_ = FreePort();
  }

  // The pods whose sidecars the tests start; each has a credential.
  inline static const std::vector<std::string> kPods = {
      "e2e/bytes-1",   "e2e/metrics-1", "e2e/restart-1", "e2e/ready-1", "e2e/drain-1",
      "e2e/drain-2",   "e2e/drain-3",   "e2e/drain-4",   "e2e/vllm-1",  "e2e/slow-1",
      "e2e/garbage-1", "e2e/gpu-1",     "e2e/gpu-2"};
  const std::string dir_ = absl::StrCat(::testing::TempDir(), "/sidecar-e2e-", ::getpid());

  void TearDown() override {
    if (HasFailure()) {
      if (sidecar_) std::cerr << "--- sidecar log:\n" << sidecar_->ReadLog();
      if (scaler_) std::cerr << "--- scaler log:\n" << scaler_->ReadLog();
    }
  }

  void StartScaler() {
    ASSERT_TRUE(scaler_->Start().ok());
    ASSERT_TRUE(
        WaitFor([&] { return HttpGetStatus(scaler_http_, "/healthz") == 200; }, kStartTimeout))
        << scaler_->ReadLog();
  }

  // A static file server on app_port_ serving `dir`.
  void StartFileBackend(const std::string& dir) {
    app_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"python3", "-m", "http.server", absl::StrCat(app_port_), "--bind",
                                 "127.0.0.1", "--directory", dir});
    ASSERT_TRUE(app_->Start().ok());
    ASSERT_TRUE(WaitFor([&] { return HttpGetStatus(app_port_, "/") == 200; }, kStartTimeout));
  }

  void StartSidecar(const std::string& pod, std::vector<std::string> extra) {
    std::vector<std::string> argv = {
        ZS_SIDECAR_BIN, absl::StrCat("--scaler=127.0.0.1:", scaler_grpc_),
        absl::StrCat("--app-port=", app_port_), absl::StrCat("--proxy-port=", proxy_port_),
        absl::StrCat("--admin-listen=127.0.0.1:", admin_port_), absl::StrCat("--pod=", pod),
        "--workload=e2e/Deployment/model", "--log-level=debug",
        // Tests that drain say so; the others stop at once.
        "--drain-timeout=0s",
        "--token-file=" +
            testing::WriteTokenFile(dir_ + "/" + testing::PodToken(pod), testing::PodToken(pod))};
    argv.insert(argv.end(), extra.begin(), extra.end());
    sidecar_ = std::make_unique<ChildProcess>(std::move(argv));
    ASSERT_TRUE(sidecar_->Start().ok());
    // The admin server starts last, so once it answers the proxy is listening too.
    ASSERT_TRUE(
        WaitFor([&] { return HttpGetStatus(admin_port_, "/healthz") == 200; }, kStartTimeout))
        << sidecar_->ReadLog();
  }

  // The samples the scaler stored for `pod`, one per sequence number (a replay after a
  // reconnect may store a sample twice).
  std::map<uint64_t, json> Samples(const std::string& pod) {
    std::map<uint64_t, json> out;
    for (absl::string_view line :
         absl::StrSplit(redis_.Cli(absl::StrCat("zrange podmetric:", pod, " 0 -1")), '\n')) {
      if (absl::StripAsciiWhitespace(line).empty()) continue;
      json m = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (m.is_object() && m.contains("seq")) out[m["seq"].get<uint64_t>()] = m;
    }
    return out;
  }

  std::optional<double> SidecarMetric(const std::string& name) {
    std::optional<HttpResponse> r = HttpGet(admin_port_, "/metrics");
    if (!r || r->status != 200) return std::nullopt;
    return MetricValue(r->body, name);
  }

  // ready_server.py on app_port_: /slow takes `seconds` and touches `flag`.slow-started
  // first.
  void StartSlowApp(const std::string& flag, double seconds) {
    app_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        "python3", ZS_READY_SERVER_PY, absl::StrCat(app_port_), flag, absl::StrCat(seconds)});
    ASSERT_TRUE(app_->Start().ok());
    ASSERT_TRUE(WaitFor([&] { return HttpGetStatus(app_port_, "/ok") == 200; }, kStartTimeout));
  }

  // The sample with the highest seq, or an empty object.
  json LastSample(const std::string& pod) {
    std::map<uint64_t, json> s = Samples(pod);
    return s.empty() ? json::object() : s.rbegin()->second;
  }

  RedisServer redis_;
  uint16_t scaler_grpc_ = 0, scaler_http_ = 0;
  uint16_t app_port_ = 0, proxy_port_ = 0, admin_port_ = 0;
  std::unique_ptr<ChildProcess> scaler_, app_, sidecar_;
};

TEST_F(SidecarTest, ProxiesBytesExactlyAndStreamsMeasuredSamples) {
  TempDir site;
  std::string blob(1 << 20, '\0');
  std::mt19937_64 rng(42);
  for (char& c : blob) c = static_cast<char>(rng());
  std::ofstream(site.path() + "/blob", std::ios::binary) << blob;
  const std::string want = Sha256Hex(blob);
  StartFileBackend(site.path());
  const std::string pod = "e2e/bytes-1";
  StartSidecar(pod, {"--sample-interval=200ms"});

  constexpr int kRequests = 20;
  for (int i = 0; i < kRequests; ++i) {
    std::optional<HttpResponse> r = HttpGet(proxy_port_, "/blob?i=" + std::to_string(i));
    ASSERT_TRUE(r.has_value()) << "request " << i;
    ASSERT_EQ(r->status, 200);
    ASSERT_EQ(r->body.size(), blob.size());
    ASSERT_EQ(Sha256Hex(r->body), want) << "request " << i;
  }
  std::optional<HttpResponse> missing = HttpGet(proxy_port_, "/no-such-file");
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 404);

  // Every proxied request is counted in exactly one sample.
  std::map<uint64_t, json> samples;
  ASSERT_TRUE(WaitFor(
      [&] {
        samples = Samples(pod);
        uint64_t total = 0;
        for (const auto& [seq, m] : samples) total += m.value("requestCount", uint64_t{0});
        return total >= kRequests + 1;
      },
      kStartTimeout));
  uint64_t total = 0;
  bool some_latency = false;
  for (const auto& [seq, m] : samples) {
    SCOPED_TRACE(m.dump());
    EXPECT_EQ(m.value("id", ""), pod);
    EXPECT_EQ(m.value("workload", ""), "e2e/Deployment/model");
    for (const char* field : {"cpuUsage", "memoryUsage", "diskUsage", "averageResponseTime",
                              "requestRate", "inFlight", "p99ResponseTime"}) {
      ASSERT_TRUE(m.contains(field) && m[field].is_number()) << field;
      EXPECT_GE(m[field].get<double>(), 0) << field;
    }
    EXPECT_TRUE(m.contains("receivedAt") && m["receivedAt"].is_string());
    const uint64_t count = m.value("requestCount", uint64_t{0});
    total += count;
    if (count == 0) {
      EXPECT_EQ(m["averageResponseTime"].get<double>(), 0);
    } else {
      EXPECT_GT(m["averageResponseTime"].get<double>(), 0);
      EXPECT_GT(m["requestRate"].get<double>(), 0);
      some_latency = true;
    }
  }
  EXPECT_EQ(total, kRequests + 1u);
  EXPECT_TRUE(some_latency);
  // The app answers on its port, so the TCP readiness check passes and samples say so.
  EXPECT_TRUE(samples.rbegin()->second.value("ready", false));
}

// GPU metrics through NVML, here the tests' fake library (tests/sidecar/gpu/fake_nvml.cc),
// which the sidecar loads by --nvml-library: the app's process and a stranger's share one
// GPU, and the samples in Redis carry the app's share only. Then the GPU is lost: the GPU
// fields leave the samples, which keep coming.
TEST_F(SidecarTest, GpuFieldsCarryOnlyThePodsOwnProcessesAndLeaveWhenTheGpuIsLost) {
  TempDir site;
  StartFileBackend(site.path());
  const int app_pid = static_cast<int>(app_->pid());
  const int stranger = 4000000;  // another pod's process on the same GPU
  const std::string config = site.path() + "/nvml.conf";
  const std::string gpu =
      absl::StrCat("device 17179869184\n",                   // 16 GiB
                   "process 0 ", app_pid, " 2147483648\n",   // 2 GiB
                   "process 0 ", stranger, " 8589934592\n",  // 8 GiB
                   "sample 0 ", app_pid, " 40 now\n", "sample 0 ", stranger, " 55 now\n");
  std::ofstream(config) << gpu;
  // Inherited by the sidecar, which the fake library reads its GPUs from.
  ASSERT_EQ(::setenv("FAKE_NVML_CONFIG", config.c_str(), 1), 0);
  const std::string pod = "e2e/gpu-1";
  StartSidecar(pod,
               {"--sample-interval=200ms", "--cgroup-root=", absl::StrCat("--app-pid=", app_pid),
                absl::StrCat("--nvml-library=", ZS_FAKE_NVML)});
  json m;
  ASSERT_TRUE(WaitFor(
      [&] {
        m = LastSample(pod);
        return m.contains("gpuUsage");
      },
      kStartTimeout))
      << m.dump();
  EXPECT_DOUBLE_EQ(m["gpuUsage"].get<double>(), 40);
  EXPECT_DOUBLE_EQ(m["gpuMemoryBytes"].get<double>(), 2147483648.0);
  EXPECT_DOUBLE_EQ(m["gpuMemoryUsage"].get<double>(), 12.5);
  // The admin port shows the same reading (sidecar/report).
  std::optional<HttpResponse> admin = HttpGet(admin_port_, "/metrics");
  ASSERT_TRUE(admin.has_value());
  EXPECT_THAT(admin->body, HasSubstr("zeroscale_sidecar_gpu_memory_bytes{"));

  std::ofstream(config, std::ios::trunc) << gpu << "lost 1\n";
  const uint64_t lost_after = m["seq"].get<uint64_t>();
  ASSERT_TRUE(WaitFor(
      [&] {
        m = LastSample(pod);
        return m.value("seq", uint64_t{0}) > lost_after && !m.contains("gpuUsage");
      },
      kStartTimeout))
      << m.dump();
  EXPECT_FALSE(m.contains("gpuMemoryBytes"));
  EXPECT_FALSE(m.contains("gpuMemoryUsage"));
  EXPECT_TRUE(m.contains("cpuUsage"));
  EXPECT_THAT(sidecar_->ReadLog(), HasSubstr("GPU lost"));
  admin = HttpGet(admin_port_, "/metrics");
  ASSERT_TRUE(admin.has_value());
  EXPECT_THAT(admin->body, ::testing::Not(HasSubstr("zeroscale_sidecar_gpu_memory_bytes{")));
  ::unsetenv("FAKE_NVML_CONFIG");
}

TEST_F(SidecarTest, WithoutNvmlTheSidecarSaysSoOnceAndSendsNoGpuFields) {
  TempDir site;
  StartFileBackend(site.path());
  const std::string pod = "e2e/gpu-2";
  StartSidecar(pod, {"--sample-interval=200ms",
                     "--cgroup-root=", "--nvml-library=/nonexistent/libnvidia-ml.so.1"});
  ASSERT_TRUE(WaitFor([&] { return Samples(pod).size() >= 3; }, kStartTimeout));
  for (const auto& [seq, m] : Samples(pod)) {
    EXPECT_FALSE(m.contains("gpuUsage")) << m.dump();
    EXPECT_FALSE(m.contains("gpuMemoryBytes")) << m.dump();
  }
  // The log file may hold an earlier test's sidecar too (which named the default soname).
  const std::string log = sidecar_->ReadLog();
  const std::string said = "no GPU metrics: /nonexistent/libnvidia-ml.so.1 not found";
  EXPECT_THAT(log, HasSubstr(said));
  EXPECT_EQ(log.find(said), log.rfind(said)) << "logged more than once";
}

TEST_F(SidecarTest, AdminMetricsExposeSidecarCounters) {
  TempDir site;
  std::ofstream(site.path() + "/hello") << "hello\n";
  StartFileBackend(site.path());
  StartSidecar("e2e/metrics-1", {"--sample-interval=200ms"});
  for (int i = 0; i < 3; ++i) {
    std::optional<HttpResponse> r = HttpGet(proxy_port_, "/hello");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->body, "hello\n");
  }
  // The request counter advances when a sample is taken, and acknowledgements follow.
  ASSERT_TRUE(WaitFor(
      [&] {
        return SidecarMetric("zeroscale_sidecar_requests_total").value_or(0) == 3 &&
               SidecarMetric("zeroscale_sidecar_stream_samples_acked_total").value_or(0) > 0;
      },
      kStartTimeout));
  std::optional<HttpResponse> r = HttpGet(admin_port_, "/metrics");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  for (const char* name :
       {"zeroscale_sidecar_requests_total", "zeroscale_sidecar_sample_errors_total",
        "zeroscale_sidecar_app_ready", "zeroscale_sidecar_stream_samples_submitted_total",
        "zeroscale_sidecar_stream_samples_acked_total",
        "zeroscale_sidecar_stream_samples_dropped_total", "zeroscale_sidecar_stream_connected",
        "zeroscale_sidecar_stream_buffered_samples"}) {
    EXPECT_TRUE(MetricValue(r->body, name).has_value()) << name << " in\n" << r->body;
  }
  EXPECT_EQ(MetricValue(r->body, "zeroscale_sidecar_app_ready"), 1.0);
  EXPECT_EQ(MetricValue(r->body, "zeroscale_sidecar_stream_connected"), 1.0);
  EXPECT_EQ(MetricValue(r->body, "zeroscale_sidecar_stream_samples_dropped_total"), 0.0);
}

// The contract of model-server metrics: a real vLLM exposition on the app's /metrics
// reaches Redis as the sample's appMetrics, the preset's series summed over label sets.
TEST_F(SidecarTest, AppMetricsFromVllmReachRedis) {
  TempDir site;
  std::ifstream vllm(ZS_PROM_TESTDATA "/vllm.txt");
  std::ofstream(site.path() + "/metrics") << vllm.rdbuf();
  StartFileBackend(site.path());
  const std::string pod = "e2e/vllm-1";
  StartSidecar(
      pod, {"--sample-interval=200ms", "--app-metrics-path=/metrics", "--app-metrics-preset=vllm"});
  json sample;
  ASSERT_TRUE(WaitFor(
      [&] {
        sample = LastSample(pod);
        return sample.contains("appMetrics");
      },
      kStartTimeout));
  EXPECT_EQ(sample["appMetrics"], json::parse(R"({"vllm:gpu_cache_usage_perc": 0.4172,
      "vllm:num_requests_running": 7, "vllm:num_requests_waiting": 3})"))
      << sample.dump();
  // Scrapes go to the app directly: they are not requests the proxy counts.
  EXPECT_EQ(SidecarMetric("zeroscale_sidecar_requests_total").value_or(-1), 0);
}

// A slow endpoint: samples keep coming, on the sample loop's schedule, without the series;
// each scrape given up is counted.
TEST_F(SidecarTest, ASlowMetricsEndpointLeavesTheSeriesOutNotTheSample) {
  TempDir site;
  StartSlowApp(site.path() + "/flag", 30);
  const std::string pod = "e2e/slow-1";
  StartSidecar(
      pod, {"--sample-interval=200ms", "--app-metrics-path=/slow", "--app-metrics-preset=vllm"});
  ASSERT_TRUE(WaitFor(
      [&] {
        return SidecarMetric(
                   "zeroscale_sidecar_app_metrics_scrape_errors_total{reason=\"timeout\"}")
                   .value_or(0) >= 2;
      },
      kStartTimeout));
  std::map<uint64_t, json> samples;
  ASSERT_TRUE(WaitFor(
      [&] {
        samples = Samples(pod);
        return samples.size() >= 5;
      },
      kStartTimeout));
  for (const auto& [seq, m] : samples) EXPECT_FALSE(m.contains("appMetrics")) << m.dump();
  EXPECT_THAT(sidecar_->ReadLog(), HasSubstr("cannot scrape the app's metrics"));
}

// An endpoint answering something that is not the exposition format: counted, no crash.
TEST_F(SidecarTest, AGarbageMetricsEndpointIsCountedAndSamplesGoOn) {
  TempDir site;
  std::ofstream(site.path() + "/metrics") << "<html><body>\x01\xff{{{ not metrics\n";
  StartFileBackend(site.path());
  const std::string pod = "e2e/garbage-1";
  StartSidecar(pod, {"--sample-interval=200ms", "--app-metrics-path=/metrics",
                     "--app-metrics-series=vllm:num_requests_waiting"});
  ASSERT_TRUE(WaitFor(
      [&] {
        return SidecarMetric("zeroscale_sidecar_app_metrics_scrape_errors_total{reason=\"parse\"}")
                       .value_or(0) >= 2 &&
               Samples(pod).size() >= 3;
      },
      kStartTimeout));
  for (const auto& [seq, m] : Samples(pod)) EXPECT_FALSE(m.contains("appMetrics")) << m.dump();
  EXPECT_EQ(HttpGetStatus(admin_port_, "/healthz"), 200);
  // Only the first failure of a run is logged (then once a minute).
  // (The log file may hold an earlier test's sidecar too; only this one fails to parse.)
  const std::string log = sidecar_->ReadLog();
  size_t logged = 0;
  for (size_t at = log.find("\"reason\":\"parse\""); at != std::string::npos;
       at = log.find("\"reason\":\"parse\"", at + 1)) {
    ++logged;
  }
  EXPECT_EQ(logged, 1u) << log;
}

TEST_F(SidecarTest, ScalerRestartLosesNoSample) {
  TempDir site;
  StartFileBackend(site.path());
  const std::string pod = "e2e/restart-1";
  StartSidecar(pod, {"--sample-interval=100ms"});
  ASSERT_TRUE(WaitFor([&] { return Samples(pod).size() >= 5; }, kStartTimeout));

  scaler_->Signal(SIGKILL);
  scaler_->Stop();
  const uint64_t last_before = Samples(pod).rbegin()->first;
  // Samples taken while the scaler is down wait in the sidecar's buffer.
  ASSERT_TRUE(WaitFor(
      [&] { return SidecarMetric("zeroscale_sidecar_stream_buffered_samples").value_or(0) >= 8; },
      kStartTimeout));
  StartScaler();
  ASSERT_TRUE(WaitFor(
      [&] {
        std::map<uint64_t, json> s = Samples(pod);
        return !s.empty() && s.rbegin()->first >= last_before + 10;
      },
      kStartTimeout));
  ASSERT_TRUE(
      WaitFor([&] { return SidecarMetric("zeroscale_sidecar_stream_buffered_samples") == 0.0; },
              kStartTimeout));

  const std::map<uint64_t, json> samples = Samples(pod);
  std::vector<std::string> gaps;
  for (auto it = samples.begin(), next = std::next(it); next != samples.end(); ++it, ++next) {
    if (next->first != it->first + 1) gaps.push_back(absl::StrCat(it->first, "..", next->first));
  }
  EXPECT_TRUE(gaps.empty()) << "seq gaps: " << absl::StrJoin(gaps, ", ");
  EXPECT_GE(samples.size(), 15u);
  EXPECT_EQ(SidecarMetric("zeroscale_sidecar_stream_samples_dropped_total"), 0.0);
}

TEST_F(SidecarTest, ReadinessFlipSendsASampleAtOnce) {
  TempDir dir;
  const std::string flag = dir.path() + "/ready";
  app_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"python3", ZS_READY_SERVER_PY, absl::StrCat(app_port_), flag});
  ASSERT_TRUE(app_->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return HttpGetStatus(app_port_, "/ready") == 503; }, kStartTimeout));
  const std::string pod = "e2e/ready-1";
  // Far longer than the test: any sample that arrives was sent because readiness flipped.
  StartSidecar(pod, {"--sample-interval=1h", "--readiness-path=/ready"});
  ASSERT_TRUE(WaitFor([&] { return SidecarMetric("zeroscale_sidecar_stream_connected") == 1.0; },
                      kStartTimeout));
  EXPECT_EQ(HttpGetStatus(proxy_port_, "/ready"), 503);
  EXPECT_TRUE(Samples(pod).empty());

  std::ofstream(flag) << "";
  const absl::Time flipped = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return Samples(pod).size() == 1; }, absl::Seconds(5)));
  // Probes run every 100 ms while the app is not ready.
  EXPECT_LT(absl::Now() - flipped, absl::Seconds(2));
  EXPECT_TRUE(Samples(pod).begin()->second.value("ready", false));
  EXPECT_EQ(SidecarMetric("zeroscale_sidecar_app_ready"), 1.0);

  ASSERT_EQ(::unlink(flag.c_str()), 0);
  ASSERT_TRUE(WaitFor([&] { return Samples(pod).size() == 2; }, absl::Seconds(5)));
  EXPECT_FALSE(Samples(pod).rbegin()->second.value("ready", true));
}

// A sidecar told to stop announces not-ready at once (the scaler stores that sample
// while the sidecar is still running), keeps proxying for --drain-timeout, lets the
// request in flight at SIGTERM finish, and only then exits.
TEST_F(SidecarTest, SigtermAnnouncesNotReadyDrainsAndFinishesRequestsInFlight) {
  TempDir dir;
  const std::string started = dir.path() + "/flag.slow-started";
  StartSlowApp(dir.path() + "/flag", /*seconds=*/3);
  const std::string pod = "e2e/drain-1";
  // No periodic samples during the test: each one stored is an announcement.
  StartSidecar(pod, {"--sample-interval=1h", "--drain-timeout=2s"});
  ASSERT_TRUE(WaitFor([&] { return LastSample(pod).value("ready", false); }, kStartTimeout));
  EXPECT_EQ(HttpGetStatus(admin_port_, "/readyz"), 200);

  std::optional<HttpResponse> slow;
  std::thread client([&] { slow = HttpGet(proxy_port_, "/slow"); });
  ASSERT_TRUE(WaitFor([&] { return ::access(started.c_str(), F_OK) == 0; }, kStartTimeout));
  const absl::Time term = absl::Now();
  sidecar_->Signal(SIGTERM);

  // The not-ready announcement is stored while the sidecar still runs.
  ASSERT_TRUE(WaitFor([&] { return !LastSample(pod).value("ready", true); }, kStartTimeout));
  EXPECT_TRUE(sidecar_->running());
  EXPECT_EQ(SidecarMetric("zeroscale_sidecar_app_ready"), 0.0);
  // Draining: not ready to its probe, yet still proxying new requests.
  EXPECT_EQ(HttpGetStatus(admin_port_, "/readyz"), 503);
  std::optional<HttpResponse> during = HttpGet(proxy_port_, "/ok");
  ASSERT_TRUE(during.has_value());
  EXPECT_EQ(during->status, 200);
  EXPECT_EQ(during->body, "ok\n");

  // The request in flight at SIGTERM completes, in full.
  client.join();
  ASSERT_TRUE(slow.has_value());
  EXPECT_EQ(slow->status, 200);
  EXPECT_EQ(slow->body, "slow done\n");
  const std::optional<int> status = sidecar_->WaitForExit(kStartTimeout);
  ASSERT_TRUE(status.has_value()) << "the sidecar did not exit after its drain";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_GE(absl::Now() - term, absl::Seconds(2));  // it drained, not cut short
  const std::string log = sidecar_->ReadLog();
  EXPECT_THAT(log, HasSubstr("the scaler has the not-ready announcement"));
  EXPECT_THAT(log, HasSubstr("drained"));
  // Every sample since SIGTERM said not ready; the last one also counts the requests
  // served while draining.
  EXPECT_FALSE(LastSample(pod).value("ready", true));
  uint64_t requests = 0;
  for (const auto& [seq, m] : Samples(pod)) requests += m.value("requestCount", uint64_t{0});
  EXPECT_EQ(requests, 2u);
}

TEST_F(SidecarTest, TheDrainEndsWhenTheAppStopsAcceptingConnections) {
  TempDir dir;
  StartSlowApp(dir.path() + "/flag", 0);
  const std::string pod = "e2e/drain-2";
  StartSidecar(pod, {"--sample-interval=1h", "--drain-timeout=1h"});
  ASSERT_TRUE(WaitFor([&] { return LastSample(pod).value("ready", false); }, kStartTimeout));
  sidecar_->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return !LastSample(pod).value("ready", true); }, kStartTimeout));
  // New requests could only fail now: no point in waiting out the hour.
  app_->Kill();
  const std::optional<int> status = sidecar_->WaitForExit(kStartTimeout);
  ASSERT_TRUE(status.has_value()) << sidecar_->ReadLog();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_THAT(sidecar_->ReadLog(), HasSubstr("drain ends early"));
}

TEST_F(SidecarTest, WithTheScalerAwayTheDrainStillEnds) {
  TempDir dir;
  StartSlowApp(dir.path() + "/flag", 0);
  StartSidecar("e2e/drain-4", {"--drain-timeout=1s"});
  scaler_->Kill();
  sidecar_->Signal(SIGTERM);
  const std::optional<int> status = sidecar_->WaitForExit(kStartTimeout);
  ASSERT_TRUE(status.has_value()) << sidecar_->ReadLog();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  const std::string log = sidecar_->ReadLog();
  EXPECT_THAT(log, HasSubstr("the not-ready announcement was not acknowledged"));
  EXPECT_THAT(log, HasSubstr("drained"));
}

TEST_F(SidecarTest, ASecondSignalCutsTheDrainShort) {
  TempDir dir;
  StartSlowApp(dir.path() + "/flag", 0);
  StartSidecar("e2e/drain-3", {"--drain-timeout=1h"});
  sidecar_->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return HttpGetStatus(admin_port_, "/readyz") == 503; }, kStartTimeout));
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(sidecar_->ReadLog(), "announcement"); },
                      kStartTimeout));
  sidecar_->Signal(SIGINT);
  const std::optional<int> status = sidecar_->WaitForExit(kStartTimeout);
  ASSERT_TRUE(status.has_value()) << sidecar_->ReadLog();
  EXPECT_THAT(sidecar_->ReadLog(), HasSubstr("second signal"));
}

struct BadConfig {
  std::string name;
  std::vector<std::string> args;
  std::vector<std::string> message;  // substrings the refusal must contain
};

class SidecarConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(SidecarConfigTest, RefusedWithExitCode2NamingTheValue) {
  std::vector<std::string> argv = {ZS_SIDECAR_BIN, "--admin-listen=127.0.0.1:0"};
  argv.insert(argv.end(), GetParam().args.begin(), GetParam().args.end());
  ChildProcess sidecar(argv);
  ASSERT_TRUE(sidecar.Start().ok());
  const std::optional<int> status = sidecar.WaitForExit(absl::Seconds(10));
  ASSERT_TRUE(status.has_value()) << "the sidecar did not refuse to start: " << sidecar.ReadLog();
  ASSERT_TRUE(WIFEXITED(*status)) << *status;
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  const std::string log = sidecar.ReadLog();
  for (const std::string& part : GetParam().message) EXPECT_THAT(log, HasSubstr(part));
}

INSTANTIATE_TEST_SUITE_P(
    BadFlags, SidecarConfigTest,
    ::testing::Values(
        BadConfig{"MissingAppPort", {"--pod=ns/p"}, {"--app-port"}},
        BadConfig{"PodWithoutNamespace", {"--app-port=9000", "--pod=lonely"}, {"lonely", "--pod"}},
        BadConfig{"PodWithTwoSlashes", {"--app-port=9000", "--pod=a/b/c"}, {"a/b/c", "--pod"}},
        BadConfig{"MissingPod", {"--app-port=9000"}, {"--pod"}},
        BadConfig{"SampleIntervalTooShort",
                  {"--app-port=9000", "--pod=ns/p", "--sample-interval=10ms"},
                  {"10ms", "--sample-interval"}},
        BadConfig{"SampleIntervalNotADuration",
                  {"--app-port=9000", "--pod=ns/p", "--sample-interval=often"},
                  {"often", "sample-interval"}},
        BadConfig{"ProxyPortEqualsAppPort",
                  {"--app-port=9000", "--proxy-port=9000", "--pod=ns/p"},
                  {"--proxy-port", "9000", "--app-port"}},
        BadConfig{"AppPortOutOfRange", {"--app-port=70000", "--pod=ns/p"}, {"70000", "app-port"}},
        BadConfig{"AdvertiseAddressWithoutPort",
                  {"--app-port=9000", "--pod=ns/p", "--advertise-address=10.0.0.7"},
                  {"10.0.0.7", "advertise-address"}},
        BadConfig{"DrainTimeoutNegative",
                  {"--app-port=9000", "--pod=ns/p", "--drain-timeout=-1s"},
                  {"-1s", "--drain-timeout"}},
        BadConfig{"DrainTimeoutTooLong",
                  {"--app-port=9000", "--pod=ns/p", "--drain-timeout=2h"},
                  {"2h", "--drain-timeout", "between 0s and 1h"}},
        BadConfig{"UnknownAppMetricsPreset",
                  {"--app-port=9000", "--pod=ns/p", "--app-metrics-preset=vllm2"},
                  {"--app-metrics-preset", "vllm2", "vllm, tgi, triton"}},
        BadConfig{"AppMetricsSeriesNotAMetricName",
                  {"--app-port=9000", "--pod=ns/p", "--app-metrics-series=a,b-c"},
                  {"--app-metrics-series", "b-c"}},
        BadConfig{"AppMetricsPathNotAPath",
                  {"--app-port=9000", "--pod=ns/p", "--app-metrics-path=metrics",
                   "--app-metrics-preset=tgi"},
                  {"--app-metrics-path", "\"metrics\""}},
        BadConfig{"UnknownFlag", {"--app-port=9000", "--pod=ns/p", "--colour=red"}, {"colour"}}),
    [](const ::testing::TestParamInfo<BadConfig>& info) { return info.param.name; });

}  // namespace
}  // namespace zeroscale::sidecar
