#include "privsep/log.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>

namespace coolify {
namespace {

// Fixed storage: the role is set once at start, before any thread exists.
char g_role[24] = "coold";

// This process's id for the prefix. glibc keeps no cache of getpid(), so each line would
// cost a system call of its own (a request writes one or two lines): the id is kept, and
// forgotten in the child of a fork (pthread_atfork runs in fork()'s child, which is how
// coold's processes are made), where the next line reads it again.
std::atomic<pid_t> g_pid{0};
const int g_forget_pid_in_child = pthread_atfork(nullptr, nullptr, [] { g_pid.store(0, std::memory_order_relaxed); });

pid_t Pid() {
  pid_t pid = g_pid.load(std::memory_order_relaxed);
  if (pid == 0) {
    pid = getpid();
    g_pid.store(pid, std::memory_order_relaxed);
  }
  return pid;
}

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

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

void AppendValue(std::string& out, std::string_view value) {
  if (!NeedsQuotes(value)) {
    out.append(value.data(), value.size());
    return;
  }
  out += '"';
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += absl::StrFormat("\\x%02x", byte);
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

std::string EventText(std::string_view event, const std::vector<LogField>& fields) {
  std::string line = "event=";
  AppendValue(line, event);
  for (const LogField& field : fields) {
    line += ' ';
    line.append(field.key.data(), field.key.size());
    line += '=';
    AppendValue(line, field.value);
  }
  return line;
}

void LogEvent(LogLevel level, std::string_view event, const std::vector<LogField>& fields) {
  LogLine(level, EventText(event, fields));
}

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

std::string RedactUrlCredentials(std::string_view text) {
  std::string out;
  size_t done = 0;
  for (size_t scheme = text.find("://"); scheme != std::string_view::npos; scheme = text.find("://", scheme + 3)) {
    const size_t start = scheme + 3;
    size_t end = start;
    while (end < text.size() && text[end] != '/' && text[end] != '?' && text[end] != '#' &&
           static_cast<unsigned char>(text[end]) > 0x20 && text[end] != '"' && text[end] != '\'') {
      ++end;
    }
    const size_t at = text.substr(start, end - start).rfind('@');
    if (at == std::string_view::npos || start < done) continue;
    out.append(text.data() + done, start - done);
    out += "***";
    done = start + at;  // from the '@' on
  }
  out.append(text.data() + done, text.size() - done);
  return out;
}

void LogLine(LogLevel level, std::string_view message) {
  std::string line = absl::StrFormat("%s[%d] %s: %s\n", g_role, Pid(), LevelName(level),
                                     RedactUrlCredentials(message));
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
