// Line-oriented logging to stderr, one write(2) per line so lines from the monitor and
// its children never interleave mid-line. The prefix names the process role.
#ifndef COOLD_PRIVSEP_LOG_H_
#define COOLD_PRIVSEP_LOG_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"

namespace coolify {

enum class LogLevel { kInfo, kWarn, kError };

// Sets the prefix every later line carries ("monitor", "front", ...).
void SetLogRole(std::string_view role);

void LogLine(LogLevel level, std::string_view message);

// The newest `count` lines this process logged (at most kRecentLogLines, each cut at
// kRecentLogLineBytes), oldest first, as written to stderr without the newline. Lines
// never carry request contents or credentials, so they may be shown to an operator.
inline constexpr size_t kRecentLogLines = 1000;
inline constexpr size_t kRecentLogLineBytes = 1024;
std::vector<std::string> RecentLogLines(size_t count);

template <typename... Args>
void LogInfo(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine(LogLevel::kInfo, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogWarn(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine(LogLevel::kWarn, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogError(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine(LogLevel::kError, absl::StrFormat(format, args...));
}

}  // namespace coolify

#endif  // COOLD_PRIVSEP_LOG_H_
