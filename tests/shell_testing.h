// The two helpers every test that drives real programs needs: where a runfile is, and
// running a shell command as an operator would. Kept apart from coold_testing (whose
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

}  // namespace coolify::testing

#endif  // COOLD_TESTS_SHELL_TESTING_H_
