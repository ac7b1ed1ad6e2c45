#include "tests/testing/container_spec.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "tests/testing/json_fields.h"

namespace zeroscale::testing {
namespace {

using json = nlohmann::json;

const json* FindContainer(const json& pod, const std::string& name) {
  for (const char* list : {"containers", "initContainers"}) {
    const json& cs = JsonAt(JsonAt(pod, "spec"), list);
    if (!cs.is_array()) continue;
    for (const json& c : cs) {
      if (JsonStr(c, "name") == name) return &c;
    }
  }
  return nullptr;
}

// "6" or "6.5" etc. without the trailing zeros a double would print.
std::string Integer(double v) { return absl::StrCat(static_cast<int64_t>(v)); }

std::string QuantityString(const json& q) {
  if (q.is_string()) return q.get<std::string>();
  if (q.is_number()) return q.dump();
  return "";
}

bool OptionalRef(const json& ref) {
  return JsonAt(ref, "optional").is_boolean() && ref["optional"].get<bool>();
}

}  // namespace

absl::StatusOr<double> ParseQuantity(absl::string_view text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  struct Suffix {
    const char* name;
    double factor;
  };
  static const Suffix kSuffixes[] = {{"Ki", 1024.0},
                                     {"Mi", 1048576.0},
                                     {"Gi", 1073741824.0},
                                     {"Ti", 1099511627776.0},
                                     {"Pi", 1125899906842624.0},
                                     {"Ei", 1152921504606846976.0},
                                     {"n", 1e-9},
                                     {"u", 1e-6},
                                     {"m", 1e-3},
                                     {"k", 1e3},
                                     {"M", 1e6},
                                     {"G", 1e9},
                                     {"T", 1e12},
                                     {"P", 1e15},
                                     {"E", 1e18}};
  double factor = 1;
  for (const Suffix& suf : kSuffixes) {
    if (absl::EndsWith(s, suf.name)) {
      const absl::string_view number = s.substr(0, s.size() - std::strlen(suf.name));
      // "1e3" ends in no suffix; "1E" would be exa, but only after a digit.
      if (!number.empty() && absl::ascii_isdigit(static_cast<unsigned char>(number.back()))) {
        s = number;
        factor = suf.factor;
        break;
      }
    }
  }
  double v;
  if (s.empty() || !absl::SimpleAtod(s, &v) || !std::isfinite(v) || v < 0 ||
      !(absl::ascii_isdigit(static_cast<unsigned char>(s[0])) || s[0] == '.' || s[0] == '+')) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a resource quantity"));
  }
  return v * factor;
}

std::string ExpandVars(
    absl::string_view in,
    const std::function<std::optional<std::string>(const std::string&)>& lookup) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '$' || i + 1 >= in.size()) {
      out.push_back(in[i]);
      continue;
    }
    if (in[i + 1] == '$') {  // escaped
      out.push_back('$');
      ++i;
      continue;
    }
    if (in[i + 1] == '(') {
      const size_t close = in.find(')', i + 2);
      if (close != absl::string_view::npos) {
        const std::string name(in.substr(i + 2, close - i - 2));
        if (std::optional<std::string> v = lookup(name)) {
          out += *v;
        } else {
          absl::StrAppend(&out, in.substr(i, close - i + 1));
        }
        i = close;
        continue;
      }
    }
    out.push_back('$');
  }
  return out;
}

