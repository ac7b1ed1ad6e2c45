// The local backend end to end: real app processes (python3 -m http.server), the real
// zeroscale-sidecar in front of each, and a real zeroscale-scaler with redis-server, so
// the sidecars' samples land in Redis. Crashes are real SIGKILLs; "nothing left running"
// is checked with kill(pid, 0). Restart backoffs and grace periods are timed on a
// FakeClock the tests move.
#include "scaler/local/local_backend.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <future>
#include <iterator>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/redis_server.h"

namespace zeroscale::local {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using zeroscale::testing::ChildProcess;
using zeroscale::testing::FreePort;
using zeroscale::testing::HttpGetStatus;
using zeroscale::testing::RedisServer;
using zeroscale::testing::Shell;
using zeroscale::testing::WaitFor;

constexpr char kWorkload[] = "local/Deployment/web";

// A process that exists and is not a zombie. Zombies count as gone: the backend reaps its
// own children, and grandchildren it orphans are init's to reap.
bool Alive(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// Whether any live process is in process group `pgid`.
bool GroupAlive(pid_t pgid) {
  DIR* proc = ::opendir("/proc");
  bool found = false;
  while (dirent* e = ::readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    // After the command: state ppid pgrp ...
    std::vector<std::string> f = absl::StrSplit(stat.substr(paren + 2), ' ');
    if (f.size() > 2 && f[0] != "Z" && f[2] == absl::StrCat(pgid)) found = true;
  }
  ::closedir(proc);
  return found;
}

std::vector<std::string> Cmdline(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/cmdline"), std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  std::string s = buf.str();
  if (!s.empty() && s.back() == '\0') s.pop_back();
  return absl::StrSplit(s, '\0');
}

uint16_t PortOf(const std::string& address) {
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) << address;
  return static_cast<uint16_t>(port);
}

class LocalBackendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new RedisServer();
    ASSERT_TRUE(redis_->Start().ok());
    http_ = FreePort();
    grpc_ = FreePort();
    scaler_ = new ChildProcess(
        {ZS_SCALER_BIN, "--backend=none", absl::StrCat("--redis=", redis_->address()),
         absl::StrCat("--http-listen=127.0.0.1:", http_),
         absl::StrCat("--grpc-listen=127.0.0.1:", grpc_),
         absl::StrCat("--webhook-listen=127.0.0.1:", FreePort()),
         // The replicas' credentials are the backend's own (registered in the process that
         // runs it, see EachReplicaGetsACredentialOfItsOwn): this separate scaler only
         // stores samples. The whole path is tests/e2e/local_scaling_test.cc's.
         "--insecure"},
        ::testing::TempDir() + "/local_backend_test_scaler.log");
    ASSERT_TRUE(scaler_->Start().ok());
    ASSERT_TRUE(WaitFor([] { return HttpGetStatus(http_, "/readyz") == 200; }, absl::Seconds(20)))
        << scaler_->ReadLog();
  }
  static void TearDownTestSuite() {
    delete scaler_;
    delete redis_;
  }

  void SetUp() override {
    dir_ = ::testing::TempDir() + "/local_backend_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(std::system(("rm -rf " + dir_ + " && mkdir -p " + dir_ + "/logs").c_str()), 0);
    std::ofstream(dir_ + "/index.html") << "hello\n";
  }

  workloads::Workload Web(std::vector<std::string> command = {}) {
    workloads::Workload w;
    w.name = "web";
    w.id = kWorkload;
    w.command = command.empty()
                    ? std::vector<std::string>{"python3", "-m",        "http.server", "{port}",
                                               "--bind",  "127.0.0.1", "--directory", dir_}
                    : command;
    w.max_replicas = 3;
    return w;
  }

  LocalBackendOptions Options() {
    LocalBackendOptions o;
    o.sidecar_path = ZS_SIDECAR_BIN;
    o.scaler_address = absl::StrCat("127.0.0.1:", grpc_);
    o.sample_interval = absl::Milliseconds(200);
    o.stop_grace = absl::Seconds(5);
    o.restart_backoff_initial = absl::Milliseconds(200);
    o.log_dir = dir_ + "/logs";
    return o;
  }

  void Make(std::vector<workloads::Workload> w, LocalBackendOptions o) {
    backend_ = std::make_unique<LocalBackend>(std::move(w), std::move(o), &clock_);
    backend_->SetEndpointsListener(
        [this](const std::string& workload, const std::vector<Endpoint>& endpoints) {
          std::lock_guard<std::mutex> lock(mu_);
          notified_.push_back(endpoints.size());
          EXPECT_EQ(workload, kWorkload);
        });
    ASSERT_TRUE(backend_->Start().ok());
  }

  absl::Status Set(int32_t n) {
    std::promise<absl::Status> p;
    backend_->SetReplicas(kWorkload, Get(), n, "test", [&p](absl::Status s) { p.set_value(s); });
    return p.get_future().get();
  }

  int32_t Get() {
    std::promise<absl::StatusOr<int32_t>> p;
    backend_->GetReplicas(kWorkload, [&p](absl::StatusOr<int32_t> n) { p.set_value(n); });
    absl::StatusOr<int32_t> n = p.get_future().get();
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  // Each replica answers through its sidecar's proxy.
  bool AllAnswer() {
    std::vector<Endpoint> endpoints = backend_->Endpoints(kWorkload);
    for (const Endpoint& e : endpoints) {
      if (HttpGetStatus(PortOf(e.address), "/index.html") != 200) return false;
    }
    return true;
  }

  std::string Logs() {
    std::string out;
    for (const char* f : {"web-0.app.log", "web-0.sidecar.log", "web-1.sidecar.log"}) {
      std::ifstream in(dir_ + "/logs/" + f);
      std::stringstream buf;
      buf << in.rdbuf();
      absl::StrAppend(&out, "--- ", f, "\n", buf.str());
    }
    return out;
  }

  static std::set<pid_t> AllPids(const std::vector<std::pair<pid_t, pid_t>>& pairs) {
    std::set<pid_t> out;
    for (const auto& [app, sidecar] : pairs) out.insert({app, sidecar});
    return out;
  }

  static RedisServer* redis_;
  static ChildProcess* scaler_;
  static uint16_t http_, grpc_;
  zeroscale::testing::FakeClock clock_;
  std::string dir_;
  std::mutex mu_;
  std::vector<size_t> notified_;
  // Last: destroyed first, since its listener writes the members above.
  std::unique_ptr<LocalBackend> backend_;
};

