#include "common/workloads/workloads.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file/read_file.h"
#include "common/model/podmetric.h"
#include "common/prom/presets.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace zeroscale::workloads {
namespace {

constexpr absl::string_view kWorkloadKeys[] = {"name",
                                               "command",
                                               "port",
                                               "minReplicas",
                                               "maxReplicas",
                                               "idleTimeoutSeconds",
                                               "keepAlive",
                                               "route",
                                               "rules",
                                               "readinessPath",
                                               "activationTimeoutSeconds",
                                               "env",
                                               "workingDir",
                                               "stopGraceSeconds",
                                               "metrics"};
constexpr absl::string_view kRouteKeys[] = {"host", "pathPrefix"};
constexpr absl::string_view kMetricsKeys[] = {"path", "preset", "series"};

constexpr absl::string_view kRuleKeys[] = {
    "id", "action", "thresholds", "target", "windowSeconds", "step", "cooldownSeconds"};
constexpr absl::string_view kThresholdKeys[] = {"metricType", "value", "operator", "metricName",
                                                "aggregation"};

// Where an error is: "workloads.yaml: workloads[0] (demo-model): ".
class Context {
 public:
  explicit Context(absl::string_view source) : source_(source) {}
  void Enter(size_t index, absl::string_view name) {
    where_ = absl::StrCat("workloads[", index, "]");
    if (!name.empty()) absl::StrAppend(&where_, " (", name, ")");
  }
  absl::Status Error(absl::string_view field, absl::string_view what,
                     const YAML::Node& node = YAML::Node()) const {
    std::string msg = absl::StrCat(source_, ": ");
    if (!where_.empty()) absl::StrAppend(&msg, where_, ": ");
    // A field ending in '.' is followed by a message that starts with a sub-field.
    const bool joined = field.empty() || field.back() == '.';
    absl::StrAppend(&msg, field, joined ? "" : " ", what);
    // yaml-cpp marks are zero-based; editors count from one.
    if (node.IsDefined() && node.Mark().line >= 0) {
      absl::StrAppend(&msg, " (line ", node.Mark().line + 1, ")");
    }
    return absl::InvalidArgumentError(msg);
  }

 private:
  std::string source_;
  std::string where_;
};

template <size_t N>
bool Known(const absl::string_view (&keys)[N], absl::string_view key) {
  for (absl::string_view k : keys) {
    if (k == key) return true;
  }
  return false;
}

template <size_t N>
std::string Expected(const absl::string_view (&keys)[N]) {
  return absl::StrJoin(keys, ", ");
}

// Refuses anything but a mapping of known, unique, string keys. `field` prefixes the
// key in errors ("route.hosst").
template <size_t N>
absl::Status CheckKeys(const Context& ctx, const YAML::Node& map, absl::string_view field,
                       const absl::string_view (&keys)[N]) {
  if (!map.IsMap()) return ctx.Error(field, "must be a mapping", map);
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return ctx.Error(field, "has a key that is not a string", kv.first);
    const std::string key = kv.first.Scalar();
    const std::string name = field.empty() ? key : absl::StrCat(field, ".", key);
    if (!Known(keys, key)) {
      return ctx.Error(name,
                       absl::StrCat("is not a known field (expected one of ", Expected(keys), ")"),
                       kv.first);
    }
    if (!seen.insert(key).second) return ctx.Error(name, "is given twice", kv.first);
  }
  return absl::OkStatus();
}

bool Present(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

absl::Status GetString(const Context& ctx, const YAML::Node& node, absl::string_view field,
                       std::string* out) {
  if (!Present(node)) return absl::OkStatus();
  if (!node.IsScalar()) return ctx.Error(field, "must be a string", node);
  *out = node.Scalar();
  return absl::OkStatus();
}

absl::Status GetInt(const Context& ctx, const YAML::Node& node, absl::string_view field,
                    int64_t min, int64_t max, int64_t* out) {
  if (!Present(node)) return absl::OkStatus();
  int64_t v = 0;
  if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &v)) {
    return ctx.Error(field, "must be an integer", node);
  }
  if (v < min || v > max) {
    return ctx.Error(field, absl::StrCat("must be between ", min, " and ", max, ", got ", v), node);
  }
  *out = v;
  return absl::OkStatus();
}

