#include "scaler/decide/window.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace zeroscale::decide {
namespace {

// Weight of a sample in the request-weighted latency. Seed sidecars report a latency but
// no count; such a sample stands for at least one request.
double LatencyWeight(uint64_t requests, double avg_rt) {
  if (requests > 0) return static_cast<double>(requests);
  return avg_rt > 0 ? 1.0 : 0.0;
}

constexpr double kAbsent = std::numeric_limits<double>::quiet_NaN();

// Sum and count of one metric over one pod's samples that carry it.
struct PartialMean {
  double sum = 0;
  int n = 0;
  void Add(double v) {
    if (std::isnan(v)) return;
    sum += v;
    ++n;
  }
};

// Mean across pods of each pod's mean, over the pods that had the metric at all.
struct PodsMean {
  double sum_of_means = 0;
  int pods = 0;
  void Add(const PartialMean& p) {
    if (p.n == 0) return;
    sum_of_means += p.sum / p.n;
    ++pods;
  }
  std::optional<double> Mean() const {
    if (pods == 0) return std::nullopt;
    return sum_of_means / pods;
  }
};

}  // namespace

std::optional<double> WindowStats::Get(const Threshold& t) const {
  if (t.metric_type != MetricType::kCustom) return Get(t.metric_type);
  for (const CustomValue& c : custom) {
    if (c.name == t.metric_name && c.pods > 0) {
      return t.aggregation == Aggregation::kSum ? c.sum : c.mean;
    }
  }
  return std::nullopt;
}

void SampleWindow::set_custom_series(std::vector<std::string> names) {
  if (names == custom_series_) return;
  for (auto& [id, pod] : pods_) {
    for (Sample& s : pod.samples) {
      std::unique_ptr<double[]> remapped;
      if (!names.empty()) {
        remapped = std::make_unique<double[]>(names.size());
        for (size_t i = 0; i < names.size(); ++i) {
          remapped[i] = kAbsent;
          for (size_t j = 0; s.custom != nullptr && j < custom_series_.size(); ++j) {
            if (custom_series_[j] == names[i]) remapped[i] = s.custom[j];
          }
        }
      }
      s.custom = std::move(remapped);
    }
  }
  custom_series_ = std::move(names);
}

bool SampleWindow::Add(const Podmetric& m) {
  Pod& pod = pods_[m.id];
  const bool was_ready = !pod.samples.empty() && pod.samples.back().ready;
  Sample s{m.received_at,
           m.cpu_usage,
           m.memory_usage,
           m.disk_usage,
           m.average_response_time,
           m.p99_response_time,
           m.request_rate,
           m.in_flight,
           m.request_count,
           m.seq,
           m.ready,
           static_cast<float>(m.gpu_usage.value_or(kAbsent)),
           static_cast<float>(m.gpu_memory_usage.value_or(kAbsent)),
           nullptr};
  if (!custom_series_.empty()) {
    s.custom = std::make_unique<double[]>(custom_series_.size());
    for (size_t i = 0; i < custom_series_.size(); ++i) {
      auto found = m.app_metrics.find(custom_series_[i]);
      s.custom[i] = found != m.app_metrics.end() ? found->second : kAbsent;
    }
  }
  // Samples nearly always arrive in order; history from Redis may interleave.
  auto it = pod.samples.end();
  while (it != pod.samples.begin() && std::prev(it)->at > s.at) --it;
  for (auto dup = it; dup != pod.samples.begin() && std::prev(dup)->at == s.at; --dup) {
    const Sample& o = *std::prev(dup);
    // Without a sequence number (seed sidecars) only an identical sample is a replay.
    if (o.seq == s.seq && (s.seq != 0 || (o.cpu == s.cpu && o.in_flight == s.in_flight &&
                                          o.requests == s.requests && o.ready == s.ready))) {
      return false;
    }
  }
  const bool at_end = it == pod.samples.end();
  const absl::Time at = s.at;
  const bool ready = s.ready;
  const bool traffic = s.requests > 0 || s.in_flight > 0 || s.rate > 0;
  pod.samples.insert(it, std::move(s));
  if (pod.samples.size() > max_samples_per_pod_) pod.samples.pop_front();
  newest_ = std::max(newest_, at);
  if (traffic) last_request_ = std::max(last_request_, at);
  return at_end && ready && !was_ready;
}

void SampleWindow::Prune(absl::Time now) {
  const absl::Time cutoff = now - retention_ - staleness_;
  for (auto it = pods_.begin(); it != pods_.end();) {
    std::deque<Sample>& samples = it->second.samples;
    while (!samples.empty() && samples.front().at < cutoff) samples.pop_front();
    if (samples.empty()) {
      pods_.erase(it++);
    } else {
      ++it;
    }
  }
}