RedisServer* LocalBackendTest::redis_ = nullptr;
ChildProcess* LocalBackendTest::scaler_ = nullptr;
uint16_t LocalBackendTest::http_ = 0;
uint16_t LocalBackendTest::grpc_ = 0;

TEST_F(LocalBackendTest, ScalesZeroToTwoToZeroWithRealProcesses) {
  Make({Web()}, Options());
  EXPECT_EQ(Get(), 0);
  EXPECT_TRUE(backend_->Endpoints(kWorkload).empty());

  ASSERT_TRUE(Set(2).ok());
  EXPECT_EQ(Get(), 2);
  // SetReplicas returns once the processes exist, before the apps are ready.
  std::vector<Endpoint> endpoints = backend_->Endpoints(kWorkload);
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_EQ(endpoints[0].pod, "local/web-0");
  EXPECT_EQ(endpoints[1].pod, "local/web-1");
  EXPECT_NE(endpoints[0].address, endpoints[1].address);
  EXPECT_THAT(endpoints[0].address, HasSubstr("127.0.0.1:"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_EQ(notified_, std::vector<size_t>{2});
  }

  const auto pids = backend_->Pids(kWorkload);
  ASSERT_EQ(pids.size(), 2u);
  // The app's command line is the user's, verbatim but for the port.
  // The app's command line is the user's, verbatim but for the port. (python3 may be a
  // shim that execs the real one in the same process, hence the wait.)
  std::vector<std::string> app;
  ASSERT_TRUE(WaitFor(
      [&] {
        app = Cmdline(pids[0].first);
        return app.size() == 8 && app[1] == "-m";
      },
      absl::Seconds(10)))
      << absl::StrJoin(app, "|");
  EXPECT_THAT(app[0], HasSubstr("python3"));
  EXPECT_EQ(app[3].find_first_not_of("0123456789"), std::string::npos) << app[3];
  EXPECT_EQ(absl::StrJoin(app.begin() + 4, app.end(), " "),
            absl::StrCat("--bind 127.0.0.1 --directory ", dir_));
  const std::vector<std::string> sidecar = Cmdline(pids[0].second);
  EXPECT_EQ(sidecar[0], ZS_SIDECAR_BIN);
  EXPECT_THAT(sidecar, Contains(absl::StrCat("--scaler=127.0.0.1:", grpc_)));
  EXPECT_THAT(sidecar, Contains(absl::StrCat("--app-port=", app[3])));
  // The proxy of a local replica listens on loopback only.
  EXPECT_THAT(sidecar,
              Contains(absl::StrCat("--proxy-listen=127.0.0.1:", PortOf(endpoints[0].address))));
  EXPECT_THAT(sidecar, Contains("--pod=local/web-0"));
  EXPECT_THAT(sidecar, Contains("--workload=local/Deployment/web"));
  EXPECT_THAT(sidecar, Contains("--sample-interval=200ms"));

  // Requests through each replica's proxy address reach its app.
  ASSERT_TRUE(WaitFor([&] { return AllAnswer(); }, absl::Seconds(20))) << Logs();
  EXPECT_EQ(HttpGetStatus(PortOf(endpoints[1].address), "/missing"), 404);
  // And the sidecars' samples reach Redis through the real scaler.
  for (const Endpoint& e : endpoints) {
    EXPECT_TRUE(WaitFor(
        [&] {
          int64_t n = 0;
          return absl::SimpleAtoi(
                     absl::StripAsciiWhitespace(redis_->Cli("ZCARD podmetric:" + e.pod)), &n) &&
                 n > 0;
        },
        absl::Seconds(20)))
        << e.pod << "\n"
        << Logs() << scaler_->ReadLog();
  }

  ASSERT_TRUE(Set(0).ok());
  EXPECT_EQ(Get(), 0);
  EXPECT_TRUE(backend_->Endpoints(kWorkload).empty());
  const std::set<pid_t> all = AllPids(pids);
  ASSERT_TRUE(WaitFor(
      [&] {
        for (pid_t p : all) {
          if (Alive(p)) return false;
        }
        return backend_->Stats(kWorkload).running == 0;
      },
      absl::Seconds(10)));
  for (pid_t p : all) EXPECT_FALSE(GroupAlive(p)) << "process group " << p << " left behind";
  const ReplicaStats stats = backend_->Stats(kWorkload);
  EXPECT_EQ(stats.started, 2u);
  EXPECT_EQ(stats.stopped, 2u);
  EXPECT_EQ(stats.crashed, 0u);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(notified_, (std::vector<size_t>{2, 0}));
}

// Each replica's sidecar gets a token of its own, bound to its pod and workload, in a file
// only this user can read; it is withdrawn (and the file removed) with the replica.
TEST_F(LocalBackendTest, EachReplicaGetsACredentialOfItsOwn) {
  auth::StaticTokens tokens;
  LocalBackendOptions o = Options();
  o.credentials = &tokens;
  Make({Web()}, o);
  ASSERT_TRUE(Set(2).ok());
  const auto pids = backend_->Pids(kWorkload);
  ASSERT_EQ(pids.size(), 2u);
  std::vector<std::string> files;
  for (size_t i = 0; i < 2; ++i) {
    std::string file;
    for (const std::string& arg : Cmdline(pids[i].second)) {
      if (absl::StartsWith(arg, "--token-file=")) file = arg.substr(strlen("--token-file="));
    }
    ASSERT_FALSE(file.empty()) << "replica " << i << " has no --token-file";
    struct stat st;
    ASSERT_EQ(::stat(file.c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << file;
    std::string dir = file.substr(0, file.rfind('/'));
    ASSERT_EQ(::stat(dir.c_str(), &st), 0) << dir;
    EXPECT_EQ(st.st_mode & 0777, 0700u) << dir;
    std::string token;
    std::ifstream(file) >> token;
    absl::StatusOr<auth::Identity> who = tokens.Authenticate(token);
    ASSERT_TRUE(who.ok()) << who.status();
    EXPECT_EQ(who->pod, absl::StrCat("local/web-", i));
    EXPECT_EQ(who->workload, kWorkload);
    files.push_back(file);
  }
  EXPECT_NE(files[0], files[1]);
  EXPECT_EQ(tokens.size(), 2u);
  ASSERT_TRUE(Set(0).ok());
  ASSERT_TRUE(WaitFor([&] { return tokens.size() == 0; }, absl::Seconds(20)));
  for (const std::string& f : files) EXPECT_NE(::access(f.c_str(), F_OK), 0) << f;
}

TEST_F(LocalBackendTest, ScaleDownStopsTheNewest) {
  Make({Web()}, Options());
  ASSERT_TRUE(Set(3).ok());
  const auto before = backend_->Pids(kWorkload);
  ASSERT_EQ(before.size(), 3u);
  ASSERT_TRUE(Set(1).ok());
  std::vector<Endpoint> endpoints = backend_->Endpoints(kWorkload);
  ASSERT_EQ(endpoints.size(), 1u);
  EXPECT_EQ(endpoints[0].pod, "local/web-0");
  ASSERT_TRUE(WaitFor(
      [&] {
        return !Alive(before[1].first) && !Alive(before[1].second) && !Alive(before[2].first) &&
               !Alive(before[2].second);
      },
      absl::Seconds(10)));
  EXPECT_TRUE(Alive(before[0].first));
  EXPECT_TRUE(Alive(before[0].second));
}

TEST_F(LocalBackendTest, ReplacesAReplicaWhoseAppIsKilled) {
  Make({Web()}, Options());
  ASSERT_TRUE(Set(1).ok());
  ASSERT_TRUE(WaitFor([&] { return AllAnswer(); }, absl::Seconds(20))) << Logs();
  const auto before = backend_->Pids(kWorkload);
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(::kill(before[0].first, SIGKILL), 0);

  // A new replica, with new processes and a new pod id; the old sidecar is stopped.
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto now = backend_->Pids(kWorkload);
        return now.size() == 1 && now[0].first != before[0].first && !Alive(before[0].second);
      },
      absl::Seconds(15)));
  EXPECT_EQ(Get(), 1);
  std::vector<Endpoint> endpoints = backend_->Endpoints(kWorkload);
  ASSERT_EQ(endpoints.size(), 1u);
  EXPECT_EQ(endpoints[0].pod, "local/web-1");
  EXPECT_TRUE(WaitFor([&] { return AllAnswer(); }, absl::Seconds(20))) << Logs();
  const ReplicaStats stats = backend_->Stats(kWorkload);
  EXPECT_EQ(stats.crashed, 1u);
  EXPECT_EQ(stats.started, 2u);
  EXPECT_EQ(stats.running, 1);
}