// Seconds as a non-negative number (fractions allowed: "stopGraceSeconds: 0.5").
absl::Status GetSeconds(const Context& ctx, const YAML::Node& node, absl::string_view field,
                        std::optional<absl::Duration>* out) {
  if (!Present(node)) return absl::OkStatus();
  double v = 0;
  if (!node.IsScalar() || !absl::SimpleAtod(node.Scalar(), &v) || !std::isfinite(v)) {
    return ctx.Error(field, "must be a number of seconds", node);
  }
  if (v < 0) return ctx.Error(field, "must not be negative", node);
  if (v > 86400 * 365) return ctx.Error(field, "is too large", node);
  *out = absl::Seconds(v);
  return absl::OkStatus();
}

// YAML scalars carry no type; a plain (unquoted) scalar that reads as a number, a
// boolean or null is taken as one, as a YAML 1.2 core-schema reader would.
nlohmann::json ToJson(const YAML::Node& node) {
  if (node.IsMap()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& kv : node) j[kv.first.Scalar()] = ToJson(kv.second);
    return j;
  }
  if (node.IsSequence()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& item : node) j.push_back(ToJson(item));
    return j;
  }
  if (!node.IsDefined() || node.IsNull()) return nullptr;
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted: always a string
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  int64_t i = 0;
  if (absl::SimpleAtoi(s, &i)) return i;
  double d = 0;
  if (absl::SimpleAtod(s, &d) && std::isfinite(d)) return d;
  return s;
}

absl::StatusOr<ScalingRule> ParseRule(const Context& ctx, const YAML::Node& node,
                                      const std::string& field, const std::string& workload_id) {
  if (absl::Status s = CheckKeys(ctx, node, field, kRuleKeys); !s.ok()) return s;
  const YAML::Node thresholds = node["thresholds"];
  if (Present(thresholds)) {
    if (!thresholds.IsSequence()) {
      return ctx.Error(field + ".thresholds", "must be a list", thresholds);
    }
    for (size_t i = 0; i < thresholds.size(); ++i) {
      if (absl::Status s = CheckKeys(ctx, thresholds[i],
                                     absl::StrCat(field, ".thresholds[", i, "]"), kThresholdKeys);
          !s.ok()) {
        return s;
      }
    }
  }
  // The JSON mapping owns the field names and their checks, so a rule reads the same here
  // as in Redis or over gRPC.
  std::string rule_json;
  try {
    rule_json = ToJson(node).dump();
  } catch (const nlohmann::json::exception&) {
    // YAML scalars may hold any bytes; JSON text must be UTF-8 (found by fuzzing).
    return ctx.Error(field, "holds text that is not valid UTF-8", node);
  }
  absl::StatusOr<ScalingRule> rule = ScalingRuleFromJson(rule_json);
  if (!rule.ok()) return ctx.Error(absl::StrCat(field, "."), rule.status().message(), node);
  if (rule->target.empty()) rule->target = workload_id;
  if (rule->target != workload_id) {
    return ctx.Error(field + ".target",
                     absl::StrCat("must be ", workload_id,
                                  " (the workload itself) or omitted, got ", rule->target),
                     node["target"]);
  }
  if (absl::Status s = ValidateScalingRule(*rule); !s.ok()) {
    return ctx.Error(absl::StrCat(field, "."), s.message(), node);
  }
  return rule;
}

// DNS-1123 label: it becomes part of pod and workload ids.
bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') return false;
  }
  return name.front() != '-' && name.back() != '-';
}

bool ValidEnvName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name.front())) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

// "/a/" and "/a" route the same requests.
std::string NormalizePrefix(absl::string_view prefix) {
  while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
  return std::string(prefix);
}

