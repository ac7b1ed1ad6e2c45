#include "common/log/log.h"

#include <unistd.h>

#include <atomic>
#include <mutex>

#include "absl/time/clock.h"
#include "common/time/clock.h"
#include "nlohmann/json.hpp"

namespace zeroscale::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::mutex g_component_mu;
std::string* g_component = new std::string("zeroscale");

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }

const std::vector<std::string>& LevelNames() {
  static const auto* const names =
      new std::vector<std::string>{"debug", "info", "warning", "error"};
  return *names;
}

bool SetLevelByName(absl::string_view name) {
  const std::vector<std::string>& names = LevelNames();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) {
      SetLevel(static_cast<Level>(i));
      return true;
    }
  }
  return false;
}

bool Enabled(Level level) { return static_cast<int>(level) >= g_level.load(); }

void SetComponent(absl::string_view component) {
  std::lock_guard<std::mutex> lock(g_component_mu);
  *g_component = std::string(component);
}

std::string Format(Level level, absl::string_view msg, std::initializer_list<Field> fields) {
  nlohmann::ordered_json line;
  line["ts"] = FormatRfc3339(absl::Now());
  line["level"] = LevelName(level);
  {
    std::lock_guard<std::mutex> lock(g_component_mu);
    line["component"] = *g_component;
  }
  line["msg"] = std::string(msg);
  for (const Field& f : fields) line[std::string(f.first)] = f.second;
  // Replace invalid UTF-8 rather than throw: log lines must never crash the process.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void Write(Level level, absl::string_view msg, std::initializer_list<Field> fields) {
  const std::string line = Format(level, msg, fields);
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

}  // namespace zeroscale::log