TEST_F(LocalBackendTest, ReplacesAReplicaWhoseSidecarIsKilled) {
  Make({Web()}, Options());
  ASSERT_TRUE(Set(2).ok());
  ASSERT_TRUE(WaitFor([&] { return AllAnswer(); }, absl::Seconds(20))) << Logs();
  const auto before = backend_->Pids(kWorkload);
  ASSERT_EQ(before.size(), 2u);
  ASSERT_EQ(::kill(before[1].second, SIGKILL), 0);

  ASSERT_TRUE(WaitFor(
      [&] {
        const auto now = backend_->Pids(kWorkload);
        return now.size() == 2 && now[0] == before[0] && now[1].second != before[1].second &&
               !Alive(before[1].first);
      },
      absl::Seconds(15)));
  EXPECT_TRUE(WaitFor([&] { return AllAnswer(); }, absl::Seconds(20))) << Logs();
  EXPECT_EQ(backend_->Stats(kWorkload).crashed, 1u);
}

TEST_F(LocalBackendTest, ShutdownLeavesNothingRunning) {
  Make({Web()}, Options());
  ASSERT_TRUE(Set(2).ok());
  const std::set<pid_t> all = AllPids(backend_->Pids(kWorkload));
  ASSERT_EQ(all.size(), 4u);
  backend_->Shutdown();
  // Shutdown returns only once every child is reaped.
  for (pid_t p : all) {
    EXPECT_FALSE(Alive(p)) << p;
    // Grandchildren (a replica's shell's own children) are killed with their process group
    // but are not the backend's to reap: they finish dying just after (seen under load as a
    // process of the group still exiting when Shutdown returned).
    WaitFor([&] { return !GroupAlive(p); }, absl::Seconds(5));
    EXPECT_FALSE(GroupAlive(p)) << "process group " << p << "\n"
                                << Shell(absl::StrCat(
                                       "ps -e -o pid,ppid,pgid,stat,cmd | awk '$3 == ", p, "'"));
  }
  EXPECT_TRUE(backend_->Endpoints(kWorkload).empty());
  EXPECT_EQ(Set(1).code(), absl::StatusCode::kUnavailable);
  backend_->Shutdown();  // idempotent
}

