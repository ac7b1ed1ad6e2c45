// zeroscale-balancer-bench: helper of bench/balancer_bench.sh.
//
//   fake-scaler --listen=H:P --workload=W --endpoint=H:P
//       An ActivationService announcing one ready endpoint for W (balancer overhead runs).
//   wake --listen=H:P --backend=H:P --balancer=H:P --admin=H:P --workload=W --requests=N
//       Plays the scaler (W at zero) and the pod; sends N concurrent requests through the
//       balancer, waits until all are held, announces the pod ready and reports the time
//       from that announcement to the first request reaching the pod, and to the last
//       answer; checks every request was answered once and reached the pod once.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/config/flags.h"
#include "grpcpp/grpcpp.h"
#include "zeroscale/v1/activation.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using zeroscale::config::HostPort;

class Scaler final : public zeroscale::v1::ActivationService::Service {
 public:
  void SetReady(const std::string& workload, const std::string& endpoint) {
    zeroscale::v1::WorkloadState s;
    s.set_workload(workload);
    s.set_replicas(1);
    s.set_ready_replicas(1);
    auto* e = s.add_endpoints();
    e->set_pod("bench/pod-0");
    e->set_address(endpoint);
    e->set_ready(true);
    std::lock_guard<std::mutex> lock(mu_);
    state_ = s;
    version_++;
    cv_.notify_all();
  }
  int activations() const { return activations_.load(); }

  grpc::Status Activate(grpc::ServerContext*, const zeroscale::v1::ActivateRequest* req,
                        zeroscale::v1::WorkloadState* resp) override {
    activations_++;
    std::lock_guard<std::mutex> lock(mu_);
    *resp = state_;
    resp->set_workload(req->workload());
    return grpc::Status::OK;
  }
  grpc::Status Watch(grpc::ServerContext* ctx, const zeroscale::v1::WatchRequest*,
                     grpc::ServerWriter<zeroscale::v1::WorkloadState>* w) override {
    int seen = -1;
    std::unique_lock<std::mutex> lock(mu_);
    while (!ctx->IsCancelled()) {
      if (seen != version_ && !state_.workload().empty()) {
        seen = version_;
        zeroscale::v1::WorkloadState s = state_;
        lock.unlock();
        if (!w->Write(s)) return grpc::Status::OK;
        lock.lock();
        continue;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
    return grpc::Status::OK;
  }
  grpc::Status ReportTraffic(grpc::ServerContext*,
                             grpc::ServerReader<zeroscale::v1::TrafficReport>* r,
                             zeroscale::v1::TrafficAck*) override {
    zeroscale::v1::TrafficReport t;
    while (r->Read(&t)) {
    }
    return grpc::Status::OK;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  zeroscale::v1::WorkloadState state_;
  int version_ = 0;
  std::atomic<int> activations_{0};
};

std::unique_ptr<grpc::Server> Serve(Scaler* s, const HostPort& listen) {
  grpc::ServerBuilder b;
  b.AddListeningPort(listen.ToString(), grpc::InsecureServerCredentials());
  b.RegisterService(s);
  return b.BuildAndStart();
}

int Connect(const HostPort& to) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(to.port);
  inet_pton(AF_INET, to.host.c_str(), &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// GET over a fresh connection; the whole response ("" when nothing came back).
std::string HttpGet(const HostPort& to, const std::string& target, const std::string& host) {
  const int fd = Connect(to);
  if (fd < 0) return "";
  const std::string req =
      absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: ", host, "\r\nConnection: close\r\n\r\n");
  if (write(fd, req.data(), req.size()) < 0) {
    close(fd);
    return "";
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// The pod: answers each request with its target, noting when the first one arrived and
// how often each target was seen.
class Pod {
 public:
  explicit Pod(const HostPort& listen) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(listen.port);
    inet_pton(AF_INET, listen.host.c_str(), &a.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd_, 4096) != 0) {
      std::cerr << "pod cannot listen on " << listen.ToString() << "\n";
      std::exit(1);
    }
    std::thread([this] {
      while (true) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::thread([this, c] { ServeConn(c); }).detach();
      }
    }).detach();
  }
  Clock::time_point first() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_;
  }
  std::map<std::string, int> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  void ServeConn(int c) {
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::string buf;
    char tmp[4096];
    while (true) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = read(c, tmp, sizeof(tmp));
        if (n <= 0) {
          close(c);
          return;
        }
        buf.append(tmp, static_cast<size_t>(n));
      }
      const auto now = Clock::now();
      const size_t sp1 = buf.find(' ');
      const size_t sp2 = buf.find(' ', sp1 + 1);
      const std::string target = buf.substr(sp1 + 1, sp2 - sp1 - 1);
      buf.erase(0, end + 4);  // GETs only: no body
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (seen_.empty()) first_ = now;
        seen_[target]++;
      }
      const std::string resp =
          absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", target.size(), "\r\n\r\n", target);
      if (write(c, resp.data(), resp.size()) < 0) {
        close(c);
        return;
      }
    }
  }

  int fd_;
  std::mutex mu_;
  Clock::time_point first_;
  std::map<std::string, int> seen_;
};

