// zs-kube-test-app: the application of the kubelet stand-in's tests (image
// "zeroscale.test/app" in the harness's table), an HTTP server whose behaviour a test
// sets with flags and observes over HTTP and in its log.
//
//   --listen=HOST:PORT       default 0.0.0.0:8080
//   --ready-after=DURATION   GET /ready answers 503 until then (a model loading)
//   --on-sigterm=exit|ignore|exit-after=DURATION
//                            what SIGTERM does (always logged as "SIGTERM received")
//   --tag=TEXT               ignored (shows in "args"): e.g. to see $(VAR) expansion
//
//   GET  /           {"hostname", "pid", "args", "pod"}: which pod answered
//   GET  /healthz    200
//   GET  /ready      200 when ready, else 503
//   POST /ready?ready=true|false   sets readiness
//   GET  /env?name=X the variable's value, 404 when unset
//   GET  /file?path=P the file's content, 404 when unreadable
//   GET  /pids       the PIDs this process can see in /proc, one per line
//
// Prints "args: ..." and "listening on ..." at start, so tests can read how it was
// started from its log.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/config/flags.h"
#include "common/http/http_server.h"
#include "nlohmann/json.hpp"

namespace {

using zeroscale::http::Request;
using zeroscale::http::Response;

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

std::string Hostname() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

std::vector<std::string> Pids() {
  std::vector<std::string> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    int pid;
    if (absl::SimpleAtoi(e->d_name, &pid)) out.push_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  zeroscale::config::HostPort listen;
  absl::Duration ready_after;
  std::string on_sigterm;
  std::string tag;
  zeroscale::config::FlagSet fs("zs-kube-test-app", "The kubelet stand-in's test application.");
  fs.Address("listen", &listen, "0.0.0.0:8080", "where to serve HTTP");
  fs.Duration("ready-after", &ready_after, absl::ZeroDuration(), "unready until then");
  fs.String("on-sigterm", &on_sigterm, "exit", "exit, ignore or exit-after=DURATION");
  fs.String("tag", &tag, "", "ignored; shows in GET / and the log");
  fs.ParseOrExit(argc, argv);
  absl::Duration exit_delay;
  bool ignore_term = on_sigterm == "ignore";
  if (absl::StartsWith(on_sigterm, "exit-after=")) {
    absl::StatusOr<absl::Duration> d = zeroscale::config::ParseDuration(on_sigterm.substr(11));
    if (!d.ok()) {
      std::fprintf(stderr, "--on-sigterm: %s\n", std::string(d.status().message()).c_str());
      return 2;
    }
    exit_delay = *d;
  } else if (on_sigterm != "exit" && !ignore_term) {
    std::fprintf(stderr, "--on-sigterm: exit, ignore or exit-after=DURATION\n");
    return 2;
  }

  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &term, nullptr);

  Say(absl::StrCat("args: ", absl::StrJoin(args, " ")));
  const absl::Time started = absl::Now();
  std::atomic<int> forced{-1};  // -1: by --ready-after, 0/1 set by POST /ready

  zeroscale::http::Router router;
  router.HandleSync("GET", "/", [&](const Request&) {
    nlohmann::json j = {{"hostname", Hostname()},
                        {"pid", ::getpid()},
                        {"args", args},
                        {"pod", std::getenv("POD_NAME") ? std::getenv("POD_NAME") : ""}};
    return Response::Json(200, j.dump());
  });
  router.HandleSync("GET", "/healthz", [](const Request&) { return Response::Text(200, "ok\n"); });
  auto ready = [&] {
    const int f = forced.load();
    return f >= 0 ? f == 1 : absl::Now() - started >= ready_after;
  };
  router.HandleSync("GET", "/ready", [&](const Request&) {
    return ready() ? Response::Text(200, "ready\n") : Response::Text(503, "not ready\n");
  });
  router.HandleSync("POST", "/ready", [&](const Request& r) {
    forced = r.QueryParam("ready") == "false" ? 0 : 1;
    Say(absl::StrCat("readiness set to ", forced.load() == 1 ? "true" : "false"));
    return Response::Text(200, "ok\n");
  });
  router.HandleSync("GET", "/env", [](const Request& r) {
    const char* v = std::getenv(r.QueryParam("name").c_str());
    return v ? Response::Text(200, v) : Response::Text(404, "unset\n");
  });
  router.HandleSync("GET", "/file", [](const Request& r) {
    std::ifstream in(r.QueryParam("path"));
    if (!in) return Response::Text(404, "unreadable\n");
    std::stringstream ss;
    ss << in.rdbuf();
    return Response::Text(200, ss.str());
  });
  router.HandleSync("GET", "/pids", [](const Request&) {
    return Response::Text(200, absl::StrCat(absl::StrJoin(Pids(), "\n"), "\n"));
  });

  zeroscale::http::ServerOptions options;
  options.listen = listen;
  options.threads = 2;
  zeroscale::http::Server server(options, router.AsHandler());
  if (absl::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  Say(absl::StrCat("listening on ", listen.host, ":", server.port()));

  for (;;) {
    int sig = 0;
    ::sigwait(&term, &sig);
    Say(sig == SIGTERM ? "SIGTERM received" : "SIGINT received");
    if (ignore_term) continue;
    if (exit_delay > absl::ZeroDuration()) {
      absl::SleepFor(exit_delay);
      Say("exiting after the delay");
    }
    break;
  }
  server.Stop();
  Say("stopped");
  return 0;
}