absl::StatusOr<Workload> ParseWorkload(Context& ctx, const YAML::Node& node, size_t index) {
  ctx.Enter(index, "");
  if (!node.IsMap()) return ctx.Error("", "must be a mapping", node);
  Workload w;
  if (absl::Status s = GetString(ctx, node["name"], "name", &w.name); !s.ok()) return s;
  ctx.Enter(index, w.name);
  if (absl::Status s = CheckKeys(ctx, node, "", kWorkloadKeys); !s.ok()) return s;
  if (w.name.empty()) return ctx.Error("name", "is required", node);
  if (!ValidName(w.name)) {
    return ctx.Error("name",
                     "must be a DNS label: at most 63 lower-case letters, digits and '-', "
                     "starting and ending with a letter or digit",
                     node["name"]);
  }
  w.id = WorkloadId(w.name);

  const YAML::Node command = node["command"];
  if (!Present(command)) return ctx.Error("command", "is required", node);
  if (!command.IsSequence() || command.size() == 0) {
    return ctx.Error("command", "must be a non-empty list of arguments", command);
  }
  for (size_t i = 0; i < command.size(); ++i) {
    if (!command[i].IsScalar()) {
      return ctx.Error(absl::StrCat("command[", i, "]"), "must be a string", command[i]);
    }
    w.command.push_back(command[i].Scalar());
  }
  if (w.command[0].empty()) return ctx.Error("command[0]", "must name a program", command);

  int64_t v = 0;
  if (absl::Status s = GetInt(ctx, node["port"], "port", 0, 65535, &v); !s.ok()) return s;
  w.port = static_cast<uint16_t>(v);
  v = w.min_replicas;
  if (absl::Status s = GetInt(ctx, node["minReplicas"], "minReplicas", 0, kMaxReplicasLimit, &v);
      !s.ok()) {
    return s;
  }
  w.min_replicas = static_cast<int32_t>(v);
  v = std::max<int32_t>(w.max_replicas, w.min_replicas);
  if (absl::Status s = GetInt(ctx, node["maxReplicas"], "maxReplicas", 1, kMaxReplicasLimit, &v);
      !s.ok()) {
    return s;
  }
  w.max_replicas = static_cast<int32_t>(v);
  if (w.max_replicas < w.min_replicas) {
    return ctx.Error(
        "maxReplicas",
        absl::StrCat("must be >= minReplicas (", w.max_replicas, " < ", w.min_replicas, ")"),
        node["maxReplicas"]);
  }
  if (w.port != 0 && w.max_replicas > 1) {
    return ctx.Error("port",
                     "is fixed, so only one replica can listen on it: use port: 0 (a free port "
                     "per replica) or maxReplicas: 1",
                     node["port"]);
  }
  std::optional<absl::Duration> idle;
  if (absl::Status s = GetSeconds(ctx, node["idleTimeoutSeconds"], "idleTimeoutSeconds", &idle);
      !s.ok()) {
    return s;
  }
  w.idle_timeout = idle.value_or(absl::ZeroDuration());

  const YAML::Node keep_alive = node["keepAlive"];
  if (Present(keep_alive)) {
    if (!keep_alive.IsMap()) return ctx.Error("keepAlive", "must be a mapping", keep_alive);
    std::set<std::string> seen;
    for (const auto& kv : keep_alive) {
      if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
        return ctx.Error("keepAlive", "must map field names to plain values", kv.first);
      }
      if (!seen.insert(kv.first.Scalar()).second) {
        return ctx.Error(absl::StrCat("keepAlive.", kv.first.Scalar()), "is given twice", kv.first);
      }
      if (absl::Status s = SetKeepAliveField(&w.keep_alive, kv.first.Scalar(), kv.second.Scalar());
          !s.ok()) {
        return ctx.Error("", s.message(), kv.first);
      }
    }
    if (absl::Status s = ValidateKeepAlive(w.keep_alive); !s.ok()) {
      return ctx.Error("", s.message(), keep_alive);
    }
  }

  const YAML::Node route = node["route"];
  if (Present(route)) {
    if (absl::Status s = CheckKeys(ctx, route, "route", kRouteKeys); !s.ok()) return s;
    Route r;
    if (absl::Status s = GetString(ctx, route["host"], "route.host", &r.host); !s.ok()) return s;
    if (absl::Status s = GetString(ctx, route["pathPrefix"], "route.pathPrefix", &r.path_prefix);
        !s.ok()) {
      return s;
    }
    if (r.host.empty() && r.path_prefix.empty()) {
      return ctx.Error("route", "needs a host, a pathPrefix or both", route);
    }
    if (absl::StrContains(r.host, '/') || absl::StrContains(r.host, ' ')) {
      return ctx.Error("route.host", absl::StrCat("must be a host name, got '", r.host, "'"),
                       route["host"]);
    }
    r.host = absl::AsciiStrToLower(r.host);
    if (!r.path_prefix.empty() && r.path_prefix.front() != '/') {
      return ctx.Error("route.pathPrefix",
                       absl::StrCat("must start with '/', got '", r.path_prefix, "'"),
                       route["pathPrefix"]);
    }
    w.route = r;
  }

  const YAML::Node rules = node["rules"];
  if (Present(rules)) {
    if (!rules.IsSequence()) return ctx.Error("rules", "must be a list", rules);
    for (size_t i = 0; i < rules.size(); ++i) {
      absl::StatusOr<ScalingRule> rule =
          ParseRule(ctx, rules[i], absl::StrCat("rules[", i, "]"), w.id);
      if (!rule.ok()) return rule.status();
      w.rules.push_back(*std::move(rule));
    }
  }

  const YAML::Node metrics = node["metrics"];
  if (Present(metrics)) {
    if (absl::Status s = CheckKeys(ctx, metrics, "metrics", kMetricsKeys); !s.ok()) return s;
    AppMetrics m;
    if (absl::Status s = GetString(ctx, metrics["path"], "metrics.path", &m.path); !s.ok()) {
      return s;
    }
    if (absl::Status s = GetString(ctx, metrics["preset"], "metrics.preset", &m.preset); !s.ok()) {
      return s;
    }
    if (absl::Status s = GetString(ctx, metrics["series"], "metrics.series", &m.series); !s.ok()) {
      return s;
    }
    if (m.path.empty()) m.path = "/metrics";
    if (m.path.front() != '/' || m.path.find_first_of(" \t\r\n") != std::string::npos) {
      return ctx.Error("metrics.path",
                       absl::StrCat("must be an HTTP path starting with '/', got '", m.path, "'"),
                       metrics["path"]);
    }
    if (absl::Status s = prom::AppMetricsPresetSeries(m.preset).status(); !s.ok()) {
      return ctx.Error("metrics.preset", s.message(), metrics["preset"]);
    }
    absl::StatusOr<std::vector<std::string>> series =
        prom::SeriesToForward(m.preset, m.series, kMaxAppMetrics);
    // Neither a preset nor series: the sidecar forwards the endpoint's gauges.
    if (!series.ok()) return ctx.Error("metrics.series", series.status().message(), metrics);
    w.metrics = m;
  }

  if (absl::Status s = GetString(ctx, node["readinessPath"], "readinessPath", &w.readiness_path);
      !s.ok()) {
    return s;
  }
  if (!w.readiness_path.empty() && w.readiness_path.front() != '/') {
    return ctx.Error("readinessPath",
                     absl::StrCat("must start with '/', got '", w.readiness_path, "'"),
                     node["readinessPath"]);
  }
  if (absl::Status s = GetSeconds(ctx, node["activationTimeoutSeconds"], "activationTimeoutSeconds",
                                  &w.activation_timeout);
      !s.ok()) {
    return s;
  }
  if (w.activation_timeout && *w.activation_timeout <= absl::ZeroDuration()) {
    return ctx.Error("activationTimeoutSeconds", "must be positive",
                     node["activationTimeoutSeconds"]);
  }
  if (absl::Status s = GetSeconds(ctx, node["stopGraceSeconds"], "stopGraceSeconds", &w.stop_grace);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = GetString(ctx, node["workingDir"], "workingDir", &w.working_dir); !s.ok()) {
    return s;
  }

  const YAML::Node env = node["env"];
  if (Present(env)) {
    if (!env.IsMap()) return ctx.Error("env", "must be a mapping of names to values", env);
    for (const auto& kv : env) {
      const std::string name = kv.first.IsScalar() ? kv.first.Scalar() : "";
      if (!ValidEnvName(name)) {
        return ctx.Error("env", absl::StrCat("has an invalid variable name '", name, "'"),
                         kv.first);
      }
      if (!kv.second.IsScalar() && !kv.second.IsNull()) {
        return ctx.Error(absl::StrCat("env.", name), "must be a string", kv.second);
      }
      if (!w.env.emplace(name, kv.second.IsNull() ? "" : kv.second.Scalar()).second) {
        return ctx.Error(absl::StrCat("env.", name), "is given twice", kv.first);
      }
    }
  }

  // With a port per replica the app can only learn it from the placeholder; a command
  // without one is almost always a typo ("{prot}").
  if (w.port == 0) {
    bool placeholder = false;
    for (const std::string& arg : w.command)
      placeholder |= absl::StrContains(arg, kPortPlaceholder);
    for (const auto& [name, value] : w.env) {
      placeholder |= absl::StrContains(value, kPortPlaceholder);
    }
    if (!placeholder) {
      return ctx.Error("command",
                       "must pass {port} to the app (in an argument or an env value) when "
                       "port is 0, since each replica gets its own free port",
                       command);
    }
  }
  return w;
}

}  // namespace

