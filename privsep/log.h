// Line-oriented logging to stderr, one write(2) per line so lines from the monitor and
// its children never interleave mid-line. The prefix names the process role.
#ifndef COOLD_PRIVSEP_LOG_H_
#define COOLD_PRIVSEP_LOG_H_

#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace coolify {

enum class LogLevel { kInfo, kWarn, kError };

// Sets the prefix every later line carries ("monitor", "front", ...).
void SetLogRole(std::string_view role);

// Writes `message` as one line, each URL's credentials (RedactUrlCredentials) removed.
void LogLine(LogLevel level, std::string_view message);

// `text` with the userinfo of every URL in it ("scheme://user:password@host/...")
// replaced by "***": a repository URL may carry a git token, and error messages (git's,
// the builder's) quote the URL they failed on. Every log line passes through it.
std::string RedactUrlCredentials(std::string_view text);

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

// One field of an event line: a fixed key and its value, numbers spelled as StrCat does.
struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  template <typename Number, typename = std::enable_if_t<std::is_arithmetic_v<Number>>>
  LogField(std::string_view k, Number v) : key(k), value(absl::StrCat(v)) {}
  std::string_view key;
  std::string value;
};

// "event=NAME key=value ...": one line per event, which a log collector splits on spaces
// and '='. A value that is empty or holds a space, '"', '=', '\\' or a byte outside
// printable ASCII is written in double quotes, '"' and '\\' escaped with a backslash,
// \n \r \t by name and any other such byte as \xNN, so a value can never forge a field
// or a line. Callers pass only what may be shown to an operator: never a token, an
// Authorization header, an environment value or a registry credential.
std::string EventText(std::string_view event, const std::vector<LogField>& fields);
void LogEvent(LogLevel level, std::string_view event, const std::vector<LogField>& fields);

}  // namespace coolify

#endif  // COOLD_PRIVSEP_LOG_H_