TEST_F(LocalBackendTest, KillsAReplicaThatIgnoresSigterm) {
  // The shell makes SIGTERM ignored and exec keeps it so: python never stops on its own.
  LocalBackendOptions o = Options();
  o.stop_grace = absl::Milliseconds(500);
  workloads::Workload w = Web(
      {"sh", "-c", "trap '' TERM; exec python3 -m http.server \"$0\" --bind 127.0.0.1", "{port}"});
  w.working_dir = dir_;  // serves index.html from there
  Make({w}, o);
  ASSERT_TRUE(Set(1).ok());
  ASSERT_TRUE(WaitFor([&] { return AllAnswer(); }, absl::Seconds(20))) << Logs();
  const auto pids = backend_->Pids(kWorkload);
  ASSERT_TRUE(Set(0).ok());
  // It is given its grace, on the clock: not killed before it is over, killed after.
  clock_.Advance(absl::Milliseconds(499));
  EXPECT_TRUE(Alive(pids[0].first));
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(
      WaitFor([&] { return !Alive(pids[0].first) && !Alive(pids[0].second); }, absl::Seconds(10)));
}

TEST_F(LocalBackendTest, CrashLoopBacksOff) {
  Make({Web({"sh", "-c", "exit 3", "{port}"})}, Options());
  const absl::Time start = clock_.Now();
  ASSERT_TRUE(Set(1).ok());
  // The first crash is replaced at once; then 200 ms, 400 ms... of the clock.
  auto crashed_waiting = [&](uint64_t crashes) {
    return WaitFor(
        [&] {
          const ReplicaStats s = backend_->Stats(kWorkload);
          return s.crashed == crashes && s.restarting == 1;
        },
        absl::Seconds(20));
  };
  ASSERT_TRUE(crashed_waiting(2));
  EXPECT_EQ(backend_->Stats(kWorkload).next_start_at, start + absl::Milliseconds(200));
  clock_.Advance(absl::Milliseconds(200));
  ASSERT_TRUE(crashed_waiting(3));
  EXPECT_EQ(backend_->Stats(kWorkload).next_start_at, clock_.Now() + absl::Milliseconds(400));
  clock_.Advance(absl::Milliseconds(400));
  ASSERT_TRUE(crashed_waiting(4));
  EXPECT_EQ(backend_->Stats(kWorkload).next_start_at, clock_.Now() + absl::Milliseconds(800));
  EXPECT_EQ(Get(), 1);  // still wanted: it keeps trying
  ASSERT_TRUE(Set(0).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        ReplicaStats s = backend_->Stats(kWorkload);
        return s.running == 0 && s.restarting == 0;
      },
      absl::Seconds(10)));
}