std::string WorkloadId(absl::string_view name) {
  return absl::StrCat(kNamespace, "/", kKind, "/", name);
}

absl::StatusOr<std::vector<Workload>> ParseWorkloads(absl::string_view text,
                                                     absl::string_view source) {
  Context ctx(source);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.mark.line + 1, ":",
                                                   e.mark.column + 1, ": not valid YAML: ", e.msg));
  }
  std::vector<Workload> out;
  try {
    if (!root.IsMap()) return ctx.Error("", "must be a mapping with a 'workloads' list", root);
    constexpr absl::string_view kRootKeys[] = {"workloads"};
    if (absl::Status s = CheckKeys(ctx, root, "", kRootKeys); !s.ok()) return s;
    const YAML::Node list = root["workloads"];
    if (!Present(list) || !list.IsSequence() || list.size() == 0) {
      return ctx.Error("workloads", "must be a non-empty list", list);
    }
    std::map<std::string, size_t> names, hosts, prefixes, rule_ids;
    for (size_t i = 0; i < list.size(); ++i) {
      absl::StatusOr<Workload> w = ParseWorkload(ctx, list[i], i);
      if (!w.ok()) return w.status();
      if (auto [it, fresh] = names.emplace(w->name, i); !fresh) {
        return ctx.Error("name", absl::StrCat("duplicates workloads[", it->second, "]"),
                         list[i]["name"]);
      }
      if (w->route && !w->route->host.empty()) {
        if (auto [it, fresh] = hosts.emplace(w->route->host, i); !fresh) {
          return ctx.Error("route.host",
                           absl::StrCat("'", w->route->host, "' is already the route of workloads[",
                                        it->second, "]"),
                           list[i]["route"]);
        }
      }
      if (w->route && !w->route->path_prefix.empty()) {
        const std::string prefix = NormalizePrefix(w->route->path_prefix);
        if (auto [it, fresh] = prefixes.emplace(prefix, i); !fresh) {
          return ctx.Error(
              "route.pathPrefix",
              absl::StrCat("'", prefix, "' is already the route of workloads[", it->second, "]"),
              list[i]["route"]);
        }
      }
      // Rules are stored by id alone (scaling_rule:<id>), so ids are global.
      for (size_t r = 0; r < w->rules.size(); ++r) {
        if (auto [it, fresh] = rule_ids.emplace(w->rules[r].id, i); !fresh) {
          return ctx.Error(absl::StrCat("rules[", r, "].id"),
                           absl::StrCat("'", w->rules[r].id, "' is already a rule of workloads[",
                                        it->second, "]; rule ids are global"),
                           list[i]["rules"][r]);
        }
      }
      out.push_back(*std::move(w));
    }
  } catch (const YAML::Exception& e) {
    // Type conversions are checked before use; this is a last line of defence.
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
  return out;
}

absl::StatusOr<std::vector<Workload>> LoadWorkloadsFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path, "the workloads file");
  if (!text.ok()) return text.status();
  return ParseWorkloads(*text, path);
}

const Workload* FindWorkload(const std::vector<Workload>& workloads, absl::string_view name_or_id) {
  for (const Workload& w : workloads) {
    if (w.name == name_or_id || w.id == name_or_id) return &w;
  }
  return nullptr;
}

}  // namespace zeroscale::workloads