absl::StatusOr<std::string> FieldRefValue(const PodContext& ctx, absl::string_view field_path) {
  const json& pod = *ctx.pod;
  const json& meta = JsonAt(pod, "metadata");
  if (field_path == "metadata.name") return JsonStr(meta, "name");
  if (field_path == "metadata.namespace") return JsonStr(meta, "namespace");
  if (field_path == "metadata.uid") return JsonStr(meta, "uid");
  if (field_path == "spec.nodeName") return ctx.node_name;
  if (field_path == "spec.serviceAccountName")
    return JsonStr(JsonAt(pod, "spec"), "serviceAccountName");
  if (field_path == "status.podIP" || field_path == "status.podIPs") return ctx.pod_ip;
  if (field_path == "status.hostIP") return ctx.host_ip;
  for (const char* map : {"labels", "annotations"}) {
    const std::string prefix = absl::StrCat("metadata.", map, "['");
    absl::string_view key = field_path;
    if (absl::ConsumePrefix(&key, prefix) && absl::ConsumeSuffix(&key, "']")) {
      return JsonStr(JsonAt(meta, map), std::string(key).c_str());
    }
    if (field_path == absl::StrCat("metadata.", map)) {
      std::vector<std::string> lines;
      const json& m = JsonAt(meta, map);
      if (m.is_object()) {
        for (const auto& [k, v] : m.items()) {
          lines.push_back(
              absl::StrCat(k, "=", json(v.is_string() ? v.get<std::string>() : "").dump()));
        }
      }
      return absl::StrJoin(lines, "\n");
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("fieldRef '", field_path, "' is not supported by the kubelet stand-in"));
}

absl::StatusOr<std::string> ResourceFieldRefValue(const PodContext& ctx,
                                                  const std::string& container_name,
                                                  const json& ref) {
  const std::string name =
      JsonStr(ref, "containerName").empty() ? container_name : JsonStr(ref, "containerName");
  const json* container = FindContainer(*ctx.pod, name);
  if (container == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("resourceFieldRef names container '", name, "', which the pod lacks"));
  }
  const std::string resource = JsonStr(ref, "resource");
  const size_t dot = resource.find('.');
  if (dot == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("resourceFieldRef resource '", resource, "'"));
  }
  const std::string kind = resource.substr(0, dot);   // limits | requests
  const std::string what = resource.substr(dot + 1);  // cpu | memory | ephemeral-storage
  if ((kind != "limits" && kind != "requests") ||
      (what != "cpu" && what != "memory" && what != "ephemeral-storage")) {
    return absl::InvalidArgumentError(absl::StrCat("resourceFieldRef resource '", resource, "'"));
  }
  const json& set = JsonAt(JsonAt(*container, "resources"), kind.c_str());
  std::string value = QuantityString(JsonAt(set, what.c_str()));
  if (value.empty()) {
    if (kind == "requests") {
      value = "0";
    } else {
      auto it = ctx.node_allocatable.find(what);
      value = it != ctx.node_allocatable.end() ? it->second : "0";
    }
  }
  absl::StatusOr<double> v = ParseQuantity(value);
  if (!v.ok()) return v.status();
  std::string divisor_text = QuantityString(JsonAt(ref, "divisor"));
  if (divisor_text.empty()) divisor_text = "1";
  absl::StatusOr<double> divisor = ParseQuantity(divisor_text);
  if (!divisor.ok() || *divisor <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("resourceFieldRef divisor '", divisor_text, "'"));
  }
  // Rounded up, as the kubelet's ExtractContainerResourceValue does; 1e-9 absorbs the
  // binary error of "500m" / "1m".
  return Integer(std::ceil(*v / *divisor - 1e-9));
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ContainerEnv(
    const PodContext& ctx, const json& container,
    const std::vector<std::pair<std::string, std::string>>& base) {
  std::vector<std::pair<std::string, std::string>> env = base;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < env.size(); ++i) index[env[i].first] = i;
  auto set = [&](const std::string& k, std::string v) {
    auto it = index.find(k);
    if (it != index.end()) {
      env[it->second].second = std::move(v);
    } else {
      index[k] = env.size();
      env.emplace_back(k, std::move(v));
    }
  };
  auto lookup = [&](const std::string& k) -> std::optional<std::string> {
    auto it = index.find(k);
    if (it == index.end()) return std::nullopt;
    return env[it->second].second;
  };
  const std::string container_name = JsonStr(container, "name");
  auto data_of = [&](const char* kind,
                     const json& ref) -> absl::StatusOr<std::map<std::string, std::string>> {
    if (!ctx.lookup_data) return absl::NotFoundError("no ConfigMap/Secret lookup");
    return ctx.lookup_data(kind, JsonStr(ref, "name"));
  };

  const json& env_from = JsonAt(container, "envFrom");
  if (env_from.is_array()) {
    for (const json& src : env_from) {
      const bool secret = src.contains("secretRef");
      const json& ref = secret ? src["secretRef"] : JsonAt(src, "configMapRef");
      absl::StatusOr<std::map<std::string, std::string>> data =
          data_of(secret ? "Secret" : "ConfigMap", ref);
      if (!data.ok()) {
        if (OptionalRef(ref)) continue;
        return absl::Status(data.status().code(),
                            absl::StrCat("envFrom ", secret ? "Secret " : "ConfigMap ",
                                         JsonStr(ref, "name"), ": ", data.status().message()));
      }
      for (const auto& [k, v] : *data) set(absl::StrCat(JsonStr(src, "prefix"), k), v);
    }
  }
  const json& list = JsonAt(container, "env");
  if (!list.is_array()) return env;
  for (const json& e : list) {
    const std::string name = JsonStr(e, "name");
    const json& from = JsonAt(e, "valueFrom");
    if (from.is_null()) {
      set(name, ExpandVars(JsonStr(e, "value"), lookup));
      continue;
    }
    absl::StatusOr<std::string> value = absl::InvalidArgumentError("unsupported valueFrom");
    if (from.contains("fieldRef")) {
      value = FieldRefValue(ctx, JsonStr(from["fieldRef"], "fieldPath"));
    } else if (from.contains("resourceFieldRef")) {
      value = ResourceFieldRefValue(ctx, container_name, from["resourceFieldRef"]);
    } else if (from.contains("configMapKeyRef") || from.contains("secretKeyRef")) {
      const bool secret = from.contains("secretKeyRef");
      const json& ref = secret ? from["secretKeyRef"] : from["configMapKeyRef"];
      absl::StatusOr<std::map<std::string, std::string>> data =
          data_of(secret ? "Secret" : "ConfigMap", ref);
      if (data.ok()) {
        auto it = data->find(JsonStr(ref, "key"));
        value = it != data->end()
                    ? absl::StatusOr<std::string>(it->second)
                    : absl::NotFoundError(absl::StrCat("no key ", JsonStr(ref, "key")));
      } else {
        value = data.status();
      }
      if (!value.ok() && OptionalRef(ref)) continue;
    }
    if (!value.ok()) {
      return absl::Status(value.status().code(),
                          absl::StrCat("env ", name, ": ", value.status().message()));
    }
    set(name, *std::move(value));
  }
  return env;
}

