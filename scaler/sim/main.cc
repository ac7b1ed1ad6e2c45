// zeroscale-sim: replays an invocation trace (or the synthetic population) through the
// real decision engine on a virtual clock and reports cold starts against idle replica
// time for one keep-alive policy. Wiring only; see simulator.h.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/config/flags.h"
#include "scaler/sim/simulator.h"
#include "scaler/sim/synthetic.h"
#include "scaler/sim/trace.h"

namespace {

struct Flags {
  std::string trace;
  std::string format;
  std::string policy;
  int64_t seed = 1;
  int64_t apps = 200;
  absl::Duration days;
  std::string cold_start;
  absl::Duration service;
  int64_t capacity = 4;
  std::string csv;
  bool per_app = false;
  std::string explain;
};

}  // namespace

int main(int argc, char** argv) {
  using zeroscale::sim::Trace;
  Flags f;
  zeroscale::config::FlagSet fs(
      "zeroscale-sim",
      "Replays invocation traces through the decision engine on a virtual clock and reports "
      "cold starts and idle replica time for a keep-alive policy. The last line reads "
      "requests=<n> cold_starts=<n> cold_start_rate_p75=<x> idle_replica_seconds=<x>.");
  fs.String("trace", &f.trace, "synthetic", "'synthetic' (the built-in population) or a file");
  fs.Enum("format", &f.format, "timestamps", {"azure2019", "azure2021", "timestamps"},
          "format of --trace=FILE");
  fs.String("policy", &f.policy, "fixed:10m",
            "keep-alive policy: fixed:<duration>, knative, adaptive, adaptive:<fallback>");
  fs.Int("seed", &f.seed, 1, "seed of the synthetic population and of cold-start draws", 0);
  fs.Int("apps", &f.apps, 200, "applications in the synthetic population", 1, 100000);
  fs.Duration("length", &f.days, absl::Hours(24 * 7), "length of the synthetic population");
  fs.String("cold-start", &f.cold_start, "2m",
            "time from scale-up to a ready replica: a duration or a range (1m..5m)");
  fs.Duration("service-time", &f.service, absl::Seconds(1),
              "time to serve a request without a duration in the trace");
  fs.Int("capacity", &f.capacity, 4, "requests a replica serves at once", 1, 100000);
  fs.String("csv", &f.csv, "", "write one row per application to this file");
  fs.Bool("per-app", &f.per_app, false, "print one line per application");
  fs.String("explain", &f.explain, "",
            "print every scaling decision of this application (its name) to stderr");
  fs.ParseOrExit(argc, argv);

  zeroscale::sim::WorkloadModel model;
  if (absl::Status s = zeroscale::sim::ParseColdStart(f.cold_start, &model); !s.ok()) {
    std::fprintf(stderr, "zeroscale-sim: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (f.service <= absl::ZeroDuration() || f.service > absl::Hours(1)) {
    std::fprintf(stderr, "zeroscale-sim: --service-time must be from 1ns to 1h\n");
    return 2;
  }
  if (f.days <= absl::ZeroDuration() || f.days > absl::Hours(24 * 366)) {
    std::fprintf(stderr, "zeroscale-sim: --length must be from 1ns to 366 days\n");
    return 2;
  }
  model.service = f.service;
  model.capacity = static_cast<int>(f.capacity);
  model.seed = static_cast<uint64_t>(f.seed);
  absl::StatusOr<zeroscale::sim::Policy> policy =
      zeroscale::sim::ParsePolicy(f.policy, model.cold_start_max);
  if (!policy.ok()) {
    std::fprintf(stderr, "zeroscale-sim: %s\n", std::string(policy.status().message()).c_str());
    return 2;
  }

  Trace trace;
  if (f.trace == "synthetic") {
    zeroscale::sim::SyntheticOptions o;
    o.seed = static_cast<uint64_t>(f.seed);
    o.apps = static_cast<int>(f.apps);
    o.length = f.days;
    trace = zeroscale::sim::Synthesize(o);
  } else {
    zeroscale::sim::TraceFormat format = zeroscale::sim::TraceFormat::kTimestamps;
    if (f.format == "azure2019") format = zeroscale::sim::TraceFormat::kAzure2019;
    if (f.format == "azure2021") format = zeroscale::sim::TraceFormat::kAzure2021;
    absl::StatusOr<Trace> t = zeroscale::sim::ReadTrace(f.trace, format);
    if (!t.ok()) {
      std::fprintf(stderr, "zeroscale-sim: %s\n", std::string(t.status().message()).c_str());
      return 1;
    }
    trace = *std::move(t);
  }

  std::vector<zeroscale::sim::AppResult> results;
  results.reserve(trace.apps.size());
  for (size_t i = 0; i < trace.apps.size(); ++i) {
    zeroscale::sim::DecisionObserver explain;
    if (!f.explain.empty() && trace.apps[i].name == f.explain) {
      explain = [](absl::Duration at, const zeroscale::decide::Decision& d) {
        std::fprintf(stderr, "%s %s -> %s %d -> %d: %s\n",
                     absl::FormatDuration(absl::Trunc(at, absl::Seconds(1))).c_str(),
                     std::string(zeroscale::decide::StateName(d.from)).c_str(),
                     std::string(zeroscale::decide::StateName(d.to)).c_str(), d.replicas_before,
                     d.replicas_after, d.reason.c_str());
      };
    }
    results.push_back(
        zeroscale::sim::SimulateApp(trace.apps[i], trace.length, *policy, model, i, explain));
    if (f.per_app) {
      const zeroscale::sim::AppResult& r = results.back();
      std::printf(
          "app=%s kind=%s requests=%lld cold_starts=%lld cold_start_rate=%.4f held=%lld "
          "prewarms=%lld idle_replica_seconds=%.0f\n",
          r.name.c_str(), r.kind.empty() ? "-" : r.kind.c_str(), static_cast<long long>(r.requests),
          static_cast<long long>(r.cold_starts), r.ColdStartRate(), static_cast<long long>(r.held),
          static_cast<long long>(r.prewarms), r.idle_replica_seconds);
    }
  }
  if (!f.csv.empty()) {
    std::ofstream out(f.csv, std::ios::trunc);
    out << zeroscale::sim::ResultsCsv(results, policy->name);
    out.close();
    if (!out) {
      std::fprintf(stderr, "zeroscale-sim: cannot write %s\n", f.csv.c_str());
      return 1;
    }
  }
  const zeroscale::sim::Summary s = zeroscale::sim::Summarize(results);
  std::printf("policy=%s trace=%s apps=%lld length_hours=%.2f cold_start=%s capacity=%lld\n",
              policy->name.c_str(), f.trace.c_str(), static_cast<long long>(s.apps),
              absl::ToDoubleHours(trace.length), f.cold_start.c_str(),
              static_cast<long long>(f.capacity));
  std::printf("held=%lld added_latency_p50_s=%.1f added_latency_p99_s=%.1f prewarms=%lld\n",
              static_cast<long long>(s.held), s.latency_p50, s.latency_p99,
              static_cast<long long>(s.prewarms));
  std::printf("requests=%lld cold_starts=%lld cold_start_rate_p75=%.4f idle_replica_seconds=%.0f\n",
              static_cast<long long>(s.requests), static_cast<long long>(s.cold_starts),
              s.cold_start_rate_p75, s.idle_replica_seconds);
  return 0;
}
