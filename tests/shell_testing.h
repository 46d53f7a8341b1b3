// The helpers every test that drives real programs needs: where a runfile is, running a
// shell command as an operator would, and a port for a server it starts. Kept apart from coold_testing (whose
// target brings the whole coold as data) so tests of other programs can use them.
#ifndef COOLD_TESTS_SHELL_TESTING_H_
#define COOLD_TESTS_SHELL_TESTING_H_

#include <string>

namespace coolify::testing {

// A file of the test's runfiles ("services/monitor/coold").
std::string Runfile(const std::string& path);

struct CommandRun {
  int status = -1;  // the exit status, -1 when the command did not exit normally
  std::string out;  // stdout and stderr together
};

// Runs a shell command in this process's network namespace, as an operator would.
CommandRun Shell(const std::string& command);

// A loopback TCP port free right now, chosen by the kernel: tests run side by side, and a
// fixed port is one another test may hold. A restarted server can come back on it.
int FreeLoopbackPort();

}  // namespace coolify::testing

#endif  // COOLD_TESTS_SHELL_TESTING_H_