WindowStats SampleWindow::Compute(absl::Duration window, absl::Time now) const {
  WindowStats st;
  st.window = window;
  const absl::Time start = now - window;
  double cpu = 0, memory = 0, disk = 0, rate = 0, in_flight = 0;
  double latency_sum = 0, latency_weight = 0;
  std::optional<double> p99;
  PodsMean gpu, gpu_memory;
  std::vector<PodsMean> custom(custom_series_.size());
  for (const auto& [id, pod] : pods_) {
    // The latest sample at or before `now` says whether the pod is fresh and ready.
    auto end = pod.samples.end();
    while (end != pod.samples.begin() && std::prev(end)->at > now) --end;
    if (end == pod.samples.begin()) continue;
    const Sample& latest = *std::prev(end);
    if (now - latest.at > staleness_) continue;
    ++st.pods_reporting;
    if (!latest.ready) continue;
    ++st.pods_ready;
    int n = 0;
    double p_cpu = 0, p_memory = 0, p_disk = 0, p_rate = 0, p_in_flight = 0;
    PartialMean p_gpu, p_gpu_memory;
    std::vector<PartialMean> p_custom(custom_series_.size());
    for (auto it = end; it != pod.samples.begin();) {
      const Sample& s = *--it;
      if (s.at < start) break;
      if (!s.ready) continue;
      ++n;
      p_cpu += s.cpu;
      p_memory += s.memory;
      p_disk += s.disk;
      p_rate += s.rate;
      p_in_flight += s.in_flight;
      p_gpu.Add(s.gpu);
      p_gpu_memory.Add(s.gpu_memory);
      if (s.custom != nullptr) {
        for (size_t i = 0; i < p_custom.size(); ++i) p_custom[i].Add(s.custom[i]);
      }
      const double w = LatencyWeight(s.requests, s.avg_rt);
      if (w > 0) {
        latency_sum += s.avg_rt * w;
        latency_weight += w;
        if (s.p99 > 0) p99 = std::max(p99.value_or(0), s.p99);
      }
    }
    if (n == 0) continue;
    ++st.pods_counted;
    st.samples += n;
    cpu += p_cpu / n;
    memory += p_memory / n;
    disk += p_disk / n;
    rate += p_rate / n;
    in_flight += p_in_flight / n;
    gpu.Add(p_gpu);
    gpu_memory.Add(p_gpu_memory);
    for (size_t i = 0; i < custom.size(); ++i) custom[i].Add(p_custom[i]);
  }
  auto set = [&st](MetricType t, double v) { st.values[static_cast<size_t>(t)] = v; };
  if (st.pods_counted > 0) {
    set(MetricType::kCpuUsage, cpu / st.pods_counted);
    set(MetricType::kMemoryUsage, memory / st.pods_counted);
    set(MetricType::kDiskUsage, disk / st.pods_counted);
    set(MetricType::kRequestRate, rate);
    set(MetricType::kInFlightRequests, in_flight);
  }
  if (latency_weight > 0) set(MetricType::kAverageResponseTime, latency_sum / latency_weight);
  if (p99) set(MetricType::kP99ResponseTime, *p99);
  if (std::optional<double> v = gpu.Mean()) set(MetricType::kGpuUsage, *v);
  if (std::optional<double> v = gpu_memory.Mean()) set(MetricType::kGpuMemoryUsage, *v);
  for (size_t i = 0; i < custom.size(); ++i) {
    if (custom[i].pods == 0) continue;
    st.custom.push_back(
        {custom_series_[i], *custom[i].Mean(), custom[i].sum_of_means, custom[i].pods});
  }
  return st;
}

int SampleWindow::ReportingPods(absl::Time now) const {
  int n = 0;
  for (const auto& [id, pod] : pods_) {
    if (now - pod.samples.back().at <= staleness_) ++n;
  }
  return n;
}

bool SampleWindow::IsFresh(const std::string& pod, absl::Time now) const {
  auto it = pods_.find(pod);
  return it != pods_.end() && now - it->second.samples.back().at <= staleness_;
}

bool SampleWindow::AnyFreshReady(absl::Time now, absl::Time since, std::string* pod_id) const {
  for (const auto& [id, pod] : pods_) {
    const Sample& latest = pod.samples.back();
    if (latest.ready && latest.at > since && now - latest.at <= staleness_) {
      if (pod_id != nullptr) *pod_id = id;
      return true;
    }
  }
  return false;
}

double SampleWindow::InFlightNow(absl::Time now) const {
  double sum = 0;
  for (const auto& [id, pod] : pods_) {
    const Sample& latest = pod.samples.back();
    if (now - latest.at <= staleness_) sum += latest.in_flight;
  }
  return sum;
}

}  // namespace zeroscale::decide
