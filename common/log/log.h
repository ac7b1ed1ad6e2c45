// Structured logging: one JSON object per line on stderr, so logs can be parsed by
// any collector. Thread-safe: each line is written with a single write(2).
//
//   ZS_LOG(kInfo, "stream opened", {{"pod", pod}, {"streams", absl::StrCat(n)}});
#ifndef ZEROSCALE_COMMON_LOG_LOG_H_
#define ZEROSCALE_COMMON_LOG_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace zeroscale::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

using Field = std::pair<absl::string_view, std::string>;

// Lines below `level` are dropped. Default kInfo; ZEROSCALE_LOG_LEVEL may set it.
void SetLevel(Level level);
// For the --log-level flag of every program: "debug", "info", "warning", "error".
const std::vector<std::string>& LevelNames();
// Sets the level by one of LevelNames(); false (and no change) for any other name.
bool SetLevelByName(absl::string_view name);
bool Enabled(Level level);
// The component name every line carries ("scaler", "sidecar", ...).
void SetComponent(absl::string_view component);

// Renders one line; exposed for tests.
std::string Format(Level level, absl::string_view msg, std::initializer_list<Field> fields);
void Write(Level level, absl::string_view msg, std::initializer_list<Field> fields);

}  // namespace zeroscale::log

#define ZS_LOG(level, msg, ...)                                                    \
  do {                                                                             \
    if (::zeroscale::log::Enabled(::zeroscale::log::Level::level)) {               \
      ::zeroscale::log::Write(::zeroscale::log::Level::level, msg, {__VA_ARGS__}); \
    }                                                                              \
  } while (0)

#endif  // ZEROSCALE_COMMON_LOG_LOG_H_