TEST_F(LocalBackendTest, RefusesBadRequestsAndConfig) {
  Make({Web()}, Options());
  std::promise<absl::Status> unknown;
  backend_->SetReplicas("local/Deployment/nope", 0, 1, "test",
                        [&](absl::Status s) { unknown.set_value(s); });
  EXPECT_EQ(unknown.get_future().get().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Set(4).code(), absl::StatusCode::kInvalidArgument);  // maxReplicas is 3
  EXPECT_EQ(Set(-1).code(), absl::StatusCode::kInvalidArgument);
  std::promise<absl::StatusOr<int32_t>> get;
  backend_->GetReplicas("local/Deployment/nope",
                        [&](absl::StatusOr<int32_t> n) { get.set_value(n); });
  EXPECT_EQ(get.get_future().get().status().code(), absl::StatusCode::kNotFound);

  LocalBackendOptions no_sidecar = Options();
  no_sidecar.sidecar_path = dir_ + "/no-such-sidecar";
  LocalBackend a({Web()}, no_sidecar);
  EXPECT_EQ(a.Start().code(), absl::StatusCode::kFailedPrecondition);

  LocalBackend b({Web({"no-such-program-zs", "{port}"})}, Options());
  absl::Status s = b.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("workload web: command[0]: 'no-such-program-zs'"));

  workloads::Workload bad_dir = Web();
  bad_dir.working_dir = dir_ + "/missing";
  LocalBackend c({bad_dir}, Options());
  EXPECT_THAT(c.Start().message(), HasSubstr("workingDir"));
}

TEST(SpecOfTest, CarriesBoundsAndRules) {
  workloads::Workload w;
  w.id = kWorkload;
  w.min_replicas = 1;
  w.max_replicas = 4;
  w.idle_timeout = absl::Seconds(30);
  ScalingRule r;
  r.id = "busy";
  r.target = kWorkload;
  w.rules.push_back(r);
  const decide::WorkloadSpec spec = SpecOf(w);
  EXPECT_EQ(spec.workload, kWorkload);
  EXPECT_EQ(spec.min_replicas, 1);
  EXPECT_EQ(spec.max_replicas, 4);
  EXPECT_EQ(spec.idle_timeout, absl::Seconds(30));
  EXPECT_EQ(spec.rules, w.rules);
}

}  // namespace
}  // namespace zeroscale::local
