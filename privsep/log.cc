#include "privsep/log.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
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

// A bounded ring of the newest lines: memory stays fixed however long coold runs.
struct Recent {
  std::mutex mu;
  std::deque<std::string> lines;
};

Recent& RecentLines() {
  static Recent* recent = new Recent;
  return *recent;
}

}  // namespace

std::vector<std::string> RecentLogLines(size_t count) {
  Recent& recent = RecentLines();
  std::lock_guard<std::mutex> lock(recent.mu);
  count = std::min(count, recent.lines.size());
  return std::vector<std::string>(recent.lines.end() - static_cast<long>(count), recent.lines.end());
}

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
  line.pop_back();
  if (line.size() > kRecentLogLineBytes) {
    // Cut at a character boundary: the lines travel in protobuf strings, which are UTF-8.
    size_t cut = kRecentLogLineBytes;
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    line.resize(cut);
  }
  Recent& recent = RecentLines();
  std::lock_guard<std::mutex> lock(recent.mu);
  if (recent.lines.size() >= kRecentLogLines) recent.lines.pop_front();
  recent.lines.push_back(std::move(line));
}

}  // namespace coolify
