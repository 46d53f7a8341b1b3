#include "tests/shell_testing.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>

namespace coolify::testing {

std::string Runfile(const std::string& path) { return std::string(getenv("TEST_SRCDIR")) + "/coold/" + path; }

CommandRun Shell(const std::string& command) {
  CommandRun run;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) run.out.append(buf, n);
  int status = pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace coolify::testing
