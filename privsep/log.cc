#include "privsep/log.h"

#include <unistd.h>

#include <cstring>
#include <string>

namespace coolify {
namespace {

// Fixed storage: the role is set once at start, before any thread exists.
char g_role[24] = "coold";

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

}  // namespace

void SetLogRole(std::string_view role) {
  size_t n = std::min(role.size(), sizeof(g_role) - 1);
  std::memcpy(g_role, role.data(), n);
  g_role[n] = '\0';
}

void LogLine(LogLevel level, std::string_view message) {
  std::string line = absl::StrFormat("%s[%d] %s: %s\n", g_role, getpid(), LevelName(level), message);
  // A short write to stderr is not worth retrying: logging must never block progress.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace coolify
