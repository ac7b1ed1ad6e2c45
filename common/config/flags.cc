#include "common/config/flags.h"

#include <cstdlib>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status/status_macros.h"

namespace zeroscale::config {

std::string HostPort::ToString() const { return absl::StrCat(host, ":", port); }

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError("expected HOST:PORT, e.g. 127.0.0.1:6379");
  }
  HostPort hp;
  hp.host = std::string(text.substr(0, colon));
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  if (hp.host.empty()) hp.host = "0.0.0.0";
  int port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError("expected HOST:PORT with a port in 0..65535");
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        "expected a non-negative duration with a unit, e.g. 500ms, 1s, 15m, 1h");
  }
  return d;
}

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  const std::string v = absl::AsciiStrToLower(text);
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  return absl::InvalidArgumentError("expected true or false");
}

absl::StatusOr<int64_t> ParseInt(absl::string_view text, int64_t min, int64_t max) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v)) return absl::InvalidArgumentError("expected an integer");
  if (v < min || v > max) {
    return absl::InvalidArgumentError(absl::StrCat("expected an integer in ", min, "..", max));
  }
  return v;
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

FlagSet::FlagSet(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

std::string FlagSet::EnvName(absl::string_view flag) {
  std::string env = absl::StrCat("ZEROSCALE_", flag);
  for (char& c : env) c = c == '-' ? '_' : absl::ascii_toupper(c);
  return env;
}

void FlagSet::String(std::string name, std::string* out, std::string def,
                     std::string help) {
  flags_.push_back({std::move(name), std::move(def), std::move(help), false,
                    [out](absl::string_view v) {
                      *out = std::string(v);
                      return absl::OkStatus();
                    }});
}

void FlagSet::Int(std::string name, int64_t* out, int64_t def, std::string help,
                  int64_t min, int64_t max) {
  flags_.push_back({std::move(name), absl::StrCat(def), std::move(help), false,
                    [out, min, max](absl::string_view v) -> absl::Status {
                      ZS_ASSIGN_OR_RETURN(*out, ParseInt(v, min, max));
                      return absl::OkStatus();
                    }});
}

void FlagSet::Bool(std::string name, bool* out, bool def, std::string help) {
  flags_.push_back({std::move(name), def ? "true" : "false", std::move(help), true,
                    [out](absl::string_view v) -> absl::Status {
                      ZS_ASSIGN_OR_RETURN(*out, ParseBool(v));
                      return absl::OkStatus();
                    }});
}

void FlagSet::Duration(std::string name, absl::Duration* out, absl::Duration def,
                       std::string help) {
  flags_.push_back({std::move(name), absl::FormatDuration(def), std::move(help), false,
                    [out](absl::string_view v) -> absl::Status {
                      ZS_ASSIGN_OR_RETURN(*out, ParseDuration(v));
                      return absl::OkStatus();
                    }});
}

void FlagSet::Address(std::string name, HostPort* out, std::string def,
                      std::string help) {
  flags_.push_back({std::move(name), std::move(def), std::move(help), false,
                    [out](absl::string_view v) -> absl::Status {
                      if (v.empty()) {
                        *out = HostPort{};
                        return absl::OkStatus();
                      }
                      ZS_ASSIGN_OR_RETURN(*out, ParseHostPort(v));
                      return absl::OkStatus();
                    }});
}

void FlagSet::Enum(std::string name, std::string* out, std::string def,
                   std::vector<std::string> choices, std::string help) {
  help = absl::StrCat(help, " (one of ", absl::StrJoin(choices, ", "), ")");
  flags_.push_back({std::move(name), std::move(def), std::move(help), false,
                    [out, choices](absl::string_view v) -> absl::Status {
                      for (const std::string& c : choices) {
                        if (v == c) {
                          *out = c;
                          return absl::OkStatus();
                        }
                      }
                      return absl::InvalidArgumentError(
                          absl::StrCat("expected one of ", absl::StrJoin(choices, ", ")));
                    }});
}

absl::Status FlagSet::Apply(const Flag& flag, absl::string_view value,
                            absl::string_view source) {
  absl::Status s = flag.set(value);
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat("invalid value '", value, "' for --",
                                                 flag.name, " (from ", source,
                                                 "): ", s.message()));
}

absl::Status FlagSet::Parse(int argc, const char* const* argv, const EnvLookup& env) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view a = argv[i];
    if (a == "--help" || a == "-h" || a == "-help") {
      help_requested_ = true;
      return absl::OkStatus();
    }
  }
  for (const Flag& f : flags_) {
    ZS_RETURN_IF_ERROR(Apply(f, f.def, "the default"));
  }
  for (const Flag& f : flags_) {
    const std::string name = EnvName(f.name);
    if (std::optional<std::string> v = env(name)) {
      ZS_RETURN_IF_ERROR(Apply(f, *v, absl::StrCat("environment ", name)));
    }
  }
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (!absl::ConsumePrefix(&a, "--") && !absl::ConsumePrefix(&a, "-")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument '", argv[i], "': flags look like --name=value"));
    }
    absl::string_view name = a;
    std::optional<absl::string_view> value;
    if (size_t eq = a.find('='); eq != absl::string_view::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
    }
    const Flag* flag = nullptr;
    for (const Flag& f : flags_) {
      if (f.name == name) flag = &f;
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!value.has_value()) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
    }
    ZS_RETURN_IF_ERROR(Apply(*flag, *value, "the command line"));
  }
  return absl::OkStatus();
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("Usage: ", program_, " [flags]\n", summary_, "\n\nFlags:\n");
  for (const Flag& f : flags_) {
    absl::StrAppend(&out, "  --", f.name, "  (env ", EnvName(f.name), ", default '",
                    f.def, "')\n      ", f.help, "\n");
  }
  return out;
}

void FlagSet::ParseOrExit(int argc, char** argv) {
  absl::Status s = Parse(argc, argv, ProcessEnv());
  if (help_requested_) {
    std::cout << Usage();
    std::exit(0);
  }
  if (!s.ok()) {
    std::cerr << program_ << ": " << s.message() << "\n";
    std::exit(2);
  }
}

}  // namespace zeroscale::config
