#include "common/model/proto_convert.h"

#include "absl/strings/str_cat.h"
#include "common/time/clock.h"

namespace zeroscale {

void PodmetricToProto(const Podmetric& m, v1::Podmetric* out) {
  out->set_id(m.id);
  out->set_cpu_usage(m.cpu_usage);
  out->set_memory_usage(m.memory_usage);
  out->set_disk_usage(m.disk_usage);
  out->set_average_response_time(m.average_response_time);
  out->set_workload(m.workload);
  out->set_request_count(m.request_count);
  out->set_request_rate(m.request_rate);
  out->set_in_flight(m.in_flight);
  out->set_p99_response_time(m.p99_response_time);
  out->set_cpu_cores(m.cpu_cores);
  out->set_memory_bytes(m.memory_bytes);
  out->set_disk_bytes(m.disk_bytes);
  out->set_disk_read_bytes_per_second(m.disk_read_bytes_per_second);
  out->set_disk_write_bytes_per_second(m.disk_write_bytes_per_second);
  if (m.sampled_at != absl::InfinitePast()) out->set_sampled_at(FormatRfc3339(m.sampled_at));
  out->set_ready(m.ready);
  out->set_seq(m.seq);
  out->set_dropped(m.dropped);
  out->set_address(m.address);
  if (m.gpu_usage.has_value()) out->set_gpu_usage(*m.gpu_usage);
  if (m.gpu_memory_usage.has_value()) out->set_gpu_memory_usage(*m.gpu_memory_usage);
  if (m.gpu_memory_bytes.has_value()) out->set_gpu_memory_bytes(*m.gpu_memory_bytes);
  out->mutable_app_metrics()->clear();
  for (const auto& [name, value] : m.app_metrics) (*out->mutable_app_metrics())[name] = value;
}

absl::StatusOr<Podmetric> PodmetricFromProto(const v1::Podmetric& p) {
  Podmetric m;
  m.id = p.id();
  m.cpu_usage = p.cpu_usage();
  m.memory_usage = p.memory_usage();
  m.disk_usage = p.disk_usage();
  m.average_response_time = p.average_response_time();
  m.workload = p.workload();
  m.request_count = p.request_count();
  m.request_rate = p.request_rate();
  m.in_flight = p.in_flight();
  m.p99_response_time = p.p99_response_time();
  m.cpu_cores = p.cpu_cores();
  m.memory_bytes = p.memory_bytes();
  m.disk_bytes = p.disk_bytes();
  m.disk_read_bytes_per_second = p.disk_read_bytes_per_second();
  m.disk_write_bytes_per_second = p.disk_write_bytes_per_second();
  if (!p.sampled_at().empty()) {
    absl::StatusOr<absl::Time> t = ParseRfc3339(p.sampled_at());
    if (!t.ok())
      return absl::InvalidArgumentError(absl::StrCat("sampledAt: ", t.status().message()));
    m.sampled_at = *t;
  }
  m.ready = p.ready();
  m.seq = p.seq();
  m.dropped = p.dropped();
  m.address = p.address();
  if (p.has_gpu_usage()) m.gpu_usage = p.gpu_usage();
  if (p.has_gpu_memory_usage()) m.gpu_memory_usage = p.gpu_memory_usage();
  if (p.has_gpu_memory_bytes()) m.gpu_memory_bytes = p.gpu_memory_bytes();
  // Bounded before copying: validation names the oversized map, this only keeps it small.
  for (const auto& [name, value] : p.app_metrics()) {
    if (m.app_metrics.size() > kMaxAppMetrics) break;
    m.app_metrics[name] = value;
  }
  return m;
}

void ScalingRuleToProto(const ScalingRule& rule, v1::ScalingRule* out) {
  out->set_id(rule.id);
  out->set_action(static_cast<v1::Action>(static_cast<int>(rule.action) + 1));
  out->clear_thresholds();
  for (const Threshold& t : rule.thresholds) {
    v1::Threshold* pt = out->add_thresholds();
    pt->set_metric_type(static_cast<v1::MetricType>(static_cast<int>(t.metric_type) + 1));
    pt->set_value(t.value);
    pt->set_operator_(static_cast<v1::Operator>(static_cast<int>(t.op) + 1));
    pt->set_metric_name(t.metric_name);
    pt->set_aggregation(static_cast<v1::Aggregation>(static_cast<int>(t.aggregation) + 1));
  }
  out->set_target(rule.target);
  out->set_window_seconds(rule.window_seconds);
  out->set_step(rule.step);
  out->set_cooldown_seconds(rule.cooldown_seconds);
}

absl::StatusOr<ScalingRule> ScalingRuleFromProto(const v1::ScalingRule& p) {
  ScalingRule rule;
  rule.id = p.id();
  if (p.action() <= v1::ACTION_UNSPECIFIED || p.action() > v1::DECREASE_INSTANCES_TO_ZERO) {
    return absl::InvalidArgumentError(
        absl::StrCat("action: unknown action ", p.action(),
                     ", expected INCREASE_INSTANCES, DECREASE_INSTANCES or "
                     "DECREASE_INSTANCES_TO_ZERO"));
  }
  rule.action = static_cast<Action>(p.action() - 1);
  for (int i = 0; i < p.thresholds_size(); ++i) {
    const v1::Threshold& pt = p.thresholds(i);
    Threshold t;
    if (pt.metric_type() <= v1::METRIC_TYPE_UNSPECIFIED || pt.metric_type() > v1::CUSTOM) {
      return absl::InvalidArgumentError(
          absl::StrCat("thresholds[", i, "].metricType: unknown metric type ", pt.metric_type()));
    }
    if (pt.operator_() <= v1::OPERATOR_UNSPECIFIED || pt.operator_() > v1::EQUAL_TO) {
      return absl::InvalidArgumentError(
          absl::StrCat("thresholds[", i, "].operator: unknown operator ", pt.operator_()));
    }
    t.metric_type = static_cast<MetricType>(pt.metric_type() - 1);
    t.op = static_cast<Operator>(pt.operator_() - 1);
    t.value = pt.value();
    t.metric_name = pt.metric_name();
    if (pt.aggregation() < v1::AGGREGATION_UNSPECIFIED || pt.aggregation() > v1::SUM) {
      return absl::InvalidArgumentError(
          absl::StrCat("thresholds[", i, "].aggregation: unknown aggregation ", pt.aggregation()));
    }
    if (pt.aggregation() != v1::AGGREGATION_UNSPECIFIED) {
      t.aggregation = static_cast<Aggregation>(pt.aggregation() - 1);
    }
    rule.thresholds.push_back(t);
  }
  rule.target = p.target();
  if (p.window_seconds() != 0) rule.window_seconds = p.window_seconds();
  if (p.step() != 0) rule.step = p.step();
  rule.cooldown_seconds = p.cooldown_seconds();
  return rule;
}

}  // namespace zeroscale