absl::StatusOr<std::vector<std::string>> ContainerCommand(
    const json& container, const ContainerImage& image,
    const std::vector<std::pair<std::string, std::string>>& env) {
  std::map<std::string, std::string> vars(env.begin(), env.end());
  auto lookup = [&](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  auto strings = [&](const char* key, std::vector<std::string>* out) {
    const json& list = JsonAt(container, key);
    if (!list.is_array()) return false;
    for (const json& s : list)
      out->push_back(ExpandVars(s.is_string() ? s.get<std::string>() : "", lookup));
    return true;
  };
  std::vector<std::string> command;
  std::vector<std::string> args;
  const bool has_command = strings("command", &command);
  const bool has_args = strings("args", &args);
  std::vector<std::string> argv;
  if (has_command) {
    argv = command;  // the image's ENTRYPOINT and CMD are both ignored
  } else {
    argv = image.entrypoint;
    if (!has_args) args = image.cmd;
  }
  argv.insert(argv.end(), args.begin(), args.end());
  if (argv.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("container ", JsonStr(container, "name"),
                     ": neither its command nor its image names a program"));
  }
  return argv;
}

const ContainerImage* FindImage(const std::map<std::string, ContainerImage>& images,
                                const std::string& image) {
  auto it = images.find(image);
  if (it != images.end()) return &it->second;
  std::string repo = image.substr(0, image.find('@'));
  const size_t slash = repo.rfind('/');
  const size_t colon = repo.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    repo.resize(colon);
  }
  it = images.find(repo);
  return it != images.end() ? &it->second : nullptr;
}

std::map<std::string, double> PodRequests(const json& pod) {
  auto requests_of = [](const json& c) {
    std::map<std::string, double> out;
    const json& res = JsonAt(c, "resources");
    for (const char* kind : {"limits", "requests"}) {  // requests override limits
      const json& set = JsonAt(res, kind);
      if (!set.is_object()) continue;
      for (const auto& [k, v] : set.items()) {
        absl::StatusOr<double> q = ParseQuantity(QuantityString(v));
        if (q.ok()) out[k] = *q;
      }
    }
    return out;
  };
  std::map<std::string, double> total;
  const json& spec = JsonAt(pod, "spec");
  if (JsonAt(spec, "containers").is_array()) {
    for (const json& c : spec["containers"]) {
      for (const auto& [k, v] : requests_of(c)) total[k] += v;
    }
  }
  if (JsonAt(spec, "initContainers").is_array()) {
    for (const json& c : spec["initContainers"]) {
      for (const auto& [k, v] : requests_of(c)) total[k] = std::max(total[k], v);
    }
  }
  return total;
}

}  // namespace zeroscale::testing