double HeldNow(const HostPort& admin, const std::string& workload) {
  const std::string m = HttpGet(admin, "/metrics", "admin");
  const std::string key =
      absl::StrCat("zeroscale_balancer_held_requests{workload=\"", workload, "\"} ");
  const size_t at = m.find(key);
  if (at == std::string::npos) return -1;
  double v = 0;
  absl::SimpleAtod(m.substr(at + key.size(), m.find('\n', at) - at - key.size()), &v);
  return v;
}

int Wake(const HostPort& listen, const HostPort& backend, const HostPort& balancer,
         const HostPort& admin, const std::string& workload, const std::string& host, int n) {
  Scaler scaler;
  auto server = Serve(&scaler, listen);
  if (!server) {
    std::cerr << "cannot listen on " << listen.ToString() << "\n";
    return 1;
  }
  Pod pod(backend);
  // Wait for the balancer to be up (it is started after us).
  for (int i = 0; i < 200 && HttpGet(admin, "/healthz", "admin").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::vector<std::string> answers(static_cast<size_t>(n));
  std::vector<Clock::time_point> answered(static_cast<size_t>(n));
  std::vector<std::thread> clients;
  clients.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    clients.emplace_back([&, i] {
      answers[i] = HttpGet(balancer, absl::StrCat("/wake/", i), host);
      answered[i] = Clock::now();
    });
  }
  // All held? (Polling the balancer's gauge: the only observable of another process.)
  const auto hold_deadline = Clock::now() + std::chrono::seconds(60);
  while (HeldNow(admin, workload) < n && Clock::now() < hold_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double held = HeldNow(admin, workload);
  const auto t0 = Clock::now();
  scaler.SetReady(workload, backend.ToString());
  for (auto& t : clients) t.join();
  const auto first = pod.first();
  Clock::time_point last = t0;
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    if (absl::StartsWith(answers[i], "HTTP/1.1 200") &&
        absl::EndsWith(answers[i], absl::StrCat("\r\n\r\n/wake/", i))) {
      ok++;
    }
    last = std::max(last, answered[i]);
  }
  const auto seen = pod.seen();
  int dup = 0, lost = 0;
  for (int i = 0; i < n; ++i) {
    auto it = seen.find(absl::StrCat("/wake/", i));
    if (it == seen.end()) {
      lost++;
    } else if (it->second > 1) {
      dup += it->second - 1;
    }
  }
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::printf(
      "wake: %d concurrent requests held (gauge %.0f), %d Activate call(s)\n"
      "wake: pod ready -> first held request at the pod: %.2f ms\n"
      "wake: pod ready -> last of %d answers: %.2f ms\n"
      "wake: answered 200 with their own body: %d/%d; lost at the pod: %d; duplicated: %d\n",
      n, held, scaler.activations(), ms(first - t0), n, ms(last - t0), ok, n, lost, dup);
  server->Shutdown(std::chrono::system_clock::now());
  return ok == n && lost == 0 && dup == 0 ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: zeroscale-balancer-bench fake-scaler|wake [flags]\n";
    return 2;
  }
  const std::string mode = argv[1];
  HostPort listen, endpoint, backend, balancer, admin;
  std::string workload, host;
  int64_t requests = 1000;
  zeroscale::config::FlagSet fs("zeroscale-balancer-bench", "Balancer benchmark helper");
  fs.Address("listen", &listen, "127.0.0.1:0", "ActivationService address");
  fs.Address("endpoint", &endpoint, "127.0.0.1:1", "fake-scaler: the ready endpoint");
  fs.Address("backend", &backend, "127.0.0.1:1", "wake: the pod's address");
  fs.Address("balancer", &balancer, "127.0.0.1:8000", "wake: the balancer's data plane");
  fs.Address("admin", &admin, "127.0.0.1:8001", "wake: the balancer's admin API");
  fs.String("workload", &workload, "bench/Deployment/bench", "Workload id");
  fs.String("host", &host, "bench.local", "wake: Host header routed to the workload");
  fs.Int("requests", &requests, 1000, "wake: concurrent requests", 1, 100000);
  fs.ParseOrExit(argc - 1, argv + 1);
  if (mode == "fake-scaler") {
    Scaler scaler;
    scaler.SetReady(workload, endpoint.ToString());
    auto server = Serve(&scaler, listen);
    if (!server) return 1;
    server->Wait();
    return 0;
  }
  if (mode == "wake") {
    return Wake(listen, backend, balancer, admin, workload, host, static_cast<int>(requests));
  }
  std::cerr << "unknown mode " << mode << "\n";
  return 2;
}
