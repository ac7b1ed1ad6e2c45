// Command-line flags that also read ZEROSCALE_<FLAG> environment variables
// (SPEC.md section 9): a flag given on the command line wins over the environment,
// which wins over the default. Every value is validated when parsed, and the error
// names the flag, where the value came from, and what was expected.
// Not thread-safe; parse once in main() before starting threads.
#ifndef ZEROSCALE_COMMON_CONFIG_FLAGS_H_
#define ZEROSCALE_COMMON_CONFIG_FLAGS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace zeroscale::config {

struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;
};

// Parsers shared by flags and config files. Errors say what was expected.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text);
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text);
absl::StatusOr<bool> ParseBool(absl::string_view text);
absl::StatusOr<int64_t> ParseInt(absl::string_view text, int64_t min, int64_t max);

// Looks up an environment variable; injectable so tests need not touch the process env.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup ProcessEnv();

class FlagSet {
 public:
  FlagSet(std::string program, std::string summary);

  void String(std::string name, std::string* out, std::string def, std::string help);
  void Int(std::string name, int64_t* out, int64_t def, std::string help,
           int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  void Bool(std::string name, bool* out, bool def, std::string help);
  void Duration(std::string name, absl::Duration* out, absl::Duration def,
                std::string help);
  // An empty default leaves `out` empty until set.
  void Address(std::string name, HostPort* out, std::string def, std::string help);
  // A value restricted to `choices`.
  void Enum(std::string name, std::string* out, std::string def,
            std::vector<std::string> choices, std::string help);

  // Applies defaults, then the environment, then argv. Returns the first error.
  // `--help` sets help_requested() and returns OK without touching other flags.
  absl::Status Parse(int argc, const char* const* argv, const EnvLookup& env);
  bool help_requested() const { return help_requested_; }
  std::string Usage() const;

  // Parses with the process environment; on error prints it and exits 2, on --help
  // prints usage and exits 0. For main().
  void ParseOrExit(int argc, char** argv);

  static std::string EnvName(absl::string_view flag);

 private:
  struct Flag {
    std::string name;
    std::string def;
    std::string help;
    bool is_bool = false;
    std::function<absl::Status(absl::string_view)> set;
  };
  absl::Status Apply(const Flag& flag, absl::string_view value,
                     absl::string_view source);

  std::string program_;
  std::string summary_;
  std::vector<Flag> flags_;
  bool help_requested_ = false;
};

}  // namespace zeroscale::config

#endif  // ZEROSCALE_COMMON_CONFIG_FLAGS_H_
