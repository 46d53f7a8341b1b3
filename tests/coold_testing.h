// The real coold, started by a test: the monitor binary from the test's runfiles with the
// given COOLD_* environment, its stderr captured.
#ifndef COOLD_TESTS_COOLD_TESTING_H_
#define COOLD_TESTS_COOLD_TESTING_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/shell_testing.h"

namespace coolify::testing {

struct RestAnswer {
  int status = 0;  // the HTTP status, 0 when nothing answered
  std::string body;
};

// One request to coold's REST API on 127.0.0.1:`port` with curl and bearer `token`, as an
// operator would send it; a body goes through a file, so no quoting of JSON is needed.
RestAnswer RestCall(int port, const std::string& token, const std::string& method, const std::string& path,
                    const std::string& body = "");

class CooldUnderTest {
 public:
  // Starts coold with `env` ("NAME=value" entries; COOLD_LIBEXEC_DIR is added unless
  // `env` names one) and `args`; with `own_network_namespace`, in a new network namespace,
  // so its firewall writer reads and writes that one and not the test's; with
  // `network_namespace` (a path such as /run/netns/NAME), in that existing one, which the
  // test can read after coold is gone.
  CooldUnderTest(std::vector<std::string> env, std::vector<std::string> args = {},
                 bool own_network_namespace = false, const std::string& network_namespace = "");
  // Kills coold (SIGKILL) if it still runs.
  ~CooldUnderTest();
  CooldUnderTest(const CooldUnderTest&) = delete;
  CooldUnderTest& operator=(const CooldUnderTest&) = delete;

  pid_t pid() const { return pid_; }
  // Everything coold has written to stderr so far.
  const std::string& log() const { return log_; }

  // Reads stderr until `needle` appears; false after `timeout`.
  bool WaitForLog(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Waits for coold to exit; its wait status, or -1 after `timeout`.
  int WaitExit(std::chrono::milliseconds timeout);
  // SIGTERM and wait (orderly), or SIGKILL and wait (a crash). Returns the wait status.
  int Stop();
  int Kill();

 private:
  int Signal(int signal);

  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  bool exited_ = false;
  std::string log_;
  std::string owned_state_dir_;  // the endpoint store's and builds' directory this object made, if any
};

}  // namespace coolify::testing

#endif  // COOLD_TESTS_COOLD_TESTING_H_
